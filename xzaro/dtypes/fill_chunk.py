"""Chunks of the fill value: making one bit-exactly, and telling whether a chunk is one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xzaro.dtypes.extensions import extension_name
from xzaro.dtypes.fill_value import default_fill_value
from xzaro.dtypes.floats import UINT_OF_SIZE
from xzaro.dtypes.table import OBJECT

#: Elements compared per step when checking a chunk against a non-zero fill value.
_FILL_STEP = 1 << 18


def fill_array(shape: tuple[int, ...], dtype: np.dtype, fill_value: Any) -> np.ndarray:
    """A new array of ``shape`` filled with ``fill_value``, bit-exactly (NaN payloads kept)."""
    out = np.empty(shape, dtype=dtype)
    fill_into(out, fill_value)
    return out


def fill_into(out: np.ndarray, fill_value: Any) -> None:
    """Fill ``out`` with ``fill_value`` in place, bit-exactly."""
    filler(out.dtype, fill_value)(out)


def filler(dtype: np.dtype, fill_value: Any) -> Callable[[np.ndarray], None]:
    """A function filling an array of ``dtype`` with ``fill_value`` in place, bit-exactly:
    :func:`fill_into` with the per-dtype decisions taken once, for reads that fill many
    chunks."""
    if dtype == OBJECT:
        value = "" if fill_value is None else fill_value
        return lambda out: out.fill(value)
    if fill_value is None:
        fill_value = default_fill_value(dtype)
    extension = extension_name(dtype) is not None
    if dtype.kind in "fc" or extension:
        # Copying bits through an unsigned view keeps NaN payloads that arithmetic might change.
        scalar = np.array(fill_value, dtype=dtype)
        uint = UINT_OF_SIZE.get(dtype.itemsize)
        if (dtype.kind == "f" or extension) and uint is not None:
            bits = scalar.view(uint)[()]
            return lambda out: out.view(uint).fill(bits)

        def assign(out: np.ndarray) -> None:
            out[...] = scalar

        return assign
    return lambda out: out.fill(fill_value)


def is_fill(chunk: np.ndarray, fill: np.ndarray) -> bool:
    """Whether every element of ``chunk`` equals ``fill`` (a 0-d array of the same dtype) bit
    for bit (NaN == NaN), without materialising a fill chunk.

    The first element decides most chunks that hold data at once.
    """
    if chunk.dtype.hasobject:
        return bool(np.all(chunk == fill[()]))
    if chunk.size == 0:
        return True
    view = UINT_OF_SIZE.get(chunk.dtype.itemsize)
    if view is None or chunk.dtype != fill.dtype:
        return chunk.tobytes() == fill.tobytes() * chunk.size
    bits = chunk.view(view)
    value = fill.view(view)[()]
    if bits.flat[0] != value:
        return False
    if not bits.flags.c_contiguous:
        return bool(np.all(bits == value))
    flat = bits.reshape(-1)
    if value == 0:  # zeros at any width: compared eight bytes at a time
        wide = flat.view(np.uint64) if flat.nbytes % 8 == 0 else flat
        step = _FILL_STEP * flat.itemsize // wide.itemsize
        return not any(wide[i : i + step].any() for i in range(0, wide.size, step))
    return all(
        bool(np.all(flat[i : i + _FILL_STEP] == value)) for i in range(0, flat.size, _FILL_STEP)
    )
