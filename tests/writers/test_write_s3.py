"""Writing to S3 (moto): every layout, append included, read back by xzaro and zarr-python."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xarray as xr
from helpers import assert_same, zarr_read
from write_cases import CHUNKS, LAYOUTS, QUIET, assert_datasets_same, dataset

import xzaro

pytestmark = QUIET


@pytest.mark.parametrize("layout", ["v2", "v3_sharded"])
def test_write_to_s3(s3_server: dict[str, Any], layout: str) -> None:
    bucket = s3_server["make_bucket"]("xzaro-writes")
    options = s3_server["storage_options"]
    url = f"s3://{bucket}/{layout}.zarr"
    ds = dataset("float64", dask_chunks={"y": 4})
    ds.zaro.to_store(url, chunks=CHUNKS, storage_options=options, **LAYOUTS[layout])
    assert_same(xzaro.open_array(url, "v", storage_options=options)[...], ds.v.values)
    with xr.open_dataset(url, engine="zaro", storage_options=options) as got:
        assert_datasets_same(got, dataset("float64"))
    got = zarr_read(url, "v", storage_options=options)
    assert_same(got, ds.v.values, "zarr-python over S3")
    with pytest.raises(xzaro.NodeExistsError):
        ds.zaro.to_store(url, storage_options=options)
    ds.isel(y=slice(0, 2)).zaro.to_store(url, mode="a", append_dim="y", storage_options=options)
    expected = np.concatenate([ds.v.values, ds.v.values[:2]])
    assert_same(zarr_read(url, "v", storage_options=options), expected, "after append")
