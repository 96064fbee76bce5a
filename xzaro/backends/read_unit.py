"""The read unit: how much of an array one Dask block (one batched fetch) covers.

A read unit is always a whole number of stored objects (chunks, or shards for sharded arrays)
along every dimension, so no Dask block ever splits a stored object and every block costs one
round of requests, whatever the number of chunks inside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from xzaro.meta import ZaroMeta

#: Default size of a read unit for unsharded arrays (uncompressed bytes).
DEFAULT_READ_UNIT_BYTES = 64 * 2**20

ReadUnit = str | int | Mapping[str, int] | None


def _grow(meta: ZaroMeta, unit: tuple[int, ...], target: int) -> tuple[int, ...]:
    """Whole multiples of ``unit``, grown along the slowest dimensions up to ``target`` bytes."""
    block = list(unit)
    itemsize = max(1, meta.dtype.itemsize)
    for dim in range(meta.ndim):
        nbytes = math.prod(block) * itemsize
        if nbytes >= target:
            break
        full = math.ceil(meta.shape[dim] / unit[dim]) if meta.shape[dim] else 1
        mult = max(1, min(full, target // nbytes))
        block[dim] = unit[dim] * mult
        if mult < full:
            break
    return tuple(block)


def read_unit_shape(
    meta: ZaroMeta, read_unit: ReadUnit = None, dims: tuple[str, ...] | None = None
) -> tuple[int, ...]:
    """The block shape of one read unit for an array.

    Parameters
    ----------
    meta
        The array's metadata.
    read_unit
        ``None`` (default: the shard for sharded arrays, else about 64 MiB of whole chunks),
        ``"chunk"`` (one chunk; an inner chunk for sharded arrays), ``"shard"`` (one stored
        object), a target size in bytes, or a mapping from dimension name to a size (rounded
        up to whole stored objects).
    dims
        The dimension names, needed for a mapping.
    """
    storage = meta.storage_shape
    if read_unit is None:
        shape = storage if meta.shard_shape else _grow(meta, storage, DEFAULT_READ_UNIT_BYTES)
    elif read_unit == "chunk":
        shape = meta.chunk_shape
    elif read_unit == "shard":
        shape = storage
    elif isinstance(read_unit, int) and not isinstance(read_unit, bool):
        if read_unit <= 0:
            raise ValueError(f"read_unit must be a positive number of bytes, got {read_unit}")
        shape = _grow(meta, storage, read_unit)
    elif isinstance(read_unit, Mapping):
        names = dims or ()  # names of other variables' dimensions are checked by the caller
        shape = tuple(
            max(1, math.ceil(read_unit.get(name, size) / size)) * size
            for name, size in zip(names, storage)
        )
    else:
        raise ValueError(
            "read_unit must be None, 'chunk', 'shard', a number of bytes or a mapping of "
            f"dimension sizes, got {read_unit!r}"
        )
    return tuple(min(b, max(1, n)) for b, n in zip(shape, meta.shape))


def describe(value: Any) -> str:
    """A short text for log messages."""
    return "default" if value is None else repr(value)
