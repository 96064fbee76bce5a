"""Chunk-major ("tiled") blocks: a block stored chunk by chunk, each chunk contiguous.

A block of shape ``S`` cut into chunks of shape ``C`` is held as an array of shape ``(*G, *C)``
with ``G = ceil(S / C)``: ``tiles[i]`` is the chunk at grid index ``i``, padded beyond ``S``.
Writers encode such chunks without copying them out of the block first
(:meth:`~xzaro.writers.writer.Writer.write_tiles`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from xzaro.dtypes import fill_array


def tile_grid(shape: tuple[int, ...], chunk: tuple[int, ...]) -> tuple[int, ...]:
    """Chunks along each dimension of a block of ``shape``."""
    return tuple(math.ceil(n / c) for n, c in zip(shape, chunk))


def copy_into_tiles(src: np.ndarray, tiles: np.ndarray) -> None:
    """Copy the block ``src`` into ``tiles`` (shape ``(*G, *C)`` with ``G = ceil(src.shape /
    C)``); padding beyond ``src.shape`` is left as it is.

    Each dimension splits into its whole chunks and the remainder, so the copy takes at most
    ``2**ndim`` numpy assignments, whatever the number of chunks.
    """
    ndim = src.ndim
    chunk = tiles.shape[ndim:]
    whole = [n // c for n, c in zip(src.shape, chunk)]
    rest = [n % c for n, c in zip(src.shape, chunk)]
    for parts in itertools.product((0, 1), repeat=ndim):
        src_index, grid_index, chunk_index, split = [], [], [], []
        for part, q, r, c in zip(parts, whole, rest, chunk):
            if part == 0:  # the whole chunks
                if q == 0:
                    break
                src_index.append(slice(0, q * c))
                grid_index.append(slice(0, q))
                chunk_index.append(slice(None))
                split += [q, c]
            else:  # the remainder, in the last chunk
                if r == 0:
                    break
                src_index.append(slice(q * c, q * c + r))
                grid_index.append(slice(q, q + 1))
                chunk_index.append(slice(0, r))
                split += [1, r]
        else:
            block = src[tuple(src_index)].reshape(split)
            order = [*range(0, 2 * ndim, 2), *range(1, 2 * ndim, 2)]
            tiles[(*grid_index, *chunk_index)] = block.transpose(order)


def to_tiles(block: np.ndarray, chunk: tuple[int, ...], fill_value: Any) -> np.ndarray:
    """A new chunk-major copy of ``block`` with chunks of ``chunk``, padded with
    ``fill_value``."""
    grid = tile_grid(block.shape, chunk)
    tiles = fill_array((*grid, *chunk), block.dtype, fill_value)
    copy_into_tiles(block, tiles)
    return tiles


def from_tiles(tiles: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The block of ``shape`` held by ``tiles`` (a new C-contiguous array)."""
    ndim = len(shape)
    order = [i for d in range(ndim) for i in (d, ndim + d)]
    grid, chunk = tiles.shape[:ndim], tiles.shape[ndim:]
    full = tiles.transpose(order).reshape([g * c for g, c in zip(grid, chunk)])
    return np.ascontiguousarray(full[tuple(slice(0, n) for n in shape)])
