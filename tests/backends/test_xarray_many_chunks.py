"""Opening stores of millions of chunks with ``chunks={}`` stays lazy, small and quick.

The stores hold metadata only (no chunk of a data variable exists), shaped like ERA5: many
variables share a long ``time`` dimension of one chunk per step. Along a dimension of more than
:data:`~xzaro.backends.read_unit.MANY_BLOCKS` blocks, ``preferred_chunks`` is one tuple of block
sizes that every variable shares, so xarray and Dask reuse it instead of building one per
variable; along shorter dimensions it stays the stored chunk, as ``engine="zarr"`` gives it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from capped import GiB, run_capped
from dask.base import tokenize

from xzaro.backends.read_unit import MANY_BLOCKS, SharedBlockSizes
from xzaro.backends.xarray import ZaroBackendArray

N_TIME = 200_000
N_VARS = 12
FOUR_D = (N_TIME, 10, 64, 64)  # chunks (1, 1, 32, 32): 8,000,000 chunks
FOUR_D_CHUNKS = (1, 1, 32, 32)


def _write(path: Path, zarr_format: int) -> Path:
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)

    def dims(names: list[str]) -> dict[str, Any]:
        if zarr_format == 2:
            return {"attributes": {"_ARRAY_DIMENSIONS": names}}
        return {"dimension_names": names}

    for name, values in {
        "time": np.arange(N_TIME, dtype="int64"),
        "level": np.arange(FOUR_D[1], dtype="int64"),
    }.items():
        root.create_array(name, data=values, chunks=values.shape, **dims([name]))
    root.create_array(
        "pl",
        shape=FOUR_D,
        dtype="float32",
        chunks=FOUR_D_CHUNKS,
        fill_value=float("nan"),
        **dims(["time", "level", "y", "x"]),
    )
    for i in range(N_VARS):
        root.create_array(
            f"sl_{i:02d}",
            shape=(N_TIME, 64),
            dtype="float32",
            chunks=(1, 64),
            fill_value=float("nan"),
            **dims(["time", "x"]),
        )
    zarr.consolidate_metadata(str(path))
    return path


@pytest.fixture(scope="module", params=[2, 3], ids=["v2", "v3"])
def many_chunks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A consolidated metadata-only store of ``N_VARS + 1`` variables of millions of chunks."""
    return _write(tmp_path_factory.mktemp("many_chunks") / "era5.zarr", request.param)


def _open_and_describe(path: str, read_unit: str | None = "shard") -> dict[str, Any]:
    t0 = time.perf_counter()
    ds = xr.open_dataset(path, engine="zaro", chunks={}, consolidated=True, read_unit=read_unit)
    seconds = time.perf_counter() - t0
    time_chunks = {name: var.data.chunks[0] for name, var in ds.data_vars.items()}
    first = time_chunks["pl"]
    return {
        "seconds": seconds,
        "chunks": {name: var.data.chunks[1:] for name, var in ds.data_vars.items()},
        "npartitions": {name: var.data.npartitions for name, var in ds.data_vars.items()},
        "time_blocks": {name: (len(c), sum(c), set(c)) for name, c in time_chunks.items()},
        "one_time_tuple": all(c is first for c in time_chunks.values()),
        "preferred": ds["pl"].encoding["preferred_chunks"],
        "preferred_is_shared": isinstance(ds["pl"].encoding["preferred_chunks"]["time"], tuple)
        and ds["pl"].encoding["preferred_chunks"]["time"]
        is ds["sl_00"].encoding["preferred_chunks"]["time"],
    }


def test_open_with_chunks_stays_lazy_and_small(many_chunks: Path) -> None:
    outcome = run_capped(_open_and_describe, str(many_chunks), mem_bytes=GiB // 2, timeout=120)
    assert outcome.kind == "ok", outcome.message
    got = outcome.value
    assert got["npartitions"]["pl"] == 8_000_000
    assert all(got["npartitions"][f"sl_{i:02d}"] == N_TIME for i in range(N_VARS))
    assert got["chunks"]["pl"] == ((1,) * 10, (32, 32), (32, 32))
    assert all(blocks == (N_TIME, N_TIME, {1}) for blocks in got["time_blocks"].values())
    assert got["one_time_tuple"]  # Dask caches cumulative sums by the tuple's identity
    assert got["preferred_is_shared"]
    assert got["preferred"]["time"] == (1,) * N_TIME
    assert {d: v for d, v in got["preferred"].items() if d != "time"} == {
        "level": 1,
        "y": 32,
        "x": 32,
    }
    assert got["seconds"] < 30  # about 2 s here, against 2.5 s and 100 MB more unshared


def _open_grouped(path: str) -> dict[str, Any]:
    ds = xr.open_dataset(path, engine="zaro", chunks={}, consolidated=True)
    pl = ds["pl"]
    return {
        "chunks": {name: var.data.chunks for name, var in ds.data_vars.items()},
        "preferred": dict(pl.encoding["preferred_chunks"]),
        "stored": tuple(pl.encoding["chunks"]),
        "spot": pl.isel(time=slice(N_TIME - 2, N_TIME), level=3).values,
    }


def test_many_small_chunks_are_grouped_by_default(many_chunks: Path) -> None:
    """Chunks of 4 KiB and 256 B, millions of them: ``chunks={}`` gives blocks of whole stored
    chunks up to Dask's ``array.chunk-size``, grown along the slowest dimensions."""
    outcome = run_capped(_open_grouped, str(many_chunks), mem_bytes=GiB // 2, timeout=120)
    assert outcome.kind == "ok", outcome.message
    got = outcome.value
    per_block = 2**27 // (4 * 32 * 32)  # 128 MiB of (1, 1, 32, 32) float32 chunks along time
    assert got["preferred"] == {"time": per_block, "level": 1, "y": 32, "x": 32}
    assert got["stored"] == FOUR_D_CHUNKS
    time_blocks = got["chunks"]["pl"][0]
    assert set(time_blocks[:-1]) == {per_block} and sum(time_blocks) == N_TIME
    assert got["chunks"]["pl"][1:] == ((1,) * 10, (32, 32), (32, 32))
    assert all(got["chunks"][f"sl_{i:02d}"] == ((N_TIME,), (64,)) for i in range(N_VARS))
    assert np.isnan(got["spot"]).all() and got["spot"].shape == (2, 64, 64)


def test_short_dimensions_keep_the_stored_chunk() -> None:
    shared = SharedBlockSizes()
    assert shared.preferred((10, 3), (100, 7)) == (10, 3)
    edge = MANY_BLOCKS * 10
    assert shared.preferred((10,), (edge,)) == (10,)  # exactly MANY_BLOCKS blocks: a number
    assert shared.preferred((0,), (0,)) == (0,)


def test_long_dimensions_share_one_tuple() -> None:
    shared = SharedBlockSizes()
    n = MANY_BLOCKS * 10 + 7
    (a,) = shared.preferred((10,), (n,))
    (b,) = shared.preferred((10,), (n,))
    assert a is b
    assert sum(a) == n and a[-1] == 7 and set(a[:-1]) == {10}
    (c,) = shared.preferred((5,), (n,))
    assert c is not a and sum(c) == n
    ragged = tuple([1, 2] * MANY_BLOCKS)
    (d,) = shared.preferred((ragged,), (sum(ragged),))
    (e,) = shared.preferred((tuple(ragged),), (sum(ragged),))
    assert d == ragged and e is d
    short_ragged = (3, 4)
    assert shared.preferred((short_ragged,), (7,)) == ((3, 4),)


def test_backend_array_token_is_deterministic_and_distinct(many_chunks: Path) -> None:
    def arrays() -> dict[str, Any]:
        ds = xr.open_dataset(many_chunks, engine="zaro", consolidated=True)
        out = {}
        for name in ("pl", "sl_00", "sl_01"):
            lazy = ds[name].variable._data
            while not isinstance(lazy, ZaroBackendArray):
                lazy = lazy.array
            out[name] = lazy
        return out

    first, second = arrays(), arrays()
    t0 = time.perf_counter()
    tokens = {name: tokenize(a) for name, a in first.items()}
    assert time.perf_counter() - t0 < 1.0
    assert tokens == {name: tokenize(a) for name, a in second.items()}
    assert len(set(tokens.values())) == len(tokens)
