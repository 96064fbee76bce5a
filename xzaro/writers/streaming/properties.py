"""What a stream is: its dimensions and properties (checked), and what the device supports."""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, field
from typing import Any

from xzaro.errors import StreamingError
from xzaro.stores.local import is_local_url, local_root
from xzaro.writers.coarsen import COARSENINGS
from xzaro.writers.compression import BloscCompressionParams

#: Whose conventions a stream follows (see :class:`StorageProperties`).
CONVENTIONS = ("xzaro", "acquire-zarr")


class DimensionKind(enum.StrEnum):
    """What an acquisition dimension measures."""

    SPACE = "space"
    CHANNEL = "channel"
    TIME = "time"
    OTHER = "other"


@dataclass
class Dimension:
    """One acquisition dimension.

    Parameters
    ----------
    name
        Dimension name (non-empty, unique).
    kind
        A :class:`DimensionKind` or its string value.
    array_size_px
        Size; 0 (unbounded) for the append (slowest) dimension only.
    chunk_size_px
        Chunk size along it (> 0).
    shard_size_chunks
        Chunks per shard along it (0 means 1). Zarr V3 only: ``ZarrV2`` accepts and ignores it,
        as the Acquire device did (its :meth:`~StorageInterface.get_meta` says so).
    unit
        The OME-NGFF ``unit`` of the axis, or ``None`` (for x and y, ``micrometer`` when the
        properties give ``pixel_scale_um``).
    scale
        The size of one step along it at level 0 (multiplied by ``pixel_scale_um`` for x, y).
    """

    name: str
    kind: DimensionKind | str
    array_size_px: int
    chunk_size_px: int
    shard_size_chunks: int = 0
    unit: str | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        try:
            self.kind = DimensionKind(
                self.kind.value if isinstance(self.kind, DimensionKind) else self.kind
            )
        except ValueError:
            raise StreamingError(
                f"dimension {self.name!r}: kind must be one of "
                f"{[k.value for k in DimensionKind]}, got {self.kind!r}"
            ) from None


@dataclass
class StorageProperties:
    """What and where to stream.

    Parameters
    ----------
    uri
        Local path, ``file://`` URL, ``s3://bucket/prefix`` (credentials and endpoint in
        ``storage_options``) or any fsspec URL.
    external_metadata_json
        A JSON document stored as the ``external_metadata`` attribute of array ``0``.
    pixel_scale_um
        Pixel size (x, y) in micrometers, or ``None`` (unit-less scale 1).
    acquisition_dimensions
        Dimensions from fastest (x, y) to slowest (append dimension, size 0).
    enable_multiscale
        Write a pyramid (levels halve x, y and spatial z) until a level fits in one chunk.
    compression
        Blosc settings, or ``None`` for raw chunks.
    overwrite
        Replace an existing store at ``uri``.
    storage_options
        fsspec options (S3 credentials, ``client_kwargs={"endpoint_url": ...}``).
    downsampling_method
        How each level of the pyramid is made from the one below: ``"mean"``, ``"decimate"``,
        ``"min"`` or ``"max"`` (:data:`~xzaro.writers.coarsen.COARSENINGS`).
    max_levels
        At most this many levels above level 0 (0: until a level fits in one chunk).
    ngff
        Write an OME-NGFF image group (levels ``0``, ``1``, … below it); ``False`` writes the
        single level as a plain array at ``uri`` (no pyramid, no group).
    conventions
        ``"xzaro"``: halve every coarsened axis until a level fits in one chunk along y and x,
        a level smaller than a chunk getting chunks of its size. ``"acquire-zarr"`` (0.10's):
        halve an axis only while it is larger than a chunk, make levels while y and x both
        are (or z is), keep the dimensions' chunk sizes on every level, describe the method
        in the ``multiscales`` ``metadata`` and give ``other`` dimensions the axis type
        ``"other"``.
    """

    uri: str = ""
    external_metadata_json: str = ""
    pixel_scale_um: tuple[float, float] | None = None
    acquisition_dimensions: list[Dimension] = field(default_factory=list)
    enable_multiscale: bool = False
    compression: BloscCompressionParams | None = None
    overwrite: bool = False
    storage_options: dict[str, Any] = field(default_factory=dict)
    downsampling_method: str = "mean"
    max_levels: int = 0
    ngff: bool = True
    conventions: str = "xzaro"


@dataclass(frozen=True)
class StorageCapabilities:
    """What a storage device supports, and the memory its buffers may use.

    Attributes
    ----------
    chunking, sharding, multiscale, s3
        Supported features (sharding: Zarr V3 only).
    buffer_bytes
        Upper bound of the frame buffers for the reserved image shape: the row being filled
        and the queued rows of every level, plus the queued rows' compressed chunks; one frame
        for an uncompressed single-level stream to local disk (written frame by frame). 0
        before ``reserve_image_shape`` and ``set``.
    shard_size_chunks_ignored
        ``shard_size_chunks`` is accepted and ignored (Zarr V2 has no shards).
    """

    chunking: bool
    sharding: bool
    multiscale: bool
    s3: bool
    buffer_bytes: int
    shard_size_chunks_ignored: bool = False


def validate_properties(p: StorageProperties, zarr_format: int) -> None:
    """Check every field of ``p`` for a device writing Zarr ``zarr_format``.

    Raises
    ------
    StreamingError
        Naming the offending field.
    """
    validate_dimensions(p.acquisition_dimensions)
    if p.external_metadata_json:
        try:
            json.loads(p.external_metadata_json)
        except (TypeError, ValueError) as e:
            raise StreamingError(f"external_metadata_json is not valid JSON: {e}") from None
    if p.pixel_scale_um is not None and len(tuple(p.pixel_scale_um)) != 2:
        raise StreamingError("pixel_scale_um must be (x, y)")
    if p.compression is not None and not isinstance(p.compression, BloscCompressionParams):
        raise StreamingError("compression must be a BloscCompressionParams or None")
    if p.downsampling_method not in COARSENINGS:
        raise StreamingError(
            f"downsampling_method must be one of {list(COARSENINGS)}, got {p.downsampling_method!r}"
        )
    if not isinstance(p.max_levels, int) or p.max_levels < 0:
        raise StreamingError(f"max_levels must be an integer >= 0, got {p.max_levels!r}")
    if p.conventions not in CONVENTIONS:
        raise StreamingError(f"conventions must be one of {CONVENTIONS}, got {p.conventions!r}")
    if not p.ngff and p.enable_multiscale:
        raise StreamingError("enable_multiscale needs ngff=True (a pyramid is an OME-NGFF group)")
    _validate_uri(p.uri)


def validate_dimensions(dims: list[Dimension]) -> None:
    """Check acquisition dimensions given fastest first (x, y, …, the append dimension).

    Raises
    ------
    StreamingError
        Naming the offending dimension; saying so when they look listed slowest first.
    """
    if not isinstance(dims, (list, tuple)) or len(dims) < 3:
        raise StreamingError("acquisition_dimensions: at least 3 dimensions are needed")
    names = [d.name for d in dims]
    if any(not isinstance(n, str) or not n.strip() for n in names):
        raise StreamingError("acquisition_dimensions: dimension names must not be empty")
    if len(set(names)) != len(names):
        raise StreamingError(f"acquisition_dimensions: duplicate names in {names}")
    if dims[0].array_size_px == 0 and dims[-1].array_size_px != 0:
        raise StreamingError(
            f"acquisition_dimensions {names} look listed slowest first: this device takes "
            "them fastest first (x, y, …, then the append dimension of array_size_px 0)"
        )
    for i, d in enumerate(dims):
        if d.chunk_size_px <= 0:
            raise StreamingError(f"dimension {d.name!r}: chunk_size_px must be positive")
        if d.shard_size_chunks < 0:
            raise StreamingError(f"dimension {d.name!r}: shard_size_chunks must be >= 0")
        if not d.scale > 0:
            raise StreamingError(f"dimension {d.name!r}: scale must be positive, got {d.scale}")
        if i == len(dims) - 1:
            if d.array_size_px != 0:
                raise StreamingError(
                    f"dimension {d.name!r}: the append (slowest) dimension must have "
                    f"array_size_px 0, got {d.array_size_px}"
                )
        elif d.array_size_px <= 0:
            raise StreamingError(
                f"dimension {d.name!r}: array_size_px must be positive (only the append "
                f"dimension has size 0)"
            )


def _validate_uri(uri: str) -> None:
    if not uri or not isinstance(uri, str):
        raise StreamingError("uri must be a non-empty path or URL")
    local = local_path(uri)
    if local is not None:
        parent = os.path.dirname(os.path.abspath(local.rstrip("/\\"))) or "."
        if not os.path.isdir(parent):
            raise StreamingError(f"uri: parent directory {parent!r} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StreamingError(f"uri: parent directory {parent!r} is not writable")


def local_path(uri: str) -> str | None:
    """The local path of a plain path or ``file://`` URL, else ``None``."""
    return local_root(uri) if is_local_url(uri) else None
