"""Appending along ``append_dim`` (mode ``a``): the same stores as ``to_zarr`` writes, data
before metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import assert_same, zarr_read
from write_cases import (
    LAYOUTS,
    METADATA_NAMES,
    QUIET,
    RecordingStore,
    assert_datasets_same,
    sample,
    simple,
)

pytestmark = QUIET


@pytest.mark.parametrize(
    ("layout", "first", "chunk"),
    [
        ("v2", 10, 4),  # existing length not a multiple of the chunk
        ("v2", 8, 4),
        ("v3", 7, 3),
        ("v3_sharded", 10, 2),  # shards of 4: ends inside a shard
        ("v3_sharded", 8, 2),
    ],
)
@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_mode_a_append_dim_matches_to_zarr(
    tmp_path: Path, layout: str, first: int, chunk: int, backing: str
) -> None:
    opts = dict(LAYOUTS[layout])
    shards = {"t": 2 * chunk, "x": 4} if "shards" in opts else None
    opts.pop("shards", None)
    parts = [simple(first), simple(5, first), simple(3, first + 5)]
    if backing == "dask":
        parts = [p.chunk({"t": 3}) for p in parts]
    x, z = tmp_path / "x.zarr", tmp_path / "z.zarr"
    parts[0].zaro.to_store(x, chunks={"t": chunk}, shards=shards, **opts)
    enc = {"chunks": (chunk, 4), **({"shards": (2 * chunk, 4)} if shards else {})}
    parts[0].compute().to_zarr(
        z,
        zarr_format=opts["zarr_format"],
        encoding={"v": enc, "k": {k: v[:1] for k, v in enc.items()}},
    )
    for part in parts[1:]:
        part.zaro.to_store(x, mode="a", append_dim="t")
        part.compute().to_zarr(z, mode="a", append_dim="t")
    full = xr.concat([p.compute() for p in parts], dim="t")
    for name in ("v", "k", "t"):
        got, ref = zarr_read(x, name), zarr_read(z, name)
        assert_same(got, ref, f"{name}: xzaro store vs to_zarr store, read by zarr-python")
    with xr.open_dataset(x, engine="zarr") as got:
        assert_datasets_same(got, full, "xzaro store, engine=zarr")
    with xr.open_dataset(x, engine="zaro") as got:
        assert_datasets_same(got, full, "xzaro store, engine=zaro")
    za = zarr.open_array(str(x), path="v", mode="r")
    assert za.shape == (first + 8, 4) and za.chunks == (chunk, 4)


def test_metadata_written_after_data() -> None:
    ds = xr.Dataset(
        {
            "a": (("y", "x"), sample("float32", (9, 8))),
            "b": (("y",), sample("int64", (9,))),
        },
        coords={"y": np.arange(9)},
    ).chunk({"y": 4})
    for opts in ({"zarr_format": 2}, {"zarr_format": 3, "shards": {"y": 4, "x": 8}}):
        store = RecordingStore()
        ds.zaro.to_store(store, chunks={"y": 2, "x": 4}, **opts)
        meta_pos = [i for i, k in enumerate(store.log) if k.rsplit("/", 1)[-1] in METADATA_NAMES]
        data_pos = [
            i for i, k in enumerate(store.log) if k.rsplit("/", 1)[-1] not in METADATA_NAMES
        ]
        assert data_pos and meta_pos
        assert max(data_pos) < min(meta_pos), store.log
        # appending: the new data first, then the grown metadata
        store.log.clear()
        ds.isel(y=slice(0, 3)).zaro.to_store(store, mode="a", append_dim="y")
        meta_pos = [i for i, k in enumerate(store.log) if k.rsplit("/", 1)[-1] in METADATA_NAMES]
        data_pos = [
            i for i, k in enumerate(store.log) if k.rsplit("/", 1)[-1] not in METADATA_NAMES
        ]
        assert max(data_pos) < min(meta_pos), store.log
