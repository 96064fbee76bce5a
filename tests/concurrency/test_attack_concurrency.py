"""Concurrency: readers during writes see whole chunks, and writers of disjoint regions all land.

Writers run in child processes (fork), so they race the reader for real rather than taking
turns on the GIL.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import xzaro

ROWS, COLS, CHUNK = 32, 256, 8


def _dataset(value: float) -> xr.Dataset:
    data = np.full((ROWS, COLS), value)
    return xr.Dataset({"v": (("t", "x"), data)}).chunk({"t": CHUNK})


def _rewrite(path: str, rounds: int) -> None:
    for k in range(1, rounds + 1):
        _dataset(float(k)).zaro.to_store(path, mode="r+", region="auto")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_reader_during_rewrites_sees_whole_chunks(tmp_path: Path, zarr_format: int) -> None:
    path = str(tmp_path / "s.zarr")
    _dataset(0.0).zaro.to_store(path, zarr_format=zarr_format)
    writer = multiprocessing.get_context("fork").Process(target=_rewrite, args=(path, 40))
    writer.start()
    seen: set[float] = set()
    deadline = time.monotonic() + 60
    try:
        while writer.is_alive() and time.monotonic() < deadline:
            values = xzaro.open_array(path, "v")[...]
            for block in values.reshape(ROWS // CHUNK, CHUNK, COLS):
                uniform = np.unique(block)
                assert uniform.size == 1, f"a chunk mixes writes: {uniform[:5]}"
                seen.add(float(uniform[0]))
    finally:
        writer.join(60)
    assert writer.exitcode == 0
    assert len(seen) > 1  # the reader really overlapped the writes
    np.testing.assert_array_equal(xzaro.open_array(path, "v")[...], np.full((ROWS, COLS), 40.0))


def _write_region(path: str, start: int, value: float) -> None:
    part = _dataset(value).isel(t=slice(start, start + CHUNK))
    for _ in range(10):
        part.zaro.to_store(path, mode="r+", region={"t": slice(start, start + CHUNK)})


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_writers_of_disjoint_regions_all_land(tmp_path: Path, zarr_format: int) -> None:
    path = str(tmp_path / "s.zarr")
    _dataset(0.0).zaro.to_store(path, zarr_format=zarr_format)
    ctx = multiprocessing.get_context("fork")
    writers = [
        ctx.Process(target=_write_region, args=(path, start, float(start + 1)))
        for start in range(0, ROWS, CHUNK)
    ]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
    assert [w.exitcode for w in writers] == [0] * len(writers)
    expected = np.repeat(np.arange(0, ROWS, CHUNK) + 1.0, CHUNK)[:, None] * np.ones(COLS)
    np.testing.assert_array_equal(xzaro.open_array(path, "v")[...], expected)
    zarr = pytest.importorskip("zarr")
    np.testing.assert_array_equal(zarr.open_array(path, path="v")[...], expected)


def _state_after_fork(conn: Any, store: Any, refs: Any) -> None:
    from xzaro import concurrency

    fresh = (concurrency._pool is None, store._opened.value is None, refs._loaded.value is None)
    reads = (store.get_many(["k", "missing"]), refs.get("x/0"))
    conn.send((fresh, reads))
    conn.close()


def test_a_forked_child_reopens_what_the_parent_opened(tmp_path: Path) -> None:
    """One fork hook drops the thread pool, the opened file systems and the loaded references:
    a forked child starts afresh, and reads as the parent does."""
    from xzaro.concurrency import concurrent_map
    from xzaro.stores import FsspecStore, open_store

    store = FsspecStore(f"memory://xzaro-fork/{tmp_path.name}")
    store.set("k", b"value")
    (tmp_path / "refs.json").write_text('{"x/0": "inline"}')
    refs = open_store(str(tmp_path / "refs.json"))
    assert concurrent_map(len, ["a", "bb"]) == [1, 2]  # the pool exists in the parent
    expected = (store.get_many(["k", "missing"]), refs.get("x/0"))
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_state_after_fork, args=(send, store, refs))
    child.start()
    fresh, reads = receive.recv()
    child.join(60)
    assert child.exitcode == 0
    assert fresh == (True, True, True)
    assert reads == expected
    assert store._opened.value is not None  # the parent keeps what it opened
