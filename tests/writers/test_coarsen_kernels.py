"""The chunk-major coarsening kernel the streaming device uses, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from xzaro.writers.coarsen import coarsen_tiles
from xzaro.writers.tiles import from_tiles, tile_grid, to_tiles


@pytest.mark.parametrize("shape", [(4, 6), (5, 7), (3, 3), (8, 5)])
def test_coarsen_tiles_leaves_its_source_alone(shape: tuple[int, int]) -> None:
    chunk = (4, 4)
    data = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    src = to_tiles(data, chunk, 0)
    before = src.copy()
    dst_shape = tuple(-(-n // 2) for n in shape)
    dst = np.zeros(tile_grid(dst_shape, chunk) + chunk, src.dtype)
    coarsen_tiles(src, shape, (0, 1), dst, dst_shape)
    # the source's padding beyond the array's edge is stored as it is: it must keep the fill value
    np.testing.assert_array_equal(src, before)
    padded = np.pad(data, [(0, n % 2) for n in shape], mode="edge")
    expected = padded.reshape(dst_shape[0], 2, dst_shape[1], 2).mean(axis=(1, 3))
    np.testing.assert_array_equal(from_tiles(dst, dst_shape), expected)
