"""Fill values and missing data: stored objects that hold only the fill value are not written,
exactly as xarray's ``to_zarr`` leaves them out.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import as_object, assert_same, bits, files, ts_read, zarr_read
from write_cases import CHUNKS, LAYOUTS, QUIET, data_keys, sample

import xzaro

pytestmark = QUIET


def _expected_objects(
    data: np.ndarray, unit: tuple[int, ...], fill: Any, key: Callable[[tuple[int, ...]], str]
) -> set[str]:
    """Keys of the stored objects whose (padded) contents are not all fill."""
    keys = set()
    grid = [range(math.ceil(n / u)) for n, u in zip(data.shape, unit)]
    for idx in itertools.product(*grid):
        block = data[tuple(slice(i * u, (i + 1) * u) for i, u in zip(idx, unit))]
        padded = np.full(unit, fill, dtype=data.dtype)
        padded[tuple(slice(0, n) for n in block.shape)] = block
        if bits(padded).tobytes() != bits(np.full(unit, fill, dtype=data.dtype)).tobytes():
            keys.add(key(idx))
    return keys


@pytest.mark.parametrize("backing", ["numpy", "dask"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_fill_chunks_and_shards_not_written(tmp_path: Path, layout: str, backing: str) -> None:
    """Objects that hold only the fill value are absent; everything reads back identically."""
    fmt = LAYOUTS[layout]["zarr_format"]
    f = np.full((13, 11), np.nan, dtype="float32")  # missing data = NaN = _FillValue
    f[0:3, 0:2] = 1.5  # one chunk
    f[12, 10] = -0.0  # the ragged corner
    f[7, 5] = np.inf
    n = np.zeros((13, 11), dtype="int16")  # zarr fill value 0
    n[4, 9] = -7
    n[12, 0] = 3
    fv = np.full((13, 11), -99, dtype="int32")  # explicit _FillValue -99
    fv[5:8, 2:6] = 12
    ds = xr.Dataset(
        {
            "f": (("y", "x"), f),
            "n": (("y", "x"), n),
            "fv": (("y", "x"), fv, {}, {"_FillValue": -99}),
        }
    )
    if backing == "dask":
        ds = ds.chunk({"y": 5, "x": 4})
    path = tmp_path / "s.zarr"
    ds.zaro.to_store(path, chunks=CHUNKS, **LAYOUTS[layout])

    for name in ("f", "n", "fv"):
        arr = xzaro.open_array(path, name)
        stored = data_keys(files(path / name))
        if layout == "v3_sharded":
            unit = (6, 4)
        else:
            unit = (3, 2)
        raw = np.asarray(ds[name].values)
        if name == "fv":  # stored raw values: -99 stays -99 (the fill value)
            raw = fv
        expected = _expected_objects(raw, unit, arr.meta.fill_value_or_default, arr.meta.chunk_key)
        assert set(stored) == expected, (name, sorted(set(stored) ^ expected))
        assert_same(arr[...], zarr_read(path, name), f"{name} xzaro vs zarr")
        assert_same(arr[...], ts_read(path, name, fmt), f"{name} xzaro vs tensorstore")
    with xr.open_dataset(path, engine="zaro") as got, xr.open_dataset(path, engine="zarr") as ref:
        assert_same(got.f.values, f, "f decoded")
        assert_same(ref.f.values, f, "f decoded by zarr")
        assert_same(got.fv.values, np.where(fv == -99, np.nan, fv), "fv decoded (masked)")
        assert_same(ref.fv.values, got.fv.values, "fv zarr vs zaro")
        assert got.fv.encoding.get("_FillValue") == -99


def test_missing_data_v2_nan_chunks_absent(tmp_path: Path) -> None:
    """V2: a float variable's _FillValue is NaN (as to_zarr writes), so all-NaN chunks vanish."""
    f = np.full((6, 4), np.nan, dtype="float64")
    f[0, 0] = 1.0
    xr.Dataset({"f": (("y", "x"), f)}).zaro.to_store(
        tmp_path / "s.zarr", zarr_format=2, chunks=(3, 2)
    )
    meta = json.loads((tmp_path / "s.zarr/f/.zarray").read_text())
    assert meta["fill_value"] == "NaN"
    assert data_keys(files(tmp_path / "s.zarr/f")) == ["0.0"]


def test_missing_data_v3_nan_chunks_absent(tmp_path: Path) -> None:
    f = np.full((6, 4), np.nan, dtype="float64")
    f[0, 0] = 1.0
    xr.Dataset({"f": (("y", "x"), f)}).zaro.to_store(tmp_path / "s.zarr", chunks=(3, 2))
    assert data_keys(files(tmp_path / "s.zarr/f")) == ["c/0/0"]


_KEY_CASES = ["int32", "float32", "bool", "S3", "U2", "object", "complex64"]


def _key_params() -> list[Any]:
    out = []
    for dtype, layout in itertools.product(_KEY_CASES, LAYOUTS):
        marks = []
        out.append(pytest.param(dtype, layout, marks=marks, id=f"{dtype}-{layout}"))
    return out


@pytest.mark.parametrize(("dtype", "layout"), _key_params())
def test_same_objects_and_fill_as_to_zarr(tmp_path: Path, dtype: str, layout: str) -> None:
    """xzaro stores exactly the objects (and the fill value) xarray's to_zarr stores."""
    a = sample(dtype, (8, 5), seed="keys")
    a[0:4, 0:2] = np.zeros((), dtype=a.dtype) if dtype != "object" else ""
    if dtype in ("float32", "complex64"):
        a[4:8, 2:4] = np.nan
    ds = xr.Dataset({"v": (("y", "x"), a)})
    fmt = LAYOUTS[layout]["zarr_format"]
    shards = (4, 4) if layout == "v3_sharded" else None
    ds.zaro.to_store(tmp_path / "x.zarr", chunks=(2, 2), shards=shards, zarr_format=fmt)
    enc: dict[str, Any] = {"chunks": (2, 2), **({"shards": shards} if shards else {})}
    ds.to_zarr(tmp_path / "z.zarr", zarr_format=fmt, encoding={"v": enc})
    assert files(tmp_path / "x.zarr/v") == files(tmp_path / "z.zarr/v")
    xa = zarr.open_array(str(tmp_path / "x.zarr"), path="v", mode="r")
    za = zarr.open_array(str(tmp_path / "z.zarr"), path="v", mode="r")
    if za.fill_value is None:
        assert xa.fill_value is None
    else:
        assert_same(
            np.asarray(xa.fill_value, dtype=xa.dtype), np.asarray(za.fill_value, dtype=za.dtype)
        )
    assert_same(as_object(xa[...]), as_object(za[...]), "values")
