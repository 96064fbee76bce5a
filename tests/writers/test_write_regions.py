"""Region writes (mode ``r+``): into stored arrays, merging with the stored values of objects
a region starts or ends inside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers import assert_same, zarr_read
from write_cases import LAYOUTS, QUIET, simple

import xzaro

pytestmark = QUIET


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_mode_r_plus_region(tmp_path: Path, layout: str, backing: str) -> None:
    path = tmp_path / "s.zarr"
    opts = dict(LAYOUTS[layout])
    shards = {"t": 4, "x": 4} if "shards" in opts else None
    opts.pop("shards", None)
    unit = 4 if shards else 2
    n = 3 * unit + 3  # ragged end
    base = simple(n)
    base.zaro.to_store(path, chunks={"t": 2}, shards=shards, **opts)
    region_ds = xr.Dataset({"v": (("t", "x"), np.full((2 * unit, 4), -1.25, "float32"))})
    if backing == "dask":
        region_ds = region_ds.chunk({"t": 3})  # misaligned Dask chunks inside the region
    region_ds.zaro.to_store(path, mode="r+", region={"t": slice(unit, 3 * unit)})
    expected = base.v.values.copy()
    expected[unit : 3 * unit] = -1.25
    assert_same(xzaro.open_array(path, "v")[...], expected, "xzaro")
    assert_same(zarr_read(path, "v"), expected, "zarr")
    # the ragged end of the array may be the end of a region
    tail = xr.Dataset({"v": (("t", "x"), np.full((n - 3 * unit, 4), 9.0, "float32"))})
    tail.zaro.to_store(path, mode="r+", region={"t": slice(3 * unit, n)})
    expected[3 * unit :] = 9.0
    assert_same(zarr_read(path, "v"), expected, "zarr after the tail")
    # regions that start or end inside a stored object merge with its stored values
    for value, sl in enumerate((slice(1, 1 + unit), slice(unit, 2 * unit + 1), slice(unit - 1, n))):
        part = xr.Dataset(
            {"v": (("t", "x"), np.full((sl.stop - sl.start, 4), value + 100, "float32"))}
        )
        if backing == "dask":
            part = part.chunk({"t": 1})
        part.zaro.to_store(path, mode="r+", region={"t": sl})
        expected[sl] = value + 100
        assert_same(zarr_read(path, "v"), expected, f"zarr after the region {sl}")


def test_mode_r_plus_needs_existing(tmp_path: Path) -> None:
    with pytest.raises(xzaro.NodeNotFoundError):
        simple(2).zaro.to_store(tmp_path / "none.zarr", mode="r+", region={"t": slice(0, 2)})
