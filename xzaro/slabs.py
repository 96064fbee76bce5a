"""Large chunks decoded a few planes at a time into their place in a read's output.

A chunk that cannot be decoded straight into the output (a part of it is selected, or the
output's layout differs) would otherwise go through a scratch buffer of its full size, kept
per thread. Where the codecs can hand out the decoded bytes part by part (zstd, see
:meth:`~xzaro.codecs.pipeline.CodecPipeline.frame_reader`), a cache-sized slab is enough.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xzaro.buffers import thread_buffer
from xzaro.indexing import ChunkPiece

#: Chunks at least this large that cannot be decoded straight into the output are decoded a few
#: planes at a time (where the codecs allow it) rather than through a scratch chunk.
STREAM_BYTES = 4 * 2**20
#: The bytes decoded at a time when a chunk is taken apart plane by plane: a cache-sized part.
SLAB_BYTES = 256 * 2**10


def slices_only(local: tuple[Any, ...]) -> bool:
    """Whether a piece selects inside its chunk with slices only (no index arrays)."""
    return all(type(s) is slice for s in local)


def place_streamed(frames: Any, piece: ChunkPiece, dest: np.ndarray, spec: Any) -> None:
    """Decode a chunk a few planes (along its first dimension) at a time into a small reused
    buffer and copy the selected part of each into ``dest``; ``piece.local`` holds slices."""
    shape = spec.shape
    plane = math.prod(shape[1:]) * spec.dtype.itemsize
    step = max(1, min(shape[0], SLAB_BYTES // max(1, plane)))
    buffer = thread_buffer((step, *shape[1:]), spec.dtype, "slab")
    first, rest = piece.local[0], piece.local[1:]
    start, stop, stride = first.indices(shape[0])
    count = len(range(start, stop, stride))
    try:
        for z in range(0, shape[0], step):
            n = min(step, shape[0] - z)
            part = buffer[:n]
            frames.read_into(part)
            # the selected planes in [z, z + n): output rows lo..hi of dest
            lo = max(0, -(-(z - start) // stride))
            hi = min(count, -(-(z + n - start) // stride))
            if lo < hi:
                a = start + lo * stride - z
                dest[lo:hi] = part[(slice(a, a + (hi - lo - 1) * stride + 1, stride), *rest)]
    except BaseException:
        frames.close()
        raise
    frames.finish()
