"""From an encoded xarray variable and the writer's options to the array's ``ZaroMeta``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xzaro.chunk_grid import (
    RECTILINEAR,
    ChunkGrid,
    DimensionGrid,
    RectilinearDimension,
    RegularDimension,
)
from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.codecs import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BytesCodec,
    ChunkSpec,
    Codec,
    Crc32cCodec,
    ShardingCodec,
    VLenBytesCodec,
    VLenUTF8Codec,
)
from xzaro.dtypes import OBJECT, default_fill_value
from xzaro.errors import MetadataError, UnsupportedError
from xzaro.meta import ZaroMeta
from xzaro.writers.compression import BloscCompressionParams

#: Default stored chunk size for data that carries no chunking of its own.
DEFAULT_CHUNK_BYTES = 4 * 2**20
#: The compressor used when the caller names none.
DEFAULT_COMPRESSOR = BloscCompressionParams("zstd", 5, "shuffle")

Compressor = BloscCompressionParams | Codec | Sequence[Codec] | None
#: One dimension's chunk (or shard) sizes: one size, or the size of every chunk in order (a
#: dimension of a rectilinear grid).
DimSizes = int | tuple[int, ...]
Sizes = Mapping[str, int] | Sequence[int] | int | None


def auto_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Chunks of about ``DEFAULT_CHUNK_BYTES``, split along the slowest dimensions first."""
    chunks = [max(1, n) for n in shape]
    for dim in range(len(chunks)):
        nbytes = math.prod(chunks) * max(1, itemsize)
        if nbytes <= DEFAULT_CHUNK_BYTES:
            break
        rest = nbytes // chunks[dim]
        chunks[dim] = max(1, DEFAULT_CHUNK_BYTES // max(1, rest))
    return tuple(chunks)


def _compression_codecs(compressor: Compressor, dtype: np.dtype) -> list[Codec]:
    if compressor is None:
        return []
    if isinstance(compressor, BloscCompressionParams):
        compressor = compressor.codec()
    codecs = [compressor] if isinstance(compressor, Codec) else list(compressor)
    # Settings that depend on the data type (Blosc's typesize) are resolved for this array's.
    spec = ChunkSpec(None, dtype)
    return [c.evolve_from_spec(spec) for c in codecs]


def storage_dtype(dtype: Any, zarr_format: int) -> np.dtype:
    """The dtype an array of ``dtype`` is stored with.

    numpy 2's ``StringDType`` is stored as variable-length UTF-8 strings (an object array, the
    V3 ``string`` data type), as zarr-python 3 does; V3 arrays are little-endian (the ``bytes``
    codec, not the data type, carries the byte order).
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "T":
        return OBJECT
    if zarr_format == 3 and dtype.byteorder == ">":
        return dtype.newbyteorder("<")
    return dtype


def default_serializer(dtype: np.dtype, zarr_format: int) -> Codec:
    """The array->bytes codec used when the caller names none (``dtype`` as stored)."""
    if dtype.kind == "O":
        return VLenUTF8Codec()
    if dtype.kind in "SV" or dtype.itemsize <= 1:
        return BytesCodec(None if zarr_format == 2 else "little")
    if zarr_format == 2:
        return BytesCodec({"<": "little", ">": "big"}.get(dtype.byteorder))
    return BytesCodec("little")


def array_meta(
    *,
    shape: tuple[int, ...],
    dtype: np.dtype,
    dims: tuple[str, ...],
    chunk_shape: Sequence[DimSizes],
    shard_shape: Sequence[DimSizes] | None,
    zarr_format: int,
    compressor: Compressor,
    fill_value: Any,
    attributes: dict,
    filters: Sequence[Codec] = (),
    serializer: Codec | None = None,
) -> ZaroMeta:
    """The metadata of an array about to be written.

    The codec chain is ``filters`` (array->array), ``serializer`` (array->bytes; by default
    ``bytes``, or ``vlen-utf8`` for strings) and ``compressor``; in a sharded V3 array it is the
    chain of each inner chunk. V2 stores the filters in ``.zarray``'s ``filters`` (see
    :func:`xzaro.writers.codec_spec.codec_encoding` for what each format can hold). A dimension
    of ``chunk_shape`` (or, sharded, of ``shard_shape``) given as the size of every chunk makes
    the grid rectilinear (V3 only; see :func:`storage_grid`).
    """
    dtype = storage_dtype(dtype, zarr_format)
    grid = storage_grid(shape, chunk_shape, shard_shape, zarr_format)
    # where the grid is rectilinear, the meta's chunk (or shard) shape is its largest object
    chunks = (
        grid.chunk_shape if grid is not None and shard_shape is None else regular_sizes(chunk_shape)
    )
    shards = None
    if shard_shape is not None:
        shards = grid.chunk_shape if grid is not None else regular_sizes(shard_shape)
    inner = _codec_chain(dtype, zarr_format, filters, serializer, compressor)
    if zarr_format == 2:
        if shards is not None:
            raise ValueError("shards need zarr_format=3")
        codecs, chunk_key_encoding = inner, ChunkKeyEncoding("v2", ".")
    else:
        fill_value = _v3_fill_value(fill_value, dtype)
        codecs = inner
        if shards is not None:
            codecs = _sharding_chain(dims, grid or ChunkGrid.regular(shape, shards), chunks, inner)
        chunk_key_encoding = ChunkKeyEncoding("default", "/")
    return ZaroMeta(
        zarr_format=zarr_format,
        shape=shape,
        dtype=dtype,
        chunk_shape=chunks,
        codecs=codecs,
        fill_value=fill_value,
        chunk_key_encoding=chunk_key_encoding,
        shard_shape=shards,
        dimension_names=dims,
        attributes=dict(attributes),
        storage_grid=grid or ChunkGrid(()),
    )


def storage_grid(
    shape: tuple[int, ...],
    chunk_shape: Sequence[DimSizes],
    shard_shape: Sequence[DimSizes] | None,
    zarr_format: int,
) -> ChunkGrid | None:
    """The rectilinear grid of stored objects (shards if sharded, else chunks) where a
    dimension gives every object's size, else ``None`` (a regular grid).

    Raises
    ------
    UnsupportedError
        For a rectilinear grid in Zarr V2 (field ``chunks``/``shards``), or rectilinear inner
        chunks of a sharded array (field ``chunks``: the shards may be rectilinear instead).
    """
    outer, field = (chunk_shape, "chunks") if shard_shape is None else (shard_shape, "shards")
    if shard_shape is not None and any(isinstance(c, (tuple, list)) for c in chunk_shape):
        raise UnsupportedError(
            "the inner chunks of a sharded array form a regular grid: give the sizes of every "
            "shard instead",
            field="chunks",
        )
    if not any(isinstance(c, (tuple, list)) for c in outer):
        return None
    if zarr_format == 2:
        raise UnsupportedError(
            f"{field} of different sizes along a dimension (a rectilinear chunk grid) need "
            "zarr_format=3",
            field=field,
        )
    dimensions: list[DimensionGrid] = [
        RectilinearDimension([(int(s), 1) for s in c], n)
        if isinstance(c, (tuple, list))
        else RegularDimension(int(c), n)
        for c, n in zip(outer, shape)
    ]
    return ChunkGrid(dimensions, RECTILINEAR)


def regular_sizes(sizes: Sequence[DimSizes]) -> tuple[int, ...]:
    """One size per dimension, of sizes that list none of every chunk (a regular grid).

    Raises
    ------
    ValueError
        For a dimension given the size of every chunk along it.
    """
    ints: list[int] = []
    for s in sizes:
        if isinstance(s, (tuple, list)):
            raise ValueError(f"{s} is the size of every chunk, not one size")
        ints.append(int(s))
    return tuple(ints)


def _codec_chain(
    dtype: np.dtype,
    zarr_format: int,
    filters: Sequence[Codec],
    serializer: Codec | None,
    compressor: Compressor,
) -> tuple[Codec, ...]:
    """``filters``, the serializer (the default one for ``dtype`` when ``None``) and the
    compressor's codecs, once each codec is of the kind its place needs."""
    for f in filters:
        if f.kind != ARRAY_ARRAY:
            raise MetadataError(f"filter {f.name!r} is not an array->array codec", field="filters")
    if serializer is None:
        serializer = default_serializer(dtype, zarr_format)
    elif serializer.kind != ARRAY_BYTES:
        raise MetadataError(
            f"serializer {serializer.name!r} is not an array->bytes codec", field="serializer"
        )
    if dtype.kind == "O" and not isinstance(serializer, (VLenUTF8Codec, VLenBytesCodec)):
        raise MetadataError(
            f"object (string) arrays need a variable-length serializer, not {serializer.name!r}",
            field="serializer",
        )
    return (*filters, serializer, *_compression_codecs(compressor, dtype))


def _v3_fill_value(fill_value: Any, dtype: np.dtype) -> Any:
    """A V3 array's fill value (V3 requires one): the given one, else as xarray's zarr writer
    stores missing data (NaN for floats, ``""`` for strings), else the type's default."""
    if fill_value is not None:
        return fill_value
    if dtype.kind == "O":
        return ""
    if dtype.kind == "f":
        return dtype.type(np.nan)
    return default_fill_value(dtype)


def _sharding_chain(
    dims: tuple[str, ...],
    shards: ChunkGrid,
    chunk_shape: tuple[int, ...],
    inner: tuple[Codec, ...],
) -> tuple[Codec, ...]:
    """The one ``sharding_indexed`` codec of a sharded array (``inner`` encodes each chunk; the
    index, at the end, is protected by crc32c). Every shard edge is a whole number of chunks."""
    bad = [
        d
        for d, grid, c in zip(dims, shards.dimensions, chunk_shape)
        if any(edge % c for edge in grid.edge_lengths())
    ]
    if bad:
        raise ValueError(
            f"shards {shards.describe()} must be whole multiples of chunks {chunk_shape} "
            f"(dimensions {bad})"
        )
    return (ShardingCodec(chunk_shape, inner, (BytesCodec("little"), Crc32cCodec()), "end"),)
