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

Where the output or the behaviour differs from acquire-zarr 0.10 (compared in
``tests/writers/test_acquire_facade.py``):

* integer means of pyramid levels are rounded (acquire-zarr truncates), so level ``k`` may differ
  by up to ``k``; the OME ``type`` is ``mean``/``decimate``/``min``/``max`` (acquire-zarr:
  ``local_mean``/``decimate``/``local_min``/``local_max``);
* refused where acquire-zarr goes on: data of another dtype than the array's (acquire-zarr
  reinterprets its bytes), partial frames, ``overwrite=False`` on a store path holding data
  (acquire-zarr writes over it), a non-default ``storage_dimension_order``; dimensions given
  fastest first get an error saying the order is slowest first;
* ``max_threads`` is checked but the writer sizes its own pools; ``get_array_keys()`` keeps the
  order given; ``ZarrStream.skip()`` is not provided;
* in addition: Zarr V2 output (``version=ZarrVersion.V2``, no plates) and ``ZarrStream`` as a
  context manager.
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
