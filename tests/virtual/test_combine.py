"""Combining several NetCDF4 files into one reference set (``xzaro refs``, ``scan``).

The files are written here by xarray (h5netcdf), whose default encoding gives each file its own
time epoch. The combined references, read with ``engine="zaro"`` and by fsspec's reference file
system with zarr-python, must equal ``xr.open_mfdataset(files, combine="by_coords")`` exactly:
every step, in coordinate order, with the decoded times of the files. Files that overlap, repeat
a value, lack the concatenation dimension or would need chunks cut in two are refused with an
error naming them, and nothing is written.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xzaro.cli import main
from xzaro.errors import MetadataError, NameMismatchError
from xzaro.virtual import Extent, concat_extent, scan, write_references

pytest.importorskip("h5netcdf")
pytest.importorskip("kerchunk.hdf")

OUTPUTS = ["refs.json", "refs.parq"]


def _write(
    path: Path,
    coord: str,
    values: Any,
    encoding: dict[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """A small NetCDF4 file along ``coord`` (time, or lat), written by xarray with h5netcdf."""
    rng = np.random.default_rng(seed)
    sizes = {"time": 2, "lat": 3, "lon": 4}
    sizes[coord] = len(values)
    coords = {"time": pd.date_range("1999-01-01", periods=2), "lat": [10.0, 20.0, 30.0]}
    coords[coord] = values
    coords["lon"] = [0.0, 1.0, 2.0, 3.0]
    ds = xr.Dataset(
        {
            "tas": (
                ("time", "lat", "lon"),
                rng.normal(280, 5, (sizes["time"], sizes["lat"], 4)).astype("f4"),
                {"units": "K"},
            ),
            "mask": (("lon",), np.array([1, 0, 1, 1], "i1")),
        },
        coords=coords,
        attrs={"title": "combine test"},
    )
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)
    return path


def _days(start: str, n: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="D")


def _expected(files: list[Path]) -> xr.Dataset:
    with xr.open_mfdataset(
        files,
        engine="h5netcdf",
        combine="by_coords",
        data_vars="minimal",
        coords="minimal",
        compat="override",
    ) as ds:
        return ds.load()


def _assert_same(got: xr.Dataset, files: list[Path]) -> None:
    """Every variable and coordinate (decoded times included) equals open_mfdataset's."""
    exp = _expected(files)
    got = got.load()
    assert dict(got.sizes) == dict(exp.sizes)
    assert set(got.variables) == set(exp.variables)
    for name in exp.variables:
        assert got[name].dims == exp[name].dims, name
        assert got[name].dtype == exp[name].dtype, name
        np.testing.assert_array_equal(got[name].values, exp[name].values, err_msg=name)
    assert got["tas"].attrs["units"] == "K"


def _peer(out: Path) -> xr.Dataset:
    """fsspec's reference file system with zarr-python reads the same references."""
    pytest.importorskip("zarr")
    if out.suffix == ".parq":
        pytest.importorskip("fastparquet")  # fsspec reads Parquet references with fastparquet
    return xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={
            "storage_options": {"fo": str(out), "remote_protocol": "file"},
            "consolidated": False,
        },
    )


def _stored_time(out: Path) -> xr.Variable:
    with xr.open_dataset(out, engine="zaro", decode_times=False) as ds:
        return ds["time"].variable.load()


@pytest.fixture
def epochs(tmp_path: Path) -> list[Path]:
    """Two files of ten days each, each with its own epoch (xarray's default encoding)."""
    a = _write(tmp_path / "a.nc", "time", _days("2000-01-01", 10), seed=1)
    b = _write(tmp_path / "b.nc", "time", _days("2000-01-11", 10), seed=2)
    with xr.open_dataset(a, engine="h5netcdf") as da, xr.open_dataset(b, engine="h5netcdf") as db:
        assert da["time"].encoding["units"] != db["time"].encoding["units"]
    return [a, b]


@pytest.mark.parametrize("name", OUTPUTS)
def test_cli_different_epochs(
    epochs: list[Path], tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / name
    assert main(["refs", *map(str, epochs), "-o", str(out), "--concat-dim", "time"]) == 0
    printed = capsys.readouterr().out
    assert "time: 20 steps, 2000-01-01 … 2000-01-20" in printed
    got = xr.open_dataset(out, engine="zaro")
    _assert_same(got, epochs)
    assert got.sizes["time"] == 20
    stored = _stored_time(out)  # one unit for the whole coordinate
    assert stored.attrs["units"].startswith("days since 2000-01-01")
    np.testing.assert_array_equal(stored.values, np.arange(20))
    _assert_same(_peer(out), epochs)


@pytest.mark.parametrize("name", OUTPUTS)
def test_cli_orders_files_by_time(
    epochs: list[Path], tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / name
    files = [str(epochs[1]), str(epochs[0])]  # later file first on the command line
    # nothing inline: the coordinates are read from the files through their references
    argv = ["refs", *files, "-o", str(out), "--concat-dim", "time", "--inline-threshold", "0"]
    assert main(argv) == 0
    assert "time: 20 steps, 2000-01-01 … 2000-01-20" in capsys.readouterr().out
    _assert_same(xr.open_dataset(out, engine="zaro"), epochs)
    _assert_same(_peer(out), epochs)


@pytest.mark.parametrize("name", OUTPUTS)
def test_api_different_epochs(
    epochs: list[Path], tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="xzaro")
    refs = scan([str(epochs[1]), str(epochs[0])], concat_dim="time")
    assert "combined 2 files along 'time': time: 20 steps, 2000-01-01 … 2000-01-20" in caplog.text
    extent = concat_extent(refs, "time")
    assert extent == Extent(
        "time", 20, np.datetime64("2000-01-01", "ns"), np.datetime64("2000-01-20", "ns")
    )
    out = tmp_path / name
    write_references(refs, out)
    _assert_same(xr.open_dataset(out, engine="zaro"), epochs)
    if name.endswith(".json"):  # the document itself, through fsspec and zarr-python
        pytest.importorskip("zarr")
        peer = xr.open_dataset(
            "reference://",
            engine="zarr",
            backend_kwargs={"storage_options": {"fo": refs}, "consolidated": False},
        )
        _assert_same(peer, epochs)


@pytest.mark.parametrize("name", OUTPUTS)
def test_same_epoch_keeps_stored_values(tmp_path: Path, name: str) -> None:
    encoding = {"time": {"units": "hours since 2000-01-01", "dtype": "int32"}}
    files = [
        _write(tmp_path / "a.nc", "time", _days("2000-01-01", 4), encoding, seed=1),
        _write(tmp_path / "b.nc", "time", _days("2000-01-05", 4), encoding, seed=2),
    ]
    out = tmp_path / name
    assert main(["refs", *map(str, files), "-o", str(out), "--concat-dim", "time"]) == 0
    _assert_same(xr.open_dataset(out, engine="zaro"), files)
    stored = _stored_time(out)
    assert stored.attrs["units"] == "hours since 2000-01-01"
    assert stored.dtype == np.int32
    np.testing.assert_array_equal(stored.values, np.arange(8) * 24)
    _assert_same(_peer(out), files)


def test_mixed_units_decode_exactly(tmp_path: Path) -> None:
    """Daily steps in days, then 6-hourly steps in hours since another epoch: every time exact."""
    files = [
        _write(tmp_path / "a.nc", "time", _days("2000-01-01", 4), seed=1),
        _write(
            tmp_path / "b.nc",
            "time",
            pd.date_range("2000-01-05", periods=4, freq="6h"),
            {"time": {"units": "hours since 2000-01-05"}},
            seed=2,
        ),
    ]
    out = tmp_path / "refs.json"
    write_references(scan(files, concat_dim="time"), out)
    got = xr.open_dataset(out, engine="zaro")
    _assert_same(got, files)
    # days cannot hold 6-hourly steps as integers: xarray's encoder refines the unit
    assert _stored_time(out).attrs["units"] == "hours since 2000-01-01"
    assert str(concat_extent(json.loads(out.read_text()), "time")) == (
        "time: 8 steps, 2000-01-01 … 2000-01-05T18:00"
    )


@pytest.mark.parametrize("name", OUTPUTS)
@pytest.mark.parametrize("decreasing", [False, True], ids=["increasing", "decreasing"])
def test_non_time_dimension(
    tmp_path: Path, name: str, decreasing: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    south, north = [10.0, 20.0, 30.0], [40.0, 50.0, 60.0]
    if decreasing:
        south, north = south[::-1], north[::-1]
    files = [
        _write(tmp_path / "north.nc", "lat", north, seed=1),
        _write(tmp_path / "south.nc", "lat", south, seed=2),
    ]
    out = tmp_path / name
    assert main(["refs", *map(str, files), "-o", str(out), "--concat-dim", "lat"]) == 0
    first, last = (60.0, 10.0) if decreasing else (10.0, 60.0)
    assert f"lat: 6 values, {first} … {last}" in capsys.readouterr().out
    got = xr.open_dataset(out, engine="zaro")
    _assert_same(got, files)
    lat = got["lat"].values
    assert (np.diff(lat) < 0).all() if decreasing else (np.diff(lat) > 0).all()
    _assert_same(_peer(out), files)


@pytest.mark.parametrize("name", OUTPUTS)
def test_overlap_raises_and_writes_nothing(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path / "a.nc", "time", _days("2000-01-01", 10), seed=1)
    b = _write(tmp_path / "b.nc", "time", _days("2000-01-06", 10), seed=2)
    out = tmp_path / name
    assert main(["refs", str(b), str(a), "-o", str(out), "--concat-dim", "time"]) == 2
    err = capsys.readouterr().err
    assert str(a) in err and str(b) in err and "overlap" in err
    assert not out.exists()
    with pytest.raises(MetadataError, match="overlap") as info:
        scan([a, b], concat_dim="time")
    assert str(a) in str(info.value) and str(b) in str(info.value)
    with pytest.raises(MetadataError, match="overlap"):  # the same file twice
        scan([a, a], concat_dim="time")
    c = _write(tmp_path / "c.nc", "time", _days("2000-01-10", 3), seed=3)
    with pytest.raises(MetadataError, match="both hold") as info:  # one shared day
        scan([c, a], concat_dim="time")
    assert "2000-01-10" in str(info.value)


def test_unsorted_or_duplicated_times_in_a_file_raise(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.nc", "time", _days("2000-01-01", 3), seed=1)
    b = _write(tmp_path / "b.nc", "time", pd.to_datetime(["2000-02-01", "2000-02-01"]), seed=2)
    with pytest.raises(MetadataError, match="not strictly monotonic") as info:
        scan([a, b], concat_dim="time")
    assert info.value.url == str(b)


def test_missing_concat_dim_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.nc", "time", _days("2000-01-01", 3), seed=1)
    static = tmp_path / "static.nc"
    xr.Dataset({"mask": (("lon",), np.array([1, 0, 1, 1], "i1"))}).to_netcdf(
        static, engine="h5netcdf"
    )
    with pytest.raises(NameMismatchError, match="no coordinate variable 'time'") as info:
        scan([a, static], concat_dim="time")
    assert info.value.url == str(static)
    out = tmp_path / "refs.json"
    assert main(["refs", str(a), str(static), "-o", str(out), "--concat-dim", "time"]) == 2
    assert str(static) in capsys.readouterr().err
    assert not out.exists()


def test_chunks_across_files_raise(tmp_path: Path) -> None:
    """A file whose steps end inside a chunk cannot be followed by another by reference."""
    encoding = {"tas": {"chunksizes": (2, 3, 4)}}
    a = _write(tmp_path / "a.nc", "time", _days("2000-01-01", 3), encoding, seed=1)
    b = _write(tmp_path / "b.nc", "time", _days("2000-01-04", 3), encoding, seed=2)
    with pytest.raises(MetadataError, match="chunk boundary") as info:
        scan([b, a], concat_dim="time")
    assert str(a) in str(info.value) and str(b) in str(info.value)
    # the same chunking with a multiple of the chunk size in all but the last file combines
    c = _write(tmp_path / "c.nc", "time", _days("2000-01-01", 4), encoding, seed=3)
    d = _write(tmp_path / "d.nc", "time", _days("2000-01-05", 3), encoding, seed=4)
    out = tmp_path / "refs.json"
    write_references(scan([d, c], concat_dim="time"), out)
    _assert_same(xr.open_dataset(out, engine="zaro"), [c, d])


def test_other_coordinates_must_agree(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.nc", "time", _days("2000-01-01", 2), seed=1)
    b = _write(tmp_path / "b.nc", "time", _days("2000-01-03", 2), seed=2)
    shifted = xr.open_dataset(b, engine="h5netcdf").load()
    shifted = shifted.assign_coords(lat=shifted["lat"] + 0.5)
    c = tmp_path / "c.nc"
    shifted.to_netcdf(c, engine="h5netcdf")
    with pytest.raises(MetadataError, match="coordinate 'lat'") as info:
        scan([a, c], concat_dim="time")
    assert str(a) in str(info.value) and str(c) in str(info.value)
