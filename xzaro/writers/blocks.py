"""Dask blocks lined up with stored objects, and the task that writes one block.

Every block a write computes covers whole stored objects (chunks, or shards), so no two tasks
ever write the same object.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xzaro.chunk_grid import ChunkGrid, DimensionGrid
from xzaro.errors import MetadataError, brief


def _on_edges(dim: DimensionGrid, positions: np.ndarray) -> bool:
    """Whether every one of ``positions`` is where a stored object of ``dim`` starts."""
    size = dim.uniform_size() if dim.is_regular else None
    if size is not None:
        return not np.any(positions % size)
    return all(dim.locate(p)[1] == p for p in positions.tolist())


def _edge_sizes(dim: DimensionGrid, offset: int, extent: int, block: int) -> list[int]:
    """Blocks over ``range(offset, offset + extent)`` that end on object edges: objects of a
    rectilinear dimension joined while they fit in ``block`` elements."""
    sizes: list[int] = []
    filled = 0
    for k in dim.chunks_in(offset, offset + extent):
        start = dim.chunk_start(k)
        n = min(start + dim.chunk_size(k), offset + extent) - max(start, offset)
        if sizes and filled + n <= block:
            sizes[-1] += n
            filled += n
        else:
            sizes.append(n)
            filled = n
    return sizes


def _regular_sizes(dim_chunks: tuple[int, ...], u: int, o: int, n: int) -> list[int]:
    """Blocks of whole objects of ``u`` (the first one reaching the edge after ``o``)."""
    first = (-o) % u
    size = max(u, round(max(dim_chunks) / u) * u)
    sizes = [first] if first else []
    rest = n - first
    sizes += [size] * (rest // size) + ([rest % size] if rest % size else [])
    return [s for s in sizes if s]


def aligned_dask(data: Any, grid: ChunkGrid, offset: tuple[int, ...]) -> Any:
    """Rechunk a Dask array so every block boundary falls on a boundary of the stored objects
    of ``grid`` (the array's storage grid; the data starts at ``offset`` in it)."""
    chunks = []
    changed = False
    for dim_chunks, d, o, n in zip(data.chunks, grid.dimensions, offset, data.shape):
        bounds = np.cumsum((0, *dim_chunks))[:-1] + o
        if _on_edges(d, bounds):
            chunks.append(dim_chunks)
            continue
        changed = True
        size = d.uniform_size() if d.is_regular else None
        if size is not None:
            chunks.append(tuple(_regular_sizes(dim_chunks, size, o, n)))
        else:
            chunks.append(tuple(_edge_sizes(d, o, n, max(dim_chunks))))
    return data.rechunk(tuple(chunks)) if changed else data


def as_dask(data: Any, grid: ChunkGrid, offset: tuple[int, ...]) -> Any:
    """Data (Dask or in memory) as a Dask array whose blocks are whole stored objects of
    ``grid`` (the array's storage grid)."""
    import dask.array as da

    if hasattr(data, "dask"):
        return aligned_dask(data, grid, offset)
    arr = np.asarray(data)
    # ~64 MiB blocks of whole stored objects (the largest, along rectilinear dimensions),
    # split along the slowest dimensions
    unit = grid.chunk_shape
    target = 64 * 2**20
    block = list(unit)
    for dim in range(arr.ndim):
        nbytes = math.prod(block) * max(1, arr.dtype.itemsize)
        full = math.ceil(arr.shape[dim] / unit[dim]) if arr.shape[dim] else 1
        mult = max(1, min(full, target // max(1, nbytes)))
        block[dim] = unit[dim] * mult
        if mult < full:
            break
    return aligned_dask(da.from_array(arr, chunks=tuple(block)), grid, offset)


def store_block(
    block: np.ndarray, writer: Any, offset: tuple[int, ...], block_info: Any = None
) -> np.ndarray:
    """Write one aligned block (a ``map_blocks`` task); gives the count of objects written."""
    location = block_info[0]["array-location"] if block_info else [(0, 0)] * block.ndim
    origin = tuple(start + o for (start, _), o in zip(location, offset))
    written = writer.write_block(block, origin)
    return np.full((1,) * block.ndim, written, dtype=np.int64)


def check_alignment(
    chunks: tuple[tuple[int, ...], ...],
    grid: ChunkGrid,
    offset: tuple[int, ...],
    name: str,
    url: str,
    safe_chunks: bool,
) -> None:
    """With ``align_chunks=False``: refuse Dask blocks that would share a stored object of
    ``grid`` (the array's storage grid).

    ``to_zarr(safe_chunks=False)`` would write such blocks and may lose data; xzaro refuses
    them either way and says why."""
    for axis, (sizes, d, o) in enumerate(zip(chunks, grid.dimensions, offset)):
        bounds = np.cumsum((0, *sizes))[1:-1] + o
        if not _on_edges(d, bounds):
            unsafe = (
                " (safe_chunks=False does not make this safe: two tasks writing one object "
                "lose one of the writes)"
                if not safe_chunks
                else ""
            )
            u = d.uniform_size() if d.is_regular else brief(d.to_json())
            raise MetadataError(
                f"Specified Zarr chunks of {u} along axis {axis} of {name!r} would overlap "
                f"multiple Dask chunks {sizes}: two tasks would write one stored object"
                f"{unsafe}. Pass align_chunks=True (the default) to let xzaro rechunk the "
                "data, or rechunk it yourself",
                url=url,
                key=name,
                field="chunks",
            )
