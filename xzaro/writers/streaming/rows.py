"""A stream's rows: the recycled buffers they are held in, and their background writing.

A row holds one stored object's extent along the append dimension (a chunk, or a V3 shard)
of every level, chunk by chunk. :class:`RowWriter` coarsens a full row into every level, then
encodes and stores it object by object (an object's compressed bytes are stored as soon as they
are made, so only the objects in flight need encoded buffers), at most
:data:`MAX_PENDING_ROWS` rows at a time, and reports when the rows written so far form a
longer contiguous prefix, so that the metadata can say so.

A large row is spread over the shared pool, one row at a time. A small one (at most
:data:`INLINE_ROW_BYTES`) to local disk is written on its own thread from start to end, two
rows at a time: handing its few small pieces of work between threads would cost more than
doing them. (A remote store keeps the pool: its objects' requests overlap there.)
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from xzaro.buffers import thread_buffer, zeroed_buffer
from xzaro.codecs import BLOSC_MAX_OVERHEAD
from xzaro.concurrency import POOL_THREADS, concurrent_map, default_workers
from xzaro.meta import ZaroMeta
from xzaro.stores import Store, SupportsLocalFiles
from xzaro.writers.coarsen import coarsen_array, coarsen_tiles, even_mean
from xzaro.writers.streaming.geometry import StreamGeometry
from xzaro.writers.streaming.objects import new_object_writer
from xzaro.writers.streaming.properties import local_path
from xzaro.writers.tiles import copy_into_tiles, from_tiles, tile_grid
from xzaro.writers.writer import Writer, writer_for

#: Rows (per level) that may wait in the background queue before ``append`` blocks.
MAX_PENDING_ROWS = 2
#: Rows of level 0 up to this size are each written by one thread, :data:`MAX_PENDING_ROWS`
#: at once; larger ones on the whole shared pool, one at once.
INLINE_ROW_BYTES = 16 * 2**20
#: The names of the threads writing small rows: :func:`~xzaro.concurrency.concurrent_map`
#: runs inline on threads named like the shared pool's, so everything a row needs (its mean,
#: encoding, stores) stays on the row's thread.
_INLINE_THREADS = f"{POOL_THREADS}-stream-row"
#: Bytes of scratch per :func:`~xzaro.writers.coarsen.even_mean` call of a row's mean.
_MEAN_SCRATCH_BYTES = 64 * 1024
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
    encoded: BufferPool | None = None  # one stored object's compressed chunks (encoded_shape)
    method: str = "mean"  # how this level is made from the one below (COARSENINGS)

    @property
    def tiles_shape(self) -> tuple[int, ...]:
        """Shape of a row held chunk by chunk (see :mod:`xzaro.writers.tiles`)."""
        chunk = self.meta.chunk_shape
        return (*tile_grid(self.row_shape, chunk), *chunk)

    @property
    def per_object(self) -> tuple[int, ...]:
        """Chunks per stored object along each axis (all 1 for chunked arrays)."""
        return tuple(u // c for u, c in zip(self.meta.storage_shape, self.meta.chunk_shape))

    @property
    def encoded_shape(self) -> tuple[int, ...]:
        """Bytes receiving one stored object's compressed chunks: one slot per chunk, large
        enough for any chunk Blosc may produce."""
        chunk = self.meta.chunk_shape
        slot = math.prod(chunk) * self.meta.dtype.itemsize + BLOSC_MAX_OVERHEAD
        per = tuple(min(p, n) for p, n in zip(self.per_object, tile_grid(self.row_shape, chunk)))
        return (*per, slot)

    def objects(self) -> int:
        """Stored objects per row."""
        counts = tile_grid(self.row_shape, self.meta.chunk_shape)
        return math.prod(-(-n // p) for n, p in zip(counts, self.per_object))


def new_levels(
    geometry: StreamGeometry,
    dtype: np.dtype,
    store: Store | None,
    released: threading.Condition,
) -> list[StreamLevel]:
    """Every level's metadata, writer (when ``store`` is given), row geometry and buffers
    (pools sharing the condition ``released``)."""
    compressed = geometry.properties.compression is not None
    local = (
        isinstance(store, SupportsLocalFiles)
        if store is not None
        else local_path(geometry.properties.uri) is not None
    )
    levels: list[StreamLevel] = []
    for i, (shape, axes) in enumerate(geometry.pyramid()):
        meta = geometry.level_meta(i, shape, 0, dtype)
        writer_meta = replace(meta, shape=(_WRITER_EXTENT, *meta.shape[1:]))
        path = geometry.level_path(i)
        writer = writer_for(store, path, writer_meta) if store is not None else None
        row_shape = (geometry.row_extent, *shape[1:])
        level = StreamLevel(meta, writer, axes, row_shape)  # type: ignore[arg-type]
        level.method = geometry.properties.downsampling_method
        if i == 0:
            queued = rows_in_flight(math.prod(level.tiles_shape) * dtype.itemsize, local)
        # Row buffers: one per row in flight, plus the row being filled at level 0. Padding
        # beyond the array's edges is never written and stays zero (the fill value).
        level.rows = BufferPool(level.tiles_shape, dtype, queued + (i == 0), released)
        if compressed:  # one per object in flight: at most one per pool thread
            limit = min(default_workers(), queued * level.objects())
            level.encoded = BufferPool(level.encoded_shape, np.uint8, limit, released)
        levels.append(level)
    return levels


def rows_in_flight(row_bytes: int, local: bool) -> int:
    """Rows written at once for rows of ``row_bytes`` at level 0 (to local disk when
    ``local``): :data:`MAX_PENDING_ROWS` small local rows, each on its own thread, or one row
    spread over the shared pool (writing it takes less time than filling the next, measured
    raw and compressed, so more buffers would only cost memory)."""
    return MAX_PENDING_ROWS if local and row_bytes <= INLINE_ROW_BYTES else 1


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
        if not _mean_of_planes(src, src_shape, axes, dst, dst_shape):
            coarsen_tiles(src, src_shape, axes, dst, dst_shape)
        return
    coarse = coarsen_array(from_tiles(src, src_shape), axes, method)
    copy_into_tiles(coarse, dst)


def _mean_of_planes(
    src: np.ndarray,
    src_shape: tuple[int, ...],
    axes: tuple[int, ...],
    dst: np.ndarray,
    dst_shape: tuple[int, ...],
) -> bool:
    """The 2x mean of a row of tiles halved along y and x only, tile by tile, each tile's
    leading axes merged into its y axis: one vectorised :func:`even_mean` per tile instead of
    one per plane of it (pairs of rows never straddle two planes, y being even). ``False``
    unless every size along y and x is a whole even number of chunks, the levels have the same
    chunks and every tile takes the fast path (no NaN); ``dst`` may then hold some tiles'
    means, and the caller writes all of it again."""
    ndim = len(src_shape)
    chunk = src.shape[ndim:]
    if (
        axes != (ndim - 2, ndim - 1)
        or dst.shape[ndim:] != chunk
        or any(src_shape[a] % (2 * chunk[a]) for a in axes)
        or tuple(dst_shape[a] * 2 for a in axes) != tuple(src_shape[a] for a in axes)
    ):
        return False
    cy, cx = chunk[-2:]
    # Rows per even_mean call: its scratch arrays stay small enough for malloc's heap, as
    # larger ones are mapped and unmapped each time (a page fault per page, every call).
    wide = 4 if src.dtype.itemsize <= 2 else 8  # the accumulator's item size
    step = max(2, 2 * (_MEAN_SCRATCH_BYTES // (cx * wide)))

    acc = _integer_accumulator(src.dtype)

    def reduce(index: tuple[int, ...]) -> bool:
        flat = src[index].reshape(-1, cx)
        half = thread_buffer((flat.shape[0] // 2, cx // 2), src.dtype, "stream mean")
        for r in range(0, flat.shape[0], step):
            block, out = flat[r : r + step], half[r // 2 : (r + step) // 2]
            if acc is not None:
                _integer_mean(block, out, acc)
            elif even_mean(block, (0, 1), out) is None:
                return False
        *lead, gy, gx = index
        at = (*lead, gy // 2, gx // 2)
        oy, ox = (gy % 2) * (cy // 2), (gx % 2) * (cx // 2)
        dst[at][..., oy : oy + cy // 2, ox : ox + cx // 2] = half.reshape(
            *chunk[:-2], cy // 2, cx // 2
        )
        return True

    return all(concurrent_map(reduce, list(np.ndindex(*src.shape[:ndim]))))


def _integer_accumulator(dtype: np.dtype) -> np.dtype | None:
    """The exact sum type of four integers of ``dtype`` (as
    :func:`~xzaro.writers.coarsen.even_mean` sums them), or ``None`` for other types."""
    if dtype.kind not in "iu" or dtype.itemsize > 4:
        return None
    return np.dtype(f"{'u' if dtype.kind == 'u' else 'i'}{4 if dtype.itemsize <= 2 else 8}")


def _integer_mean(block: np.ndarray, out: np.ndarray, acc: np.dtype) -> None:
    """The 2x2 mean of the integer plane ``block`` (even sizes) into ``out``, rounded half to
    even exactly as :func:`~xzaro.writers.coarsen.even_mean` rounds. Pairs of rows are added
    first, reading whole rows, then neighbours of the sums, which need no cast: a quarter of
    the time of adding neighbours first."""
    rows, cols = block.shape
    pairs = thread_buffer((rows // 2, cols), acc, "stream mean rows")
    np.add(block[0::2], block[1::2], out=pairs, dtype=acc)
    total = thread_buffer((rows // 2, cols // 2), acc, "stream mean sums")
    np.add(pairs[:, 0::2], pairs[:, 1::2], out=total)
    odd = thread_buffer(total.shape, acc, "stream mean odd")
    # round(total / 4), ties to even: (total + 1 + odd(total >> 2)) >> 2
    np.right_shift(total, 2, out=odd)
    np.bitwise_and(odd, 1, out=odd)
    total += 1
    total += odd
    total >>= 2
    np.copyto(out, total, casting="unsafe")


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
        Held while ``rows_written`` runs (the device's metadata lock).
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
        self._store_new = new_object_writer(store)
        self._lock, self._rows_written = lock, rows_written
        # Rows are written concurrently (one shard row is often a single stored object,
        # encoded on one thread); metadata only ever covers the contiguous prefix of rows.
        assert levels[0].rows is not None
        local = isinstance(store, SupportsLocalFiles)
        inline = rows_in_flight(levels[0].rows.nbytes, local) > 1
        name = _INLINE_THREADS if inline else "zarr-stream"
        self._executor = ThreadPoolExecutor(MAX_PENDING_ROWS, thread_name_prefix=name)
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
        try:
            first = index * self._row_extent // levels[0].meta.chunk_shape[0]
            tiles, below = buffer, levels[0]
            blocks: list[tuple[StreamLevel, np.ndarray, tuple[int, ...]]] = []
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
                blocks += object_blocks(level, tiles, first)
                below = level
            concurrent_map(lambda block: self._write_object(*block), blocks)
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
            _give_back(held)  # also after a failure: nobody may wait for them forever

    def _write_object(self, level: StreamLevel, tiles: np.ndarray, origin: tuple[int, ...]) -> None:
        """Encode and store the object held by ``tiles`` (its chunks, from grid ``origin``)."""
        pool = level.encoded
        buffer = pool.take() if pool is not None else None
        try:
            out = None
            if buffer is not None:  # an edge object has fewer chunks
                out = buffer[tuple(slice(0, n) for n in tiles.shape[: len(origin)])]
            self._store_new(level.writer.encode_tiles(tiles, origin, out))
        finally:
            if pool is not None and buffer is not None:
                pool.give(buffer)


def object_blocks(
    level: StreamLevel, tiles: np.ndarray, first: int
) -> list[tuple[StreamLevel, np.ndarray, tuple[int, ...]]]:
    """The stored objects of a row of ``level`` (``tiles``, starting at append-axis chunk
    ``first``): each one's level, chunks and chunk-grid origin."""
    ndim = len(level.row_shape)
    per, counts = level.per_object, tiles.shape[:ndim]
    blocks = []
    for start in itertools.product(*(range(0, n, p) for n, p in zip(counts, per))):
        index = tuple(slice(j, j + p) for j, p in zip(start, per))
        blocks.append((level, tiles[index], (first + start[0], *start[1:])))
    return blocks
