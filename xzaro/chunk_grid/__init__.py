"""Chunk grids: which chunk holds an index, where a chunk starts and how big it is.

One grid per dimension (:mod:`~xzaro.chunk_grid.dimensions`: ``regular`` and ``rectilinear``),
the grid of an array as a whole and of the shards of a sharded one
(:mod:`~xzaro.chunk_grid.grid`), and the parsing of the V3 ``chunk_grid`` member
(:mod:`~xzaro.chunk_grid.parse`). Indexing, reading, the read units of the xarray engine and
the chunk keys all ask the grid rather than doing chunk arithmetic of their own.
"""

from __future__ import annotations

from xzaro.chunk_grid.dimensions import DimensionGrid, RectilinearDimension, RegularDimension
from xzaro.chunk_grid.grid import ChunkGrid, ShardGrid
from xzaro.chunk_grid.parse import (
    MAX_EXTENT,
    MAX_RECTILINEAR_ENTRIES,
    RECTILINEAR,
    REGULAR,
    parse_extents,
)

__all__ = [
    "MAX_EXTENT",
    "MAX_RECTILINEAR_ENTRIES",
    "RECTILINEAR",
    "REGULAR",
    "ChunkGrid",
    "DimensionGrid",
    "RectilinearDimension",
    "RegularDimension",
    "ShardGrid",
    "parse_extents",
]
