"""The 2x mean of a streamed row: the vectorised path over whole tiles gives exactly what the
tile-by-tile kernel gives, for integers (rounded) and floats, with leading axes, and falls back
to that kernel for NaN, odd sizes and chunks that differ between levels."""

from __future__ import annotations

import numpy as np
import pytest

from xzaro.writers.coarsen import coarsen_tiles
from xzaro.writers.streaming.rows import (
    INLINE_ROW_BYTES,
    MAX_PENDING_ROWS,
    coarsen_row,
    rows_in_flight,
)
from xzaro.writers.tiles import copy_into_tiles, from_tiles, tile_grid

CASES = [
    ("uint16", (64, 128), (16, 32), (16, 32)),
    ("int32", (3, 64, 64), (2, 16, 16), (2, 16, 16)),  # leading axis of 3 in chunks of 2
    ("float32", (32, 32), (8, 8), (8, 8)),
    ("float64", (4, 32, 64), (1, 32, 32), (1, 32, 32)),
    ("uint8", (48, 40), (16, 8), (16, 8)),  # y is 3 chunks: odd number of chunks (fallback)
    ("uint16", (64, 64), (16, 16), (8, 8)),  # the levels' chunks differ (fallback)
]


def _tiles(natural: np.ndarray, chunk: tuple[int, ...]) -> np.ndarray:
    tiles = np.zeros((*tile_grid(natural.shape, chunk), *chunk), natural.dtype)
    copy_into_tiles(natural, tiles)
    return tiles


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize(("dtype", "shape", "chunk", "half_chunk"), CASES)
def test_mean_of_a_row_matches_the_tile_kernel(dtype, shape, chunk, half_chunk, nan) -> None:
    if nan and np.dtype(dtype).kind != "f":
        pytest.skip("NaN is a float case")
    rng = np.random.default_rng(7)
    natural = (rng.random(shape) * 1000).astype(dtype)
    if nan:
        natural[1, 3] = np.nan
    src = _tiles(natural, chunk)
    axes = (len(shape) - 2, len(shape) - 1)
    half = tuple(n // 2 if a in axes else n for a, n in enumerate(shape))
    expected = np.zeros((*tile_grid(half, half_chunk), *half_chunk), natural.dtype)
    coarsen_tiles(src, shape, axes, expected, half)
    got = np.zeros_like(expected)
    coarsen_row(src, shape, axes, got, half, "mean")
    np.testing.assert_array_equal(from_tiles(got, half), from_tiles(expected, half))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32"])
def test_integer_mean_of_a_row_over_the_whole_range(dtype) -> None:
    """The integer kernel of a row's mean (rows added first) rounds every tie and every
    extreme value as the tile kernel does, for signed and unsigned types."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(11)
    shape, chunk = (2, 64, 96), (1, 16, 32)
    natural = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    natural[0, :8, :8] = info.max
    natural[0, 8:16, :8] = info.min
    ties = [[0, 1, 1, 2], [1, 0, 1, 2], [2, 1, 3, 3], [2, 0, 3, 3]]  # sums 2, 6, 5, 12
    natural[1, :4, :4] = np.array(ties, dtype=dtype)
    src = _tiles(natural, chunk)
    axes = (1, 2)
    half = (2, 32, 48)
    expected = np.zeros((*tile_grid(half, chunk), *chunk), natural.dtype)
    coarsen_tiles(src, shape, axes, expected, half)
    got = np.zeros_like(expected)
    coarsen_row(src, shape, axes, got, half, "mean")
    np.testing.assert_array_equal(from_tiles(got, half), from_tiles(expected, half))


def test_small_local_rows_are_written_two_at_a_time() -> None:
    """Small rows to local disk: two in flight, each on one thread; large rows and remote
    stores: one row at a time, spread over the shared pool."""
    assert rows_in_flight(2 * 2**20, local=True) == MAX_PENDING_ROWS
    assert rows_in_flight(2 * 2**20, local=False) == 1
    assert rows_in_flight(INLINE_ROW_BYTES + 1, local=True) == 1
