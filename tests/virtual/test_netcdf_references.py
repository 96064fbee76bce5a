"""References to NetCDF4 files, made by kerchunk, VirtualiZarr and :func:`xzaro.virtual.scan`.

NetCDF4 files made here with h5netcdf are scanned with kerchunk (and VirtualiZarr when it is
installed), written as JSON or Parquet, and every variable read through ``engine="zaro"`` must
equal ``engine="h5netcdf"`` on the original files; so must fsspec's ``reference://`` reading of
what xzaro writes. ``xzaro refs`` (the command) is run too.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from xzaro.virtual import scan, write_references

h5netcdf = pytest.importorskip("h5netcdf")


FILL = np.int16(-32767)


def _make_nc(path: Path, t0: int, nt: int) -> None:
    """int16 temperature packed with scale/offset and _FillValue, shuffle + zlib, 300x300 chunks."""
    rng = np.random.default_rng(t0)
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"time": None, "depth": 2, "lat": 300, "lon": 300}
        f.resize_dimension("time", nt)
        t = f.create_variable("time", ("time",), "f8")
        t.attrs["units"] = "days since 2000-01-01"
        t.attrs["calendar"] = "standard"
        t[:] = np.arange(t0, t0 + nt, dtype="f8")
        f.create_variable("depth", ("depth",), "f4", data=np.array([0.5, 10.0], "f4"))
        f.create_variable("lat", ("lat",), "f4", data=np.linspace(-60, 60, 300, dtype="f4"))
        f.create_variable("lon", ("lon",), "f4", data=np.linspace(0, 359, 300, dtype="f4"))
        v = f.create_variable(
            "temperature",
            ("time", "depth", "lat", "lon"),
            "i2",
            chunks=(1, 1, 300, 300),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
            fillvalue=FILL,
        )
        v.attrs["scale_factor"] = np.float32(0.01)
        v.attrs["add_offset"] = np.float32(10.0)
        v.attrs["units"] = "degC"
        data = rng.integers(-1500, 1500, size=(nt, 2, 300, 300)).astype("i2")
        data[:, :, :7, :9] = FILL
        v[:] = data


@pytest.fixture(scope="module")
def nc_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("nc")
    files = [root / "a.nc", root / "b.nc"]
    _make_nc(files[0], 0, 2)
    _make_nc(files[1], 2, 3)
    return files


def _expected(files: list[Path], decoded: bool) -> xr.Dataset:
    with xr.open_mfdataset(
        files, engine="h5netcdf", combine="by_coords", mask_and_scale=decoded
    ) as ds:
        return ds.load()


def _assert_same(url: Any, files: list[Path], **kwargs: Any) -> None:
    """Every variable read through engine="zaro" equals engine="h5netcdf" on the files."""
    raw = xr.open_dataset(url, engine="zaro", mask_and_scale=False, **kwargs).load()
    xr.testing.assert_equal(raw, _expected(files, decoded=False))
    assert raw["temperature"].dtype == np.int16
    got = xr.open_dataset(url, engine="zaro", **kwargs).load()
    exp = _expected(files, decoded=True)
    assert set(got.variables) == set(exp.variables)
    for name in exp.variables:
        a, b = exp[name].values, got[name].values
        assert a.shape == b.shape, name
        if a.dtype.kind == "f":
            # JSON metadata holds scale_factor as a float64, h5netcdf keeps float32
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-5, equal_nan=True, err_msg=name)
            np.testing.assert_array_equal(np.isnan(b), np.isnan(a), err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)
    assert np.isnan(got["temperature"].values[:, :, :7, :9]).all()
    assert got["time"].dtype.kind == "M"
    assert got["time"].values[0] == np.datetime64("2000-01-01")


def _kerchunk_refs(files: list[Path]) -> dict[str, Any]:
    kerchunk_hdf = pytest.importorskip("kerchunk.hdf")
    kerchunk_combine = pytest.importorskip("kerchunk.combine")
    singles = [
        kerchunk_hdf.SingleHdf5ToZarr(str(f), inline_threshold=100).translate() for f in files
    ]
    if len(singles) == 1:
        return singles[0]
    return kerchunk_combine.MultiZarrToZarr(singles, concat_dims=["time"]).translate()


def _kerchunk_parquet(refs: dict[str, Any], out: Path, record_size: int) -> None:
    pytest.importorskip("fastparquet")  # kerchunk writes Parquet references with fastparquet
    kerchunk_df = pytest.importorskip("kerchunk.df")
    kerchunk_df.refs_to_dataframe(refs, str(out), record_size=record_size)


@pytest.mark.parametrize("combined", [False, True], ids=["one-file", "combined"])
def test_kerchunk_json(nc_files: list[Path], tmp_path: Path, combined: bool) -> None:
    files = nc_files if combined else nc_files[:1]
    out = tmp_path / "refs.json"
    out.write_text(json.dumps(_kerchunk_refs(files)))
    _assert_same(str(out), files)
    _assert_same(f"reference+json://{out}", files)
    _assert_same(f"virtualizarr://{out}", files)


@pytest.mark.parametrize("combined", [False, True], ids=["one-file", "combined"])
def test_kerchunk_parquet(nc_files: list[Path], tmp_path: Path, combined: bool) -> None:
    files = nc_files if combined else nc_files[:1]
    out = tmp_path / "refs.parq"
    _kerchunk_parquet(_kerchunk_refs(files), out, record_size=3)  # several record files
    _assert_same(str(out), files)
    _assert_same(f"reference+parquet://{out}", files)
    _assert_same(f"virtualizarr://{out}", files)
    _assert_same(str(out), files, chunks={})


@pytest.mark.parametrize("suffix", [".json", ".json.zst", ".parq"])
def test_scan_and_write(nc_files: list[Path], tmp_path: Path, suffix: str) -> None:
    pytest.importorskip("kerchunk")
    refs = scan([str(f) for f in nc_files], concat_dim="time")
    out = tmp_path / f"refs{suffix}"
    write_references(refs, out, record_size=4)
    _assert_same(str(out), nc_files)
    if suffix == ".parq":
        pytest.importorskip("fastparquet")
        fsspec_ds = xr.open_dataset(  # fsspec's reader agrees on the layout
            "reference://",
            engine="zarr",
            mask_and_scale=False,
            backend_kwargs={
                "consolidated": False,
                "storage_options": {"fo": str(out), "remote_protocol": "file"},
            },
        ).load()
        xr.testing.assert_equal(fsspec_ds, _expected(nc_files, decoded=False))


def test_scan_single_and_errors(nc_files: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("kerchunk")
    refs = scan(nc_files[0])
    assert refs["refs"]["temperature/0.0.0.0"][0] == str(nc_files[0])  # absolute local path
    with pytest.raises(ValueError, match="concat_dim"):
        scan(nc_files)
    with pytest.raises(ValueError, match=r"\.json"):
        write_references(refs, tmp_path / "refs.txt")
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "x.parq").mkdir()
    (tmp_path / "precious" / "x.parq" / "keep").write_text("do not delete")
    with pytest.raises(ValueError, match="no Parquet references"):
        write_references(refs, tmp_path / "precious" / "x.parq")
    assert (tmp_path / "precious" / "x.parq" / "keep").exists()


def test_open_mfdataset_of_single_file_references(nc_files: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("kerchunk")
    urls = []
    for i, f in enumerate(nc_files):
        out = tmp_path / f"refs{i}.json"
        write_references(scan(f), out)
        urls.append(str(out))
    with xr.open_mfdataset(
        urls, engine="zaro", combine="nested", concat_dim="time", mask_and_scale=False
    ) as ds:
        xr.testing.assert_equal(ds.load(), _expected(nc_files, decoded=False))


def test_cli_refs(nc_files: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("kerchunk")
    from xzaro.virtual.cli import add_refs_command

    parser = argparse.ArgumentParser(prog="xzaro")
    add_refs_command(parser.add_subparsers(dest="command"))
    for out in (tmp_path / "cli.json", tmp_path / "cli.parq"):
        args = parser.parse_args(
            ["refs", *map(str, nc_files), "-o", str(out), "--concat-dim", "time"]
        )
        assert args.func(args) == 0
        _assert_same(str(out), nc_files)
    args = parser.parse_args(["refs", *map(str, nc_files), "-o", str(tmp_path / "x.json")])
    assert args.func(args) == 2


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_virtualizarr(nc_files: list[Path], tmp_path: Path, fmt: str) -> None:
    virtualizarr = pytest.importorskip("virtualizarr")
    parsers = pytest.importorskip("virtualizarr.parsers")
    registry_mod = pytest.importorskip("obspec_utils.registry")
    obstore_store = pytest.importorskip("obstore.store")
    if fmt == "parquet":
        pytest.importorskip("fastparquet")
    registry = registry_mod.ObjectStoreRegistry({"file://": obstore_store.LocalStore()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = [
            virtualizarr.open_virtual_dataset(
                f"file://{f}", registry=registry, parser=parsers.HDFParser()
            )
            for f in nc_files
        ]
        combined = xr.concat(
            parts, dim="time", coords="minimal", compat="override", combine_attrs="override"
        )
        out = tmp_path / ("vz.json" if fmt == "json" else "vz.parq")
        kwargs = {} if fmt == "json" else {"record_size": 3}
        combined.vz.to_kerchunk(str(out), format=fmt, **kwargs)
    _assert_same(str(out), nc_files)
    _assert_same(f"virtualizarr://{out}", nc_files)
