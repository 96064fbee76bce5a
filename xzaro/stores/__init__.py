"""Stores: byte access to where Zarr data lives (local files, memory, object stores, HTTP)."""

from __future__ import annotations

from xzaro.stores.base import RangeRequest, Store
from xzaro.stores.fsspec_store import FsspecStore
from xzaro.stores.memory import MemoryStore
from xzaro.stores.registry import open_store

__all__ = ["FsspecStore", "MemoryStore", "RangeRequest", "Store", "open_store"]
