"""``xzaro.acquire``: acquire-zarr 0.10's Python API over xzaro's streaming writer.

A script written for acquire-zarr runs with ``import xzaro.acquire as aqz`` (or ``from
xzaro.acquire import ...``) in place of ``acquire_zarr``::

    settings = StreamSettings(
        store_path="out.zarr",
        arrays=[ArraySettings(dimensions=[...], data_type=DataType.UINT16)],  # slowest first
    )
    stream = ZarrStream(settings)
    stream.append(frames)
    stream.close()

The Acquire storage device (``ZarrV2``/``ZarrV3`` with ``StorageProperties``, dimensions
fastest first) stays in :mod:`xzaro.streaming`.
"""

from __future__ import annotations

from xzaro.errors import StreamingError
from xzaro.writers.streaming.settings import (
    Acquisition,
    ArraySettings,
    CompressionCodec,
    CompressionSettings,
    Compressor,
    DataType,
    Dimension,
    DimensionType,
    DownsamplingMethod,
    FieldOfView,
    LogLevel,
    Plate,
    S3Settings,
    Well,
    ZarrVersion,
    get_log_level,
    set_log_level,
)
from xzaro.writers.streaming.stream import StreamSettings, ZarrStream

__all__ = [
    "Acquisition",
    "ArraySettings",
    "CompressionCodec",
    "CompressionSettings",
    "Compressor",
    "DataType",
    "Dimension",
    "DimensionType",
    "DownsamplingMethod",
    "FieldOfView",
    "LogLevel",
    "Plate",
    "S3Settings",
    "StreamSettings",
    "StreamingError",
    "Well",
    "ZarrStream",
    "ZarrVersion",
    "get_log_level",
    "set_log_level",
]
