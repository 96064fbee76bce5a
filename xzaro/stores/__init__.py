"""Stores: byte access to where Zarr data lives (local files, memory, object stores, HTTP).

:mod:`~xzaro.stores.base` declares the :class:`Store` protocol and the capabilities a store may
add (:class:`SupportsListDir`, :class:`SupportsLocalReads`, :class:`SupportsLocalFiles`);
:func:`open_store` (:mod:`~xzaro.stores.registry`) picks the store for a URL:
:class:`LocalStore`, :class:`FsspecStore`, :class:`MemoryStore` or a reference store
(:mod:`xzaro.stores.references`).
"""

from __future__ import annotations

from xzaro.stores.base import (
    RangeRequest,
    Store,
    SupportsListDir,
    SupportsLocalFiles,
    SupportsLocalReads,
)
from xzaro.stores.fsspec_store import FsspecStore
from xzaro.stores.local import LocalStore
from xzaro.stores.memory import MemoryStore
from xzaro.stores.registry import open_store

__all__ = [
    "FsspecStore",
    "LocalStore",
    "MemoryStore",
    "RangeRequest",
    "Store",
    "SupportsListDir",
    "SupportsLocalFiles",
    "SupportsLocalReads",
    "open_store",
]
