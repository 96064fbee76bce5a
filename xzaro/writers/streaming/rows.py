"""A stream's rows: the recycled buffers they are held in, and their background writing.

A row holds one stored object's extent along the append dimension (a chunk, or a V3 shard)
of every level, chunk by chunk. :class:`RowWriter` coarsens a full row into every level,
encodes and stores it on a small thread pool, at most :data:`MAX_PENDING_ROWS` at a time, and
reports when the rows written so far form a longer contiguous prefix, so that the metadata can
say so.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from xzaro.buffers import zeroed_buffer
from xzaro.codecs import BLOSC_MAX_OVERHEAD
from xzaro.meta import ZaroMeta
from xzaro.stores import Store
from xzaro.writers.coarsen import coarsen_array, coarsen_tiles
from xzaro.writers.streaming.geometry import StreamGeometry
from xzaro.writers.tiles import copy_into_tiles, from_tiles, tile_grid
from xzaro.writers.writer import Writer, writer_for

#: Rows (per level) that may wait in the background queue before ``append`` blocks.
MAX_PENDING_ROWS = 2
#: Append extent the writers are built with: rows are aligned, so only the end matters.
_WRITER_EXTENT = 2**50


class BufferPool:
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
class StreamLevel:
    """One level of a stream: its array, its writer and the buffers its rows pass through."""

    meta: ZaroMeta  # with the append extent of the data written so far
    writer: Writer
    spatial_axes: tuple[int, ...]  # axes halved from the level below
    row_shape: tuple[int, ...]  # one row: the row extent along the append dimension
    rows: BufferPool | None = None  # row buffers, chunk by chunk (tiles_shape)
    encoded: BufferPool | None = None  # a row's compressed chunks (encoded_shape)
    method: str = "mean"  # how this level is made from the one below (COARSENINGS)

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


def new_levels(
    geometry: StreamGeometry,
    dtype: np.dtype,
    store: Store | None,
    released: threading.Condition,
) -> list[StreamLevel]:
    """Every level's metadata, writer (when ``store`` is given), row geometry and buffers
    (pools sharing the condition ``released``)."""
    compressed = geometry.properties.compression is not None
    levels = []
    for i, (shape, axes) in enumerate(geometry.pyramid()):
        meta = geometry.level_meta(i, shape, 0, dtype)
        writer_meta = replace(meta, shape=(_WRITER_EXTENT, *meta.shape[1:]))
        path = geometry.level_path(i)
        writer = writer_for(store, path, writer_meta) if store is not None else None
        row_shape = (geometry.row_extent, *shape[1:])
        level = StreamLevel(meta, writer, axes, row_shape)  # type: ignore[arg-type]
        level.method = geometry.properties.downsampling_method
        # Row buffers: one per queued row, plus the row being filled at level 0 unless a
        # compressed row hands its buffer back once encoded (the encoder is the bottleneck
        # then, and a third buffer would only cost memory). Padding beyond the array's
        # edges is never written and stays zero (the fill value).
        limit = MAX_PENDING_ROWS + (1 if i == 0 and not compressed else 0)
        level.rows = BufferPool(level.tiles_shape, dtype, limit, released)
        if compressed:  # one per queued row
            level.encoded = BufferPool(level.encoded_shape, np.uint8, MAX_PENDING_ROWS, released)
        levels.append(level)
    return levels


def frame_tiles_shape(level: StreamLevel) -> tuple[int, ...]:
    """One frame of ``level``, tiled: ``(chunks along y, chunks along x, chunk y, chunk x)``."""
    tiles, n = level.tiles_shape, len(level.row_shape)
    return (*tiles[n - 2 : n], *tiles[-2:])


def coarsen_row(
    src: np.ndarray,
    src_shape: tuple[int, ...],
    axes: tuple[int, ...],
    dst: np.ndarray,
    dst_shape: tuple[int, ...],
    method: str,
) -> None:
    """Reduce a row held as tiles (``src``, of ``src_shape``) 2x along ``axes`` with
    ``method`` into the tiles ``dst`` (of ``dst_shape``).

    The mean works tile by tile (:func:`~xzaro.writers.coarsen.coarsen_tiles`); the other
    methods go through the natural layout with :func:`~xzaro.writers.coarsen.coarsen_array`.
    """
    if method == "mean":
        coarsen_tiles(src, src_shape, axes, dst, dst_shape)
        return
    coarse = coarsen_array(from_tiles(src, src_shape), axes, method)
    copy_into_tiles(coarse, dst)


def _give_back(taken: list[tuple[BufferPool, np.ndarray]]) -> None:
    for pool, buffer in taken:
        pool.give(buffer)


class RowWriter:
    """Writes full rows of a stream in the background, :data:`MAX_PENDING_ROWS` at a time.

    Parameters
    ----------
    store, levels
        Where, and the levels every row is coarsened into and written to.
    row_extent
        A row's extent along the append dimension.
    lock
        Held while ``rows_written`` runs (the device's lock, which its buffer pools share).
    rows_written
        Called with the number of rows written from the first on, without a gap, whenever a
        written row makes it grow: the metadata may then promise those rows to readers.
    """

    def __init__(
        self,
        store: Store,
        levels: list[StreamLevel],
        row_extent: int,
        lock: threading.Lock,
        rows_written: Callable[[int], None],
    ) -> None:
        self._store, self._levels, self._row_extent = store, levels, row_extent
        self._lock, self._rows_written = lock, rows_written
        # Rows are written concurrently (one shard row is often a single stored object,
        # encoded on one thread); metadata only ever covers the contiguous prefix of rows.
        self._executor = ThreadPoolExecutor(MAX_PENDING_ROWS, thread_name_prefix="zarr-stream")
        self._done_rows: set[int] = set()
        self._contiguous = 0
        self._slots = threading.BoundedSemaphore(MAX_PENDING_ROWS)
        self._futures: list[Future] = []
        #: The first failure of a background write, if any.
        self.error: BaseException | None = None

    def submit(self, buffer: np.ndarray, index: int) -> None:
        """Queue row ``index`` (level 0, tiled in ``buffer``), blocking while the queue is full."""
        self._slots.acquire()
        try:
            future = self._executor.submit(self._write_row, buffer, index)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._futures = [f for f in self._futures if not f.done()] + [future]

    def shutdown(self) -> None:
        """Wait for every queued row."""
        self._executor.shutdown(wait=True)

    def _write_row(self, buffer: np.ndarray, index: int) -> None:
        levels = self._levels
        assert levels[0].rows is not None
        held: list[tuple[BufferPool, np.ndarray]] = [(levels[0].rows, buffer)]
        encoded: list[tuple[BufferPool, np.ndarray]] = []
        try:
            first = index * self._row_extent // levels[0].meta.chunk_shape[0]
            tiles, below = buffer, levels[0]
            items = []
            for level in levels:
                if level.spatial_axes:
                    assert level.rows is not None
                    coarse = level.rows.take()
                    held.append((level.rows, coarse))
                    coarsen_row(
                        tiles,
                        below.row_shape,
                        level.spatial_axes,
                        coarse,
                        level.row_shape,
                        level.method,
                    )
                    tiles = coarse
                origin = (first, *(0,) * (len(level.row_shape) - 1))
                out = level.encoded.take() if level.encoded is not None else None
                if out is not None:
                    encoded.append((level.encoded, out))  # type: ignore[arg-type]
                items += level.writer.encode_tiles(tiles, origin, out)
                below = level
            if levels[0].writer.copies_on_encode:
                _give_back(held)  # compressed: the buffers may be refilled while storing
                held = []
            self._store.set_many(items)
            with self._lock:
                self._done_rows.add(index)
                before = self._contiguous
                while self._contiguous in self._done_rows:
                    self._contiguous += 1
                if self._contiguous > before:
                    # rollover: the rows written so far are readable
                    self._rows_written(self._contiguous)
        except BaseException as e:
            self.error = self.error or e
            raise
        finally:
            _give_back(held + encoded)  # also after a failure: nobody may wait for them forever
