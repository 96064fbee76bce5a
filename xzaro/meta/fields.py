"""Checks of the members array documents share: required members, extensions, dimension names,
attributes, and the fill value and byte order that depend on the codec chain."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from xzaro.chunk_grid import parse_extents
from xzaro.codecs import (
    ARRAY_BYTES,
    BytesCodec,
    Codec,
    ShardingCodec,
    VLenBytesCodec,
    VLenUTF8Codec,
)
from xzaro.dtypes import extension_name, swaps_exactly
from xzaro.errors import MetadataError, UnsupportedError, brief
from xzaro.log import info


@contextmanager
def in_document(ctx: dict[str, Any], field: str | None = None) -> Iterator[None]:
    """Re-raise a :class:`MetadataError` naming the document (``ctx``'s URL and key) and
    ``field`` (default: the field the error names)."""
    try:
        yield
    except MetadataError as e:
        raise type(e)(e.message, field=field or e.field, **ctx) from e


def require_members(doc: dict[str, Any], members: Iterable[str], ctx: dict[str, Any]) -> None:
    """Fail, naming the first one, if a required member is missing."""
    for required in members:
        if required not in doc:
            raise MetadataError(f"missing required member {required!r}", field=required, **ctx)


def parse_shape(value: Any, ctx: dict[str, Any]) -> tuple[int, ...]:
    """The ``shape`` member, naming the document where it is wrong."""
    with in_document(ctx):
        return parse_extents(value, "shape")


def check_extensions(
    doc: dict[str, Any], known: frozenset[str], url: str | None, key: str | None
) -> None:
    """Refuse members xzaro does not know unless they say ``must_understand: false``."""
    for name, value in doc.items():
        if name in known:
            continue
        if isinstance(value, dict) and value.get("must_understand") is False:
            continue
        raise UnsupportedError(
            f"unknown metadata extension {name!r} (not marked must_understand: false)",
            url=url,
            key=key,
            field=name,
        )


def parse_attributes(value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    """The ``attributes`` member (absent or null: none)."""
    attrs = value or {}
    if not isinstance(attrs, dict):
        raise MetadataError("attributes must be an object", field="attributes", **ctx)
    return attrs


def parse_dimension_names(
    value: Any, ndim: int, field: str, ctx: dict[str, Any], *, nulls: bool
) -> tuple[str | None, ...] | None:
    """V3 ``dimension_names`` (names or nulls) or V2 ``_ARRAY_DIMENSIONS``, one per dimension."""
    if value is None:
        return None
    if nulls:
        valid = isinstance(value, list) and len(value) == ndim
        valid = valid and all(d is None or isinstance(d, str) for d in value)
        if not valid:
            raise MetadataError(
                f"dimension_names must list {ndim} names or nulls, got {value!r}",
                field=field,
                **ctx,
            )
    elif not isinstance(value, list) or len(value) != ndim:
        raise MetadataError(f"{field} must list {ndim} names, got {value!r}", field=field, **ctx)
    return tuple(value)


def _serialiser(codecs: tuple[Codec, ...]) -> Codec | None:
    """The codec that serialises array elements (inside the shards of a sharded array)."""
    codec = next((c for c in codecs if c.kind == ARRAY_BYTES), None)
    if isinstance(codec, ShardingCodec):
        return _serialiser(codec.codecs)
    return codec


def with_serialiser_byte_order(
    dtype: np.dtype, codecs: tuple[Codec, ...], ctx: dict[str, Any]
) -> np.dtype:
    """A structured (or ``ml_dtypes``) dtype as the ``bytes`` codec stores it.

    The ``endian`` of ``bytes`` applies to every field of a structured array. Without one (as
    zarr-python 3.1 writes), the registry says to read the fields little-endian; numpy cannot
    swap ``ml_dtypes``' complex types, nor its types inside a structured dtype, so those are
    refused big-endian.
    """
    if dtype.fields is None and extension_name(dtype) is None:
        return dtype
    serialiser = _serialiser(codecs)
    endian = serialiser.endian if isinstance(serialiser, BytesCodec) else "little"
    multi_byte = dtype.newbyteorder("<") != dtype.newbyteorder(">")
    if endian is None and dtype.fields is not None and multi_byte:
        info(
            "array %s: the bytes codec gives no endian for the structured data type %s; "
            "reading its fields little-endian",
            ctx.get("key"),
            dtype,
        )
        return dtype.newbyteorder("<")
    if endian == "big" and not swaps_exactly(dtype):
        raise UnsupportedError(
            f"data type {dtype} cannot be read big-endian (numpy cannot swap the bytes of "
            f"ml_dtypes' complex types, or of its types inside a structured dtype)",
            field="codecs",
            **ctx,
        )
    return dtype


def codecs_within(codecs: Iterable[Any]) -> Iterator[Any]:
    """``codecs`` and, inside each sharding codec, its inner chunks' codecs."""
    for codec in codecs:
        yield codec
        if isinstance(codec, ShardingCodec):
            yield from codecs_within(codec.codecs)


def object_fill(fill: Any, codecs: Any, ctx: dict[str, Any]) -> Any:
    """The fill value of an object array as its codec chain reads it.

    A bytes array's fill value is stored base64-encoded (``""`` is ``b""``) or as a list of its
    bytes. A string array's fill value that is a JSON number or boolean (zarrs' test data has
    ``0``) is that value as a string, as zarr-python reads it: never a number inside a string
    array.
    """
    codecs = list(codecs_within(codecs))
    binary = any(isinstance(c, VLenBytesCodec) for c in codecs)
    if binary and isinstance(fill, str):
        try:
            return base64.standard_b64decode(fill)
        except ValueError:
            pass
        try:
            return fill.encode()
        except UnicodeEncodeError as e:  # a lone surrogate: JSON allows it, UTF-8 does not
            raise MetadataError(
                f"a bytes array's fill_value is neither base64 nor text: {brief(fill)}",
                field="fill_value",
                **ctx,
            ) from e
    if binary and fill is not None and not isinstance(fill, bytes):
        # The zarr-extensions ``bytes`` data type also writes the fill value as its bytes.
        if isinstance(fill, list) and all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in fill
        ):
            return bytes(fill)
        raise MetadataError(
            f"a bytes array's fill_value must be base64 text or a list of integers 0-255, "
            f"got {brief(fill)}",
            field="fill_value",
            **ctx,
        )
    text = any(isinstance(c, VLenUTF8Codec) for c in codecs)
    if text and fill is not None and not isinstance(fill, str):
        if isinstance(fill, (bool, int, float, np.number, np.bool_)):
            return str(fill.item() if isinstance(fill, np.generic) else fill)
        raise MetadataError(
            f"a string array's fill_value must be a string, got {brief(fill)}",
            field="fill_value",
            **ctx,
        )
    return fill
