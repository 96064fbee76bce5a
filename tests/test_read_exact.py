"""Stores written by other programs read exactly as those programs read them (issue 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import xzaro


@pytest.mark.parametrize("dtype", ["M8[ns]", "M8[s]", "m8[s]", "m8[ms]"])
def test_v2_time_arrays_with_null_fill_read_never_written_chunks_as_nat(
    tmp_path: Path, dtype: str
) -> None:
    """zarr-python skips all-NaT chunks; with ``"fill_value": null`` they must read as NaT,
    not as 1970-01-01 / 0."""
    path = tmp_path / "t.zarr"
    arr = zarr.create_array(
        path, shape=(6,), chunks=(2,), dtype=dtype, zarr_format=2, fill_value=None
    )
    arr[:2] = np.array([1, 2]).astype(dtype)
    expected = arr[...]
    assert np.isnat(expected[2:]).all()
    got = xzaro.open_array(path)[...]
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype


def test_v2_datetime_variable_with_null_fill_through_xarray(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    times = group.create_array("t", shape=(4,), chunks=(2,), dtype="M8[ns]", fill_value=None)
    times.attrs["_ARRAY_DIMENSIONS"] = ["t"]
    times[:2] = np.array(["2001-01-01", "2001-01-02"], dtype="M8[ns]")
    for engine in ("zarr", "zaro"):
        with xr.open_dataset(path, engine=engine, consolidated=False) as ds:
            values = ds.t.values
            assert values[0] == np.datetime64("2001-01-01")
            assert np.isnat(values[2:]).all(), engine
