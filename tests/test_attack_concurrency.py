"""Concurrency: readers during writes see whole chunks, and writers of disjoint regions all land.

Writers run in child processes (fork), so they race the reader for real rather than taking
turns on the GIL.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

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
