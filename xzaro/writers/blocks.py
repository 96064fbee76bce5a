"""Dask blocks lined up with stored objects, and the task that writes one block.

Every block a write computes covers whole stored objects (chunks, or shards), so no two tasks
ever write the same object.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xzaro.errors import MetadataError


def aligned_dask(data: Any, unit: tuple[int, ...], offset: tuple[int, ...]) -> Any:
    """Rechunk a Dask array so every block boundary falls on a stored-object boundary."""
    chunks = []
    changed = False
    for dim_chunks, u, o, n in zip(data.chunks, unit, offset, data.shape):
        bounds = np.cumsum((0, *dim_chunks))[1:-1] + o
        if not any(b % u for b in bounds) and o % u == 0:
            chunks.append(dim_chunks)
            continue
        changed = True
        first = (-o) % u
        size = max(u, round(max(dim_chunks) / u) * u)
        sizes = [first] if first else []
        rest = n - first
        sizes += [size] * (rest // size) + ([rest % size] if rest % size else [])
        chunks.append(tuple(s for s in sizes if s))
    return data.rechunk(tuple(chunks)) if changed else data


def as_dask(data: Any, unit: tuple[int, ...], offset: tuple[int, ...]) -> Any:
    """Data (Dask or in memory) as a Dask array whose blocks are whole stored objects."""
    import dask.array as da

    if hasattr(data, "dask"):
        return aligned_dask(data, unit, offset)
    arr = np.asarray(data)
    # ~64 MiB blocks of whole stored objects, split along the slowest dimensions
    target = 64 * 2**20
    block = list(unit)
    for dim in range(arr.ndim):
        nbytes = math.prod(block) * max(1, arr.dtype.itemsize)
        full = math.ceil(arr.shape[dim] / unit[dim]) if arr.shape[dim] else 1
        mult = max(1, min(full, target // max(1, nbytes)))
        block[dim] = unit[dim] * mult
        if mult < full:
            break
    return aligned_dask(da.from_array(arr, chunks=tuple(block)), unit, offset)


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
    unit: tuple[int, ...],
    offset: tuple[int, ...],
    name: str,
    url: str,
    safe_chunks: bool,
) -> None:
    """With ``align_chunks=False``: refuse Dask blocks that would share a stored object.

    ``to_zarr(safe_chunks=False)`` would write such blocks and may lose data; xzaro refuses
    them either way and says why."""
    for axis, (sizes, u, o) in enumerate(zip(chunks, unit, offset)):
        bounds = np.cumsum((0, *sizes))[1:-1] + o
        if any(b % u for b in bounds):
            unsafe = (
                " (safe_chunks=False does not make this safe: two tasks writing one object "
                "lose one of the writes)"
                if not safe_chunks
                else ""
            )
            raise MetadataError(
                f"Specified Zarr chunks of {u} along axis {axis} of {name!r} would overlap "
                f"multiple Dask chunks {sizes}: two tasks would write one stored object"
                f"{unsafe}. Pass align_chunks=True (the default) to let xzaro rechunk the "
                "data, or rechunk it yourself",
                url=url,
                key=name,
                field="chunks",
            )
