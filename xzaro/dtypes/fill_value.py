"""Fill values: a JSON ``fill_value`` parsed to a numpy scalar of the array's dtype, and back.

Exact bit patterns are kept (NaN payloads included, see :mod:`xzaro.dtypes.floats`); complex
values are ``[re, im]`` pairs, bytes-like values base64, structured values an object of field
values (or, in V3, base64 of their packed little-endian bytes).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from xzaro.dtypes.extensions import EXTENSION_DTYPES, extension_name
from xzaro.dtypes.floats import (
    UINT_OF_SIZE,
    bits_of,
    extension_float_from_json,
    extension_float_to_json,
    float_from_json,
    float_to_json,
)
from xzaro.dtypes.table import OBJECT, parse_v3_dtype
from xzaro.errors import MetadataError, UnsupportedError, ZaroError, brief

_FIELD = "fill_value"


def _extension_fill_from_json(
    value: Any, dtype: np.dtype, name: str, ctx: dict[str, Any]
) -> np.generic:
    ext = EXTENSION_DTYPES[name]
    if ext.family == "complex":
        if not isinstance(value, list) or len(value) != 2:
            raise MetadataError(
                f"a {name} fill value must be [re, im], got {value!r}", field=_FIELD, **ctx
            )
        part_name = ext.part or ""
        part = parse_v3_dtype(part_name, **ctx)
        if part_name in EXTENSION_DTYPES:
            re_im = [extension_float_from_json(v, part, part_name, ext.bits, ctx) for v in value]
        else:
            re_im = [float_from_json(v, part, _FIELD, ctx) for v in value]
        patterns = np.array([bits_of(v, part) for v in re_im], dtype=UINT_OF_SIZE[part.itemsize])
        return cast(np.generic, patterns.view(dtype)[0])
    if ext.family == "float":
        return extension_float_from_json(value, dtype, name, ext.bits, ctx)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    low, high = (-(1 << (ext.bits - 1)), (1 << (ext.bits - 1)) - 1)
    if ext.family == "uint":
        low, high = 0, (1 << ext.bits) - 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MetadataError(
            f"invalid fill value {value!r} for data type {name!r}: an integer from {low} to {high}",
            field=_FIELD,
            **ctx,
        )
    return np.array(value).astype(dtype)[()]  # type: ignore[return-value]


def _extension_fill_to_json(value: Any, dtype: np.dtype, name: str) -> Any:
    ext = EXTENSION_DTYPES[name]
    if ext.family == "complex":
        part_name = ext.part or ""
        part = parse_v3_dtype(part_name)
        re_im = np.array(value, dtype=dtype).reshape(1).view(part)
        if part_name in EXTENSION_DTYPES:
            return [extension_float_to_json(v, part) for v in re_im]
        return [float_to_json(v, part) for v in re_im]
    if ext.family == "float":
        return extension_float_to_json(value, dtype)
    return int(np.array(value, dtype=dtype).astype(np.int64)[()])


def _struct_fill_from_json(value: Any, dtype: np.dtype, ctx: dict[str, Any]) -> np.void:
    """A structured fill value: an object with one fill value per field (the registry's
    form), or base64 of the packed little-endian bytes (zarr-python 3.1's)."""
    raw = bytearray(dtype.itemsize)
    little = dtype.newbyteorder("<")
    if isinstance(value, dict):
        names = list(dtype.names or ())
        if set(value) != set(names):
            missing = [n for n in names if n not in value]
            extra = [n for n in value if n not in names]
            raise MetadataError(
                f"a struct fill value must give every field and no other: missing {missing}, "
                f"unknown {extra}",
                field=_FIELD,
                **ctx,
            )
        for field_name in names:
            field_dtype, offset = little.fields[field_name][:2]  # type: ignore[index]
            try:
                fill = parse_fill_value(value[field_name], field_dtype, zarr_format=3, **ctx)
            except MetadataError as e:
                raise type(e)(f"field {field_name!r}: {e.message}", field=_FIELD, **ctx) from e
            packed = np.array(fill, dtype=field_dtype).tobytes()
            raw[offset : offset + field_dtype.itemsize] = packed
    elif isinstance(value, str):
        try:
            decoded = base64.standard_b64decode(value)
        except ValueError as e:
            raise MetadataError(
                f"invalid base64 struct fill value {value!r}", field=_FIELD, **ctx
            ) from e
        if len(decoded) != dtype.itemsize:
            raise MetadataError(
                f"a base64 struct fill value must hold {dtype.itemsize} bytes, got {len(decoded)}",
                field=_FIELD,
                **ctx,
            )
        raw[:] = decoded
    else:
        raise MetadataError(
            f"a struct fill value must be an object of field values or base64 text, got {value!r}",
            field=_FIELD,
            **ctx,
        )
    return cast(np.void, np.frombuffer(bytes(raw), dtype=little).astype(dtype)[0])


def parse_fill_value(
    value: Any,
    dtype: np.dtype,
    *,
    zarr_format: int,
    url: str | None = None,
    key: str | None = None,
) -> Any:
    """Turn a JSON ``fill_value`` into a numpy scalar of ``dtype`` (``None`` stays ``None``).

    Floats keep exact bits for hex patterns such as ``"0x7fc00001"``; complex values come as
    ``[re, im]`` pairs; bytes-like dtypes come base64-encoded; structured dtypes as an object of
    field values (or, in V3, base64 of their packed little-endian bytes).
    """
    ctx = {"url": url, "key": key}
    if value is None:
        if zarr_format == 3:
            raise MetadataError("fill_value must not be null in Zarr V3", field=_FIELD, **ctx)
        return None
    name = extension_name(dtype)
    if name is not None:
        return _extension_fill_from_json(value, dtype, name, ctx)
    if dtype.fields is not None and (zarr_format == 3 or isinstance(value, dict)):
        return _struct_fill_from_json(value, dtype, ctx)
    if dtype == OBJECT:
        return value
    rule = _FILL_RULES.get(dtype.kind)
    if rule is None:
        raise UnsupportedError(f"no fill value rule for dtype {dtype}", field=_FIELD, **ctx)
    try:
        return rule(value, dtype, zarr_format, ctx)
    except ZaroError:
        raise  # already says what is wrong, and where
    except (ValueError, TypeError, OverflowError, struct.error) as e:
        raise MetadataError(
            f"invalid fill value {value!r} for {dtype}: {e}", field=_FIELD, **ctx
        ) from e


def _bool_fill(value: Any, dtype: np.dtype, zarr_format: int, ctx: dict[str, Any]) -> Any:
    if isinstance(value, bool) or value in (0, 1):
        return np.bool_(bool(value))
    raise MetadataError(f"invalid bool fill value {value!r}", field=_FIELD, **ctx)


def _int_fill(value: Any, dtype: np.dtype, zarr_format: int, ctx: dict[str, Any]) -> Any:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetadataError(f"invalid integer fill value {value!r}", field=_FIELD, **ctx)
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        raise MetadataError(f"fill value {value} out of range for {dtype}", field=_FIELD, **ctx)
    return dtype.type(value)


def _float_fill(value: Any, dtype: np.dtype, zarr_format: int, ctx: dict[str, Any]) -> Any:
    return float_from_json(value, dtype, _FIELD, ctx)


def _complex_fill(value: Any, dtype: np.dtype, zarr_format: int, ctx: dict[str, Any]) -> Any:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        if zarr_format == 2 and isinstance(value, (int, float, str)):
            return dtype.type(float_from_json(value, np.dtype("f8"), _FIELD, ctx))
        raise MetadataError(
            f"complex fill value must be [re, im], got {value!r}", field=_FIELD, **ctx
        )
    part = np.dtype(f"f{dtype.itemsize // 2}")
    re = float_from_json(value[0], part, _FIELD, ctx)
    im = float_from_json(value[1], part, _FIELD, ctx)
    out = np.zeros((), dtype=dtype.newbyteorder("="))
    out.real, out.imag = re, im
    return out[()]


def _time_fill(value: Any, dtype: np.dtype, zarr_format: int, ctx: dict[str, Any]) -> Any:
    if isinstance(value, str) and value == "NaT":
        return dtype.type("NaT")
    if isinstance(value, int) and not isinstance(value, bool):
        return np.array(value, dtype=np.int64).view(dtype.newbyteorder("="))[()]
    raise MetadataError(f"invalid time fill value {value!r}", field=_FIELD, **ctx)


def _str_fill(value: Any, dtype: np.dtype, zarr_format: int, ctx: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        raise MetadataError(f"invalid string fill value {value!r}", field=_FIELD, **ctx)
    return dtype.type(value)


def _bytes_fill(value: Any, dtype: np.dtype, zarr_format: int, ctx: dict[str, Any]) -> Any:
    if isinstance(value, list) and all(isinstance(b, int) for b in value):
        raw = bytes(value)
    elif isinstance(value, str):
        raw = base64.b64decode(value, validate=True) if value else b""  # binascii.Error: ValueError
    elif isinstance(value, int) and not isinstance(value, bool):
        raw = int(value).to_bytes(dtype.itemsize, "little") if value else b""
    else:
        raise MetadataError(f"invalid fill value {value!r} for {dtype}", field=_FIELD, **ctx)
    # null-terminated bytes may be shorter (the rest is NUL); raw bytes are all there, or none
    if len(raw) > dtype.itemsize or (dtype.kind == "V" and len(raw) not in (0, dtype.itemsize)):
        raise MetadataError(
            f"fill value {brief(value)} holds {len(raw)} bytes; {dtype} has {dtype.itemsize}",
            field=_FIELD,
            **ctx,
        )
    raw = raw.ljust(dtype.itemsize, b"\x00")
    return np.frombuffer(raw, dtype=dtype)[0]


#: How a JSON fill value is read, by numpy dtype kind.
_FILL_RULES: dict[str, Callable[[Any, np.dtype, int, dict[str, Any]], Any]] = {
    "b": _bool_fill,
    "i": _int_fill,
    "u": _int_fill,
    "f": _float_fill,
    "c": _complex_fill,
    "m": _time_fill,
    "M": _time_fill,
    "U": _str_fill,
    "S": _bytes_fill,
    "V": _bytes_fill,
}


def fill_value_to_json(value: Any, dtype: np.dtype, *, zarr_format: int) -> Any:
    """The JSON ``fill_value`` for a typed fill value (inverse of :func:`parse_fill_value`)."""
    if value is None:
        return None
    name = extension_name(dtype)
    if name is not None:
        return _extension_fill_to_json(value, dtype, name)
    if dtype.fields is not None and zarr_format == 3:
        # zarr-python 3.1 reads only base64 of the packed little-endian bytes.
        raw = np.array(value, dtype=dtype).astype(dtype.newbyteorder("<")).tobytes()
        return base64.standard_b64encode(raw).decode("ascii")
    kind = dtype.kind
    if dtype == OBJECT:
        return value
    if kind == "b":
        return bool(value)
    if kind in "iu":
        return int(value)
    if kind == "f":
        return float_to_json(value, dtype.newbyteorder("="))
    if kind == "c":
        part = np.dtype(f"f{dtype.itemsize // 2}")
        return [float_to_json(value.real, part), float_to_json(value.imag, part)]
    if kind in "mM":
        return int(np.array(value, dtype=dtype).view(np.int64)[()])
    if kind == "U":
        return str(value)
    if kind in "SV":
        raw = np.array(value, dtype=dtype).tobytes()
        return base64.standard_b64encode(raw).decode("ascii")
    raise UnsupportedError(f"no fill value rule for dtype {dtype}", field=_FIELD)


def default_fill_value(dtype: np.dtype) -> Any:
    """What a chunk that was never written reads as when the metadata gives no fill value
    (V2 ``null``): zero, except ``NaT`` for datetimes and timedeltas, as zarr-python reads it."""
    if dtype == OBJECT:
        return None
    if dtype.kind in "mM":
        return np.array("NaT", dtype=dtype)[()]
    return np.zeros((), dtype=dtype)[()]
