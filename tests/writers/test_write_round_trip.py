"""Round trips of ``ds.zaro.to_store``: every dtype and layout, scalars, attributes, the
DataArray and DataTree accessors; read back by xzaro, zarr-python and tensorstore.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import as_object, assert_same, ts_read, zarr_read
from write_cases import (
    CHUNKS,
    DTYPES,
    LAYOUTS,
    QUIET,
    assert_datasets_same,
    dataset,
    sample,
    tensorstore_reads,
    to_dir,
)

import xzaro
from xzaro.compat import xarray_encodes_per_zarr_format
from xzaro.stores import MemoryStore

pytestmark = QUIET


@pytest.mark.parametrize("backing", ["numpy", "dask"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_dtypes(tmp_path: Path, dtype: str, layout: str, backing: str) -> None:
    # Dask chunks (4, 3) line up with neither chunks (3, 2) nor shards (6, 4)
    ds = dataset(dtype, dask_chunks={"y": 4, "x": 3} if backing == "dask" else None)
    expected = dataset(dtype)
    path = tmp_path / "s.zarr"
    fmt = LAYOUTS[layout]["zarr_format"]
    written = ds.zaro.to_store(path, chunks=CHUNKS, **LAYOUTS[layout])
    assert isinstance(written, int) and written > 0

    with xr.open_dataset(path, engine="zaro") as got:
        assert_datasets_same(got, expected, "engine=zaro")
        assert got.attrs == expected.attrs
        assert {k: got.v.attrs[k] for k in ("note", "n")} == {"note": "ünïcode attr", "n": 3}
    with xr.open_dataset(path, engine="zarr", zarr_format=fmt) as got:
        assert_datasets_same(got, expected, "engine=zarr")

    # the stored (CF-encoded) arrays, read raw
    raw_x = xzaro.open_array(path, "v")[...]
    raw_z = as_object(zarr_read(path, "v"))
    assert_same(raw_x, raw_z, "xzaro vs zarr-python (raw)")
    if dtype.startswith("datetime"):
        assert raw_x.dtype == np.int64
    elif dtype == "bool" and not xarray_encodes_per_zarr_format():
        assert raw_x.dtype == np.int8  # xarray < 2026.9 stores booleans so, with a dtype attribute
    elif dtype != "object":
        assert raw_x.dtype == np.dtype(dtype)
    if tensorstore_reads(raw_x.dtype, fmt):
        assert_same(raw_x, ts_read(path, "v", fmt), "xzaro vs tensorstore (raw)")
    za = zarr.open_array(str(path), path="v", mode="r")
    assert tuple(za.chunks) == (3, 2)
    assert (tuple(za.shards) if za.shards else None) == ((6, 4) if layout == "v3_sharded" else None)


def test_to_store_into_memory_store_reads_with_zarr_python(tmp_path: Path) -> None:
    store = MemoryStore()
    ds = dataset("float32", dask_chunks={"y": 2})
    ds.zaro.to_store(store, zarr_format=2, chunks=CHUNKS)
    root = to_dir(store, tmp_path / "s.zarr")
    assert_same(zarr_read(root, "v"), ds.v.values)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_scalar_variables(tmp_path: Path, zarr_format: int) -> None:
    ds = xr.Dataset(
        {"v": (("x",), np.arange(3.0))},
        coords={"height": ((), np.float32(2.5)), "label": ((), "station")},
    )
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=zarr_format)
    with xr.open_dataset(tmp_path / "s.zarr", engine="zarr") as got:
        assert_datasets_same(got, ds)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_numpy_attribute_values(tmp_path: Path, zarr_format: int) -> None:
    attrs = {"a": np.float32(1.5), "b": np.arange(3), "c": np.bool_(True)}
    ds = xr.Dataset({"v": (("x",), np.arange(3.0), attrs)}, attrs={"g": np.int64(7)})
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=zarr_format)
    with xr.open_dataset(tmp_path / "s.zarr", engine="zarr") as got:
        assert got.v.attrs == {"a": 1.5, "b": [0, 1, 2], "c": True}
        assert got.attrs == {"g": 7}


def test_dataarray_and_datatree_accessors(tmp_path: Path) -> None:
    arr = xr.DataArray(sample("float32", (6, 5)), dims=("y", "x"), name="temp")
    arr.zaro.to_store(tmp_path / "a.zarr", zarr_format=2, chunks=(4, 4))
    assert_same(zarr_read(tmp_path / "a.zarr", "temp"), arr.values)
    unnamed = xr.DataArray(np.arange(3.0), dims=("x",))
    unnamed.zaro.to_store(tmp_path / "u.zarr")
    with xr.open_dataarray(tmp_path / "u.zarr", engine="zarr") as got:
        assert_same(got.values, unnamed.values)

    tree = xr.DataTree.from_dict(
        {
            "/": xr.Dataset({"a": ("x", np.arange(4, dtype="int8"))}),
            "/g": xr.Dataset({"b": ("y", np.linspace(0, 1, 5))}),
            "/g/h": xr.Dataset({"c": ("z", np.array(["p", "qq"], dtype=object))}),
        }
    )
    tree.zaro.to_store(tmp_path / "t.zarr", shards=None)
    with xr.open_datatree(tmp_path / "t.zarr", engine="zarr") as got:
        assert_same(got["g/b"].values, tree["g/b"].values)
        assert got["g/h/c"].values.tolist() == ["p", "qq"]
        assert_same(got["a"].values, tree["a"].values)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_non_standard_calendar_round_trips_and_appends(tmp_path: Path, zarr_format: int) -> None:
    """A ``noleap`` time axis (CMIP model output): written, appended to with the stored units
    and calendar, and read back as the same dates by xzaro and by xarray over zarr-python."""
    pytest.importorskip("cftime")
    times = xr.date_range("1999-12-30", periods=8, freq="D", calendar="noleap", use_cftime=True)
    full = xr.Dataset({"v": ("time", np.arange(8.0))}, coords={"time": times})
    path = str(tmp_path / "s.zarr")
    full.isel(time=slice(0, 5)).chunk(time=2).zaro.to_store(path, zarr_format=zarr_format)
    full.isel(time=slice(5, 8)).chunk(time=2).zaro.to_store(path, mode="a", append_dim="time")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    for engine in ("zaro", "zarr"):
        got = xr.open_dataset(path, engine=engine, decode_times=coder).load()
        xr.testing.assert_identical(got, full)
        assert got.time.encoding["calendar"] == "noleap", engine
