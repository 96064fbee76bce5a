"""Floating-point values as JSON, bit for bit: numbers, ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
and hex bit patterns (``"0x7fc00001"``) that keep NaN payloads, for the core floats and the
``ml_dtypes`` floats alike."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from xzaro.errors import MetadataError

_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: The unsigned integer type of each element size, to copy and compare values bit for bit.
UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")


def float_from_json(
    value: Any, dtype: np.dtype[np.generic], field: str, ctx: dict[str, Any]
) -> np.generic:
    """A JSON float of a core float ``dtype`` (``ctx`` holds the ``url`` and ``key`` errors
    name)."""
    if isinstance(value, str) and value.startswith("0x"):
        size = dtype.itemsize
        # the bit pattern in full: a shorter string could mean a narrower float's bits
        # (zarr-python reads "0x7fc00000" on a float64 as NaN) or the same bits zero-extended
        digits = value[2:]
        if size not in UINT_OF_SIZE or len(digits) != 2 * size or not _HEX_DIGITS.fullmatch(digits):
            raise MetadataError(
                f"invalid hex fill value {value!r} for {dtype}: it must be '0x' and the "
                f"{2 * size} hex digits of its bit pattern",
                field=field,
                **ctx,
            )
        bits_array = np.array(int(value, 16), dtype=UINT_OF_SIZE[size])
        return bits_array.view(dtype.newbyteorder("=")).reshape(())[()]  # type: ignore[return-value]
    if isinstance(value, str) and value in _SPECIAL_FLOATS:
        return dtype.type(_SPECIAL_FLOATS[value])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetadataError(f"invalid fill value {value!r} for {dtype}", field=field, **ctx)
    return dtype.type(value)


def bits_of(x: Any, dtype: np.dtype) -> int:
    """The bit pattern of ``x`` as a ``dtype`` value."""
    return int(np.array(x, dtype=dtype).view(UINT_OF_SIZE[dtype.itemsize])[()])


def from_bits(bits: int, dtype: np.dtype) -> np.generic:
    """The ``dtype`` value of a bit pattern."""
    return np.array(bits, dtype=UINT_OF_SIZE[dtype.itemsize]).view(dtype)[()]  # type: ignore[return-value]


def _largest_finite(dtype: np.dtype, bits: int) -> float:
    values = np.arange(1 << bits, dtype=np.uint8).view(dtype).astype(np.float64)
    return float(np.max(values[np.isfinite(values)]))


def extension_float_from_json(
    value: Any, dtype: np.dtype[np.generic], name: str, bits: int, ctx: dict[str, Any]
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
        return from_bits(pattern, dtype)
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
        return from_bits(0, dtype)
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


def extension_float_to_json(x: Any, dtype: np.dtype) -> Any:
    """The JSON of an ``ml_dtypes`` float (inverse of :func:`extension_float_from_json`)."""
    got = float(x)
    if math.isnan(got):
        pattern = bits_of(x, dtype)
        if pattern == bits_of(dtype.type(math.nan), dtype):
            return "NaN"
        return f"0x{pattern:0{dtype.itemsize * 2}x}"
    if math.isinf(got):
        return "Infinity" if got > 0 else "-Infinity"
    return got


def float_to_json(x: Any, dtype: np.dtype) -> Any:
    """The JSON of a core float (inverse of :func:`float_from_json`)."""
    x = dtype.type(x)
    if np.isnan(x):
        bits = int(np.array(x, dtype=dtype).view(UINT_OF_SIZE[dtype.itemsize])[()])
        canonical = int(np.array(np.nan, dtype=dtype).view(UINT_OF_SIZE[dtype.itemsize])[()])
        if bits == canonical:
            return "NaN"
        return f"0x{bits:0{dtype.itemsize * 2}x}"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return float(x)
