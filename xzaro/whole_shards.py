"""Whole shards of small inner chunks, decoded in one pass.

Decoding a 1 KiB inner chunk takes microseconds; placing it in a read's output through the
general path (a piece, a scratch chunk, a strided copy) costs tens of microseconds of Python.
When a read needs every inner chunk of a shard, whole, :class:`WholeShards` decodes them one
after the other into one scratch buffer in the shard index's order and copies that buffer into
the output in a single strided pass, so a shard of 256 chunks of 16 x 16 costs one numpy copy
and 256 decoder calls instead of 256 placements.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xzaro.buffers import thread_buffer
from xzaro.codecs import batch_decode
from xzaro.concurrency import TINY_DECODE_BYTES, TINY_DECODES
from xzaro.dtypes import filler
from xzaro.errors import DecodeError
from xzaro.indexing import Box, ChunkPiece
from xzaro.meta import ZaroMeta

Index = tuple[int, ...]

#: Inner chunks up to this size are decoded this way.
SMALL_INNER_BYTES = 64 * 2**10
#: Largest shard decoded this way (its scratch buffer is kept per thread).
WHOLE_SHARD_BYTES = 8 * 2**20


class WholeShards:
    """The one-pass decode of whole shards of one array (see the module docstring).

    Parameters
    ----------
    meta
        The array's metadata (a sharded array).
    sharding
        Its sharding codec (``locate_index``).
    inner
        The pipeline of its inner chunks.
    """

    def __init__(self, meta: ZaroMeta, sharding: Any, inner: Any) -> None:
        self._meta = meta
        self._sharding = sharding
        self._inner = inner
        self._chunk_shape = tuple(meta.chunk_shape)
        self._fill = filler(meta.dtype, meta.fill_value_or_default)
        #: How many inner chunks a shard holds, where shards are decoded this way (else None).
        self.count: int | None = None
        self._per_shard: tuple[int, ...] = ()
        if not meta.storage_grid.is_regular or meta.dtype.hasobject:
            return
        shard_shape = meta.storage_grid.chunk_shape
        self._per_shard = tuple(s // c for s, c in zip(shard_shape, self._chunk_shape))
        itemsize = max(1, meta.dtype.itemsize)
        small = math.prod(self._chunk_shape) * itemsize <= SMALL_INNER_BYTES
        if small and math.prod(shard_shape) * itemsize <= WHOLE_SHARD_BYTES:
            self.count = math.prod(self._per_shard)

    def split(
        self, box: Box, out: np.ndarray, shard_of: Callable[[Index], Index]
    ) -> tuple[dict[Index, list[ChunkPiece]], dict[Index, np.ndarray]]:
        """The pieces of a read of ``box`` into ``out``, per shard (``shard_of`` maps an inner
        chunk to its shard), and the :meth:`destination` of each shard read whole.

        Where every shard the box touches is read whole, the inner chunks are never listed
        (a read of 16 shards of 256 inner chunks each made 4,096 pieces only to group them
        again): each shard's list of pieces is then empty and its destination is its piece
        of the shard grid.
        """
        dests = self._whole_destinations(box, out)
        if dests is not None:
            return {shard: [] for shard in dests}, dests
        by_shard: dict[Index, list[ChunkPiece]] = defaultdict(list)
        for piece in self._meta.chunk_grid.pieces(box):
            by_shard[shard_of(piece.chunk_index)].append(piece)
        dests = {}
        for shard, pieces in by_shard.items():
            dest = self.destination(pieces, out)
            if dest is not None:
                dests[shard] = dest
        return by_shard, dests

    def _whole_destinations(self, box: Box, out: np.ndarray) -> dict[Index, np.ndarray] | None:
        """Each shard's part of ``out`` where the box covers every shard it touches whole
        (with no edge cut off by the array's end), else ``None``."""
        points = box.points or ()
        if self.count is None or any(p is not None for p in points) or set(box.step) - {1}:
            return None
        shape = tuple(n * c for n, c in zip(self._per_shard, self._chunk_shape))
        dests: dict[Index, np.ndarray] = {}
        for piece in self._meta.storage_grid.pieces(box):
            if not piece.full or not piece.out:
                return None
            dest = out[piece.out]
            if dest.shape != shape:
                return None
            dests[piece.chunk_index] = dest
        return dests

    def destination(self, pieces: Sequence[ChunkPiece], out: np.ndarray) -> np.ndarray | None:
        """The part of ``out`` a shard fills when ``pieces`` are all its inner chunks, whole
        and of full size (then :meth:`place` applies), else ``None`` (a shard at the array's
        edge, a selection with steps, inner chunks too large)."""
        count, chunk_shape, per = self.count, self._chunk_shape, self._per_shard
        if count is None or len(pieces) != count or not all(p.full and p.out for p in pieces):
            return None
        starts = [min(p.out[d].start for p in pieces) for d in range(len(chunk_shape))]
        dest = out[tuple(slice(a, a + n * c) for a, n, c in zip(starts, per, chunk_shape))]
        return dest if dest.shape == tuple(n * c for n, c in zip(per, chunk_shape)) else None

    def place(
        self,
        data: Any,
        shard_shape: Sequence[int],
        dest: np.ndarray,
        *,
        url: str | None = None,
        key: str | None = None,
    ) -> int:
        """Decode the stored shard ``data`` (``None``: not stored) into ``dest``, its
        :meth:`destination`; the number of inner chunks missing.

        Raises
        ------
        DecodeError
            The shard's index or an inner chunk is corrupt (the caller names URL and key;
            ``url`` and ``key`` name the shard in the log).
        """
        count, chunk_shape, per = self.count, self._chunk_shape, self._per_shard
        assert count is not None
        if data is None:
            self._fill(dest)
            return count
        index = self._sharding.locate_index(data, tuple(shard_shape), url=url, key=key)
        dtype = self._meta.dtype
        scratch = thread_buffer((count, *chunk_shape), dtype, "shard")
        pipeline, view = self._inner, memoryview(data)
        flat = pipeline.decodes_in_place
        row_bytes = math.prod(chunk_shape) * dtype.itemsize
        tiny = (pipeline.spec.nbytes or 0) <= TINY_DECODE_BYTES
        missing = None
        if tiny and flat and len(pipeline.bytes_bytes) == 1 and batch_decode.available():
            rows = scratch.reshape(count, row_bytes // dtype.itemsize).view(np.uint8)
            missing = self._decode_batch(index, view, rows, scratch)
        if missing is None:
            # each inner chunk decoded by offset into its row of the scratch buffer
            decode_at = pipeline.flat_decoder(scratch.reshape(-1).view(np.uint8)) if flat else None
            missing = self._decode_each(index, view, scratch, decode_at, row_bytes, tiny)
        # the output seen as (grid, chunk) pairs per dimension, the scratch as (grid..., chunk...)
        ndim = len(chunk_shape)
        paired = dest.reshape([x for n, c in zip(per, chunk_shape) for x in (n, c)])
        order = [x for d in range(ndim) for x in (d, ndim + d)]
        paired[...] = scratch.reshape(*per, *chunk_shape).transpose(order)
        return missing

    def _decode_batch(
        self, index: Any, view: memoryview, rows: np.ndarray, scratch: np.ndarray
    ) -> int | None:
        """Every stored inner chunk decoded into its row of ``rows`` (uint8 rows of
        ``scratch``) in one call (:mod:`xzaro.codecs.batch_decode`); the number missing, or
        ``None`` where the frames are not ones decoded so (nothing is then taken as done)."""
        stored = index.stored()
        every = bool(stored.all())
        target = rows if every else np.empty((int(stored.sum()), rows.shape[1]), np.uint8)
        codec, entries = self._inner.bytes_bytes[0], index.entries[stored]
        if not batch_decode.decode_frames(codec, view, entries, rows.shape[1], target):
            return None
        if every:
            return 0
        rows[stored] = target
        for i in np.flatnonzero(~stored).tolist():
            self._fill(scratch[i])
        return len(stored) - len(target)

    def _decode_each(
        self,
        index: Any,
        view: memoryview,
        scratch: np.ndarray,
        decode_at: Any,
        row_bytes: int,
        tiny: bool,
    ) -> int:
        """Every inner chunk decoded on its own into its row of ``scratch``; the number
        missing."""
        pipeline, chunk_shape, dtype, missing = self._inner, self._chunk_shape, self._meta.dtype, 0
        with TINY_DECODES if tiny else contextlib.nullcontext():
            for i, where in enumerate(index.chunk_slices()):
                if where is None:
                    self._fill(scratch[i])
                    missing += 1
                    continue
                inner = view[where]
                if pipeline.encoded_size is not None and inner.nbytes != pipeline.encoded_size:
                    raise DecodeError(
                        f"chunk holds {inner.nbytes} bytes, expected {pipeline.encoded_size} "
                        f"for its shape {chunk_shape} and dtype {dtype}"
                    )
                if decode_at is not None:
                    decode_at(inner, i * row_bytes)
                else:
                    pipeline.decode(inner, scratch[i])
        return missing
