"""``xzaro.streaming``: the public path of the streaming device, kept for users' imports.

The device lives in :mod:`xzaro.writers.streaming` (it is a writer); this module re-exports its
public names so that ``from xzaro.streaming import ZarrV3`` works as it always has.
acquire-zarr 0.10's API (``StreamSettings``, ``ZarrStream``) over the same device is
:mod:`xzaro.acquire`.
"""

from __future__ import annotations

from xzaro.errors import StreamingError
from xzaro.writers.streaming.device import StorageInterface, Zarr, ZarrV2, ZarrV3
from xzaro.writers.streaming.properties import (
    Dimension,
    DimensionKind,
    StorageCapabilities,
    StorageProperties,
)

__all__ = [
    "Dimension",
    "DimensionKind",
    "StorageCapabilities",
    "StorageInterface",
    "StorageProperties",
    "StreamingError",
    "Zarr",
    "ZarrV2",
    "ZarrV3",
]
