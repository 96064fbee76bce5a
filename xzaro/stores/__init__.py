"""Stores: byte access to where Zarr data lives (local files, memory, object stores, HTTP).

:mod:`~xzaro.stores.base` declares the :class:`Store` protocol and the capabilities a store may
add (:class:`SupportsListDir`, :class:`SupportsLocalReads`, :class:`SupportsLocalFiles`);
:func:`open_store` (:mod:`~xzaro.stores.registry`) picks the store for a URL:
:class:`LocalStore`, :class:`FsspecStore`, :class:`MemoryStore` or a reference store
(:mod:`xzaro.stores.references`). :mod:`~xzaro.stores.network` holds the retries, timeouts and
the limit of requests in flight of network stores; :mod:`~xzaro.stores.urls` reads pasted URLs.
"""

from __future__ import annotations

from xzaro.stores.base import (
    RangeRequest,
    Store,
    SupportsListDir,
    SupportsLocalFiles,
    SupportsLocalReads,
    SupportsTransactions,
)
from xzaro.stores.fsspec_store import FsspecStore
from xzaro.stores.icechunk import IcechunkStore, open_icechunk
from xzaro.stores.local import LocalStore
from xzaro.stores.memory import MemoryStore
from xzaro.stores.network import (
    NetworkOptions,
    RequestStats,
    network_options,
    request_stats,
    reset_request_stats,
    set_network_options,
)
from xzaro.stores.registry import open_store
from xzaro.stores.urls import normalize_url

__all__ = [
    "FsspecStore",
    "IcechunkStore",
    "LocalStore",
    "MemoryStore",
    "NetworkOptions",
    "RangeRequest",
    "RequestStats",
    "Store",
    "SupportsListDir",
    "SupportsLocalFiles",
    "SupportsLocalReads",
    "SupportsTransactions",
    "network_options",
    "normalize_url",
    "open_icechunk",
    "open_store",
    "request_stats",
    "reset_request_stats",
    "set_network_options",
]
