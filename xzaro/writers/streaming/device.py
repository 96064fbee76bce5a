"""The streaming device: append camera frames to a chunked (V2) or sharded (V3) OME-Zarr store.

Frames are tiled into a buffer holding one *row* of stored objects along the append (slowest)
dimension, chunk by chunk: ``chunk_size_px`` of it for V2, one shard (``chunk_size_px *
shard_size_chunks``) for V3, times every other non-x/y dimension. A full row is handed to a
bounded background queue that coarsens it into every multiscale level and writes each level with
its :class:`~xzaro.writers.writer.ChunkWriter` / :class:`~xzaro.writers.writer.ShardWriter`, so
:meth:`StorageInterface.append` returns as soon as the frame is copied. An uncompressed
single-level stream to local disk needs no row: each frame goes straight to its place in the
row's files (:class:`~xzaro.writers.direct.FrameFileWriter`). Stored objects are written
once and never rewritten; metadata is written at :meth:`~StorageInterface.start`, rewritten as
rows are stored (so a reader can open the store during the acquisition: every stored row is
in it at most :data:`~xzaro.writers.streaming.publish.METADATA_INTERVAL` seconds later, see
:class:`~xzaro.writers.streaming.publish.RowPublisher`) and at :meth:`~StorageInterface.stop`
with the true extent. Only the documents that change are stored again.

Dimensions are given from fastest (x, then y) to slowest (the append dimension, size 0); the
stored arrays have them in reverse order, e.g. ``x, y, z, c, t`` is stored as ``(t, c, z, y, x)``
and consecutive frames fill ``z`` fastest, then ``c``, then ``t``.
"""

from __future__ import annotations

import abc
import math
import threading
from dataclasses import replace
from typing import Any

import crc32c  # noqa: F401  (imported by the first V3 shard otherwise: tens of ms, mid-stream)
import numpy as np

from xzaro.buffers import zeroed_buffer
from xzaro.errors import StoreError, StreamingError, ZaroError
from xzaro.meta import GroupMeta
from xzaro.stores import Store, SupportsLocalFiles, SupportsTransactions, open_store
from xzaro.writers.direct import FrameFileWriter
from xzaro.writers.ome import ome_attributes
from xzaro.writers.store_array import delete_below
from xzaro.writers.streaming.documents import StreamDocuments
from xzaro.writers.streaming.geometry import StreamGeometry
from xzaro.writers.streaming.properties import (
    StorageCapabilities,
    StorageProperties,
    local_path,
    validate_properties,
)
from xzaro.writers.streaming.publish import RowPublisher
from xzaro.writers.streaming.rows import (
    RowWriter,
    StreamLevel,
    frame_tiles_shape,
    new_levels,
)
from xzaro.writers.tiles import copy_into_tiles

#: Chunks a frame may span and still be written straight to its files...
DIRECT_MAX_WRITES = 256
#: ...or bytes each chunk's piece of a frame must have.
DIRECT_MIN_PIECE = 32 * 1024


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
        self._levels: list[StreamLevel] = []
        self._frames = 0  # frames taken since the last start
        self._attributes: dict[str, Any] = {}  # the caller's, on the image node
        # Held while metadata is written, and around what it is made from (``_running``,
        # ``_attributes``); the buffer pools have a lock of their own, so that writing a
        # document never holds up the frames.
        self._lock = threading.Lock()
        self._released = threading.Condition()
        self._documents: StreamDocuments | None = None
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
        validate_properties(properties, self.zarr_format)
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
                nbytes = math.prod(frame_tiles_shape(levels[0])) * self._dtype.itemsize
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
            shard_size_chunks_ignored=self.zarr_format == 2,
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

    def _geometry(self) -> StreamGeometry:
        """The arrays the current properties describe."""
        return StreamGeometry(self.get(), self.zarr_format)

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
            delete_below(store, "")  # documents first: none describes a deleted chunk
        self._store = store
        self._documents = StreamDocuments(store)
        self._levels = self._new_levels(store)
        self._write_all_metadata(0)
        self._publisher = RowPublisher(self._lock, self._publish_rows)
        self._frames = 0  # frames taken
        shape = self._levels[0].row_shape
        self._per_t = math.prod(shape[1:-2])  # frames per append-dimension step
        self._row_frames = self._geometry().row_extent * self._per_t
        self._row_index = 0  # rows handed to the queue
        self._direct: FrameFileWriter | None = None
        if self._direct_eligible(store):
            level = self._levels[0]
            directory = store.local_path(self._geometry().level_path(0))  # type: ignore[attr-defined]
            self._direct = FrameFileWriter(directory, level.writer.meta)
            self._buffer = zeroed_buffer(frame_tiles_shape(level), self._dtype)
        else:
            self._buffer = self._levels[0].rows.take()  # type: ignore[union-attr]
        self._rows = RowWriter(
            store, self._levels, self._geometry().row_extent, self._lock, self._rows_written
        )
        self._running = True

    def _direct_eligible(self, store: Store | None) -> bool:
        """Whether frames go straight to local files: uncompressed, one level, local disk, and
        few writes per frame (one per chunk it spans): at most :data:`DIRECT_MAX_WRITES`, or
        pieces of at least :data:`DIRECT_MIN_PIECE` bytes. Many small writes per frame cost
        more than buffering rows (measured: 1024 writes of 8 KiB per 2048x2048 frame)."""
        p = self.get()
        local = isinstance(store, SupportsLocalFiles) if store is not None else local_path(p.uri)
        dims, itemsize = p.acquisition_dimensions, np.dtype(self._dtype or np.uint8).itemsize
        piece = dims[0].chunk_size_px * dims[1].chunk_size_px * itemsize
        writes = math.prod(-(-d.array_size_px // d.chunk_size_px) for d in dims[:2])
        return bool(
            self.direct_writes
            and local
            and p.compression is None
            and len(self._geometry().level_shapes()) == 1
            and (writes <= DIRECT_MAX_WRITES or piece >= DIRECT_MIN_PIECE)
        )

    def _new_levels(self, store: Store | None) -> list[StreamLevel]:
        """Every level's metadata, writer (when ``store`` is given) and row geometry."""
        assert self._dtype is not None
        return new_levels(self._geometry(), self._dtype, store, self._released)

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
        """Store every level's metadata with the append extent ``extent``, then the image
        group's; documents that did not change are not stored again."""
        documents = self._documents
        assert documents is not None
        geometry = self._geometry()
        for i, level in enumerate(self._levels):
            level.meta = replace(level.meta, shape=(extent, *level.meta.shape[1:]))
            meta = level.meta
            if not geometry.properties.ngff and self._attributes:
                meta = replace(meta, attributes={**meta.attributes, **self._attributes})
            documents.write_array(geometry.level_path(i), meta)
        if geometry.properties.ngff:

            def group() -> GroupMeta:
                multiscales = geometry.multiscales(len(self._levels))
                attrs = {**self._attributes, **ome_attributes(multiscales, self.zarr_format)}
                return GroupMeta(self.zarr_format, attrs)

            documents.write_group("", group)

    def update_attributes(self, attributes: dict[str, Any]) -> None:
        """Merge ``attributes`` into the image node's attributes (the OME-NGFF group, or the
        array of a non-NGFF stream), written with the metadata from now on; at once while the
        stream runs.

        Raises
        ------
        StreamingError
            If a key would replace the OME-NGFF metadata.
        """
        reserved = {"ome", "multiscales"} & set(attributes)
        if reserved:
            raise StreamingError(f"attributes {sorted(reserved)} are the OME-NGFF metadata's")
        with self._lock:
            self._attributes.update(attributes)
            if self._documents is not None:
                self._documents.forget()
            if self._running:
                self._write_all_metadata(self._levels[0].meta.shape[0])

    def _rows_written(self, rows: int) -> None:
        """The first ``rows`` rows are stored: the metadata may say so (called under the lock).

        A store whose writes are seen only once committed got its metadata before each row
        (it holds chunks of known extent only); shrinking it here would refuse rows in flight.
        """
        if self._running and not isinstance(self._store, SupportsTransactions):
            self._publisher.rows_stored(rows)

    def _publish_rows(self, rows: int) -> None:
        """Write the metadata covering the first ``rows`` stored rows (under the lock)."""
        if self._running:
            self._write_all_metadata(self._extent(rows))

    def _extent(self, rows: int) -> int:
        """The append extent the first ``rows`` stored rows hold: never beyond the frames taken
        (a last partial row is padded, but its padding is no acquired frame)."""
        return min(rows * self._geometry().row_extent, -(-self._frames // self._per_t))

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
                copy_frame(frame, self._frame_tiles(pos))
            self._frames += 1
            if pos + 1 == self._row_frames:
                self._flush_row()
        return len(data)

    def _position(self, frame: int) -> tuple[int, ...]:
        """Array position (append index, middle indices) of frame number ``frame``."""
        step, rest = divmod(frame, self._per_t)
        shape = self._levels[0].row_shape[1:-2]
        middle = np.unravel_index(rest, shape) if shape else ()
        return (step, *(int(j) for j in middle))

    def _flush_row(self) -> None:
        """Queue the current row (blocking while the queue is full) and start a new one."""
        if self._direct is not None:  # the row's objects are complete: move them into place
            self._direct.finish(self._row_index)
            self._row_index += 1
            with self._lock:
                self._rows_written(self._row_index)
            return
        if isinstance(self._store, SupportsTransactions):
            with self._lock:
                self._write_all_metadata((self._row_index + 1) * self._geometry().row_extent)
        self._rows.submit(self._buffer, self._row_index)
        self._row_index += 1
        self._buffer = self._levels[0].rows.take()  # type: ignore[union-attr]

    def _raise_background_error(self) -> None:
        error = self._rows.error or self._publisher.error
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
            self._rows.shutdown()
            self._raise_background_error()
            with self._lock:
                self._publisher.close()
                self._running = False
                self._write_all_metadata(-(-self._frames // self._per_t))
            if isinstance(self._store, SupportsTransactions):
                self._store.commit(f"xzaro stream: {self._frames} frames")
        finally:
            with self._lock:
                self._publisher.close()
                self._running = False
            self._rows.shutdown()
            if self._direct is not None:
                self._direct.abort()  # after an error: no half-written object stays
            self._buffer = np.empty(0, dtype=self._dtype)

    @property
    def frames_written(self) -> int:
        """Frames taken since the last :meth:`start`."""
        return self._frames


def copy_frame(frame: np.ndarray, tiles: np.ndarray) -> None:
    """Copy ``frame`` into ``tiles`` ``(chunks along y, chunks along x, chunk y, chunk x)``:
    one row of chunks at a time when the frame is a whole number of chunks (a fifth less time
    than one strided copy of the frame, measured with 64x64 chunks), else
    :func:`~xzaro.writers.tiles.copy_into_tiles`."""
    gy, gx, cy, cx = tiles.shape
    if frame.shape != (gy * cy, gx * cx):
        copy_into_tiles(frame, tiles)
        return
    for i in range(gy):
        tiles[i] = frame[i * cy : (i + 1) * cy].reshape(cy, gx, cx).transpose(1, 0, 2)


class ZarrV2(Zarr):
    """Zarr V2 with one :class:`~xzaro.writers.writer.ChunkWriter` per level and OME-NGFF 0.4
    ``multiscales`` on the root group."""

    zarr_format = 2


class ZarrV3(Zarr):
    """Zarr V3 sharded (``sharding_indexed`` with crc32c-protected indexes) with one
    :class:`~xzaro.writers.writer.ShardWriter` per level and OME-NGFF 0.5 under ``ome``."""

    zarr_format = 3
