"""xzaro: fast, dependable Zarr V2 and V3 for xarray and Dask, implemented from the specs.

Importing the package is cheap: each public name is imported from its module the first time it
is used (``xzaro.open_array``, ``from xzaro import open_array``), and the ``.zaro`` accessors are
registered with xarray as soon as xarray is imported (see :mod:`xzaro.accessors`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xzaro.accessors import register_when_xarray_is_imported
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

if TYPE_CHECKING:
    from xzaro.array import ZaroArray
    from xzaro.backends.multiscale import open_multiscale
    from xzaro.backends.xarray import open_mfdataset
    from xzaro.hierarchy import ZaroGroup, open_array, open_group
    from xzaro.log import enable_verbose
    from xzaro.meta import GroupMeta, ZaroMeta
    from xzaro.stores import (
        NetworkOptions,
        network_options,
        normalize_url,
        open_store,
        set_network_options,
    )
    from xzaro.writers import BloscCompressionParams, ChunkWriter, ShardWriter, Writer
    from xzaro.writers.pyramid import Multiscale

__version__ = "0.1.0"

# public name -> the module it is imported from when first used
LAZY_NAMES = {
    "ZaroArray": "xzaro.array",
    "open_multiscale": "xzaro.backends.multiscale",
    "open_mfdataset": "xzaro.backends.xarray",
    "ZaroGroup": "xzaro.hierarchy",
    "open_array": "xzaro.hierarchy",
    "open_group": "xzaro.hierarchy",
    "enable_verbose": "xzaro.log",
    "GroupMeta": "xzaro.meta",
    "ZaroMeta": "xzaro.meta",
    "NetworkOptions": "xzaro.stores",
    "network_options": "xzaro.stores",
    "normalize_url": "xzaro.stores",
    "open_store": "xzaro.stores",
    "set_network_options": "xzaro.stores",
    "BloscCompressionParams": "xzaro.writers",
    "ChunkWriter": "xzaro.writers",
    "ShardWriter": "xzaro.writers",
    "Writer": "xzaro.writers",
    "Multiscale": "xzaro.writers.pyramid",
}


def __getattr__(name: str) -> Any:
    """A public name (imported from its module on first use), or a sub-module of the package
    (``xzaro.stores`` after a bare ``import xzaro``)."""
    if name in LAZY_NAMES:
        value = getattr(importlib.import_module(LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


register_when_xarray_is_imported()

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
    "enable_verbose",
    "network_options",
    "normalize_url",
    "open_array",
    "open_group",
    "open_mfdataset",
    "open_multiscale",
    "open_store",
    "set_network_options",
]
