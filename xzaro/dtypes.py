"""Data types and fill values: the one table mapping Zarr data types to numpy, both formats.

V3 names (``"float32"``, ``"r16"``, ``{"name": "numpy.datetime64", ...}``) and V2 numpy type
strings (``"<f4"``, ``">i2"``, ``"|S8"``) both resolve to a numpy dtype here, and fill values are
parsed from and emitted to JSON here, keeping exact bit patterns (NaN payloads included).

Besides the core types this covers the zarr-extensions registry's ``struct`` (and the legacy
``structured`` that zarr-python 3.1 writes) as numpy structured dtypes, and the registry's
machine-learning types (``bfloat16``, the ``float8_*``/``float6_*``/``float4_*`` families, ``int2``,
``int4``, ``uint2``, ``uint4``, ``complex_bfloat16``, ``complex_float16``) as the numpy dtypes of
the optional ``ml_dtypes`` package, imported only when such a type is met.
"""

from __future__ import annotations

import base64
import importlib
import math
import struct
from dataclasses import dataclass
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

#: zarr-extensions names of core data types.
V3_ALIASES = {"complex_float32": "complex64", "complex_float64": "complex128"}

#: The zarr-extensions names of structured data types: ``struct``, and ``structured``, the
#: legacy name zarr-python 3.1 writes (both read; ``structured`` written, see
#: :func:`v3_dtype_to_json`).
STRUCT_NAMES = ("struct", "structured")


@dataclass(frozen=True)
class ExtensionType:
    """A zarr-extensions data type that the optional ``ml_dtypes`` package represents.

    ``bits`` counts the significant bits of one element (of one part, for complex types); the
    ``bytes`` codec stores each element in ``itemsize`` bytes, the upper bits of sub-byte types
    unused. ``part`` names the data type of the real and imaginary parts of complex types.
    """

    ml_name: str
    family: str  # "float", "int", "uint" or "complex"
    bits: int
    part: str | None = None


EXTENSION_DTYPES: dict[str, ExtensionType] = {
    "bfloat16": ExtensionType("bfloat16", "float", 16),
    "float8_e3m4": ExtensionType("float8_e3m4", "float", 8),
    "float8_e4m3": ExtensionType("float8_e4m3", "float", 8),
    "float8_e4m3fn": ExtensionType("float8_e4m3fn", "float", 8),
    "float8_e4m3fnuz": ExtensionType("float8_e4m3fnuz", "float", 8),
    "float8_e4m3b11fnuz": ExtensionType("float8_e4m3b11fnuz", "float", 8),
    "float8_e5m2": ExtensionType("float8_e5m2", "float", 8),
    "float8_e5m2fnuz": ExtensionType("float8_e5m2fnuz", "float", 8),
    "float8_e8m0fnu": ExtensionType("float8_e8m0fnu", "float", 8),
    "float6_e2m3fn": ExtensionType("float6_e2m3fn", "float", 6),
    "float6_e3m2fn": ExtensionType("float6_e3m2fn", "float", 6),
    "float4_e2m1fn": ExtensionType("float4_e2m1fn", "float", 4),
    "int2": ExtensionType("int2", "int", 2),
    "int4": ExtensionType("int4", "int", 4),
    "uint2": ExtensionType("uint2", "uint", 2),
    "uint4": ExtensionType("uint4", "uint", 4),
    "complex_bfloat16": ExtensionType("bcomplex32", "complex", 16, "bfloat16"),
    "complex_float16": ExtensionType("complex32", "complex", 16, "float16"),
}
_V3_NAME_OF_ML = {ext.ml_name: name for name, ext in EXTENSION_DTYPES.items()}


def extension_dtype(name: str, *, url: str | None = None, key: str | None = None) -> np.dtype:
    """The numpy dtype of the zarr-extensions data type ``name``, from ``ml_dtypes``.

    Raises
    ------
    MetadataError
        When ``ml_dtypes`` is not installed (or too old to know the type).
    """
    ext = EXTENSION_DTYPES[name]
    try:
        module = importlib.import_module("ml_dtypes")
    except ImportError as e:
        raise MetadataError(
            f"data type {name!r} needs the ml_dtypes package: pip install ml_dtypes",
            url=url,
            key=key,
            field="data_type",
        ) from e
    scalar_type = vars(module).get(ext.ml_name)
    if scalar_type is None:
        raise MetadataError(
            f"data type {name!r} needs a newer ml_dtypes (this one lacks {ext.ml_name}): "
            f"pip install -U ml_dtypes",
            url=url,
            key=key,
            field="data_type",
        )
    return np.dtype(scalar_type)


def extension_name(dtype: np.dtype) -> str | None:
    """The zarr-extensions name of an ``ml_dtypes`` dtype (``"bfloat16"``), else ``None``."""
    if dtype.type.__module__.partition(".")[0] != "ml_dtypes":
        return None
    return _V3_NAME_OF_ML.get(dtype.name)


def _contains_extension(dtype: np.dtype) -> str | None:
    if dtype.subdtype is not None:
        return _contains_extension(dtype.subdtype[0])
    if dtype.fields is not None:
        return next(
            (n for n in (_contains_extension(dtype.fields[f][0]) for f in dtype.names or ()) if n),
            None,
        )
    return extension_name(dtype)


def swaps_exactly(dtype: np.dtype) -> bool:
    """Whether numpy changes the byte order of ``dtype`` right (as the ``bytes`` codec needs).

    ``ml_dtypes``' complex types swap as one word (exchanging the real and imaginary parts),
    and its types inside a structured dtype do not swap at all.
    """
    if dtype.fields is not None:
        return all(_swaps_in_struct(dtype.fields[n][0]) for n in dtype.names or ())
    name = extension_name(dtype)
    return name is None or EXTENSION_DTYPES[name].family != "complex"


def _swaps_in_struct(dtype: np.dtype) -> bool:
    if dtype.subdtype is not None:
        dtype = dtype.subdtype[0]
    if dtype.fields is not None:
        return swaps_exactly(dtype)
    return extension_name(dtype) is None or dtype.itemsize <= 1


def parse_v3_dtype(doc: Any, *, url: str | None = None, key: str | None = None) -> np.dtype:
    """Resolve a V3 ``data_type`` (a name or a ``{"name", "configuration"}`` object) to numpy."""
    return _parse_v3_dtype(doc, url, key, 0)


#: How deeply ``struct`` data types may nest (numpy and Python's stack set the real limits).
MAX_STRUCT_DEPTH = 32


def _parse_v3_dtype(doc: Any, url: str | None, key: str | None, depth: int) -> np.dtype:
    name, config = _name_and_config(doc, "data_type", url=url, key=key)
    if name in V3_CORE_DTYPES and not config:
        return V3_CORE_DTYPES[name]
    if name in V3_ALIASES and not config:
        return V3_CORE_DTYPES[V3_ALIASES[name]]
    if name in EXTENSION_DTYPES and not config:
        return extension_dtype(name, url=url, key=key)
    if name in STRUCT_NAMES:
        return _parse_struct(name, config, url, key, depth)
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


def _parse_struct(
    name: str, config: dict, url: str | None, key: str | None, depth: int
) -> np.dtype:
    """A ``struct`` / ``structured`` data type as a packed numpy structured dtype.

    Fields come as ``{"name", "data_type"}`` objects (``struct``) or ``[name, data_type]``
    pairs (``structured``); either name accepts either form, as the registry asks. Field dtypes
    are native-endian: the ``bytes`` codec's ``endian`` applies to every field.
    """
    ctx = {"url": url, "key": key, "field": "data_type"}
    if depth >= MAX_STRUCT_DEPTH:
        raise MetadataError(f"{name!r} data types nest more than {MAX_STRUCT_DEPTH} deep", **ctx)
    fields = config.get("fields")
    if set(config) != {"fields"} or not isinstance(fields, list) or not fields:
        raise MetadataError(
            f"data type {name!r} needs a configuration holding only a non-empty 'fields' list, "
            f"got {config!r}",
            **ctx,
        )
    out: list[tuple[str, np.dtype]] = []
    for item in fields:
        if isinstance(item, dict) and set(item) == {"name", "data_type"}:
            field_name, field_type = item["name"], item["data_type"]
        elif isinstance(item, list) and len(item) == 2:
            field_name, field_type = item
        else:
            raise MetadataError(
                f"a field of {name!r} must be {{'name': ..., 'data_type': ...}} or "
                f"[name, data_type], got {item!r}",
                **ctx,
            )
        if not isinstance(field_name, str) or not field_name:
            raise MetadataError(f"field name must be a non-empty string, got {field_name!r}", **ctx)
        if any(field_name == n for n, _ in out):
            raise MetadataError(f"field name {field_name!r} appears twice in {name!r}", **ctx)
        field_dtype = _parse_v3_dtype(field_type, url, key, depth + 1)
        if field_dtype.hasobject:
            raise MetadataError(
                f"field {field_name!r} has the variable-length data type {field_type!r}; "
                f"{name!r} fields need a fixed size",
                **ctx,
            )
        out.append((field_name, field_dtype))
    return np.dtype(out)


def _struct_to_json(dtype: np.dtype) -> dict:
    # Every field packed in order, no titles or subarrays: the layout the registry defines.
    fields = []
    offset = 0
    for field_name in dtype.names or ():
        field_dtype, field_offset, *title = dtype.fields[field_name]  # type: ignore[index]
        problem = None
        if title:
            problem = f"field {field_name!r} has a title ({title[0]!r})"
        elif field_dtype.subdtype is not None:
            problem = (
                f"field {field_name!r} is a subarray ({field_dtype}); give each element its own "
                f"field, or write Zarr V2"
            )
        elif field_offset != offset:
            problem = (
                f"field {field_name!r} is not packed right after the previous one (an aligned or "
                f"padded layout); build the dtype without align=True"
            )
        if problem:
            raise UnsupportedError(
                f"numpy dtype {dtype} has no Zarr V3 struct data type: {problem}",
                field="data_type",
            )
        fields.append([field_name, v3_dtype_to_json(field_dtype)])
        offset += field_dtype.itemsize
    if offset != dtype.itemsize:
        raise UnsupportedError(
            f"numpy dtype {dtype} has no Zarr V3 struct data type: {dtype.itemsize - offset} "
            f"padding bytes after the last field",
            field="data_type",
        )
    return {"name": "structured", "configuration": {"fields": fields}}


def v3_dtype_to_json(dtype: np.dtype, *, object_codec: str | None = None) -> Any:
    """The V3 ``data_type`` JSON for a numpy dtype (inverse of :func:`parse_v3_dtype`).

    Structured dtypes are written as ``structured`` with ``[name, data_type]`` fields, the form
    both zarr-python 3.1 (which reads no other) and 3.4 read; ``ml_dtypes`` dtypes by their
    zarr-extensions names.
    """
    if dtype == OBJECT:
        return "variable_length_bytes" if object_codec == "vlen-bytes" else "string"
    ext = extension_name(dtype)
    if ext is not None:
        return ext
    if dtype.fields is not None:
        if dtype.hasobject:
            raise UnsupportedError(
                f"numpy dtype {dtype} has object fields; Zarr V3 struct fields need a fixed size",
                field="data_type",
            )
        return _struct_to_json(dtype)
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
    """The V2 ``dtype`` JSON for a numpy dtype.

    Raises
    ------
    UnsupportedError
        For ``ml_dtypes`` types such as ``bfloat16``: V2 has no name for them (their numpy type
        string is an anonymous ``<V2``), so they are written as Zarr V3 only.
    """
    ext = _contains_extension(dtype)
    if ext is not None:
        raise UnsupportedError(
            f"data type {ext!r} has no Zarr V2 form (it would be stored as anonymous raw "
            f"bytes); write it as Zarr V3",
            field="dtype",
        )
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
_UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


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


def _bits_of(x: Any, dtype: np.dtype) -> int:
    return int(np.array(x, dtype=dtype).view(_UINT_OF_SIZE[dtype.itemsize])[()])


def _from_bits(bits: int, dtype: np.dtype) -> np.generic:
    return np.array(bits, dtype=_UINT_OF_SIZE[dtype.itemsize]).view(dtype)[()]  # type: ignore[return-value]


def _largest_finite(dtype: np.dtype, bits: int) -> float:
    values = np.arange(1 << bits, dtype=np.uint8).view(dtype).astype(np.float64)
    return float(np.max(values[np.isfinite(values)]))


def _extension_float_from_json(
    value: Any, dtype: np.dtype, name: str, bits: int, ctx: dict
) -> np.generic:
    """A fill value of an ``ml_dtypes`` float type, as the core floats write theirs: a number,
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` or the bit pattern as ``"0x..."``."""
    bad = f"invalid fill value {value!r} for data type {name!r}"
    if isinstance(value, str) and value.startswith("0x"):
        try:
            pattern = int(value, 16)
        except ValueError as e:
            raise MetadataError(bad, field="fill_value", **ctx) from e
        if not 0 <= pattern < 1 << bits:
            raise MetadataError(f"{bad}: it does not fit in {bits} bits", field="fill_value", **ctx)
        return _from_bits(pattern, dtype)
    if isinstance(value, str) and value in _SPECIAL_FLOATS:
        wanted = _SPECIAL_FLOATS[value]
        x = dtype.type(wanted)
        got = float(x)
        if not (math.isnan(got) if math.isnan(wanted) else got == wanted):
            raise MetadataError(
                f"{bad}: {name} has no {'NaN' if math.isnan(wanted) else 'infinity'}",
                field="fill_value",
                **ctx,
            )
        return x
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetadataError(bad, field="fill_value", **ctx)
    if name == "float8_e8m0fnu" and value == 0:
        # e8m0 has no zero; tensorstore writes 0.0 for its default fill, the pattern 0x00
        # (2**-127), and reads it back as that pattern.
        return _from_bits(0, dtype)
    try:
        number = float(value)
    except OverflowError as e:
        raise MetadataError(f"{bad}: out of range", field="fill_value", **ctx) from e
    x = dtype.type(number)
    got = float(x)
    # ml_dtypes turns values beyond the range into NaN or infinity, or saturates them.
    if math.isfinite(number) and (
        not math.isfinite(got) or (bits <= 8 and abs(number) > _largest_finite(dtype, bits))
    ):
        raise MetadataError(f"{bad}: out of range", field="fill_value", **ctx)
    return x


def _extension_float_to_json(x: Any, dtype: np.dtype) -> Any:
    got = float(x)
    if math.isnan(got):
        pattern = _bits_of(x, dtype)
        if pattern == _bits_of(dtype.type(math.nan), dtype):
            return "NaN"
        return f"0x{pattern:0{dtype.itemsize * 2}x}"
    if math.isinf(got):
        return "Infinity" if got > 0 else "-Infinity"
    return got


def _extension_fill_from_json(value: Any, dtype: np.dtype, name: str, ctx: dict) -> np.generic:
    ext = EXTENSION_DTYPES[name]
    if ext.family == "complex":
        if not isinstance(value, list) or len(value) != 2:
            raise MetadataError(
                f"a {name} fill value must be [re, im], got {value!r}", field="fill_value", **ctx
            )
        part_name = ext.part or ""
        part = parse_v3_dtype(part_name, **ctx)
        if part_name in EXTENSION_DTYPES:
            re_im = [_extension_float_from_json(v, part, part_name, ext.bits, ctx) for v in value]
        else:
            re_im = [_float_from_json(v, part, "fill_value", ctx) for v in value]
        patterns = [_bits_of(v, part) for v in re_im]
        return np.array(patterns, dtype=_UINT_OF_SIZE[part.itemsize]).view(dtype)[0]
    if ext.family == "float":
        return _extension_float_from_json(value, dtype, name, ext.bits, ctx)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    low, high = (-(1 << (ext.bits - 1)), (1 << (ext.bits - 1)) - 1)
    if ext.family == "uint":
        low, high = 0, (1 << ext.bits) - 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MetadataError(
            f"invalid fill value {value!r} for data type {name!r}: an integer from {low} to {high}",
            field="fill_value",
            **ctx,
        )
    return np.array(value).astype(dtype)[()]


def _extension_fill_to_json(value: Any, dtype: np.dtype, name: str) -> Any:
    ext = EXTENSION_DTYPES[name]
    if ext.family == "complex":
        part_name = ext.part or ""
        part = parse_v3_dtype(part_name)
        re_im = np.array(value, dtype=dtype).reshape(1).view(part)
        if part_name in EXTENSION_DTYPES:
            return [_extension_float_to_json(v, part) for v in re_im]
        return [_float_to_json(v, part) for v in re_im]
    if ext.family == "float":
        return _extension_float_to_json(value, dtype)
    return int(np.array(value, dtype=dtype).astype(np.int64)[()])


def _struct_fill_from_json(value: Any, dtype: np.dtype, ctx: dict) -> np.void:
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
                field="fill_value",
                **ctx,
            )
        for field_name in names:
            field_dtype, offset = little.fields[field_name][:2]  # type: ignore[index]
            try:
                fill = parse_fill_value(value[field_name], field_dtype, zarr_format=3, **ctx)
            except MetadataError as e:
                raise type(e)(
                    f"field {field_name!r}: {e.message}", field="fill_value", **ctx
                ) from e
            packed = np.array(fill, dtype=field_dtype).tobytes()
            raw[offset : offset + field_dtype.itemsize] = packed
    elif isinstance(value, str):
        try:
            decoded = base64.standard_b64decode(value)
        except ValueError as e:
            raise MetadataError(
                f"invalid base64 struct fill value {value!r}", field="fill_value", **ctx
            ) from e
        if len(decoded) != dtype.itemsize:
            raise MetadataError(
                f"a base64 struct fill value must hold {dtype.itemsize} bytes, got {len(decoded)}",
                field="fill_value",
                **ctx,
            )
        raw[:] = decoded
    else:
        raise MetadataError(
            f"a struct fill value must be an object of field values or base64 text, got {value!r}",
            field="fill_value",
            **ctx,
        )
    return np.frombuffer(bytes(raw), dtype=little).astype(dtype)[0]


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
    field = "fill_value"
    if value is None:
        if zarr_format == 3:
            raise MetadataError("fill_value must not be null in Zarr V3", field=field, **ctx)
        return None
    name = extension_name(dtype)
    if name is not None:
        return _extension_fill_from_json(value, dtype, name, ctx)
    if dtype.fields is not None and (zarr_format == 3 or isinstance(value, dict)):
        return _struct_fill_from_json(value, dtype, ctx)
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
    extension = extension_name(dtype) is not None
    if (dtype.kind in "fc" or extension) and out.size:
        # Copying bits through an unsigned view keeps NaN payloads that arithmetic might change.
        scalar = np.array(fill_value, dtype=dtype)
        if (dtype.kind == "f" or extension) and dtype.itemsize in _UINT_OF_SIZE:
            out.view(_UINT_OF_SIZE[dtype.itemsize]).fill(scalar.view(_UINT_OF_SIZE[dtype.itemsize]))
            return
        out[...] = scalar
        return
    out.fill(fill_value)
