"""``ZaroArray``: hyperslab reads over the chunk grid, V2 and V3, sharded or not.

A read finds the chunks its region covers, fetches them in one concurrent batch (for sharded
arrays: the shard indexes, then only the byte ranges of the inner chunks it needs; from local
files, each shard is read and decoded by one task), decodes them on the shared thread pool
straight into the output where the layout allows (a large zstd chunk the output cannot take
whole: a few planes at a time), and fills what is missing with the fill value. A missing chunk
is the only thing that reads as fill.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np

from xzaro.buffers import fresh_array, thread_buffer
from xzaro.chunk_grid import ShardGrid
from xzaro.codecs import CodecPipeline, pipeline_for
from xzaro.concurrency import concurrent_map, default_workers
from xzaro.dtypes import filler
from xzaro.errors import DecodeError, OutOfMemoryError, ZaroError
from xzaro.indexing import Box, ChunkPiece, plan_selection, region_box
from xzaro.local_chunks import LocalChunks
from xzaro.log import VerboseFlag
from xzaro.meta import ChunkInfo, ZaroMeta
from xzaro.read_ahead import ReadAhead
from xzaro.read_log import note_missing, summarized_read
from xzaro.shard_reader import ShardReader
from xzaro.slabs import STREAM_BYTES, place_streamed, slices_only
from xzaro.stores import prefetched
from xzaro.stores.base import Store, SupportsLocalReads, object_deliveries, object_reads
from xzaro.whole_shards import WholeShards

#: Stored bytes fetched per batch; bounds memory on very large reads.
BATCH_BYTES = 256 * 2**20


class _OrthogonalIndexer:
    """``a.oindex[...]``: every index array selects along its own dimension."""

    def __init__(self, array: ZaroArray) -> None:
        self.array = array

    def __getitem__(self, selection: Any) -> Any:
        plan = plan_selection(selection, self.array.shape, orthogonal=True)
        return plan.finish(self.array.read_box(plan.box))


class ZaroArray:
    """A Zarr array (V2 or V3) read through a :class:`~xzaro.stores.base.Store`.

    Use :func:`xzaro.open_array` to open one. Supports numpy indexing (integers, slices,
    ``...``, and integer or 1-D boolean arrays: one index array gives numpy's result, several
    select orthogonally, each along its own dimension, as :attr:`oindex` does), hyperslab
    reads (:meth:`read_region`) and chunk-wise access. Every read fetches each chunk it needs
    once, in one batch, whatever the order or repetitions of the indices.
    """

    def __init__(
        self, store: Store, meta: ZaroMeta, path: str = "", *, verbose: bool | VerboseFlag = False
    ) -> None:
        self.store = store
        #: Whether this array's reads log (``verbose=True`` on the open; see :mod:`xzaro.log`).
        self.verbose = VerboseFlag.of(verbose)
        self.meta = meta
        self.path = path.strip("/")
        self._prefix = f"{self.path}/" if self.path else ""
        self._read_ahead: ReadAhead | None = None
        self._object_read_ahead: ReadAhead | None = None
        # asked once: a runtime protocol check costs tens of microseconds per read
        self._local_reads = store if isinstance(store, SupportsLocalReads) else None
        self._get_objects = object_reads(store)
        self._deliver_objects = object_deliveries(store)
        self._init_codecs()

    def _init_codecs(self) -> None:
        meta = self.meta
        #: ``_key(index)``: the store key of the stored object at grid ``index``
        self._key = meta.chunk_key_encoding.keys_below(self._prefix)
        self._pipeline = pipeline_for(meta)
        self._fill = filler(meta.dtype, meta.fill_value_or_default)
        # one pipeline per stored shape where the grid's stored objects differ in shape
        self._pipelines: dict[tuple[int, ...], CodecPipeline] | None = None
        if not meta.storage_grid.is_regular:
            self._pipelines = {}
        self._local_chunks: LocalChunks | None = None
        if self._local_reads is not None:
            self._local_chunks = LocalChunks(
                self.store,
                meta,
                self._prefix,
                self._key,
                self._pipeline_of,
                self._place,
                self._decode_error,
            )
        sharding = meta.sharding
        self._sharding: Any = sharding
        if sharding is not None:
            self._inner = sharding.inner_pipeline(meta.dtype, meta.fill_value_or_default)
            self._shards = ShardGrid(meta.storage_grid, meta.chunk_shape)
            self._whole = WholeShards(meta, sharding, self._inner)
            self._shard_reader = ShardReader(self.store, sharding, self._shards, self._key)

    def __getstate__(self) -> dict[str, Any]:
        state = {"store": self.store, "meta": self.meta, "path": self.path}
        return {**state, "read_ahead": self._read_ahead is not None, "verbose": self.verbose}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["store"], state["meta"], state["path"], verbose=state.get("verbose", False)
        )
        if state.get("read_ahead"):
            self.enable_read_ahead()

    def enable_read_ahead(self) -> None:
        """Fetch the neighbours of the chunks small reads need, for the small reads that follow
        (many Dask tasks of one chunk each on a remote store; see :mod:`xzaro.read_ahead`)."""
        if self._read_ahead is None:
            self._read_ahead = ReadAhead(self)
        if (
            self._object_read_ahead is None
            and self._sharding is not None
            and self._local_reads is None
            and self.meta.storage_grid.is_regular
        ):  # Dask tasks of one shard each: their neighbouring shards
            self._object_read_ahead = ReadAhead(self, objects=True)

    @property
    def reads_ahead(self) -> bool:
        """Whether small reads fetch their neighbours ahead (:meth:`enable_read_ahead`)."""
        return self._read_ahead is not None

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """The store URL and, after ``#``, the array's path inside it."""
        return self.store.url + (f"#{self.path}" if self.path else "")

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return self.meta.shape

    @property
    def dtype(self) -> np.dtype:
        """The array's numpy dtype."""
        return self.meta.dtype

    @property
    def chunks(self) -> tuple[int | tuple[int, ...], ...]:
        """The chunk shape (for sharded arrays, the inner chunk shape).

        For a rectilinear grid of chunks, per dimension the chunk size where the chunks are of
        one size, else the size of every chunk inside the array (as xarray's ``chunks``
        encoding and Dask spell them).
        """
        grid = self.meta.chunk_grid
        return self.meta.chunk_shape if grid.is_regular else grid.compact_sizes()

    @property
    def shards(self) -> tuple[int | tuple[int, ...], ...] | None:
        """The shard shape of a sharded array (per dimension as :attr:`chunks` for a
        rectilinear grid of shards), else ``None``."""
        grid = self.meta.storage_grid
        if self.meta.shard_shape is None or grid.is_regular:
            return self.meta.shard_shape
        return grid.compact_sizes()

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.meta.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.meta.shape)

    @property
    def nbytes(self) -> int:
        """Uncompressed size in bytes."""
        return self.meta.nbytes

    @property
    def fill_value(self) -> Any:
        """The fill value (``None`` for a V2 ``null``)."""
        return self.meta.fill_value

    @property
    def attrs(self) -> dict[str, Any]:
        """The user attributes."""
        return self.meta.attributes

    @property
    def dimension_names(self) -> tuple[str | None, ...] | None:
        """Names of the dimensions, or ``None``."""
        return self.meta.dimension_names

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        meta = self.meta
        shards = f", shards={meta.storage_grid.describe()}" if meta.shard_shape else ""
        return (
            f"<ZaroArray {self.url} shape={self.shape} dtype={self.dtype} "
            f"chunks={meta.chunk_grid.describe()}{shards} v{meta.zarr_format}>"
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out: np.ndarray = self[...]
        return out if dtype is None else out.astype(dtype)

    # ------------------------------------------------------------------ reading
    def __getitem__(self, selection: Any) -> Any:
        """``a[0, 10:20]``, ``a[[3, 1, 3]]``, ``a[:, mask]``: numpy's result for basic indices
        and one index array; several index arrays select orthogonally (see :attr:`oindex`).

        Raises
        ------
        IndexError
            For out-of-range indices, masks of the wrong length and unsupported index types.
        """
        plan = plan_selection(selection, self.shape, orthogonal=False)
        return plan.finish(self.read_box(plan.box))

    @property
    def oindex(self) -> _OrthogonalIndexer:
        """Orthogonal (outer) indexing, as zarr-python's ``oindex``: integer arrays, lists and
        1-D boolean masks select along each dimension independently, so
        ``a.oindex[[0, 5], :, [1, 2]]`` has shape ``(2, n, 2)``."""
        return _OrthogonalIndexer(self)

    def read_region(
        self, start: Sequence[int] | None = None, count: Sequence[int | None] | None = None
    ) -> np.ndarray:
        """Read a hyperslab: 0-based ``start`` and ``count`` per dimension (``None`` = to end)."""
        return self.read_box(region_box(start, count, self.shape))

    @summarized_read
    def read_box(self, box: Box, out: np.ndarray | None = None) -> np.ndarray:
        """Read a strided box into a new array (or into ``out``).

        Raises
        ------
        OutOfMemoryError
            The result, or a chunk the read must decode, does not fit in memory.
        """
        try:
            decoded = (self._pipeline if self._sharding is None else self._inner).spec.nbytes
            if max(math.prod(box.shape) * self.dtype.itemsize, decoded or 0) > sys.maxsize:
                raise MemoryError(f"more than the {sys.maxsize} bytes an array can hold")
            if out is None:
                out = fresh_array(box.shape, self.dtype)
            if out.size == 0:
                return out
            if self._read_ahead is not None and self._read_small(box, out):
                return out
            if self._sharding is None:
                self._read_chunks(box, out)
            else:
                self._read_sharded(box, out)
        except MemoryError as e:
            if isinstance(e, ZaroError):
                raise
            nbytes = int(np.prod(box.shape, dtype=object)) * self.dtype.itemsize
            raise OutOfMemoryError(
                f"reading a selection of shape {box.shape} ({nbytes} bytes, in chunks of "
                f"{self.meta.chunk_shape}) does not fit in memory: {e}",
                url=self.url,
                key=self.path or None,
            ) from None
        return out

    def _pipeline_of(self, index: tuple[int, ...]) -> CodecPipeline:
        """The pipeline decoding the stored object at grid ``index`` (on a rectilinear grid the
        objects differ in shape; one pipeline per shape)."""
        if self._pipelines is None:
            return self._pipeline
        shape = self.meta.storage_grid.stored_shape(index)
        pipeline = self._pipelines.get(shape)
        if pipeline is None:
            meta = self.meta
            pipeline = CodecPipeline(meta.codecs, shape, meta.dtype, meta.fill_value_or_default)
            self._pipelines[shape] = pipeline
        return pipeline

    def _decode_error(self, e: ZaroError, key: str) -> ZaroError:
        return type(e)(e.message, url=self.store.url, key=key, field=e.field)

    def _place(
        self, data: Any, piece: ChunkPiece, out: np.ndarray, pipeline: Any, key: str
    ) -> None:
        """Decode one stored chunk into its place in ``out`` (fill if ``data`` is None)."""
        dest = out[piece.out] if piece.out else out[...]
        if data is None:
            self._fill(dest)
            return
        spec = pipeline.spec
        try:
            size = memoryview(data).nbytes
            if pipeline.encoded_size is not None and size != pipeline.encoded_size:
                # checked before any buffer of the chunk's size is allocated
                raise DecodeError(
                    f"chunk holds {size} bytes, expected {pipeline.encoded_size} for its shape "
                    f"{spec.shape} and dtype {spec.dtype}"
                )
            if piece.full and dest.shape == spec.shape and dest.flags.c_contiguous:
                pipeline.decode(data, dest)
                return
            if pipeline.streams and spec.nbytes >= STREAM_BYTES and slices_only(piece.local):
                frames = pipeline.frame_reader(data)
                if frames is not None:
                    place_streamed(frames, piece, dest, spec)
                    return
            if pipeline.decodes_in_place:
                chunk = pipeline.decode(data, thread_buffer(spec.shape, spec.dtype))
            else:
                chunk = pipeline.decode(data)
        except DecodeError as e:
            raise self._decode_error(e, key) from e
        dest[...] = piece.take(chunk)

    def _read_chunks(self, box: Box, out: np.ndarray) -> None:
        pipeline = self._pipeline  # the largest stored object's, for the batch size
        if self._local_chunks is not None:
            note_missing(self._local_chunks.read(box, out, pipeline))
            return
        pieces = list(self.meta.storage_grid.pieces(box))
        keys = [self._key(p.chunk_index) for p in pieces]
        place = self._place_stored(out)
        missing: list[int] = []

        def take(lo: int, i: int, data: Any) -> None:
            if data is None:
                missing.append(lo + i)
            place((data, pieces[lo + i], keys[lo + i]))

        step = max(1, BATCH_BYTES // max(1, pipeline.spec.nbytes or 1))
        for lo in range(0, len(pieces), step):
            self._deliver_objects(keys[lo : lo + step], partial(take, lo))
        note_missing(len(missing))

    def _read_sharded(self, box: Box, out: np.ndarray) -> None:
        by_shard, dests = self._whole.split(box, out, self._shards.shard_of)
        if self._local_reads is not None:
            note_missing(self._read_local_shards(by_shard, dests, out))
            return
        # whole shards in one request each; partial ones: their index, then the ranges
        whole, partial = [], []
        for s in by_shard:
            if s in dests or self._shard_reader.fetches_whole(s, len(by_shard[s])):
                whole.append(s)
            else:
                partial.append(s)

        # Fetch partial shards' indexes and inner-chunk ranges first (two batched requests);
        # their decode jobs then run in the same parallel phase as the whole shards.
        jobs = self._partial_shard_jobs(partial, by_shard) if partial else []
        missing = sum(job[0] is None for job in jobs)
        place = self._place_inner(out)
        step = max(1, BATCH_BYTES // max(1, self._sharding_bytes_estimate()))
        for lo in range(0, max(1, len(whole)), step):
            batch = whole[lo : lo + step]
            keys = [self._key(s) for s in batch]
            # with a shard per thread, each is decoded as it comes in and its body let go of
            take, missed = self._shard_taker(batch, keys, by_shard, dests, jobs, place)
            if batch and self._object_read_ahead is not None:
                entries = [(self.store.url, k, None) for k in keys]
                datas = self._object_read_ahead.encoded(batch, entries)
                concurrent_map(lambda i: take(i, datas[i]), range(len(batch)))  # noqa: B023
            elif batch:
                self._deliver_objects(keys, take)
            concurrent_map(place, jobs)
            missing += sum(missed)
            jobs = []
        note_missing(missing)

    def _shard_taker(
        self,
        batch: list[tuple[int, ...]],
        keys: list[str],
        by_shard: dict[tuple[int, ...], list[ChunkPiece]],
        dests: dict[tuple[int, ...], np.ndarray],
        jobs: list[tuple[Any, ChunkPiece, str]],
        place: Any,
    ) -> tuple[Callable[[int, Any], None], list[int]]:
        """``take(i, data)`` for the whole shards ``batch``, and the list it adds each shard's
        count of missing inner chunks to: it decodes shard ``i`` into its destination, or its
        pieces where there is a shard for every thread (else adds them to ``jobs``)."""
        streamed = len(batch) >= default_workers()
        missed: list[int] = []

        def take(i: int, data: Any) -> None:
            if (dest := dests.get(batch[i])) is not None:
                missed.append(self._place_whole_shard(batch[i], keys[i], data, dest))
                return
            shard_jobs = self._shard_jobs(batch[i], keys[i], data, by_shard[batch[i]])
            missed.append(sum(job[0] is None for job in shard_jobs))
            if not streamed:
                jobs.extend(shard_jobs)
                return
            for job in shard_jobs:
                place(job)

        return take, missed

    def _local_shard_jobs(
        self, shard: tuple[int, ...], pieces: list[ChunkPiece]
    ) -> list[tuple[Any, ChunkPiece, str]]:
        """Each piece of a shard in local files with its inner chunk's bytes (None: fill): the
        whole shard in one read where the pieces need all of it, else its index and then only
        their inner chunks, with the shard open once."""
        assert self._local_reads is not None
        key = self._key(shard)
        if self._shard_reader.fetches_whole(shard, len(pieces)):
            return self._shard_jobs(shard, key, self._local_reads.get_pooled(key), pieces)
        inner = self._shard_reader.inner_of_local(shard, [p.chunk_index for p in pieces])
        return [(d, p, key) for d, p in zip(inner, pieces)]

    def _read_local_shards(
        self,
        by_shard: dict[tuple[int, ...], list[ChunkPiece]],
        dests: dict[tuple[int, ...], np.ndarray],
        out: np.ndarray,
    ) -> int:
        """Read the pieces of every shard from local files (reads release the GIL, so each
        worker reads its own); the number of inner chunks missing."""
        place = self._place_inner(out)
        shards = list(by_shard)

        def whole(shard: tuple[int, ...]) -> int | None:
            """The shard decoded in one pass where it can be (see _place_whole_shard)."""
            dest = dests.get(shard)
            if dest is None:
                return None
            assert self._local_reads is not None
            key = self._key(shard)
            return self._place_whole_shard(shard, key, self._local_reads.get_pooled(key), dest)

        if len(shards) > 1 and len(shards) >= default_workers():
            # Enough shards to keep every thread busy: one task per shard, which reads it and
            # decodes its chunks as it goes (a whole shard in a pooled buffer: no fresh memory).
            def run(shard: tuple[int, ...]) -> int:
                placed = whole(shard)
                if placed is not None:
                    return placed
                jobs = self._local_shard_jobs(shard, by_shard[shard])
                for job in jobs:
                    place(job)
                return sum(job[0] is None for job in jobs)

            return sum(concurrent_map(run, shards))
        # Fewer shards than threads: read them here, decode their inner chunks in parallel.
        missing = 0
        jobs = []
        for shard in shards:
            placed = whole(shard)
            if placed is None:
                jobs.extend(self._local_shard_jobs(shard, by_shard[shard]))
            else:
                missing += placed
        concurrent_map(place, jobs)
        return missing + sum(job[0] is None for job in jobs)

    def _read_small(self, box: Box, out: np.ndarray) -> bool:
        """Read a box of fewer chunks than a read-ahead group through the read-ahead; False
        (nothing read) for a larger box, which is one batch of requests anyway."""
        assert self._read_ahead is not None
        sharded = self._sharding is not None
        grid = self.meta.chunk_grid if sharded else self.meta.storage_grid
        if math.prod(map(len, grid.touched(box))) >= self._read_ahead.group_chunks:
            return False
        pieces = list(grid.pieces(box))
        chunks = [p.chunk_index for p in pieces]
        entries = [self.entry_of(c) for c in chunks]
        datas = self._read_ahead.encoded(chunks, entries)
        note_missing(sum(d is None for d in datas))
        for piece, data, (_, key, _) in zip(pieces, datas, entries):
            pipeline = self._inner if sharded else self._pipeline_of(piece.chunk_index)
            self._place(data, piece, out, pipeline, key)
        return True

    def shard_of(self, chunk: tuple[int, ...]) -> tuple[int, ...]:
        """The shard holding inner chunk ``chunk`` of a sharded array."""
        return self._shards.shard_of(chunk)

    def entry_of(self, chunk: tuple[int, ...]) -> prefetched.EntryKey:
        """Where the stored bytes of ``chunk`` (an inner chunk of a sharded array) live:
        ``(store URL, key, position in the shard or None)``."""
        if self._sharding is None:
            return (self.store.url, self._key(chunk), None)
        shard = self._shards.shard_of(chunk)
        return (self.store.url, self._key(shard), self._shards.position(chunk, shard))

    def object_entry(self, index: tuple[int, ...]) -> prefetched.EntryKey:
        """Where the stored object (a shard of a sharded array) at ``index`` lives."""
        return (self.store.url, self._key(index), None)

    def fetch_objects(self, indices: Sequence[tuple[int, ...]]) -> list[Any]:
        """The stored objects at ``indices`` of the storage grid, whole, in one batch."""
        return list(self._get_objects([self._key(i) for i in indices]))

    def fetch_encoded(self, chunks: Sequence[tuple[int, ...]]) -> list[Any]:
        """The stored bytes of each of ``chunks`` (inner chunks of a sharded array), ``None``
        where never written, fetched in one batch: for a sharded array, whole shards where
        half or more of a shard is asked for, else the shard indexes and then the ranges."""
        if self._sharding is None:
            return list(self._get_objects([self._key(c) for c in chunks]))
        return self._shard_reader.fetch(chunks)

    def _place_stored(self, out: np.ndarray) -> Any:
        def place(job: tuple[Any, ChunkPiece, str]) -> None:
            self._place(job[0], job[1], out, self._pipeline_of(job[1].chunk_index), job[2])

        return place

    def _place_inner(self, out: np.ndarray) -> Any:
        def place(job: tuple[Any, ChunkPiece, str]) -> None:
            self._place(job[0], job[1], out, self._inner, job[2])

        return place

    def _place_whole_shard(
        self, shard: tuple[int, ...], key: str, data: Any, dest: np.ndarray
    ) -> int:
        """:meth:`WholeShards.place` of ``shard`` into ``dest``, errors named."""
        try:
            shard_shape = self._shards.shard_shape(shard)
            return self._whole.place(data, shard_shape, dest, url=self.store.url, key=key)
        except DecodeError as e:
            raise self._decode_error(e, key) from e

    def _shard_jobs(
        self, shard: tuple[int, ...], key: str, data: Any, pieces: list[ChunkPiece]
    ) -> list[tuple[Any, ChunkPiece, str]]:
        """Pair each piece with its inner chunk's bytes inside a whole shard (None: fill)."""
        inner = self._shard_reader.inner_of_whole(shard, key, data, [p.chunk_index for p in pieces])
        return [(d, p, key) for d, p in zip(inner, pieces)]

    def _sharding_bytes_estimate(self) -> int:
        return math.prod(self.meta.storage_grid.chunk_shape) * max(1, self.dtype.itemsize)

    def _partial_shard_jobs(
        self,
        shards: list[tuple[int, ...]],
        by_shard: dict[tuple[int, ...], list[ChunkPiece]],
    ) -> list[tuple[Any, ChunkPiece, str]]:
        """Fetch the indexes of ``shards``, then only the inner chunks the pieces need."""
        inner = self._shard_reader.inner_of_partial(
            shards, {s: [p.chunk_index for p in by_shard[s]] for s in shards}
        )
        jobs: list[tuple[Any, ChunkPiece, str]] = []
        for shard in shards:
            key = self._key(shard)
            jobs.extend((d, p, key) for d, p in zip(inner[shard], by_shard[shard]))
        return jobs

    # ------------------------------------------------------------------ chunk access
    def chunk_info(self) -> ChunkInfo:
        """The array's chunk layout (for a rectilinear grid, the largest chunk and shard)."""
        return self.meta.chunk_info()

    def read_chunk(self, index: Sequence[int]) -> np.ndarray:
        """The chunk at grid ``index`` (inner chunk for sharded arrays), trimmed to the array.

        Raises
        ------
        IndexError
            For an index outside the chunk grid.
        """
        grid = self.meta.chunk_grid
        return self.read_box(grid.chunk_box(grid.check_chunk(index)))

    def iter_chunks(self) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
        """Yield ``(chunk_index, data)`` for every chunk in C order, one stored object per batch."""
        stored, chunks = self.meta.storage_grid, self.meta.chunk_grid
        for unit_index in itertools.product(*(range(g) for g in stored.grid_shape)):
            region = stored.chunk_region(unit_index)
            block = self.read_box(stored.chunk_box(unit_index))
            for index in chunks.chunks_in(region):
                local = tuple(
                    slice(c.start - r.start, c.stop - r.start)
                    for c, r in zip(chunks.chunk_region(index), region)
                )
                yield index, block[local]
