"""Bridges over differences between the supported releases of xarray (see pyproject.toml)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Hashable
from typing import Any, Literal, cast


@functools.cache
def xarray_encodes_per_zarr_format() -> bool:
    """Whether xarray's zarr encoding takes ``zarr_format`` (xarray >= 2026.9).

    Those releases store booleans as Zarr ``bool`` and, for Zarr V2, numpy ``StringDType`` as
    fixed-width unicode; older ones store booleans as int8 with a ``dtype: "bool"`` attribute
    (which their decoding cannot load asynchronously) and ``StringDType`` as it is.
    """
    from xarray.backends.zarr import encode_zarr_variable

    return "zarr_format" in inspect.signature(encode_zarr_variable).parameters


def encode_zarr_variable(var: Any, name: Hashable, zarr_format: int) -> Any:
    """CF-encode one variable for Zarr exactly as the installed xarray's ``to_zarr`` does."""
    from xarray.backends import zarr

    if xarray_encodes_per_zarr_format():
        return zarr.encode_zarr_variable(
            var, name=name, zarr_format=cast(Literal[2, 3], zarr_format)
        )
    return zarr.encode_zarr_variable(var, name=name)
