"""Many small zstd or Blosc-zstd frames of one buffer decoded in one call.

A shard of 256 inner chunks of 1 KiB costs about 9 us of Python per chunk when each is
decoded alone, and every one of those decodes lets go of the GIL for a moment: two threads
decoding shards then trade the GIL at every chunk. zstandard's C backend decodes a list of
frames in one call (``ZstdDecompressor.multi_decompress_to_buffer``, the GIL released for the
whole list, each frame held to its expected size), so a shard's inner chunks become one call
and, for Blosc, a few array operations: the headers of all frames read at once, their zstd
streams handed over together, and one unshuffle of every chunk.

Only frames laid out the one simple way are taken — a plain zstd frame; or a Blosc 1 frame of
one whole, unsplit block holding one zstd stream, every frame with the same shuffle and type
size — and :func:`decode_frames` declines anything else (the caller then decodes frame by
frame, which reads every layout and names what is wrong with a corrupt one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import zstandard

    _MULTI = hasattr(zstandard.ZstdDecompressor, "multi_decompress_to_buffer")
except ImportError:  # pragma: no cover - exercised where zstandard is not installed
    zstandard = None  # type: ignore[assignment]
    _MULTI = False

from xzaro.codecs.blosc import BloscCodec
from xzaro.codecs.blosc_zstd import (
    NOT_DECODED_HERE,
    SHUFFLE,
    ZSTD_FORMAT,
    ZSTD_VERSIONS,
    splits,
)
from xzaro.codecs.zstd import ZstdCodec

#: The header of a Blosc 1 frame, its one block start and its one stream's length.
_BLOSC_PREFIX = 24


def available() -> bool:
    """Whether zstandard's C backend is there to decode frames in one call."""
    return _MULTI


def decode_frames(codec: Any, data: Any, entries: np.ndarray, size: int, out: np.ndarray) -> bool:
    """Decode the frames ``data[offset : offset + length]`` of ``entries`` (rows of
    ``(offset, length)``, inside ``data``) of the bytes->bytes ``codec`` into the rows of
    ``out`` (uint8, ``(len(entries), size)``); ``False``, with ``out`` in any state, where the
    codec or a frame's layout is not one decoded here or a frame does not decode to ``size``
    bytes (then decode them one by one)."""
    if (
        not _MULTI
        or not len(entries)
        or out.shape != (len(entries), size)
        or out.dtype != np.uint8
        or not out.flags.c_contiguous
    ):
        return False
    starts, lengths = entries[:, 0], entries[:, 1]
    size_of_data = memoryview(data).nbytes
    if (starts > size_of_data).any() or (lengths > size_of_data - starts).any():
        return False  # a frame reaching past the data
    if isinstance(codec, ZstdCodec):
        return _decode(data, starts, lengths, size, out)
    if isinstance(codec, BloscCodec):
        return _decode_blosc(data, starts, lengths, size, out)
    return False


def _decode(data: Any, starts: np.ndarray, lengths: np.ndarray, size: int, out: Any) -> bool:
    """The zstd frames at ``starts`` of ``lengths`` decoded into the rows of ``out``."""
    if not _whole_frames(np.frombuffer(data, np.uint8), starts, lengths):
        return False
    segments = np.empty((len(starts), 2), "<u8")
    segments[:, 0], segments[:, 1] = starts, lengths
    sizes = np.full(len(starts), size, "<u8")
    frames = None  # holds a view of data: let go of before this returns or raises
    try:
        frames = zstandard.BufferWithSegments(data, segments.tobytes())
        decoded = zstandard.ZstdDecompressor().multi_decompress_to_buffer(
            frames, decompressed_sizes=sizes.tobytes(), threads=0
        )
        # each frame held to its size: all of them together fill out exactly
        if decoded.size() != out.nbytes:
            return False
        flat = out.reshape(-1)
        parts: list[Any] = [decoded[i] for i in range(len(decoded))]
        flat[:] = np.frombuffer(b"".join(parts), np.uint8)
    except (zstandard.ZstdError, ValueError, TypeError):
        return False
    finally:
        del frames
    return True


#: The four bytes that open a zstd frame, read as a little-endian integer.
_ZSTD_MAGIC = 0xFD2FB528
#: Bytes of the frame content size by its flag (flag 0: one byte in a single-segment frame).
_CONTENT_SIZE_BYTES = np.array([0, 2, 4, 8])
_DICTIONARY_ID_BYTES = np.array([0, 1, 2, 4])


def _whole_frames(raw: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether each segment ``raw[start : start + length]`` is exactly one zstd frame of one
    block, with nothing after it. ``multi_decompress_to_buffer`` decodes the first frame of a
    segment and ignores the bytes after it, which a frame decoded alone would refuse; frames
    of more than one block (never a tiny chunk's) are declined with the rest."""
    if (lengths < 9).any():  # magic, descriptor, one more header byte, a block header
        return False
    at = starts.astype(np.intp)
    magic = raw[at[:, None] + np.arange(4)].copy().view("<u4")[:, 0]
    descriptor = raw[at + 4].astype(np.intp)
    if (magic != _ZSTD_MAGIC).any() or (descriptor & 0x08).any():  # 0x08: reserved, must be 0
        return False
    single_segment = (descriptor >> 5) & 1
    content_size = _CONTENT_SIZE_BYTES[descriptor >> 6]
    content_size = np.where((descriptor >> 6 == 0) & (single_segment == 1), 1, content_size)
    header = 5 + (1 - single_segment) + _DICTIONARY_ID_BYTES[descriptor & 3] + content_size
    if (header + 3 > lengths).any():
        return False
    block_at = at + header
    block = (
        raw[block_at].astype(np.int64)
        | raw[block_at + 1].astype(np.int64) << 8
        | raw[block_at + 2].astype(np.int64) << 16
    )
    last, kind, block_size = block & 1, (block >> 1) & 3, block >> 3
    if not last.all() or (kind == 3).any():  # kind 3 is reserved
        return False
    content = np.where(kind == 1, 1, block_size)  # an RLE block stores its one byte
    checksum = 4 * ((descriptor >> 2) & 1)
    return bool((header + 3 + content + checksum == lengths).all())


def _decode_blosc(data: Any, starts: np.ndarray, lengths: np.ndarray, size: int, out: Any) -> bool:
    """Blosc 1 frames of one whole, unsplit zstd block each, decoded as :func:`_decode` does
    their streams, then unshuffled together."""
    if (lengths < _BLOSC_PREFIX).any():
        return False
    raw = np.frombuffer(data, np.uint8)
    head = raw[starts[:, None].astype(np.intp) + np.arange(_BLOSC_PREFIX)]
    fields = head[:, 4:].copy().view("<u4")  # nbytes, blocksize, cbytes, block start, length
    version, version_lz, flags, typesize = (head[:, i] for i in range(4))
    nbytes, blocksize, cbytes, block_start, length = fields.T
    first_flags, first_typesize = int(flags[0]), int(typesize[0])
    if (
        first_typesize < 1
        or splits(first_flags, first_typesize, size)
        or first_flags >> 5 != ZSTD_FORMAT
        or first_flags & NOT_DECODED_HERE
        or (flags != first_flags).any()
        or (typesize != first_typesize).any()
        or (version != ZSTD_VERSIONS[0]).any()
        or (version_lz != ZSTD_VERSIONS[1]).any()
        or (nbytes != size).any()
        or (blocksize != size).any()
        or (cbytes > lengths).any()
        or (block_start != 20).any()
        or (length == size).any()  # a stream stored as it is: decoded one by one
        or (length == 0).any()
        or (length.astype(np.int64) > cbytes.astype(np.int64) - _BLOSC_PREFIX).any()
    ):
        return False
    shuffled = first_flags & SHUFFLE and first_typesize > 1
    if shuffled and size % first_typesize:
        return False  # bytes after the last whole element: decoded one by one
    target = np.empty_like(out) if shuffled else out
    if not _decode(data, starts + _BLOSC_PREFIX, length, size, target):
        return False
    if shuffled:
        _unshuffle(target, out, first_typesize)
    return True


def _unshuffle(shuffled: np.ndarray, out: np.ndarray, typesize: int) -> None:
    """Each row of ``shuffled`` (byte ``k`` of element ``i`` at ``k * elements + i``) put back
    in order in the same row of ``out``."""
    rows, elements = len(out), out.shape[1] // typesize
    dest = out.reshape(rows, elements, typesize)
    planes = shuffled.reshape(rows, typesize, elements)
    if typesize > 16:
        dest[...] = planes.transpose(0, 2, 1)
        return
    # one byte plane at a time: a 256-element inner loop, not one of ``typesize`` bytes
    # (5 times faster for a shard of 256 chunks of 1 KiB)
    for k in range(typesize):
        dest[:, :, k] = planes[:, k, :]
