"""Reads of an unsharded array's chunks from local files.

Local files are read without a batch: each chunk is opened, read into the thread's reusable
buffer and decoded at once. Chunks of up to :data:`SERIAL_CHUNK_BYTES` (decoded) are read one
after the other on the caller's thread, larger ones by the shared pool. A read of many small
chunks is bound by the Python around each one (an array of 100,000 chunks of 256 B), so where
a box's whole chunks each fill one contiguous run of the output, the serial loop decodes them
straight into their bytes of the output, found by offset, without a view of the output per
chunk; the other chunks (cut by the box or the array's end) go through the general placement.
Directory listings rule out the chunks a mostly unwritten array lacks
(:mod:`xzaro.chunk_presence`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from xzaro.chunk_presence import absent_chunks
from xzaro.codecs import CodecPipeline
from xzaro.concurrency import TINY_DECODE_BYTES, TINY_DECODES, concurrent_map
from xzaro.errors import DecodeError, ZaroError
from xzaro.indexing import Box, ChunkPiece
from xzaro.meta import ZaroMeta

#: Local chunks that decode to at most this many bytes are read one after the other on the
#: caller's thread, under :data:`~xzaro.concurrency.TINY_DECODES`: two threads trading the GIL
#: every few microseconds lose to one (100,000 chunks of 256 B: about 1.1 s on two threads,
#: 0.9 s on one).
SERIAL_CHUNK_BYTES = TINY_DECODE_BYTES

#: ``place(data, piece, out, pipeline, key)``: decode one stored chunk (fill if ``data`` is
#: ``None``) into its place in ``out``.
Place = Callable[[Any, ChunkPiece, np.ndarray, CodecPipeline, str], None]


class LocalChunks:
    """Reads of the chunks of one unsharded array from a store with local reads.

    Parameters
    ----------
    store
        The store (``get_transient``, ``list_dir``).
    meta
        The array's metadata.
    prefix
        The array's path in the store and ``/`` (``""`` at the root).
    key
        The store key of the chunk at a grid index.
    pipeline_of
        The pipeline decoding the chunk at a grid index.
    place
        The general placement of one chunk (:data:`Place`).
    decode_error
        The error of a chunk that did not decode, given the decoder's error and the key.
    """

    def __init__(
        self,
        store: Any,
        meta: ZaroMeta,
        prefix: str,
        key: Callable[[tuple[int, ...]], str],
        pipeline_of: Callable[[tuple[int, ...]], CodecPipeline],
        place: Place,
        decode_error: Callable[[ZaroError, str], ZaroError],
    ) -> None:
        self._store = store
        self._meta = meta
        self._prefix = prefix
        self._key = key
        self._pipeline_of = pipeline_of
        self._place = place
        self._decode_error = decode_error

    def read(self, box: Box, out: np.ndarray, pipeline: CodecPipeline) -> int:
        """Read the chunks ``box`` covers into ``out`` (of the box's shape); the number of
        chunks missing (read as fill). ``pipeline`` is the largest chunk's."""
        absent = absent_chunks(self._store, self._meta, box, self._prefix)
        get, key, pipeline_of, place = (
            self._store.get_transient,
            self._key,
            self._pipeline_of,
            self._place,
        )

        def read_one(piece: ChunkPiece) -> bool:
            index = piece.chunk_index
            k = key(index)
            data = None if absent is not None and absent(index) else get(k)
            place(data, piece, out, pipeline_of(index), k)
            return data is None

        pieces = self._meta.storage_grid.pieces(box)
        if (pipeline.spec.nbytes or 0) > SERIAL_CHUNK_BYTES:
            # local reads release the GIL: each worker reads and decodes its own chunk
            return sum(concurrent_map(read_one, list(pieces)))
        with TINY_DECODES:  # one thread at a time: see TINY_DECODES
            return self._read_serially(box, out, pipeline, pieces, absent, read_one)

    def _read_serially(
        self,
        box: Box,
        out: np.ndarray,
        pipeline: CodecPipeline,
        pieces: Iterator[ChunkPiece],
        absent: Callable[[tuple[int, ...]], bool] | None,
        read_one: Callable[[ChunkPiece], bool],
    ) -> int:
        """Read small chunks one after the other on this thread; the number missing."""
        get, key, place = self._store.get_transient, self._key, self._place
        offsets = self._whole_offsets(box, out, pipeline)
        if offsets is None:
            # one piece at a time: 100,000 held at once cost the garbage collector dearly
            return sum(map(read_one, pieces))

        decode = pipeline.flat_decoder(out.reshape(-1).view(np.uint8))
        missing = 0
        for piece, at in zip(pieces, offsets):
            index = piece.chunk_index
            k = key(index)
            data = None if absent is not None and absent(index) else get(k)
            if data is None or at < 0:
                missing += data is None
                place(data, piece, out, pipeline, k)
                continue
            try:
                decode(data, at)
            except DecodeError as e:
                raise self._decode_error(e, k) from e
        return missing

    def _whole_offsets(
        self, box: Box, out: np.ndarray, pipeline: CodecPipeline
    ) -> Iterator[int] | None:
        """Each piece's byte offset in ``out`` where it is a whole chunk (negative where it
        is not), or ``None`` where whole chunks cannot be decoded into ``out`` by offset: a
        rectilinear grid, a chain that does not decode in place, or a chunk that is no
        contiguous run of ``out``."""
        grid = self._meta.storage_grid
        if not (
            grid.is_regular and pipeline.decodes_in_place and out.ndim and out.flags.c_contiguous
        ):
            return None
        chunk = grid.chunk_shape
        # a chunk is a contiguous run of out if it spans out's whole extent along every
        # dimension after its first one longer than 1
        first = next((d for d, n in enumerate(chunk) if n > 1), len(chunk))
        if any(chunk[d] != out.shape[d] for d in range(first + 1, len(chunk))):
            return None
        return grid.whole_offsets(box, out.strides)
