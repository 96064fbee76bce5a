"""Streaming frame writer: append camera frames to a chunked (V2) or sharded (V3) OME-Zarr store.

Frames are tiled into a buffer holding one *row* of stored objects along the append (slowest)
dimension, chunk by chunk: ``chunk_size_px`` of it for V2, one shard (``chunk_size_px *
shard_size_chunks``) for V3, times every other non-x/y dimension. A full row is handed to a
bounded background queue that coarsens it into every multiscale level and writes each level with
its :class:`~xzaro.writers.writer.ChunkWriter` / :class:`~xzaro.writers.writer.ShardWriter`, so
:meth:`StorageInterface.append` returns as soon as the frame is copied. An uncompressed
single-level stream to local disk needs no row: each frame goes straight to its place in the
row's files (:class:`~xzaro.writers.direct.FrameFileWriter`). Stored objects are written
once and never rewritten; metadata is written at :meth:`~StorageInterface.start`, rewritten after
every written row (so a reader can open the store during the acquisition) and at
:meth:`~StorageInterface.stop` with the true extent.

Dimensions are given from fastest (x, then y) to slowest (the append dimension, size 0); the
stored arrays have them in reverse order, e.g. ``x, y, z, c, t`` is stored as ``(t, c, z, y, x)``
and consecutive frames fill ``z`` fastest, then ``c``, then ``t``.
"""

from __future__ import annotations

import abc
import enum
import json
import math
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xzaro.codecs.compression import BLOSC_MAX_OVERHEAD
from xzaro.concurrency import zeroed_buffer
from xzaro.errors import StoreError, ZaroError
from xzaro.meta import GroupMeta, ZaroMeta
from xzaro.stores import Store, open_store
from xzaro.writers.compression import BloscCompressionParams
from xzaro.writers.direct import FrameFileWriter
from xzaro.writers.layout import array_meta
from xzaro.writers.multiscale import coarsen_tiles
from xzaro.writers.store_array import write_metadata
from xzaro.writers.tiles import copy_into_tiles, tile_grid
from xzaro.writers.writer import Writer, writer_for

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

#: Rows (per level) that may wait in the background queue before ``append`` blocks.
MAX_PENDING_ROWS = 2
#: Append extent the writers are built with: rows are aligned, so only the end matters.
_WRITER_EXTENT = 2**50


class StreamingError(ZaroError, ValueError):
    """Invalid streaming properties, frames or call order."""


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


class _BufferPool:
    """At most ``limit`` zeroed buffers of one shape, handed out and taken back.

    Fresh memory costs a page fault per page, more than copying frames in or compressing into
    it, so buffers are recycled; :meth:`take` waits while all of them are out. All pools of a
    stream share one condition (``released``).
    """

    def __init__(
        self, shape: tuple[int, ...], dtype: Any, limit: int, released: threading.Condition
    ) -> None:
        self.shape, self.dtype, self.limit = shape, np.dtype(dtype), limit
        self.nbytes = math.prod(shape) * self.dtype.itemsize
        self._released = released
        self._free: list[np.ndarray] = []
        self._allocated = 0

    def take(self) -> np.ndarray:
        """A free buffer, a new one while fewer than ``limit`` exist, else the next returned."""
        with self._released:
            while not self._free and self._allocated >= self.limit:
                self._released.wait()
            if self._free:
                return self._free.pop()
            self._allocated += 1
        return zeroed_buffer(self.shape, self.dtype)

    def give(self, buffer: np.ndarray) -> None:
        """Take ``buffer`` back."""
        with self._released:
            self._free.append(buffer)
            self._released.notify_all()


@dataclass
class _Level:
    meta: ZaroMeta  # with the append extent of the data written so far
    writer: Writer
    spatial_axes: tuple[int, ...]  # axes halved from the level below
    row_shape: tuple[int, ...]  # one row: the row extent along the append dimension
    rows: _BufferPool | None = None  # row buffers, chunk by chunk (tiles_shape)
    encoded: _BufferPool | None = None  # a row's compressed chunks (encoded_shape)

    @property
    def tiles_shape(self) -> tuple[int, ...]:
        """Shape of a row held chunk by chunk (see :mod:`xzaro.writers.tiles`)."""
        chunk = self.meta.chunk_shape
        return (*tile_grid(self.row_shape, chunk), *chunk)

    @property
    def encoded_shape(self) -> tuple[int, ...]:
        """Bytes receiving a row's compressed chunks: one slot per chunk, large enough for
        any chunk Blosc may produce."""
        chunk = self.meta.chunk_shape
        slot = math.prod(chunk) * self.meta.dtype.itemsize + BLOSC_MAX_OVERHEAD
        return (*tile_grid(self.row_shape, chunk), slot)


class StorageInterface(abc.ABC):
    """A streaming storage device: ``set``, ``reserve_image_shape``, ``start``, ``append``,
    ``stop``; usable as a context manager (``start`` on enter, ``stop`` on exit)."""

    @abc.abstractmethod
    def set(self, properties: StorageProperties) -> None:
        """Validate and keep the properties."""

    @abc.abstractmethod
    def get(self) -> StorageProperties:
        """The properties (accepted unchanged by :meth:`set`)."""

    @abc.abstractmethod
    def get_meta(self) -> StorageCapabilities:
        """The device's capabilities."""

    @abc.abstractmethod
    def reserve_image_shape(self, shape: tuple[int, int], dtype: Any) -> None:
        """Declare the frame shape ``(height, width)`` and pixel type."""

    @abc.abstractmethod
    def start(self) -> None:
        """Create the store and write its initial metadata."""

    @abc.abstractmethod
    def append(self, frames: Any) -> int:
        """Take one frame or a stack of frames; returns the number taken."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Flush everything and write the final metadata."""

    def __enter__(self) -> StorageInterface:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Zarr(StorageInterface):
    """Common logic of :class:`ZarrV2` and :class:`ZarrV3`.

    Parameters
    ----------
    properties
        Optional :class:`StorageProperties` passed to :meth:`set`.
    """

    zarr_format: int = 0
    #: Write uncompressed single-level streams to local disk frame by frame, without row
    #: buffers (:class:`~xzaro.writers.direct.FrameFileWriter`).
    direct_writes: bool = True

    def __init__(self, properties: StorageProperties | None = None) -> None:
        self._props: StorageProperties | None = None
        self._shape: tuple[int, int] | None = None
        self._dtype: np.dtype | None = None
        self._running = False
        self._store: Store | None = None
        self._levels: list[_Level] = []
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        if properties is not None:
            self.set(properties)

    # ------------------------------------------------------------------ configuration
    def set(self, properties: StorageProperties) -> None:
        """Validate and keep the properties.

        Raises
        ------
        StreamingError
            Naming the offending field.
        """
        if self._running:
            raise StreamingError("cannot change properties while the stream is running")
        self._validate(properties)
        self._props = properties

    def get(self) -> StorageProperties:
        """The properties last given to :meth:`set`."""
        if self._props is None:
            raise StreamingError("no properties set")
        return self._props

    def get_meta(self) -> StorageCapabilities:
        """Capabilities, with the frame-buffer memory bound for the current settings."""
        nbytes = 0
        if self._props is not None and self._shape is not None and self._dtype is not None:
            levels = self._new_levels(None)
            if self._direct_eligible(None):  # one frame, tiled
                nbytes = math.prod(_frame_tiles_shape(levels[0])) * self._dtype.itemsize
            if not nbytes:
                nbytes = sum(
                    pool.nbytes * pool.limit
                    for level in levels
                    for pool in (level.rows, level.encoded)
                    if pool is not None
                )
        return StorageCapabilities(
            chunking=True,
            sharding=self.zarr_format == 3,
            multiscale=True,
            s3=True,
            buffer_bytes=nbytes,
        )

    def reserve_image_shape(self, shape: tuple[int, int], dtype: Any = np.uint16) -> None:
        """Declare the frame shape ``(height, width)`` (numpy order) and pixel type.

        Raises
        ------
        StreamingError
            If the shape does not match the y and x dimensions.
        """
        shape = tuple(int(n) for n in shape)  # type: ignore[assignment]
        if len(shape) != 2:
            raise StreamingError(f"image shape must be (height, width), got {shape}")
        if self._props is not None:
            dims = self._props.acquisition_dimensions
            want = (dims[1].array_size_px, dims[0].array_size_px)
            if shape != want:
                raise StreamingError(
                    f"image shape {shape} does not match the acquisition dimensions "
                    f"{dims[1].name}={want[0]}, {dims[0].name}={want[1]}"
                )
        self._shape = shape
        self._dtype = np.dtype(dtype)

    def _validate(self, p: StorageProperties) -> None:
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
            if self.zarr_format == 2 and d.shard_size_chunks:
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
        local = _local_path(p.uri)
        if local is not None:
            parent = os.path.dirname(os.path.abspath(local.rstrip("/\\"))) or "."
            if not os.path.isdir(parent):
                raise StreamingError(f"uri: parent directory {parent!r} does not exist")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise StreamingError(f"uri: parent directory {parent!r} is not writable")

    # ------------------------------------------------------------------ geometry
    def _dims(self) -> list[Dimension]:
        return list(reversed(self.get().acquisition_dimensions))  # array order, slowest first

    def _row_extent(self) -> int:
        """Append-dimension extent of one buffered row (a chunk, or a shard for V3)."""
        d = self.get().acquisition_dimensions[-1]
        shard = max(1, d.shard_size_chunks) if self.zarr_format == 3 else 1
        return d.chunk_size_px * shard

    def _coarsened_axes(self) -> tuple[int, ...]:
        """Array axes halved per level: x, y and non-x/y dimensions of kind space."""
        dims = self._dims()
        n = len(dims)
        return tuple(
            i
            for i, d in enumerate(dims)
            if i >= n - 2 or (i > 0 and DimensionKind(d.kind) is DimensionKind.SPACE)
        )

    def _level_shapes(self) -> list[tuple[int, ...]]:
        """Array shapes (append extent 0) of every level."""
        dims = self._dims()
        shape = tuple(d.array_size_px for d in dims)
        shapes = [shape]
        if not self.get().enable_multiscale:
            return shapes
        axes = self._coarsened_axes()
        cy, cx = dims[-2].chunk_size_px, dims[-1].chunk_size_px
        while shape[-2] > cy or shape[-1] > cx:
            shape = tuple(-(-n // 2) if i in axes else n for i, n in enumerate(shape))
            shapes.append(shape)
        return shapes

    def _level_meta(self, level: int, shape: tuple[int, ...], extent: int) -> ZaroMeta:
        p = self.get()
        dims = self._dims()
        assert self._dtype is not None
        chunks = tuple(
            d.chunk_size_px if i == 0 else max(1, min(d.chunk_size_px, n))
            for i, (d, n) in enumerate(zip(dims, shape))
        )
        shards = None
        if self.zarr_format == 3:
            shards = tuple(
                c * min(max(1, d.shard_size_chunks), max(1, -(-n // c)) if i else 1 << 62)
                for i, (d, c, n) in enumerate(zip(dims, chunks, shape))
            )
        attrs: dict[str, Any] = {}
        if level == 0 and p.external_metadata_json:
            attrs["external_metadata"] = json.loads(p.external_metadata_json)
        return array_meta(
            shape=(extent, *shape[1:]),
            dtype=self._dtype,
            dims=tuple(d.name for d in dims),
            chunk_shape=chunks,
            shard_shape=shards,
            zarr_format=self.zarr_format,
            compressor=p.compression,
            fill_value=0,
            attributes=attrs,
        )

    def _ome(self, n_levels: int) -> list[dict]:
        p = self.get()
        dims = self._dims()
        n = len(dims)
        coarsened = self._coarsened_axes()
        axes: list[dict[str, Any]] = []
        base = [1.0] * n
        for i, d in enumerate(dims):
            axis: dict[str, Any] = {"name": d.name}
            kind = DimensionKind(d.kind)
            if kind is not DimensionKind.OTHER:
                axis["type"] = kind.value
            if i >= n - 2 and p.pixel_scale_um is not None:
                axis["unit"] = "micrometer"
                base[i] = float(p.pixel_scale_um[0 if i == n - 1 else 1])
            axes.append(axis)
        datasets = [
            {
                "path": str(level),
                "coordinateTransformations": [
                    {
                        "type": "scale",
                        "scale": [
                            b * (2.0**level if i in coarsened else 1.0) for i, b in enumerate(base)
                        ],
                    }
                ],
            }
            for level in range(n_levels)
        ]
        entry: dict[str, Any] = {"name": "", "axes": axes, "datasets": datasets}
        if n_levels > 1:
            entry["type"] = "mean"
        if self.zarr_format == 2:
            entry["version"] = "0.4"
        return [entry]

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Create the store (replacing it only when ``overwrite``), write valid metadata with an
        append extent of 0 and get ready for frames.

        Raises
        ------
        StreamingError
            Not configured, or the store exists and ``overwrite`` is false.
        """
        if self._running:
            raise StreamingError("the stream is already running")
        p = self.get()
        if self._shape is None or self._dtype is None:
            dims = p.acquisition_dimensions
            raise StreamingError(
                "call reserve_image_shape((height, width), dtype) before start() "
                f"(expected ({dims[1].array_size_px}, {dims[0].array_size_px}))"
            )
        self.reserve_image_shape(self._shape, self._dtype)  # re-check against the properties
        store = open_store(p.uri, p.storage_options or None, mode="a")
        existing = store.list("")
        if existing:
            if not p.overwrite:
                raise StreamingError(
                    f"uri: {p.uri!r} already holds data; set overwrite=True to replace it"
                )
            for key in existing:
                store.delete(key)
        self._store = store
        self._levels = self._new_levels(store)
        self._write_all_metadata(0)
        self._frames = 0  # frames taken
        shape = self._levels[0].row_shape
        self._per_t = math.prod(shape[1:-2])  # frames per append-dimension step
        self._row_frames = self._row_extent() * self._per_t
        self._row_index = 0  # rows handed to the queue
        self._direct: FrameFileWriter | None = None
        if self._direct_eligible(store):
            level = self._levels[0]
            directory = os.path.join(store.root, "0")  # type: ignore[attr-defined]
            self._direct = FrameFileWriter(directory, level.writer.meta)
            self._buffer = zeroed_buffer(_frame_tiles_shape(level), self._dtype)
        else:
            self._buffer = self._levels[0].rows.take()  # type: ignore[union-attr]
        # Rows are written concurrently (one shard row is often a single stored object, encoded
        # on one thread); metadata only ever covers the contiguous prefix of written rows.
        self._executor = ThreadPoolExecutor(MAX_PENDING_ROWS, thread_name_prefix="zarr-stream")
        self._done_rows: set[int] = set()
        self._contiguous = 0
        self._slots = threading.BoundedSemaphore(MAX_PENDING_ROWS)
        self._futures: list[Future] = []
        self._error: BaseException | None = None
        self._running = True

    def _direct_eligible(self, store: Store | None) -> bool:
        """Whether frames go straight to local files: uncompressed, one level, local disk."""
        p = self.get()
        local = getattr(store, "is_local", False) if store is not None else _local_path(p.uri)
        return bool(
            self.direct_writes
            and local
            and p.compression is None
            and len(self._level_shapes()) == 1
        )

    def _new_levels(self, store: Store | None) -> list[_Level]:
        """Every level's metadata, writer (when ``store`` is given) and row geometry."""
        axes = self._coarsened_axes()
        levels = []
        for i, shape in enumerate(self._level_shapes()):
            meta = self._level_meta(i, shape, 0)
            writer_meta = replace(meta, shape=(_WRITER_EXTENT, *meta.shape[1:]))
            writer = writer_for(store, str(i), writer_meta) if store is not None else None
            level = _Level(meta, writer, axes if i else (), (self._row_extent(), *shape[1:]))  # type: ignore[arg-type]
            # Row buffers: one per queued row, plus the row being filled at level 0 unless a
            # compressed row hands its buffer back once encoded (the encoder is the bottleneck
            # then, and a third buffer would only cost memory). Padding beyond the array's
            # edges is never written and stays zero (the fill value).
            compressed = self.get().compression is not None
            limit = MAX_PENDING_ROWS + (1 if i == 0 and not compressed else 0)
            level.rows = _BufferPool(level.tiles_shape, self._dtype, limit, self._released)
            if compressed:  # one per queued row
                level.encoded = _BufferPool(
                    level.encoded_shape, np.uint8, MAX_PENDING_ROWS, self._released
                )
            levels.append(level)
        return levels

    def _frame_tiles(self, position: int) -> np.ndarray:
        """The view of the row buffer that frame ``position`` (within the row) is tiled into:
        ``(chunks along y, chunks along x, chunk y, chunk x)``."""
        chunk = self._levels[0].meta.chunk_shape
        at = self._position(position)
        grid = tuple(j // c for j, c in zip(at, chunk))
        within = tuple(j % c for j, c in zip(at, chunk))
        full = (slice(None), slice(None))
        index: tuple[int | slice, ...] = (*grid, *full, *within, *full)
        return self._buffer[index]

    def _write_all_metadata(self, extent: int) -> None:
        assert self._store is not None
        for i, level in enumerate(self._levels):
            level.meta = replace(level.meta, shape=(extent, *level.meta.shape[1:]))
            write_metadata(self._store, str(i), level.meta)
        multiscales = self._ome(len(self._levels))
        attrs: dict[str, Any] = (
            {"multiscales": multiscales}
            if self.zarr_format == 2
            else {"ome": {"version": "0.5", "multiscales": multiscales}}
        )
        write_metadata(self._store, "", GroupMeta(self.zarr_format, attrs))

    def append(self, frames: Any) -> int:
        """Copy one frame ``(height, width)`` or a stack ``(n, height, width)`` into the buffer,
        handing full rows to the background writer.

        Returns
        -------
        int
            The number of frames taken.

        Raises
        ------
        StreamingError
            Not started, or frames of another shape or dtype (never cast).
        """
        if not self._running:
            raise StreamingError("append() needs a started stream (call start())")
        self._raise_background_error()
        data = np.asarray(frames) if not isinstance(frames, np.ndarray) else frames
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3 or data.shape[1:] != self._shape:
            raise StreamingError(
                f"frames must have shape {self._shape} or (n, *{self._shape}), got {data.shape}"
            )
        if data.dtype != self._dtype:
            raise StreamingError(
                f"frames have dtype {data.dtype}, the reserved pixel type is {self._dtype}"
            )
        for frame in data:
            pos = self._frames % self._row_frames
            if self._direct is not None:
                copy_into_tiles(frame, self._buffer)
                self._direct.write_frame(self._buffer, self._position(self._frames))
            else:
                copy_into_tiles(frame, self._frame_tiles(pos))
            self._frames += 1
            if pos + 1 == self._row_frames:
                self._flush_row()
        return len(data)

    def _position(self, frame: int) -> tuple[int, ...]:
        """Array position (append index, middle indices) of frame number ``frame``."""
        step, rest = divmod(frame, self._per_t)
        shape = self._levels[0].row_shape[1:-2]
        middle = np.unravel_index(rest, shape) if self._per_t > 1 else ()
        return (step, *(int(j) for j in middle))

    def _flush_row(self) -> None:
        """Queue the current row (blocking while the queue is full) and start a new one."""
        if self._direct is not None:  # the row's objects are complete: move them into place
            self._direct.finish(self._row_index)
            self._row_index += 1
            with self._lock:
                self._contiguous = self._row_index
                if self._running:
                    self._write_all_metadata(self._contiguous * self._row_extent())
            return
        buffer, index = self._buffer, self._row_index
        self._slots.acquire()
        try:
            future = self._executor.submit(self._write_row, buffer, index)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._futures = [f for f in self._futures if not f.done()] + [future]
        self._row_index += 1
        self._buffer = self._levels[0].rows.take()  # type: ignore[union-attr]

    def _write_row(self, buffer: np.ndarray, index: int) -> None:
        assert self._levels[0].rows is not None
        held: list[tuple[_BufferPool, np.ndarray]] = [(self._levels[0].rows, buffer)]
        encoded: list[tuple[_BufferPool, np.ndarray]] = []
        try:
            first = index * self._row_extent() // self._levels[0].meta.chunk_shape[0]
            tiles, below = buffer, self._levels[0]
            items = []
            for level in self._levels:
                if level.spatial_axes:
                    assert level.rows is not None
                    coarse = level.rows.take()
                    held.append((level.rows, coarse))
                    coarsen_tiles(
                        tiles, below.row_shape, level.spatial_axes, coarse, level.row_shape
                    )
                    tiles = coarse
                origin = (first, *(0,) * (len(level.row_shape) - 1))
                out = level.encoded.take() if level.encoded is not None else None
                if out is not None:
                    encoded.append((level.encoded, out))  # type: ignore[arg-type]
                items += level.writer.encode_tiles(tiles, origin, out)
                below = level
            if self._levels[0].writer.copies_on_encode:
                _give_back(held)  # compressed: the buffers may be refilled while storing
                held = []
            assert self._store is not None
            self._store.set_many(items)
            with self._lock:
                self._done_rows.add(index)
                before = self._contiguous
                while self._contiguous in self._done_rows:
                    self._contiguous += 1
                if self._running and self._contiguous > before:
                    # rollover: the rows written so far are readable
                    self._write_all_metadata(self._contiguous * self._row_extent())
        except BaseException as e:
            self._error = self._error or e
            raise
        finally:
            _give_back(held + encoded)  # also after a failure: nobody may wait for them forever

    def _raise_background_error(self) -> None:
        error = self._error
        if error is None:
            return
        if isinstance(error, ZaroError):
            raise type(error)(
                f"writing frames failed: {error.message}",
                url=error.url,
                key=error.key,
                field=error.field,
            ) from error
        raise StoreError(f"writing frames failed: {error!r}") from error

    def stop(self) -> None:
        """Write the partial row (padded with the fill value), wait for the queue and write the
        final metadata with the true append extent. The device can be started again."""
        if not self._running:
            return
        try:
            if self._frames % self._row_frames and self._direct is not None:
                self._flush_row()  # frames never written read as zeros: the fill value
            elif self._frames % self._row_frames:
                assert self._shape is not None
                blank = np.zeros(self._shape, self._buffer.dtype)  # padding: the fill value
                for pos in range(self._frames % self._row_frames, self._row_frames):
                    copy_into_tiles(blank, self._frame_tiles(pos))
                self._flush_row()
            self._executor.shutdown(wait=True)
            self._raise_background_error()
            with self._lock:
                self._running = False
                self._write_all_metadata(-(-self._frames // self._per_t))
        finally:
            self._running = False
            self._executor.shutdown(wait=True)
            if self._direct is not None:
                self._direct.abort()  # after an error: no half-written object stays
            self._buffer = np.empty(0, dtype=self._dtype)

    @property
    def frames_written(self) -> int:
        """Frames taken since the last :meth:`start`."""
        return getattr(self, "_frames", 0)


class ZarrV2(Zarr):
    """Zarr V2 with one :class:`~xzaro.writers.writer.ChunkWriter` per level and OME-NGFF 0.4
    ``multiscales`` on the root group."""

    zarr_format = 2


class ZarrV3(Zarr):
    """Zarr V3 sharded (``sharding_indexed`` with crc32c-protected indexes) with one
    :class:`~xzaro.writers.writer.ShardWriter` per level and OME-NGFF 0.5 under ``ome``."""

    zarr_format = 3


def _give_back(taken: list[tuple[_BufferPool, np.ndarray]]) -> None:
    for pool, buffer in taken:
        pool.give(buffer)


def _frame_tiles_shape(level: _Level) -> tuple[int, ...]:
    """One frame of ``level``, tiled: ``(chunks along y, chunks along x, chunk y, chunk x)``."""
    tiles, n = level.tiles_shape, len(level.row_shape)
    return (*tiles[n - 2 : n], *tiles[-2:])


def _local_path(uri: str) -> str | None:
    """The local path of a plain path or ``file://`` URL, else ``None``."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri or "::" in uri:
        return None
    return os.path.expanduser(uri)
