"""From an encoded xarray variable and the writer's options to the array's ``ZaroMeta``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.codecs import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BloscCodec,
    BytesCodec,
    Codec,
    Crc32cCodec,
    ShardingCodec,
    VLenBytesCodec,
    VLenUTF8Codec,
)
from xzaro.dtypes import OBJECT, default_fill_value
from xzaro.errors import MetadataError
from xzaro.meta import ZaroMeta
from xzaro.writers.compression import BloscCompressionParams

#: Default stored chunk size for data that carries no chunking of its own.
DEFAULT_CHUNK_BYTES = 4 * 2**20
#: The compressor used when the caller names none.
DEFAULT_COMPRESSOR = BloscCompressionParams("zstd", 5, "shuffle")

Compressor = BloscCompressionParams | Codec | Sequence[Codec] | None
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
        return [compressor.codec(dtype)]
    codecs = [compressor] if isinstance(compressor, Codec) else list(compressor)
    # Blosc's shuffle needs the element size; V3 readers require it in the metadata.
    return [
        replace(c, typesize=max(1, dtype.itemsize))
        if isinstance(c, BloscCodec) and c.typesize is None and not dtype.hasobject
        else c
        for c in codecs
    ]


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
    chunk_shape: tuple[int, ...],
    shard_shape: tuple[int, ...] | None,
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
    :func:`xzaro.writers.codec_spec.codec_encoding` for what each format can hold).
    """
    dtype = storage_dtype(dtype, zarr_format)
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
    inner: list[Codec] = [*filters, serializer, *_compression_codecs(compressor, dtype)]
    if zarr_format == 2:
        if shard_shape is not None:
            raise ValueError("shards need zarr_format=3")
        return ZaroMeta(
            2,
            shape,
            dtype,
            chunk_shape,
            tuple(inner),
            fill_value,
            ChunkKeyEncoding("v2", "."),
            "C",
            None,
            dims,
            dict(attributes),
        )
    if fill_value is None:
        if dtype.kind == "O":
            fill_value = ""
        elif dtype.kind == "f":
            fill_value = dtype.type(np.nan)  # as xarray's zarr writer: missing data is NaN
        else:
            fill_value = default_fill_value(dtype)
    codecs: tuple[Codec, ...] = tuple(inner)
    if shard_shape is not None:
        bad = [d for d, s, c in zip(dims, shard_shape, chunk_shape) if s % c]
        if bad:
            raise ValueError(
                f"shards {shard_shape} must be whole multiples of chunks {chunk_shape} "
                f"(dimensions {bad})"
            )
        codecs = (
            ShardingCodec(chunk_shape, tuple(inner), (BytesCodec("little"), Crc32cCodec()), "end"),
        )
    return ZaroMeta(
        3,
        shape,
        dtype,
        chunk_shape,
        codecs,
        fill_value,
        ChunkKeyEncoding("default", "/"),
        "C",
        shard_shape,
        dims,
        dict(attributes),
    )
