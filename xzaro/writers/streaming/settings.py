"""acquire-zarr 0.10's settings, by the same names: what :class:`~.stream.ZarrStream` streams.

Enumerations keep acquire-zarr's member names and values; settings are keyword-only
dataclasses with acquire-zarr's field names and defaults. Dimensions are listed slowest first
(the append dimension, then …, y, x), as acquire-zarr takes them; :func:`device_dimensions`
turns them into the streaming device's fastest-first :class:`~.properties.Dimension` list.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xzaro.errors import StreamingError
from xzaro.log import logger
from xzaro.writers.compression import BloscCompressionParams
from xzaro.writers.streaming import properties


class DimensionType(enum.IntEnum):
    """What a dimension measures."""

    SPACE = 0
    CHANNEL = 1
    TIME = 2
    OTHER = 3


class DataType(enum.IntEnum):
    """Pixel types (see :func:`numpy_dtype`)."""

    UINT8 = 0
    UINT16 = 1
    UINT32 = 2
    UINT64 = 3
    INT8 = 4
    INT16 = 5
    INT32 = 6
    INT64 = 7
    FLOAT32 = 8
    FLOAT64 = 9


class Compressor(enum.IntEnum):
    """The compressor: none, or Blosc."""

    NONE = 0
    BLOSC1 = 1


class CompressionCodec(enum.IntEnum):
    """The codec inside the compressor."""

    NONE = 0
    BLOSC_LZ4 = 1
    BLOSC_ZSTD = 2


class DownsamplingMethod(enum.IntEnum):
    """How each pyramid level is made from the one below; no pyramid is ``None``."""

    DECIMATE = 1
    MEAN = 2
    MIN = 3
    MAX = 4


class ZarrVersion(enum.IntEnum):
    """The Zarr format written (acquire-zarr 0.10 writes V3 only; V2 is xzaro's)."""

    V2 = 2
    V3 = 3


class LogLevel(enum.IntEnum):
    """Severity of the messages kept (:func:`set_log_level`)."""

    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3
    NONE = 4


_LOGGING_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.NONE: logging.CRITICAL + 1,
}


def set_log_level(level: LogLevel) -> None:
    """Keep the ``xzaro`` logger's messages of ``level`` and above (``NONE``: none)."""
    logger.setLevel(_LOGGING_LEVELS[LogLevel(level)])


def get_log_level() -> LogLevel:
    """The level :func:`set_log_level` set (``WARNING`` until then)."""
    current = logger.level or logging.WARNING
    return max((k for k, v in _LOGGING_LEVELS.items() if v <= current), default=LogLevel.DEBUG)


#: Each method's name in :data:`~xzaro.writers.coarsen.COARSENINGS`.
METHOD_NAMES = {
    DownsamplingMethod.DECIMATE: "decimate",
    DownsamplingMethod.MEAN: "mean",
    DownsamplingMethod.MIN: "min",
    DownsamplingMethod.MAX: "max",
}
_CNAMES = {CompressionCodec.BLOSC_LZ4: "lz4", CompressionCodec.BLOSC_ZSTD: "zstd"}
_SHUFFLES = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}


@dataclass(kw_only=True)
class Dimension:
    """One dimension of an array (listed slowest first in :class:`ArraySettings`).

    Parameters
    ----------
    name
        Unique, non-empty.
    kind
        A :class:`DimensionType`.
    unit, scale
        The OME-NGFF axis unit (or ``None``) and the size of one step at level 0.
    array_size_px
        Size; 0 (unbounded) for the first (append) dimension, or a bound on it.
    chunk_size_px
        Chunk size (> 0).
    shard_size_chunks
        Chunks per shard (> 0 for Zarr V3).
    """

    name: str = ""
    kind: DimensionType = DimensionType.SPACE
    unit: str | None = None
    scale: float = 1.0
    array_size_px: int = 0
    chunk_size_px: int = 0
    shard_size_chunks: int = 0


@dataclass(kw_only=True)
class CompressionSettings:
    """Blosc compression of the chunks (``compressor=Compressor.NONE``: none).

    ``shuffle`` is 0 (none), 1 (bytes) or 2 (bits).
    """

    compressor: Compressor = Compressor.NONE
    codec: CompressionCodec = CompressionCodec.NONE
    level: int = 1
    shuffle: int = 0


@dataclass(kw_only=True)
class ArraySettings:
    """One array of a stream.

    Parameters
    ----------
    output_key
        Where the array (or its OME-NGFF group) goes below the store path; ``""`` or ``None``:
        the store path itself. ``None`` for an array of a :class:`FieldOfView`.
    compression
        :class:`CompressionSettings`, or ``None`` for raw chunks.
    dimensions
        Slowest first: the append dimension, …, y, x.
    data_type
        A :class:`DataType` or anything :class:`numpy.dtype` takes.
    downsampling_method
        A :class:`DownsamplingMethod` for an OME-NGFF pyramid, or ``None`` for no pyramid.
    max_levels
        At most this many levels above level 0 (0: until a level fits in one chunk).
    storage_dimension_order
        Only the dimensions' own order (or empty) is supported.
    is_ngff
        Wrap the array in an OME-NGFF group (forced by a ``downsampling_method``).
    """

    output_key: str | None = ""
    compression: CompressionSettings | None = None
    dimensions: list[Dimension] = field(default_factory=list)
    data_type: Any = DataType.UINT8
    downsampling_method: DownsamplingMethod | None = None
    max_levels: int = 0
    storage_dimension_order: list[str] = field(default_factory=list)
    is_ngff: bool = False


@dataclass(kw_only=True)
class S3Settings:
    """An S3 bucket (credentials come from the environment, as with fsspec)."""

    endpoint: str = ""
    bucket_name: str = ""
    region: str | None = None


@dataclass(kw_only=True)
class Acquisition:
    """One acquisition of an HCS plate (times in milliseconds since the epoch)."""

    id: int = 0
    name: str | None = None
    description: str | None = None
    start_time: int | None = None
    end_time: int | None = None


@dataclass(kw_only=True)
class FieldOfView:
    """One image of a well: an array stored at ``path`` below the well."""

    path: str = ""
    acquisition_id: int | None = None
    array_settings: ArraySettings | None = None


@dataclass(kw_only=True)
class Well:
    """One well of a plate: its row and column names and its images."""

    row_name: str = ""
    column_name: str = ""
    images: list[FieldOfView] = field(default_factory=list)


@dataclass(kw_only=True)
class Plate:
    """An HCS plate stored at ``path`` below the store path."""

    path: str = ""
    name: str = ""
    row_names: list[str] = field(default_factory=list)
    column_names: list[str] = field(default_factory=list)
    wells: list[Well] = field(default_factory=list)
    acquisitions: list[Acquisition] = field(default_factory=list)


def numpy_dtype(data_type: Any) -> np.dtype:
    """The numpy type of a :class:`DataType` or anything :class:`numpy.dtype` takes.

    Raises
    ------
    StreamingError
        For a type acquire-zarr does not stream.
    """
    if isinstance(data_type, DataType):
        return np.dtype(data_type.name.lower())
    try:
        dtype = np.dtype(data_type)
    except TypeError:
        raise StreamingError(f"data_type: not a pixel type: {data_type!r}") from None
    if dtype.kind not in "iuf" or (dtype.itemsize == 2 and dtype.kind == "f"):
        raise StreamingError(f"data_type: {dtype} is not one of {[t.name for t in DataType]}")
    return dtype.newbyteorder("=")


def blosc_params(compression: CompressionSettings | None) -> BloscCompressionParams | None:
    """The device's Blosc settings for acquire-zarr's, ``None`` for no compression.

    Raises
    ------
    StreamingError
        For a codec without a compressor (or the reverse), a bad level or shuffle.
    """
    if compression is None or Compressor(compression.compressor) is Compressor.NONE:
        if compression is not None and compression.codec != CompressionCodec.NONE:
            raise StreamingError("compression: a codec needs compressor=Compressor.BLOSC1")
        return None
    codec = CompressionCodec(compression.codec)
    if codec is CompressionCodec.NONE:
        raise StreamingError("compression: Compressor.BLOSC1 needs a codec (BLOSC_LZ4, BLOSC_ZSTD)")
    if compression.shuffle not in _SHUFFLES:
        raise StreamingError(f"compression: shuffle must be 0, 1 or 2, got {compression.shuffle}")
    try:
        return BloscCompressionParams(
            _CNAMES[codec], int(compression.level), _SHUFFLES[compression.shuffle]
        )
    except ValueError as e:
        raise StreamingError(f"compression: {e}") from None


def device_dimensions(array: ArraySettings, zarr_format: int) -> list[properties.Dimension]:
    """The device's dimensions (fastest first, the append one of size 0) of an array whose
    dimensions acquire-zarr lists slowest first.

    Raises
    ------
    StreamingError
        When they look listed fastest first, or a dimension is invalid.
    """
    dims = list(array.dimensions)
    names = [d.name for d in dims]
    if len(dims) >= 3 and dims[-1].array_size_px == 0 and dims[0].array_size_px != 0:
        raise StreamingError(
            f"dimensions {names} look listed fastest first: list them slowest first, the "
            "append dimension (array_size_px 0) first and x last"
        )
    order = list(array.storage_dimension_order)
    if order and order != names:
        raise StreamingError(
            f"storage_dimension_order {order}: only the dimensions' own order {names} is supported"
        )
    out = []
    for i, d in enumerate(reversed(dims)):
        if zarr_format == 3 and d.shard_size_chunks <= 0:
            raise StreamingError(f"dimension {d.name!r}: shard_size_chunks must be positive")
        if d.kind not in tuple(DimensionType):
            raise StreamingError(f"dimension {d.name!r}: kind must be a DimensionType")
        out.append(
            properties.Dimension(
                d.name,
                DimensionType(d.kind).name.lower(),
                0 if i == len(dims) - 1 else d.array_size_px,
                d.chunk_size_px,
                d.shard_size_chunks,
                d.unit,
                float(d.scale),
            )
        )
    properties.validate_dimensions(out)
    return out
