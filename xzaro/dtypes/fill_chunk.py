"""Chunks of the fill value: making one bit-exactly, and telling whether a chunk is one."""

from __future__ import annotations

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
        if (dtype.kind == "f" or extension) and dtype.itemsize in UINT_OF_SIZE:
            out.view(UINT_OF_SIZE[dtype.itemsize]).fill(scalar.view(UINT_OF_SIZE[dtype.itemsize]))
            return
        out[...] = scalar
        return
    out.fill(fill_value)


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
    if value == 0:
        return not bits.any()
    if not bits.flags.c_contiguous:
        return bool(np.all(bits == value))
    flat = bits.reshape(-1)
    return all(
        bool(np.all(flat[i : i + _FILL_STEP] == value)) for i in range(0, flat.size, _FILL_STEP)
    )
