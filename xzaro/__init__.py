"""xzaro: fast, dependable Zarr V2 and V3 for xarray and Dask, implemented from the specs."""

from __future__ import annotations

from xzaro.array import ZaroArray
from xzaro.backends.multiscale import open_multiscale
from xzaro.errors import (
    ChecksumError,
    DecodeError,
    IncompleteAnswerError,
    MetadataError,
    NodeExistsError,
    NodeNotFoundError,
    StoreError,
    UnsafeCodecError,
    UnsupportedError,
    ZaroError,
)
from xzaro.hierarchy import ZaroGroup, open_array, open_group
from xzaro.meta import GroupMeta, ZaroMeta
from xzaro.stores import (
    NetworkOptions,
    network_options,
    normalize_url,
    open_store,
    set_network_options,
)
from xzaro.writers import BloscCompressionParams, ChunkWriter, ShardWriter, Writer
from xzaro.writers.accessor import register as _register_accessors
from xzaro.writers.pyramid import Multiscale

__version__ = "0.1.0"

_register_accessors()


def __getattr__(name: str) -> object:
    if name == "open_mfdataset":  # imports xarray's backends, so only when asked for
        from xzaro.backends.xarray import open_mfdataset

        return open_mfdataset
    raise AttributeError(f"module 'xzaro' has no attribute {name!r}")


__all__ = [
    "BloscCompressionParams",
    "ChecksumError",
    "ChunkWriter",
    "DecodeError",
    "GroupMeta",
    "IncompleteAnswerError",
    "MetadataError",
    "Multiscale",
    "NetworkOptions",
    "NodeExistsError",
    "NodeNotFoundError",
    "ShardWriter",
    "StoreError",
    "UnsafeCodecError",
    "UnsupportedError",
    "Writer",
    "ZaroArray",
    "ZaroError",
    "ZaroGroup",
    "ZaroMeta",
    "network_options",
    "normalize_url",
    "open_array",
    "open_group",
    "open_mfdataset",
    "open_multiscale",
    "open_store",
    "set_network_options",
]
