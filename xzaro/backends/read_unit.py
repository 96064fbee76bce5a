"""The read unit: how much of an array one Dask block (one batched fetch) covers.

By default it is the stored object: the chunk, or for a sharded array the shard, which is also
what Dask's ``from_array`` takes for a sharded array. ``chunks={}`` then gives the Dask blocks
``engine="zarr"`` gives for unsharded arrays; for sharded ones, one block per shard rather than
per inner chunk: every block is one request and a handful of Dask tasks, and the blocks are the
ones a write back to the same shards needs. A shard larger than Dask's ``array.chunk-size`` is
split into blocks of whole inner chunks that tile it, up to that size. An array of more than
:data:`MANY_OBJECTS` stored objects of under :data:`SMALL_OBJECT_BYTES` each (4,096 chunks of
16x16, 100,000 of 1x64) has its objects grouped, along the slowest dimensions, into blocks of up
to ``array.chunk-size``, as Dask's ``chunks="auto"`` groups them: one task per small object
would cost more in Dask's scheduling than the read itself. ``read_unit="chunk"``
gives the inner chunks. xarray's "The specified chunks separate the stored chunks" warning fires
for chunks that split a read unit. ``chunks="auto"`` lets Dask grow blocks to whole multiples of
the read unit (up to ``array.chunk-size``). An explicit ``read_unit`` asks for larger blocks
with ``chunks={}``: always a whole number of stored objects (chunks, or shards for sharded
arrays) along every dimension, so no Dask block ever splits a stored object and every block
costs one round of requests, whatever the number of chunks inside it.

Along a dimension of a rectilinear grid, whose chunks differ in size, a read unit is the list of
its block sizes (Dask's spelling of variable-size chunks): the stored chunks themselves, or runs
of consecutive ones.

Along a dimension of more than :data:`MANY_BLOCKS` blocks, ``preferred_chunks`` spells out every
block size too, in one tuple that every variable of the store with that dimension and unit
shares (see :class:`SharedBlockSizes`): xarray and Dask then reuse that tuple, and Dask's
cumulative sums cached by identity, rather than building a new one per variable (an ERA5-shaped
store of 273 variables with 100,000 time steps opened with ``chunks={}`` otherwise spends
seconds and a gigabyte on 273 copies of the same 100,000 block sizes).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import dask.config
from dask.utils import parse_bytes

from xzaro.chunk_grid import ChunkGrid
from xzaro.meta import ZaroMeta

ReadUnit = str | int | Mapping[str, int] | None
#: Per dimension a block size, or (rectilinear grids) the size of every block.
BlockShape = tuple[int | tuple[int, ...], ...]

_KEYWORDS = ("chunk", "shard")

#: An array of more stored objects than this, each under :data:`SMALL_OBJECT_BYTES`, has them
#: grouped into Dask blocks by default: a Dask task costs a fraction of a millisecond of
#: scheduling and indexing, more than decoding a small object, so 1,000 such tasks cost more
#: than the read (4,096 tasks of 1 KiB chunks: about 1 s of CPU before any byte is read).
MANY_OBJECTS = 1000
#: See :data:`MANY_OBJECTS`.
SMALL_OBJECT_BYTES = 2**20

#: Along a dimension of more blocks than this, ``preferred_chunks`` is the shared tuple of every
#: block size instead of the block size (at most this many, it is the number ``engine="zarr"``
#: gives).
MANY_BLOCKS = 1000


class SharedBlockSizes:
    """The ``preferred_chunks`` of the variables of one store, with long dimensions spelled out
    in tuples that all those variables share.

    One tuple per (dimension size, block size): Dask's ``normalize_chunks`` passes a tuple of
    block sizes through as the same object, and its ``cached_cumsum`` caches by identity, so a
    long dimension costs its cumulative sums once per store rather than once per variable.
    """

    def __init__(self) -> None:
        self._tuples: dict[Any, tuple[int, ...]] = {}

    def preferred(self, unit: BlockShape, shape: Sequence[int]) -> BlockShape:
        """``unit`` (from :func:`read_unit_shape`) with every dimension of more than
        :data:`MANY_BLOCKS` blocks as the shared tuple of its block sizes."""
        return tuple(self._spelled(b, int(n)) for b, n in zip(unit, shape))

    def _spelled(self, block: int | tuple[int, ...], size: int) -> int | tuple[int, ...]:
        if isinstance(block, tuple):  # a rectilinear dimension: already spelled out
            if len(block) <= MANY_BLOCKS:
                return block
            return self._tuples.setdefault(block, block)
        if block <= 0 or size <= block * MANY_BLOCKS:
            return block
        key = (size, block)
        sizes = self._tuples.get(key)
        if sizes is None:
            whole, rest = divmod(size, block)
            sizes = (block,) * whole + ((rest,) if rest else ())
            self._tuples[key] = sizes
        return sizes


def _grow(grid: ChunkGrid, itemsize: int, target: int) -> tuple[int, ...]:
    """How many stored objects a block holds along each dimension: grown along the slowest
    dimensions up to ``target`` bytes (counting the largest object of a rectilinear grid)."""
    unit = grid.chunk_shape
    mult = [1] * grid.ndim
    itemsize = max(1, itemsize)
    for dim, full in enumerate(grid.grid_shape):
        nbytes = math.prod(u * m for u, m in zip(unit, mult)) * itemsize
        if nbytes >= target:
            break
        full = max(1, full)
        mult[dim] = max(1, min(full, target // nbytes))
        if mult[dim] < full:
            break
    return tuple(mult)


def _runs_of(sizes: Sequence[int], count: int) -> tuple[int, ...]:
    """Consecutive chunk sizes merged ``count`` at a time."""
    return tuple(sum(sizes[i : i + count]) for i in range(0, len(sizes), count)) or (0,)


def _runs_reaching(sizes: Sequence[int], reach: int) -> tuple[int, ...]:
    """Consecutive chunk sizes merged into blocks of at least ``reach`` elements (the last one
    may hold fewer)."""
    blocks: list[int] = []
    current = 0
    for size in sizes:
        current += size
        if current >= reach:
            blocks.append(current)
            current = 0
    if current or not blocks:
        blocks.append(current)
    return tuple(blocks)


def _unit_error(read_unit: Any, why: str = "") -> ValueError:
    return ValueError(
        "read_unit must be None, 'chunk', 'shard', a positive number of bytes (an int or a "
        "size such as '200MiB') or a mapping from dimension name to a positive size, got "
        f"{read_unit!r}{why}"
    )


def read_unit_bytes(read_unit: str | int) -> int:
    """A byte-size ``read_unit`` (``67108864``, ``"64MiB"``, ``"200 MB"``) as a number of bytes.

    Raises
    ------
    ValueError
        Naming ``read_unit``, for anything that is not a positive size.
    """
    if isinstance(read_unit, bool):
        raise _unit_error(read_unit)
    if isinstance(read_unit, numbers.Integral):
        nbytes = int(read_unit)
    elif isinstance(read_unit, str) and read_unit.strip():
        try:
            nbytes = parse_bytes(read_unit)
        except ValueError as exc:
            raise _unit_error(read_unit, f" ({exc})") from None
    else:
        raise _unit_error(read_unit)
    if nbytes <= 0:
        raise _unit_error(read_unit, " (not a positive size)")
    return nbytes


def _check_mapping(read_unit: Mapping[str, int]) -> None:
    for name, size in read_unit.items():
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
            raise _unit_error(dict(read_unit), f" (the size of {name!r} is not a positive int)")


def _mapping_shape(
    meta: ZaroMeta, read_unit: Mapping[str, int], dims: tuple[str, ...] | None
) -> BlockShape:
    _check_mapping(read_unit)
    names = dims or ()  # names of other variables' dimensions are checked by the caller
    shape: list[int | tuple[int, ...]] = []
    for name, dim in zip(names, meta.storage_grid.dimensions):
        if dim.is_regular:
            size = dim.chunk_size(0)
            shape.append(max(1, math.ceil(int(read_unit.get(name, size)) / size)) * size)
        else:
            shape.append(_runs_reaching(dim.chunk_sizes(), int(read_unit.get(name, 1))))
    return tuple(shape)


def _grown_shape(meta: ZaroMeta, target: int) -> BlockShape:
    grid = meta.storage_grid
    mult = _grow(grid, meta.dtype.itemsize, target)
    return tuple(
        d.chunk_size(0) * m if d.is_regular else _runs_of(d.chunk_sizes(), m)
        for d, m in zip(grid.dimensions, mult)
    )


def _dask_chunk_size() -> int:
    """Dask's ``array.chunk-size`` in bytes (128 MiB, Dask's default, if it is unreadable)."""
    try:
        return max(1, int(parse_bytes(dask.config.get("array.chunk-size", "128MiB"))))
    except (TypeError, ValueError):
        return 128 * 2**20


def _small_and_many(meta: ZaroMeta) -> bool:
    """Whether the array holds more than :data:`MANY_OBJECTS` stored objects of under
    :data:`SMALL_OBJECT_BYTES` each (counting the largest object of a rectilinear grid)."""
    grid = meta.storage_grid
    objects = math.prod(grid.grid_shape)
    nbytes = math.prod(grid.chunk_shape) * max(1, meta.dtype.itemsize)
    return objects > MANY_OBJECTS and nbytes < SMALL_OBJECT_BYTES


def _default_shape(meta: ZaroMeta) -> BlockShape:
    """The stored object; many small ones grouped up to Dask's ``array.chunk-size``; a shard
    over that size as whole inner chunks that tile it, grown from the fastest dimension up to
    that size."""
    if _small_and_many(meta):
        return _grown_shape(meta, _dask_chunk_size())
    grid = meta.storage_grid
    shard = meta.shard_shape
    if shard is None or not grid.is_regular:
        return grid.compact_sizes()
    itemsize = max(1, meta.dtype.itemsize)
    limit = _dask_chunk_size()
    if math.prod(shard) * itemsize <= limit:
        return tuple(shard)
    block = list(meta.chunk_shape)
    nbytes = math.prod(block) * itemsize
    for dim in reversed(range(len(block))):
        per_shard = shard[dim] // block[dim]
        mult = max(
            (m for m in range(1, per_shard + 1) if per_shard % m == 0 and nbytes * m <= limit),
            default=1,
        )
        block[dim] *= mult
        nbytes *= mult
        if mult < per_shard:
            break
    return tuple(block)


def read_unit_shape(
    meta: ZaroMeta, read_unit: ReadUnit = None, dims: tuple[str, ...] | None = None
) -> BlockShape:
    """The block shape of one read unit for an array (its ``encoding["preferred_chunks"]``).

    Parameters
    ----------
    meta
        The array's metadata.
    read_unit
        ``None`` (default: one stored object, a chunk or a shard; more than
        :data:`MANY_OBJECTS` objects of under :data:`SMALL_OBJECT_BYTES` grouped up to Dask's
        ``array.chunk-size``; a shard larger than that as blocks of whole inner chunks up to
        that size), ``"chunk"``
        (one chunk, the inner chunk for sharded arrays, as ``engine="zarr"`` reports it),
        ``"shard"`` (one stored object, whatever its size), a target
        size in bytes (an int, or a string such as ``"200MiB"`` read by
        ``dask.utils.parse_bytes``: whole stored objects grown along the slowest dimensions up
        to that size), or a mapping from dimension name to a size (rounded up to whole stored
        objects).
    dims
        The dimension names, needed for a mapping.

    Returns
    -------
    tuple
        Per dimension the block size, or along a rectilinear dimension the size of every
        block (for ``encoding["preferred_chunks"]``).

    Raises
    ------
    ValueError
        Naming ``read_unit``, for a value that is none of these.
    """
    if read_unit == "chunk":
        grid = meta.chunk_grid
        return meta.chunk_shape if grid.is_regular else grid.compact_sizes()
    shape: BlockShape
    if read_unit is None:
        shape = _default_shape(meta)
    elif read_unit == "shard":
        shape = meta.storage_grid.compact_sizes()
    elif isinstance(read_unit, Mapping):
        shape = _mapping_shape(meta, read_unit, dims)
    elif isinstance(read_unit, str | numbers.Integral):
        shape = _grown_shape(meta, read_unit_bytes(read_unit))
    else:
        raise _unit_error(read_unit)
    return tuple(
        b if isinstance(b, tuple) else min(b, max(1, n)) for b, n in zip(shape, meta.shape)
    )


def check_read_unit(read_unit: ReadUnit) -> None:
    """Refuse a ``read_unit`` that can never be valid, before any metadata is read."""
    if read_unit is None or read_unit in _KEYWORDS:
        return
    if isinstance(read_unit, Mapping):
        _check_mapping(read_unit)
        return
    read_unit_bytes(read_unit)


def describe(value: Any) -> str:
    """A short text for log messages."""
    return "default" if value is None else repr(value)
