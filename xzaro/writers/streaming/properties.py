"""What a stream is: its dimensions and properties (checked), and what the device supports."""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, field
from typing import Any

from xzaro.errors import StreamingError
from xzaro.stores.local import is_local_url, local_root
from xzaro.writers.compression import BloscCompressionParams


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
        Chunks per shard along it (Zarr V3 only; 0 means 1).
    """

    name: str
    kind: DimensionKind | str
    array_size_px: int
    chunk_size_px: int
    shard_size_chunks: int = 0

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
    """

    uri: str = ""
    external_metadata_json: str = ""
    pixel_scale_um: tuple[float, float] | None = None
    acquisition_dimensions: list[Dimension] = field(default_factory=list)
    enable_multiscale: bool = False
    compression: BloscCompressionParams | None = None
    overwrite: bool = False
    storage_options: dict[str, Any] = field(default_factory=dict)


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
    """

    chunking: bool
    sharding: bool
    multiscale: bool
    s3: bool
    buffer_bytes: int


def validate_properties(p: StorageProperties, zarr_format: int) -> None:
    """Check every field of ``p`` for a device writing Zarr ``zarr_format``.

    Raises
    ------
    StreamingError
        Naming the offending field.
    """
    dims = p.acquisition_dimensions
    if not isinstance(dims, (list, tuple)) or len(dims) < 3:
        raise StreamingError("acquisition_dimensions: at least 3 dimensions are needed")
    names = [d.name for d in dims]
    if any(not isinstance(n, str) or not n.strip() for n in names):
        raise StreamingError("acquisition_dimensions: dimension names must not be empty")
    if len(set(names)) != len(names):
        raise StreamingError(f"acquisition_dimensions: duplicate names in {names}")
    for i, d in enumerate(dims):
        if d.chunk_size_px <= 0:
            raise StreamingError(f"dimension {d.name!r}: chunk_size_px must be positive")
        if d.shard_size_chunks < 0:
            raise StreamingError(f"dimension {d.name!r}: shard_size_chunks must be >= 0")
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
        if zarr_format == 2 and d.shard_size_chunks:
            raise StreamingError(
                f"dimension {d.name!r}: shard_size_chunks is only supported by ZarrV3"
            )
    if p.external_metadata_json:
        try:
            json.loads(p.external_metadata_json)
        except (TypeError, ValueError) as e:
            raise StreamingError(f"external_metadata_json is not valid JSON: {e}") from None
    if p.pixel_scale_um is not None and len(tuple(p.pixel_scale_um)) != 2:
        raise StreamingError("pixel_scale_um must be (x, y)")
    if p.compression is not None and not isinstance(p.compression, BloscCompressionParams):
        raise StreamingError("compression must be a BloscCompressionParams or None")
    if not p.uri or not isinstance(p.uri, str):
        raise StreamingError("uri must be a non-empty path or URL")
    local = local_path(p.uri)
    if local is not None:
        parent = os.path.dirname(os.path.abspath(local.rstrip("/\\"))) or "."
        if not os.path.isdir(parent):
            raise StreamingError(f"uri: parent directory {parent!r} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StreamingError(f"uri: parent directory {parent!r} is not writable")


def local_path(uri: str) -> str | None:
    """The local path of a plain path or ``file://`` URL, else ``None``."""
    return local_root(uri) if is_local_url(uri) else None
