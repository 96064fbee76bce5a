"""xzaro: fast, dependable Zarr V2 and V3 for xarray and Dask, implemented from the specs."""

from __future__ import annotations

from xzaro.array import ZaroArray
from xzaro.errors import (
    ChecksumError,
    DecodeError,
    MetadataError,
    NodeNotFoundError,
    StoreError,
    UnsafeCodecError,
    UnsupportedError,
    ZaroError,
)
from xzaro.hierarchy import ZaroGroup, open_array, open_group
from xzaro.meta import GroupMeta, ZaroMeta
from xzaro.stores import open_store

__version__ = "0.1.0"

__all__ = [
    "ChecksumError",
    "DecodeError",
    "GroupMeta",
    "MetadataError",
    "NodeNotFoundError",
    "StoreError",
    "UnsafeCodecError",
    "UnsupportedError",
    "ZaroArray",
    "ZaroError",
    "ZaroGroup",
    "ZaroMeta",
    "open_array",
    "open_group",
    "open_store",
]
