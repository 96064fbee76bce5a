"""The data-type table: Zarr V3 ``data_type`` names and V2 numpy type strings, both ways.

V3 names (``"float32"``, ``"r16"``, ``{"name": "numpy.datetime64", ...}``) and V2 numpy type
strings (``"<f4"``, ``">i2"``, ``"|S8"``) both resolve to a numpy dtype here, and back. Besides the
core types this covers the zarr-extensions registry's ``struct`` (and the legacy ``structured``
that zarr-python 3.1 writes) as numpy structured dtypes, and its machine-learning types (see
:mod:`xzaro.dtypes.extensions`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xzaro.dtypes.extensions import (
    EXTENSION_DTYPES,
    contained_extension,
    extension_dtype,
    extension_name,
)
from xzaro.errors import MetadataError, UnsupportedError, ZaroError, brief

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


#: The largest element a data type may have. numpy allows 2 GiB, but a fill value of that size
#: is built when the metadata is read, and no Zarr writer makes elements of even a megabyte.
MAX_ITEMSIZE = 2**24


def parse_v3_dtype(doc: Any, *, url: str | None = None, key: str | None = None) -> np.dtype:
    """Resolve a V3 ``data_type`` (a name or a ``{"name", "configuration"}`` object) to numpy."""
    try:
        dtype = _parse_v3_dtype(doc, url, key, 0)
    except ZaroError:
        raise
    except (TypeError, ValueError, OverflowError) as e:  # numpy refusing what was built
        raise MetadataError(
            f"invalid data_type {brief(doc)}: {e}", url=url, key=key, field="data_type"
        ) from e
    return _checked_size(dtype, "data_type", url, key)


def _checked_size(dtype: np.dtype, field: str, url: str | None, key: str | None) -> np.dtype:
    if dtype.itemsize > MAX_ITEMSIZE:
        raise UnsupportedError(
            f"data type {dtype} has elements of {dtype.itemsize} bytes; xzaro reads elements "
            f"of up to {MAX_ITEMSIZE} bytes",
            url=url,
            key=key,
            field=field,
        )
    return dtype


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
    if name in ("raw_bytes", "null_terminated_bytes", "fixed_length_utf32"):
        # a positive number of bytes; of whole UTF-32 code points for strings (a shorter
        # length would read every string cut)
        per = 4 if name == "fixed_length_utf32" else 1
        if type(length) is not int or length < per or length % per:
            raise MetadataError(
                f"{name} length_bytes must be a positive multiple of {per}, got {brief(length)}",
                url=url,
                key=key,
                field="data_type",
            )
        kind = {"raw_bytes": "V", "null_terminated_bytes": "S", "fixed_length_utf32": "<U"}
        return np.dtype(f"{kind[name]}{length // per}")
    if name in ("numpy.datetime64", "numpy.timedelta64"):
        unit = config.get("unit", "generic")
        scale = config.get("scale_factor", 1)
        code = "M8" if name == "numpy.datetime64" else "m8"
        # a generic unit holds no value but NaT, and a scale must count whole units
        if unit == "generic" or not isinstance(unit, str) or type(scale) is not int or scale < 1:
            raise MetadataError(
                f"invalid {name} configuration {brief(config)}: the unit must be a time unit "
                "and the scale_factor a positive integer",
                url=url,
                key=key,
                field="data_type",
            )
        unit_str = unit if scale == 1 else f"{scale}{unit}"
        try:
            return np.dtype(f"<{code}[{unit_str}]")
        except TypeError as e:
            raise MetadataError(
                f"invalid {name} configuration {config!r}", url=url, key=key, field="data_type"
            ) from e
    raise UnsupportedError(f"unknown data type {doc!r}", url=url, key=key, field="data_type")


def _parse_struct(
    name: str, config: dict[str, Any], url: str | None, key: str | None, depth: int
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


def _struct_to_json(dtype: np.dtype) -> dict[str, Any]:
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
            dtype = np.dtype(doc)
        elif isinstance(doc, list):
            dtype = np.dtype([tuple(_v2_field(f)) for f in doc])
        else:
            raise MetadataError(f"invalid dtype {brief(doc)}", url=url, key=key, field="dtype")
    except ZaroError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise MetadataError(
            f"invalid dtype {brief(doc)}: {e}", url=url, key=key, field="dtype"
        ) from e
    if dtype.subdtype is not None:  # "(2,)i4": numpy would add dimensions to every array
        raise MetadataError(
            f"invalid dtype {brief(doc)}: a subarray type is only a field of a structured type",
            url=url,
            key=key,
            field="dtype",
        )
    return _checked_size(dtype, "dtype", url, key)


def _v2_field(field: list[Any]) -> list[Any]:
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
    ext = contained_extension(dtype)
    if ext is not None:
        raise UnsupportedError(
            f"data type {ext!r} has no Zarr V2 form (it would be stored as anonymous raw "
            f"bytes); write it as Zarr V3",
            field="dtype",
        )
    if dtype.fields is not None:
        return [list(t) for t in dtype.descr]
    return dtype.str


def _name_and_config(
    doc: Any, field: str, *, url: str | None, key: str | None
) -> tuple[str, dict[str, Any]]:
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
