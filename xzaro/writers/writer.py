"""``Writer``, ``ChunkWriter`` and ``ShardWriter``: encode array blocks into stored objects.

A writer takes blocks aligned with its array's stored objects (chunks for ``ChunkWriter``,
shards for ``ShardWriter``), splits them into those objects, encodes each through the codec
layer on the shared thread pool, and writes them with one batched ``set_many``. Objects holding
only the fill value are not written (a missing object reads as the fill value); where objects may
already exist (writing into a stored array), such an object is deleted instead, so the old bytes
never survive. ``write_empty_chunks=True`` writes them like any other object.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, NamedTuple

import numpy as np

from xzaro.buffers import thread_buffer
from xzaro.codecs import CodecPipeline, pipeline_for
from xzaro.concurrency import concurrent_map
from xzaro.dtypes import fill_array, is_fill
from xzaro.errors import AlignmentError, brief
from xzaro.meta import ZaroMeta
from xzaro.stores.base import Parts, Store, SupportsLocalFiles


class _Tiles(NamedTuple):
    """A block given chunk by chunk (see :meth:`Writer.encode_tiles`)."""

    tiles: np.ndarray  # (*counts, *chunk_shape)
    first: tuple[int, ...]  # the grid index of tiles[0, ...]
    per: tuple[int, ...]  # chunks per stored object
    out: np.ndarray | None  # receives each chunk's encoded bytes


class Writer:
    """Owns chunking, compression through the codec layer, and writing for one array.

    Use :class:`ChunkWriter` or :class:`ShardWriter` (or :func:`writer_for`).

    Parameters
    ----------
    store, path
        Where the array lives.
    meta
        Its metadata (shape, dtype, chunk/shard shape, codecs, fill value, key encoding).
    write_empty_chunks
        Write objects that hold only the fill value instead of leaving them out.
    overwrite
        Objects may already exist (a write into a stored array): one that now holds only the
        fill value is deleted rather than left out, so its old bytes do not survive.
    """

    def __init__(
        self,
        store: Store,
        path: str,
        meta: ZaroMeta,
        *,
        write_empty_chunks: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.store = store
        self.path = path.strip("/")
        self.meta = meta
        self.write_empty_chunks = bool(write_empty_chunks)
        self.overwrite = bool(overwrite)
        self._init()

    def _init(self) -> None:
        self._grid = self.meta.storage_grid
        self._pipeline = pipeline_for(self.meta)
        # a rectilinear grid's stored objects differ in shape: one pipeline for each shape
        self._pipeline_for = functools.lru_cache(maxsize=None)(self._new_pipeline)
        self._fill = fill_array((), self.meta.dtype, self.meta.fill_value_or_default)

    def _new_pipeline(self, shape: tuple[int, ...]) -> CodecPipeline:
        if shape == self._pipeline.spec.shape:
            return self._pipeline
        meta = self.meta
        return CodecPipeline(meta.codecs, shape, meta.dtype, meta.fill_value_or_default)

    def __getstate__(self) -> dict:
        return {
            "store": self.store,
            "path": self.path,
            "meta": self.meta,
            "write_empty_chunks": self.write_empty_chunks,
            "overwrite": self.overwrite,
        }

    def __setstate__(self, state: dict) -> None:
        self.store, self.path, self.meta = state["store"], state["path"], state["meta"]
        self.write_empty_chunks = state.get("write_empty_chunks", False)
        self.overwrite = state.get("overwrite", False)
        self._init()

    @property
    def unit(self) -> tuple[int, ...]:
        """Shape of one stored object."""
        return self.meta.storage_shape

    def key(self, index: tuple[int, ...]) -> str:
        """Store key of the object at grid ``index``."""
        k = self.meta.chunk_key(index)
        return f"{self.path}/{k}" if self.path else k

    def check_aligned(self, origin: tuple[int, ...], shape: tuple[int, ...]) -> None:
        """Fail unless the block starts on object boundaries and ends on one or the array end."""
        for dim, (d, o, n) in enumerate(zip(self._grid.dimensions, origin, shape)):
            end = o + n
            if d.locate(o)[1] != o or (end != d.extent and d.locate(end)[1] != end):
                size = d.uniform_size()
                edges = size if size is not None else brief(d.to_json())
                raise AlignmentError(
                    f"block [{o}:{end}] of axis {dim} does not align with stored objects of "
                    f"{edges} along it (array size {d.extent}): writing it would split an object",
                    url=self.store.url,
                    key=self.path or "/",
                )

    def write_block(self, block: Any, origin: tuple[int, ...] | None = None) -> int:
        """Encode and store an aligned block; returns the number of objects written (with
        ``overwrite``, deleted fill-only objects count too)."""
        block = np.asarray(block)
        origin = tuple(origin or (0,) * self.meta.ndim)
        if block.dtype != self.meta.dtype:
            block = block.astype(self.meta.dtype)
        self.check_aligned(origin, block.shape)
        # per dimension: each object's index, its place in the block and its stored length
        per_dim = []
        for d, o, n in zip(self._grid.dimensions, origin, block.shape):
            spans = []
            for k in d.chunks_in(o, o + n):
                start, size = d.chunk_start(k) - o, d.chunk_size(k)
                spans.append((k, slice(start, min(start + size, n)), size))
            per_dim.append(spans)

        # Local files are written by the task that encoded them, while other tasks encode:
        # writes overlap encoding, and each object's memory is freed (and reused warm) at once.
        # Other stores get the objects in one concurrent batch (their requests in flight).
        each = isinstance(self.store, SupportsLocalFiles)

        def encode(
            spans: tuple[tuple[int, slice, int], ...],
        ) -> tuple[str, bytes | memoryview | Parts | None]:
            index, local, stored = zip(*spans) if spans else ((), (), ())
            key, data = self.key(index), self.encode_unit(block[local], shape=stored)
            if each and data is not None:
                self.store.set(key, data)
                return key, b""
            return key, data

        encoded = concurrent_map(encode, list(itertools.product(*per_dim)))
        items = [(key, data) for key, data in encoded if data is not None]
        if items and not each:
            self.store.set_many(items)
        if not self.overwrite:
            return len(items)
        stale = [key for key, data in encoded if data is None]
        concurrent_map(self.store.delete, stale)
        return len(items) + len(stale)

    def write_tiles(self, tiles: np.ndarray, first: tuple[int, ...]) -> int:
        """Encode and store a block given chunk by chunk; returns the number of objects written.

        ``tiles`` has shape ``(*counts, *meta.chunk_shape)``: ``tiles[i]`` is the chunk (the
        inner chunk of a sharded array) at grid index ``first + i``, C-contiguous and padded with
        the fill value beyond the array's end, so no chunk is copied before it is encoded. The
        block must cover whole stored objects, as for :meth:`write_block`.
        """
        items = self.encode_tiles(tiles, first)
        if items:
            self.store.set_many(items)
        return len(items)

    @property
    def copies_on_encode(self) -> bool:
        """Whether encoded objects are new memory (a compressor ran), so the block they came
        from may be reused before they are stored; uncompressed objects may be views of it."""
        return bool(self._pipeline.bytes_bytes)

    def encode_tiles(
        self, tiles: np.ndarray, first: tuple[int, ...], out: np.ndarray | None = None
    ) -> list[tuple[str, bytes | memoryview | Parts]]:
        """The ``(key, value)`` objects :meth:`write_tiles` stores (fill-only ones left out).

        ``out`` (uint8, shape ``(*counts, n)`` with ``n`` the chunk's size plus
        :data:`~xzaro.codecs.blosc.BLOSC_MAX_OVERHEAD`) may receive each chunk's encoded
        bytes, which the objects then refer to: a caller that reuses it saves an allocation per
        chunk."""
        ndim = self.meta.ndim
        counts, chunk = tiles.shape[:ndim], self.meta.chunk_shape
        if tiles.ndim != 2 * ndim or tiles.shape[ndim:] != chunk:
            raise ValueError(f"tiles of shape {tiles.shape} are not chunks of {chunk}")
        if tiles.dtype != self.meta.dtype:
            raise ValueError(f"tiles have dtype {tiles.dtype}, the array has {self.meta.dtype}")
        self.check_aligned(
            tuple(f * c for f, c in zip(first, chunk)),
            tuple(
                min(n * c, size - f * c)
                for n, c, f, size in zip(counts, chunk, first, self.meta.shape)
            ),
        )
        per = tuple(u // c for u, c in zip(self.unit, chunk))  # chunks per stored object
        objects = itertools.product(
            *(range(f // p, -(-(f + n) // p)) for f, n, p in zip(first, counts, per))
        )

        block = _Tiles(tiles, first, per, out)

        def encode(index: tuple[int, ...]) -> tuple[str, bytes | memoryview | Parts] | None:
            data = self._encode_tiles(block, index)
            return None if data is None else (self.key(index), data)

        return [item for item in concurrent_map(encode, list(objects)) if item is not None]

    def _encode_tiles(
        self, block: _Tiles, index: tuple[int, ...]
    ) -> bytes | memoryview | Parts | None:
        """Encode the stored object at grid ``index`` from the tiles (one chunk per object)."""
        at = tuple(i - f for i, f in zip(index, block.first))
        return self.encode_unit(block.tiles[at], None if block.out is None else block.out[at])

    def _padded(
        self, data: np.ndarray, shape: tuple[int, ...], contiguous: bool = True
    ) -> np.ndarray:
        data = np.asarray(data)  # a 0-d block indexes to a numpy scalar
        if data.shape == shape:
            if data.flags.c_contiguous or not contiguous:
                return data
            if self._pipeline.bytes_bytes and not data.dtype.hasobject:
                # A compressor returns new bytes, so the copy can live in a reused buffer.
                scratch = thread_buffer(data.shape, data.dtype, "encode")
                np.copyto(scratch, data)
                return scratch
            return np.ascontiguousarray(data)
        padded = fill_array(shape, self.meta.dtype, self.meta.fill_value_or_default)
        padded[tuple(slice(0, n) for n in data.shape)] = data
        return padded

    def _stored_unit(
        self, data: np.ndarray, shape: tuple[int, ...], contiguous: bool = True
    ) -> np.ndarray | None:
        """One stored object's data, padded with the fill value to the object's ``shape`` (and
        made C-contiguous unless ``contiguous`` is false), or ``None`` when it holds only the
        fill value and is left out."""
        data = self._padded(data, shape, contiguous)
        if not self.write_empty_chunks and is_fill(data, self._fill):
            return None
        return data

    def encode_unit(
        self,
        data: np.ndarray,
        out: np.ndarray | None = None,
        *,
        shape: tuple[int, ...] | None = None,
    ) -> bytes | memoryview | Parts | None:
        """Encode one stored object of ``shape`` (by default :attr:`unit`; edge objects come
        trimmed and are padded with the fill value); ``None`` when it holds only the fill value
        and is not written. ``out`` may receive the encoded bytes (see
        :meth:`CodecPipeline.encode`)."""
        shape = self.unit if shape is None else shape
        unit = self._stored_unit(data, shape)
        return None if unit is None else self._pipeline_for(shape).encode(unit, out)


class ChunkWriter(Writer):
    """Every chunk goes to its own object (V2 keys, or the V3 chunk key encoding)."""

    def __init__(self, store: Store, path: str, meta: ZaroMeta, **options: bool) -> None:
        if meta.sharding is not None:
            raise ValueError("a sharded array is written with ShardWriter")
        super().__init__(store, path, meta, **options)


class ShardWriter(Writer):
    """Inner chunks are encoded and concatenated into shard objects with a ``sharding_indexed``
    index; inner chunks holding only the fill value are not stored (2^64-1 in the index) and a
    shard holding only the fill value is not written."""

    def __init__(self, store: Store, path: str, meta: ZaroMeta, **options: bool) -> None:
        if meta.sharding is None:
            raise ValueError("ShardWriter needs an array whose only codec is sharding_indexed")
        super().__init__(store, path, meta, **options)

    def encode_unit(
        self,
        data: np.ndarray,
        out: np.ndarray | None = None,
        *,
        shape: tuple[int, ...] | None = None,
    ) -> bytes | memoryview | Parts | None:
        # ``out`` is not used: a whole shard's inner chunks get buffers through encode_tiles.
        shape = self.unit if shape is None else shape
        # not copied whole: each inner chunk is made contiguous on its own as it is encoded
        unit = self._stored_unit(data, shape, contiguous=False)
        if unit is None:
            return None
        # The shard's parts go to the store as they are: a local store writes them with one
        # writev, so a shard is never joined into one more copy in memory.
        sharding = self.meta.sharding
        assert sharding is not None  # checked in __init__
        return Parts(sharding.encode_parts(unit, self._pipeline_for(shape).spec))

    def _encode_tiles(
        self, block: _Tiles, index: tuple[int, ...]
    ) -> bytes | memoryview | Parts | None:
        sharding = self.meta.sharding
        assert sharding is not None  # checked in __init__
        tiles, first, per, out = block
        counts = tiles.shape[: self.meta.ndim]
        grid = self.meta.chunk_grid.grid_shape

        def tile_index(j: tuple[int, ...]) -> tuple[int, ...]:
            """Where inner chunk ``j`` of this shard sits in ``tiles`` (and ``out``)."""
            return tuple(i * p + k - f for i, p, k, f in zip(index, per, j, first))

        def inner_chunk(j: tuple[int, ...]) -> np.ndarray | None:
            at = tile_index(j)
            if any(a + f >= g for a, f, g in zip(at, first, grid)) or any(
                a < 0 or a >= n for a, n in zip(at, counts)
            ):
                return None  # beyond the array's end: not stored
            return tiles[at]

        def target(j: tuple[int, ...]) -> np.ndarray:
            assert out is not None
            return out[tile_index(j)]

        parts = sharding.encode_chunks(
            inner_chunk, self._pipeline.spec, None if out is None else target
        )
        return Parts(parts) if len(parts) > 1 else None  # only an index: every chunk is fill


def writer_for(store: Store, path: str, meta: ZaroMeta, **options: bool) -> Writer:
    """The writer that matches an array's layout; ``options`` are :class:`Writer`'s
    ``write_empty_chunks`` and ``overwrite``."""
    cls = ShardWriter if meta.sharding is not None else ChunkWriter
    return cls(store, path, meta, **options)
