"""Data types and fill values: the one table mapping Zarr data types to numpy, both formats.

V3 names (``"float32"``, ``"r16"``, ``{"name": "numpy.datetime64", ...}``) and V2 numpy type
strings (``"<f4"``, ``">i2"``, ``"|S8"``) both resolve to a numpy dtype here, and fill values are
parsed from and emitted to JSON here, keeping exact bit patterns (NaN payloads included).
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import numpy as np

from xzaro.errors import MetadataError, UnsupportedError

#: V3 core data type names and their numpy dtypes (native byte order).
V3_CORE_DTYPES: dict[str, np.dtype] = {
    "bool": np.dtype("bool"),
    "int8": np.dtype("int8"),
    "int16": np.dtype("int16"),
    "int32": np.dtype("int32"),
    "int64": np.dtype("int64"),
    "uint8": np.dtype("uint8"),
    "uint16": np.dtype("uint16"),
    "uint32": np.dtype("uint32"),
    "uint64": np.dtype("uint64"),
    "float16": np.dtype("float16"),
    "float32": np.dtype("float32"),
    "float64": np.dtype("float64"),
    "complex64": np.dtype("complex64"),
    "complex128": np.dtype("complex128"),
}
_V3_NAME_OF = {dt: name for name, dt in V3_CORE_DTYPES.items()}

#: Variable-length data types (zarr-python's extensions) read as numpy object arrays.
V3_VLEN_DTYPES = {
    "string": "vlen-utf8",
    "variable_length_bytes": "vlen-bytes",
    "bytes": "vlen-bytes",
}

OBJECT = np.dtype(object)


def parse_v3_dtype(doc: Any, *, url: str | None = None, key: str | None = None) -> np.dtype:
    """Resolve a V3 ``data_type`` (a name or a ``{"name", "configuration"}`` object) to numpy."""
    name, config = _name_and_config(doc, "data_type", url=url, key=key)
    if name in V3_CORE_DTYPES and not config:
        return V3_CORE_DTYPES[name]
    if name in V3_VLEN_DTYPES:
        return OBJECT
    if name.startswith("r") and name[1:].isdigit():
        bits = int(name[1:])
        if bits <= 0 or bits % 8:
            raise MetadataError(
                f"raw data type {name!r} must be a positive multiple of 8 bits",
                url=url,
                key=key,
                field="data_type",
            )
        return np.dtype(f"V{bits // 8}")
    length = config.get("length_bytes") if isinstance(config, dict) else None
    if name == "raw_bytes" and isinstance(length, int):
        return np.dtype(f"V{length}")
    if name == "null_terminated_bytes" and isinstance(length, int):
        return np.dtype(f"S{length}")
    if name == "fixed_length_utf32" and isinstance(length, int):
        return np.dtype(f"<U{length // 4}")
    if name in ("numpy.datetime64", "numpy.timedelta64"):
        unit = config.get("unit", "generic")
        scale = config.get("scale_factor", 1)
        code = "M8" if name == "numpy.datetime64" else "m8"
        unit_str = unit if scale == 1 else f"{scale}{unit}"
        try:
            return np.dtype(f"<{code}[{unit_str}]")
        except TypeError as e:
            raise MetadataError(
                f"invalid {name} configuration {config!r}", url=url, key=key, field="data_type"
            ) from e
    raise UnsupportedError(f"unknown data type {doc!r}", url=url, key=key, field="data_type")


def v3_dtype_to_json(dtype: np.dtype, *, object_codec: str | None = None) -> Any:
    """The V3 ``data_type`` JSON for a numpy dtype (inverse of :func:`parse_v3_dtype`)."""
    if dtype == OBJECT:
        return "variable_length_bytes" if object_codec == "vlen-bytes" else "string"
    native = dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype
    if native in _V3_NAME_OF:
        return _V3_NAME_OF[native]
    if dtype.kind == "V" and dtype.fields is None:
        return f"r{dtype.itemsize * 8}"
    if dtype.kind == "S":
        return {"name": "null_terminated_bytes", "configuration": {"length_bytes": dtype.itemsize}}
    if dtype.kind == "U":
        return {"name": "fixed_length_utf32", "configuration": {"length_bytes": dtype.itemsize}}
    if dtype.kind in "mM":
        unit, count = np.datetime_data(dtype)
        name = "numpy.datetime64" if dtype.kind == "M" else "numpy.timedelta64"
        return {"name": name, "configuration": {"unit": unit, "scale_factor": count}}
    raise UnsupportedError(f"numpy dtype {dtype} has no Zarr V3 data type", field="data_type")


def parse_v2_dtype(doc: Any, *, url: str | None = None, key: str | None = None) -> np.dtype:
    """Resolve a V2 ``dtype`` (a numpy type string or a structured list) to numpy."""
    try:
        if isinstance(doc, str):
            return np.dtype(doc)
        if isinstance(doc, list):
            return np.dtype([tuple(_v2_field(f)) for f in doc])
    except (TypeError, ValueError) as e:
        raise MetadataError(f"invalid dtype {doc!r}: {e}", url=url, key=key, field="dtype") from e
    raise MetadataError(f"invalid dtype {doc!r}", url=url, key=key, field="dtype")


def _v2_field(field: list) -> list:
    name, dt, *shape = field
    return [name, np.dtype(dt) if isinstance(dt, str) else np.dtype([tuple(f) for f in dt]), *shape]


def v2_dtype_to_json(dtype: np.dtype) -> Any:
    """The V2 ``dtype`` JSON for a numpy dtype."""
    if dtype.fields is not None:
        return [list(t) for t in dtype.descr]
    return dtype.str


def _name_and_config(doc: Any, field: str, *, url: str | None, key: str | None) -> tuple[str, dict]:
    if isinstance(doc, str):
        return doc, {}
    if isinstance(doc, dict) and isinstance(doc.get("name"), str):
        config = doc.get("configuration") or {}
        if not isinstance(config, dict):
            raise MetadataError(
                f"'configuration' of {doc['name']!r} must be an object",
                url=url,
                key=key,
                field=field,
            )
        return doc["name"], config
    raise MetadataError(
        f"expected a name or a {{'name', 'configuration'}} object, got {doc!r}",
        url=url,
        key=key,
        field=field,
    )


# --------------------------------------------------------------------------- fill values

_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_UINT_OF_SIZE = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _float_from_json(value: Any, dtype: np.dtype, field: str, ctx: dict) -> np.generic:
    if isinstance(value, str) and value.startswith("0x"):
        size = dtype.itemsize
        try:
            bits = int(value, 16)
            bits_array = np.array(bits, dtype=_UINT_OF_SIZE[size])
            return bits_array.view(dtype.newbyteorder("=")).reshape(())[()]  # type: ignore[return-value]
        except (ValueError, OverflowError, KeyError) as e:
            raise MetadataError(f"invalid hex fill value {value!r}", field=field, **ctx) from e
    if isinstance(value, str) and value in _SPECIAL_FLOATS:
        return dtype.type(_SPECIAL_FLOATS[value])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetadataError(f"invalid fill value {value!r} for {dtype}", field=field, **ctx)
    return dtype.type(value)


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
    ``[re, im]`` pairs; bytes-like dtypes come base64-encoded.
    """
    ctx = {"url": url, "key": key}
    field = "fill_value"
    if value is None:
        if zarr_format == 3:
            raise MetadataError("fill_value must not be null in Zarr V3", field=field, **ctx)
        return None
    kind = dtype.kind
    try:
        if dtype == OBJECT:
            return value
        if kind == "b":
            if isinstance(value, bool) or value in (0, 1):
                return np.bool_(bool(value))
            raise MetadataError(f"invalid bool fill value {value!r}", field=field, **ctx)
        if kind in "iu":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise MetadataError(f"invalid integer fill value {value!r}", field=field, **ctx)
            info = np.iinfo(dtype)
            if not info.min <= value <= info.max:
                raise MetadataError(
                    f"fill value {value} out of range for {dtype}", field=field, **ctx
                )
            return dtype.type(value)
        if kind == "f":
            return _float_from_json(value, dtype, field, ctx)
        if kind == "c":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                if zarr_format == 2 and isinstance(value, (int, float, str)):
                    return dtype.type(_float_from_json(value, np.dtype("f8"), field, ctx))
                raise MetadataError(
                    f"complex fill value must be [re, im], got {value!r}", field=field, **ctx
                )
            part = np.dtype(f"f{dtype.itemsize // 2}")
            re = _float_from_json(value[0], part, field, ctx)
            im = _float_from_json(value[1], part, field, ctx)
            out = np.zeros((), dtype=dtype.newbyteorder("="))
            out.real, out.imag = re, im
            return out[()]
        if kind in "mM":
            if isinstance(value, str) and value == "NaT":
                return dtype.type("NaT")
            if isinstance(value, int) and not isinstance(value, bool):
                return np.array(value, dtype=np.int64).view(dtype.newbyteorder("="))[()]
            raise MetadataError(f"invalid time fill value {value!r}", field=field, **ctx)
        if kind == "U":
            if not isinstance(value, str):
                raise MetadataError(f"invalid string fill value {value!r}", field=field, **ctx)
            return dtype.type(value)
        if kind in "SV":
            if isinstance(value, list) and all(isinstance(b, int) for b in value):
                raw = bytes(value)
            elif isinstance(value, str):
                raw = base64.standard_b64decode(value) if value else b""
            elif isinstance(value, int) and not isinstance(value, bool):
                raw = int(value).to_bytes(dtype.itemsize, "little") if value else b""
            else:
                raise MetadataError(f"invalid fill value {value!r} for {dtype}", field=field, **ctx)
            raw = raw.ljust(dtype.itemsize, b"\x00")[: dtype.itemsize]
            return np.frombuffer(raw, dtype=dtype)[0]
    except (ValueError, TypeError, OverflowError, struct.error) as e:
        raise MetadataError(
            f"invalid fill value {value!r} for {dtype}: {e}", field=field, **ctx
        ) from e
    raise UnsupportedError(f"no fill value rule for dtype {dtype}", field=field, **ctx)


def _float_to_json(x: Any, dtype: np.dtype) -> Any:
    x = dtype.type(x)
    if np.isnan(x):
        bits = int(np.array(x, dtype=dtype).view(_UINT_OF_SIZE[dtype.itemsize])[()])
        canonical = int(np.array(np.nan, dtype=dtype).view(_UINT_OF_SIZE[dtype.itemsize])[()])
        if bits == canonical:
            return "NaN"
        return f"0x{bits:0{dtype.itemsize * 2}x}"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return float(x)


def fill_value_to_json(value: Any, dtype: np.dtype, *, zarr_format: int) -> Any:
    """The JSON ``fill_value`` for a typed fill value (inverse of :func:`parse_fill_value`)."""
    if value is None:
        return None
    kind = dtype.kind
    if dtype == OBJECT:
        return value
    if kind == "b":
        return bool(value)
    if kind in "iu":
        return int(value)
    if kind == "f":
        return _float_to_json(value, dtype.newbyteorder("="))
    if kind == "c":
        part = np.dtype(f"f{dtype.itemsize // 2}")
        return [_float_to_json(value.real, part), _float_to_json(value.imag, part)]
    if kind in "mM":
        return int(np.array(value, dtype=dtype).view(np.int64)[()])
    if kind == "U":
        return str(value)
    if kind in "SV":
        raw = np.array(value, dtype=dtype).tobytes()
        return base64.standard_b64encode(raw).decode("ascii")
    raise UnsupportedError(f"no fill value rule for dtype {dtype}", field="fill_value")


def default_fill_value(dtype: np.dtype) -> Any:
    """What a chunk that was never written reads as when the metadata gives no fill value
    (V2 ``null``): zero, except ``NaT`` for datetimes and timedeltas, as zarr-python reads it."""
    if dtype == OBJECT:
        return None
    if dtype.kind in "mM":
        return np.array("NaT", dtype=dtype)[()]
    return np.zeros((), dtype=dtype)[()]


def fill_array(shape: tuple[int, ...], dtype: np.dtype, fill_value: Any) -> np.ndarray:
    """A new array of ``shape`` filled with ``fill_value``, bit-exactly (NaN payloads kept)."""
    out = np.empty(shape, dtype=dtype)
    fill_into(out, fill_value)
    return out


def fill_into(out: np.ndarray, fill_value: Any) -> None:
    """Fill ``out`` with ``fill_value`` in place, bit-exactly."""
    dtype = out.dtype
    if dtype == OBJECT:
        out.fill("" if fill_value is None else fill_value)
        return
    if fill_value is None:
        fill_value = default_fill_value(dtype)
    if dtype.kind in "fc" and out.size:
        # Copying bits through an unsigned view keeps NaN payloads that arithmetic might change.
        scalar = np.array(fill_value, dtype=dtype)
        if dtype.kind == "f" and dtype.itemsize in _UINT_OF_SIZE:
            out.view(_UINT_OF_SIZE[dtype.itemsize]).fill(scalar.view(_UINT_OF_SIZE[dtype.itemsize]))
            return
        out[...] = scalar
        return
    out.fill(fill_value)
