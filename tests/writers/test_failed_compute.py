"""A write whose computation fails raises only once none of its tasks still writes.

Dask raises at a computation's first failed task and leaves the others running. A caller that
then cleans up, or writes the store again, would race the writes of the failed computation:
a chunk of the old data could land after the new one.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import xzaro  # noqa: F401  (registers the .zaro accessor)
from xzaro.writers.compute import compute_writes

SLOW_BLOCK_SECONDS = 0.6


def _one_block_fails_one_is_slow(
    x: np.ndarray, started: Path, block_info: Any = None
) -> np.ndarray:
    if block_info[0]["chunk-location"][0] == 0:
        # Fail only once the slow block runs (a file, as it may run in another process):
        # otherwise the scheduler may not have started it when the error comes, and nothing
        # would be left to settle.
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise ValueError("block 0 cannot be computed")
    started.touch()
    time.sleep(SLOW_BLOCK_SECONDS)
    return x


def _dataset(started: Path) -> xr.Dataset:
    values = np.arange(16 * 8, dtype="f8").reshape(16, 8)
    data = xr.DataArray(values, dims=("t", "x")).chunk({"t": 8}).data
    blocks = functools.partial(_one_block_fails_one_is_slow, started=started)
    return xr.Dataset({"v": (("t", "x"), data.map_blocks(blocks, dtype=data.dtype))})


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def _write_fails_and_settles(path: Path, **kwargs: Any) -> None:
    with pytest.raises(ValueError, match="block 0 cannot be computed"):
        _dataset(path.parent / "slow-block-started").zaro.to_store(path, **kwargs)
    after_the_error = _files(path)
    time.sleep(2 * SLOW_BLOCK_SECONDS)
    assert _files(path) == after_the_error  # nothing was still being written
    chunks = [f for f in after_the_error if f.startswith("v/") and not f.startswith("v/.z")]
    assert chunks and not [f for f in after_the_error if "tmp" in f]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_threaded_write_settles_before_raising(tmp_path: Path, zarr_format: int) -> None:
    _write_fails_and_settles(tmp_path / "s.zarr", zarr_format=zarr_format)


def test_distributed_write_settles_before_raising(tmp_path: Path, dask_client: Any) -> None:
    _write_fails_and_settles(tmp_path / "s.zarr", zarr_format=3)


def test_a_pool_of_the_callers_own_runs_the_tasks() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import dask.array as da

    names: set[str] = set()

    def record(x: np.ndarray) -> np.ndarray:
        names.add(threading.current_thread().name)
        return x

    with ThreadPoolExecutor(3, thread_name_prefix="callers-pool") as pool:
        total = da.ones(10, chunks=2).map_blocks(record).sum()
        names.clear()  # Dask's own call that infers the dtype
        assert compute_writes(total, scheduler="threads", pool=pool) == (10.0,)
    assert names and all(name.startswith("callers-pool") for name in names)
