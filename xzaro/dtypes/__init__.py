"""Data types and fill values: the one table mapping Zarr data types to numpy, in both formats.

:mod:`~xzaro.dtypes.table` resolves V3 ``data_type`` names and V2 numpy type strings (and emits
them), :mod:`~xzaro.dtypes.extensions` the ``ml_dtypes`` types of the zarr-extensions registry,
:mod:`~xzaro.dtypes.fill_value` parses and emits fill values bit-exactly and
:mod:`~xzaro.dtypes.fill_chunk` makes and recognises chunks of the fill value.
"""

from __future__ import annotations

from xzaro.dtypes.extensions import (
    EXTENSION_DTYPES,
    ExtensionType,
    extension_dtype,
    extension_name,
    swaps_exactly,
)
from xzaro.dtypes.fill_chunk import fill_array, fill_into, filler, is_fill
from xzaro.dtypes.fill_value import default_fill_value, fill_value_to_json, parse_fill_value
from xzaro.dtypes.table import (
    MAX_STRUCT_DEPTH,
    OBJECT,
    STRUCT_NAMES,
    V3_ALIASES,
    V3_CORE_DTYPES,
    V3_VLEN_DTYPES,
    parse_v2_dtype,
    parse_v3_dtype,
    v2_dtype_to_json,
    v3_dtype_to_json,
)

__all__ = [
    "EXTENSION_DTYPES",
    "MAX_STRUCT_DEPTH",
    "OBJECT",
    "STRUCT_NAMES",
    "V3_ALIASES",
    "V3_CORE_DTYPES",
    "V3_VLEN_DTYPES",
    "ExtensionType",
    "default_fill_value",
    "extension_dtype",
    "extension_name",
    "fill_array",
    "fill_into",
    "fill_value_to_json",
    "filler",
    "is_fill",
    "parse_fill_value",
    "parse_v2_dtype",
    "parse_v3_dtype",
    "swaps_exactly",
    "v2_dtype_to_json",
    "v3_dtype_to_json",
]
