"""The zarr-extensions machine-learning data types, as the numpy dtypes of ``ml_dtypes``.

``bfloat16``, the ``float8_*``/``float6_*``/``float4_*`` families, ``int2``, ``int4``, ``uint2``,
``uint4``, ``complex_bfloat16`` and ``complex_float16`` are the dtypes of the optional
``ml_dtypes`` package, imported only when such a type is met.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from xzaro.errors import MetadataError


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
    scalar_type: type[np.generic] | None = vars(module).get(ext.ml_name)
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


def contained_extension(dtype: np.dtype) -> str | None:
    """The zarr-extensions name of an ``ml_dtypes`` dtype in ``dtype`` (itself, a field's or a
    subarray's), else ``None``."""
    if dtype.subdtype is not None:
        return contained_extension(dtype.subdtype[0])
    if dtype.fields is not None:
        return next(
            (n for n in (contained_extension(dtype.fields[f][0]) for f in dtype.names or ()) if n),
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
