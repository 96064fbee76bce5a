"""Small Blosc 1 frames of zstd blocks, decoded with the thread's own zstd context.

c-blosc's ``blosc_decompress_ctx`` builds a fresh zstd context for every frame it decodes; for
the 1 KiB inner chunks of a sharded array that costs several times the decoding itself (a
1 KiB frame: about 17 us in c-blosc, about 4 us here on this module's path). A Blosc 1 frame
is its 16-byte header, the start of each block (int32, from the frame's start), and per block
its streams (one, or one per byte of the type size where the frame splits blocks: never the
last, shorter block, nor blocks of under 128 elements or of types over 16 bytes), each an
int32 length and then that many bytes: a zstd frame, or the stream's bytes as they are where
the length equals them. A shuffled block is unshuffled after:
byte ``k`` of element ``i`` was stored at ``k * elements + i``, and the bytes after the last
whole element stay in place.

:func:`decode_zstd_frame` takes only what it can decode exactly as c-blosc does — a compressed
(not copied) frame of zstd blocks, byte-shuffled or not, up to :data:`OWN_DECODE_BYTES` — and
declines everything else, including any frame whose layout does not add up; the caller then
hands the frame to c-blosc, which decodes it or names what is wrong.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

import numpy as np

from xzaro.codecs import zstd_contexts

#: Frames that decode to at most this many bytes are decoded here; larger ones spend their time
#: in zstd and in c-blosc's vectorised unshuffle, not in building contexts.
OWN_DECODE_BYTES = 64 * 2**10

#: A Blosc 1 frame's header: version, compressor version, flags, type size, then the decoded
#: bytes, the block size and the frame's own bytes.
FRAME_HEADER = struct.Struct("<BBBBIII")
#: Flags: byte shuffle, stored as a copy, bit shuffle, blocks not split into streams.
SHUFFLE, MEMCPYED, BITSHUFFLE, DONT_SPLIT = 0x01, 0x02, 0x04, 0x10
#: Flag 0x08 (Blosc 2's delta filter), which c-blosc 1 refuses: so does every decoder here.
DELTA = 0x08
#: The flags of a frame these decoders leave to c-blosc (a copy, bit shuffle) or refuse.
NOT_DECODED_HERE = MEMCPYED | BITSHUFFLE | DELTA
#: The compressor of zstd blocks (bits 5-7 of the flags).
ZSTD_FORMAT = 4
#: The format of the frame and of its zstd blocks c-blosc 1 reads: frames that say another are
#: declined, as it refuses them.
ZSTD_VERSIONS = (2, 1)
_INT32 = struct.Struct("<i")
_threads = threading.local()


class _ThreadState:
    """One thread's zstd context and scratch block (with its cffi pointer and its views as
    shuffled bytes, by type size and element count)."""

    def __init__(self, libzstd: Any) -> None:
        self.ffi, self.lib = libzstd.ffi, libzstd.lib
        self.dctx = zstd_contexts.thread_dctx()
        self.scratch = np.empty(OWN_DECODE_BYTES, np.uint8)
        self.scratch_at = self.ffi.from_buffer(self.scratch, require_writable=True)
        self._shuffled: dict[tuple[int, int], np.ndarray] = {}

    def shuffled(self, typesize: int, elements: int) -> np.ndarray:
        """The scratch block's first ``typesize * elements`` bytes as the ``(elements,
        typesize)`` array a byte-shuffled block puts back in order."""
        view = self._shuffled.get((typesize, elements))
        if view is None:
            if len(self._shuffled) > 64:
                self._shuffled.clear()
            whole = self.scratch[: typesize * elements]
            view = self._shuffled[typesize, elements] = whole.reshape(typesize, elements).T
        return view


def _state() -> _ThreadState | None:
    state: _ThreadState | None = getattr(_threads, "state", None)
    if state is None:
        libzstd = zstd_contexts.cffi_module()
        if libzstd is None:
            return None
        state = _threads.state = _ThreadState(libzstd)
    return state


def splits(flags: int, typesize: int, blocksize: int) -> bool:
    """Whether a whole block of ``blocksize`` bytes is stored as one stream per byte of the
    type: as c-blosc reads frames made before the flag, only types of up to 16 bytes, and only
    blocks of at least 128 elements."""
    return not flags & DONT_SPLIT and typesize <= 16 and blocksize // typesize >= 128


def decode_zstd_frame(frame: memoryview, dest: np.ndarray) -> bool:
    """Decode the Blosc 1 ``frame`` (its header already checked against what is stored) into
    ``dest`` (flat, writable, C-contiguous uint8 of the frame's decoded size); ``False``, with
    ``dest`` in any state, where the frame is not one this module decodes or its layout does
    not add up (then decode it with c-blosc)."""
    state = _state()
    if state is None or frame.nbytes < FRAME_HEADER.size:
        return False
    header = FRAME_HEADER.unpack_from(frame)
    version, version_lz, flags, typesize, nbytes, blocksize, cbytes = header
    if (
        flags >> 5 != ZSTD_FORMAT
        or flags & NOT_DECODED_HERE
        or (version, version_lz) != ZSTD_VERSIONS
        or not 0 < nbytes <= OWN_DECODE_BYTES
        or nbytes != dest.nbytes
        or not 0 < blocksize <= nbytes
        or typesize < 1
        or cbytes != frame.nbytes
    ):
        return False
    nblocks = -(-nbytes // blocksize)
    starts_end = FRAME_HEADER.size + 4 * nblocks
    if starts_end > cbytes:
        return False
    # it returns False rather than raise: its buffers go with its frame
    ffi, decompress = state.ffi, state.lib.ZSTD_decompressDCtx
    source = ffi.from_buffer(frame)
    target = ffi.from_buffer(dest, require_writable=True)
    shuffled = flags & SHUFFLE and typesize > 1
    for b in range(nblocks):
        at = b * blocksize
        size = min(blocksize, nbytes - at)
        # the last, shorter block is never split
        streams = typesize if size == blocksize and splits(flags, typesize, size) else 1
        if size % streams:
            return False
        part = size // streams
        out, out_at = (state.scratch_at, 0) if shuffled else (target, at)
        offset = _INT32.unpack_from(frame, FRAME_HEADER.size + 4 * b)[0]
        for _ in range(streams):
            if not starts_end <= offset <= cbytes - 4:
                return False
            length = _INT32.unpack_from(frame, offset)[0]
            offset += 4
            if not 0 < length <= cbytes - offset:
                return False
            if length == part:  # stored as it is
                ffi.memmove(out + out_at, source + offset, part)
            elif decompress(state.dctx, out + out_at, part, source + offset, length) != part:
                return False
            offset += length
            out_at += part
        if shuffled:
            # byte k of element i was stored at k * elements + i; the bytes after the last whole
            # element stay in place
            elements = size // typesize
            whole = elements * typesize
            dest[at : at + whole].reshape(elements, typesize)[...] = state.shuffled(
                typesize, elements
            )
            if whole < size:
                dest[at + whole : at + size] = state.scratch[whole:size]
    return True
