"""A V2 array's ``order``, ``filters`` and ``compressor`` as one V3-style codec chain.

The chain is what the codec layer decodes for both formats: ``order: "F"`` becomes a transpose,
numeric filters stay array->array codecs, the object codec (``vlen-utf8``...) or a numeric
serialiser (pcodec, zfpy) takes the place of ``bytes``, and what follows it works on bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xzaro.codecs import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    OBJECT_CODEC_IDS,
    BytesCodec,
    Codec,
    NumcodecsCodec,
    TransposeCodec,
    codec_from_v2,
)
from xzaro.dtypes import OBJECT, parse_v2_dtype
from xzaro.errors import MetadataError, brief
from xzaro.meta.fields import in_document


def v2_codec_chain(
    doc: dict[str, Any], dtype: np.dtype, ndim: int, allow_unsafe: bool, ctx: dict[str, Any]
) -> tuple[Codec, ...]:
    """The codec chain of a ``.zarray`` document whose dtype and dimensions are parsed.

    Raises
    ------
    MetadataError
        Naming ``filters`` or ``compressor``, for codecs that cannot form a chain.
    """
    filters = doc.get("filters")
    if filters is None:
        filters = []
    if not isinstance(filters, list):  # 0 or false too: never read as "no filters"
        raise MetadataError(
            f"filters must be null or a list, got {brief(filters)}", field="filters", **ctx
        )
    chain: list[Codec] = []
    if doc["order"] == "F" and ndim > 1:
        chain.append(TransposeCodec(tuple(range(ndim - 1, -1, -1))))
    filter_codecs = []
    for f in filters:
        with in_document(ctx, "filters"):
            filter_codecs.append(codec_from_v2(f, filter=True, allow_unsafe=allow_unsafe, **ctx))
    if dtype == OBJECT:
        chain.extend(_object_chain(filters, filter_codecs, ctx))
    else:
        chain.extend(_numeric_filters(filter_codecs))
    compressor = None
    if doc["compressor"] is not None:
        with in_document(ctx, "compressor"):
            compressor = codec_from_v2(doc["compressor"], allow_unsafe=allow_unsafe, **ctx)
    if dtype != OBJECT and not any(_serialises_numbers(c) for c in chain):
        if compressor is not None and _serialises_numbers(compressor):
            # pcodec, zfpy: zarr-python 2 hands the compressor the chunk array (after the
            # filters), so it is the chain's serialiser, in place of ``bytes``.
            chain.append(compressor)
            compressor = None
        else:
            chain.append(BytesCodec(_endian_of(dtype)))
    if compressor is not None:
        chain.append(compressor)
    _check_filter_order(chain, ctx)
    return tuple(chain)


def _object_chain(
    filters: list[Any], filter_codecs: list[Codec], ctx: dict[str, Any]
) -> list[Codec]:
    """The filters of an object array: the object codec serialises it (or ``categorize``
    turns the objects into integer codes, which serialise as usual)."""
    ids = [f.get("id") for f in filters]
    at = next((i for i, fid in enumerate(ids) if fid in OBJECT_CODEC_IDS), None)
    if at is None and "categorize" in ids:
        astype = parse_v2_dtype(filters[ids.index("categorize")].get("astype", "|u1"), **ctx)
        return [*filter_codecs, BytesCodec(_endian_of(astype))]
    if at is None:
        raise MetadataError(
            f"object dtype needs an object codec (such as vlen-utf8) in filters, got {ids}",
            field="filters",
            **ctx,
        )
    return [
        *filter_codecs[:at],
        _as_array_bytes(filter_codecs[at], ctx),
        *(_after_serialiser(c) for c in filter_codecs[at + 1 :]),
    ]


def _endian_of(dtype: np.dtype) -> str | None:
    if dtype.fields is not None or dtype.itemsize <= 1:
        return None
    return {"<": "little", ">": "big"}.get(dtype.byteorder)


def _serialises_numbers(codec: Codec) -> bool:
    """An array->bytes numcodecs codec of numeric arrays (pcodec, zfpy)."""
    return (
        isinstance(codec, NumcodecsCodec)
        and codec.kind == ARRAY_BYTES
        and not codec.serialises_objects
    )


def _numeric_filters(filters: list[Codec]) -> list[Codec]:
    """The filters of a numeric V2 array as chain members: an array->bytes filter (pcodec,
    zfpy) serialises the chunk, and the filters after it work on its bytes."""
    at = next((i for i, c in enumerate(filters) if _serialises_numbers(c)), None)
    if at is None:
        return list(filters)
    return [*filters[: at + 1], *(_after_serialiser(c) for c in filters[at + 1 :])]


def _after_serialiser(codec: Codec) -> Codec:
    """V2 filters after the serialiser work on its bytes: bytes->bytes codecs there."""
    if isinstance(codec, NumcodecsCodec) and codec.v2_filter:
        return NumcodecsCodec(codec.codec_id, codec.config)
    return codec


def _as_array_bytes(codec: Codec, ctx: dict[str, Any]) -> Codec:
    """A V2 object filter acts as the chain's array->bytes codec."""
    if codec.kind == ARRAY_BYTES:
        return codec
    raise MetadataError(f"{codec.name} cannot serialise an object array", field="filters", **ctx)


def _check_filter_order(chain: list[Codec], ctx: dict[str, Any]) -> None:
    kinds = [c.kind for c in chain]
    # V2 filters after the serialiser work on bytes; they behave as bytes->bytes codecs there.
    if kinds.count(ARRAY_BYTES) == 1:
        i = kinds.index(ARRAY_BYTES)
        if any(k == ARRAY_ARRAY for k in kinds[i + 1 :]):
            raise MetadataError(
                "array filters after the object codec are not supported", field="filters", **ctx
            )
