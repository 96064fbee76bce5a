"""The ``blosc`` codec (bytes->bytes): Blosc 1 frames, with byte or bit shuffling.

V3 ``{"name": "blosc", "configuration": {"cname": "zstd", "clevel": 5, "shuffle": "shuffle",
"typesize": 4, "blocksize": 0}}``; V2 ``{"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": 1,
"blocksize": 0}`` (numcodecs ``Blosc``: the shuffle as its number, no ``typesize``). ``typesize``,
the element size shuffling works on, depends on the data type: :meth:`BloscCodec.evolve_from_spec`
fills it in. Frames are made and read by the c-blosc that numcodecs bundles, called directly,
but for small frames of zstd blocks, which :mod:`xzaro.codecs.blosc_zstd` decodes with the
thread's own zstd context (c-blosc builds one per frame: most of a 1 KiB frame's time).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from xzaro.codecs.base import BytesBytesCodec, ChunkSpec, integer_setting
from xzaro.codecs.blosc_zstd import (
    FRAME_HEADER,
    MEMCPYED,
    OWN_DECODE_BYTES,
    ZSTD_FORMAT,
    decode_zstd_frame,
)
from xzaro.codecs.bounded import limit_for, too_large
from xzaro.codecs.zstd_contexts import release
from xzaro.errors import DecodeError, MetadataError

#: The compressors of the V3 ``blosc`` codec, c-blosc's own names (zarr-python's ``BloscCname``):
#: frames of every one are read.
BLOSC_CNAMES = ("blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd")
#: Those numcodecs' c-blosc can compress with, so the ones xzaro writes: numcodecs builds it
#: without snappy (its ``blosc.list_compressors()``).
BLOSC_WRITTEN_CNAMES = tuple(c for c in BLOSC_CNAMES if c != "snappy")
#: The shuffle modes by name; a mode's position is its number in numcodecs and in V2 JSON.
BLOSC_SHUFFLES = ("noshuffle", "shuffle", "bitshuffle")
#: numcodecs' ``AUTOSHUFFLE``, read as byte shuffle.
_AUTOSHUFFLE = -1
#: Bytes Blosc may add to a chunk it cannot compress.
BLOSC_MAX_OVERHEAD = 16
#: The largest element size a Blosc 1 frame's header holds (one byte).
MAX_FRAME_TYPESIZE = 255

#: The compressor a Blosc 1 frame was made with: bits 5-7 of its flags byte (header byte 2).
_BLOSC_FORMATS = {0: "blosclz", 1: "lz4", 2: "snappy", 3: "zlib", 4: "zstd"}


@dataclass(frozen=True)
class BloscCodec(BytesBytesCodec):
    """Blosc 1 frames (lz4, lz4hc, zstd, zlib, blosclz; no/byte/bit shuffle).

    ``shuffle`` is a name of :data:`BLOSC_SHUFFLES` (its V2 number is accepted too).
    ``typesize`` is any positive integer, as the spec allows (zarr-python records a ``<U100``
    array's as 400); c-blosc shuffles elements of over :data:`MAX_FRAME_TYPESIZE` bytes as single
    bytes, and so do the frames made here.
    """

    cname: str = "lz4"
    clevel: int = 5
    shuffle: str = "shuffle"
    typesize: int | None = None
    blocksize: int = 0
    name = "blosc"
    v2_id = "blosc"
    encodes_into = True

    def __post_init__(self) -> None:
        if isinstance(self.shuffle, int) and not isinstance(self.shuffle, bool):
            number = 1 if self.shuffle == _AUTOSHUFFLE else self.shuffle
            known = 0 <= number < len(BLOSC_SHUFFLES)
            object.__setattr__(self, "shuffle", BLOSC_SHUFFLES[number] if known else "?")
        if not isinstance(self.shuffle, str) or self.shuffle not in BLOSC_SHUFFLES:
            raise MetadataError(f"invalid blosc shuffle {self.shuffle!r:.80}", field="codecs")
        if not isinstance(self.cname, str) or self.cname not in BLOSC_CNAMES:
            raise MetadataError(f"invalid blosc cname {self.cname!r}", field="codecs")
        object.__setattr__(self, "clevel", integer_setting("blosc", "clevel", self.clevel, 0, 9))
        blocksize = integer_setting("blosc", "blocksize", self.blocksize, 0, 2**31 - 1)
        object.__setattr__(self, "blocksize", blocksize)
        if self.typesize is not None:  # one byte of a frame's header
            typesize = integer_setting("blosc", "typesize", self.typesize, 1, 2**31 - 1)
            object.__setattr__(self, "typesize", typesize)

    def configuration(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "cname": self.cname,
            "clevel": self.clevel,
            "shuffle": self.shuffle,
            "blocksize": self.blocksize,
        }
        if self.typesize is not None:
            config["typesize"] = self.typesize
        return config

    @classmethod
    def from_v2(cls, config: dict[str, Any]) -> BloscCodec:
        return cls(
            cname=config.get("cname", "lz4"),
            clevel=config.get("clevel", 5),
            shuffle=config.get("shuffle", 1),
            blocksize=config.get("blocksize", 0),
        )

    def to_v2(self) -> dict[str, Any]:
        return {
            "id": "blosc",
            "cname": self.cname,
            "clevel": self.clevel,
            "shuffle": BLOSC_SHUFFLES.index(self.shuffle),
            "blocksize": self.blocksize,
        }

    def evolve_from_spec(self, spec: ChunkSpec) -> BloscCodec:
        """``typesize`` from the chunk's element size when not set; 1 for a variable-length
        chunk (a string array's encoded bytes), which the V3 spec requires recorded wherever
        the frames are shuffled."""
        if self.typesize is not None:
            return self
        if spec.dtype.hasobject:
            return replace(self, typesize=1)
        return replace(self, typesize=max(1, spec.dtype.itemsize))

    def label(self) -> str:
        return f"blosc({self.cname})"

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        view, nbytes = _checked_frame(data, expected_size)
        if view[2] >> 5 == ZSTD_FORMAT and nbytes <= OWN_DECODE_BYTES:
            flat = out if _is_flat_bytes(out, nbytes) else np.empty(nbytes, np.uint8)
            if decode_zstd_frame(view, flat):
                return flat
        called = _blosc_decompress_ctx()
        if called is None:
            from numcodecs import blosc

            try:
                if out is not None and out.nbytes == nbytes:
                    blosc.decompress(view, out)
                    return out
                return blosc.decompress(view)
            except RuntimeError as e:
                raise _decode_error(view, str(e)) from e
        ffi, library = called
        target = _writable_view(ffi, out, nbytes)
        if target is None:
            out = np.empty(nbytes, dtype=np.uint8)
            target = ffi.from_buffer(out, require_writable=True)
        source = ffi.from_buffer(view)
        made = library.blosc_decompress_ctx(source, target, nbytes, 1)
        if made != nbytes:
            release(ffi, source, target)
            raise _decode_error(view, f"c-blosc returned {made}")
        return out

    def decoder_at(self, raw: np.ndarray, size: int) -> Callable[[Any, int], None] | None:
        called = _blosc_decompress_ctx()
        if called is None:
            return None
        ffi, library = called
        base = ffi.from_buffer(raw, require_writable=True)
        last = len(base) - size  # the furthest a frame may start
        decompress = library.blosc_decompress_ctx
        own = size <= OWN_DECODE_BYTES

        def decode(data: Any, at: int) -> None:
            if not 0 <= at <= last:
                raise IndexError(f"no {size} bytes at {at} of {len(base)}")
            view, _ = _checked_frame(data, size)
            zstd_blocks = own and view[2] >> 5 == ZSTD_FORMAT
            if zstd_blocks and decode_zstd_frame(view, raw[at : at + size]):
                return
            source = ffi.from_buffer(view)
            made = decompress(source, base + at, size, 1)
            if made != size:
                release(ffi, source)
                raise _decode_error(view, f"c-blosc returned {made}")

        return decode

    def encode_bytes(self, data: Any) -> bytes:
        from numcodecs import blosc

        size = self._frame_typesize()
        raw = memoryview(data).cast("B")
        if size in (2, 4, 8) and raw.nbytes % size == 0:
            arr = np.frombuffer(raw, dtype=f"u{size}")
        elif size > 1 and raw.nbytes % size == 0:
            arr = np.frombuffer(raw, dtype=f"V{size}")
        else:
            arr = np.frombuffer(raw, dtype=np.uint8)
        shuffle = BLOSC_SHUFFLES.index(self.shuffle)
        return bytes(blosc.compress(arr, self.cname.encode(), self.clevel, shuffle, self.blocksize))

    def _frame_typesize(self) -> int:
        """The element size frames are made with: ``typesize``, or 1 where it is not set or
        does not fit a frame's header (as c-blosc does)."""
        size = self.typesize or 1
        return size if size <= MAX_FRAME_TYPESIZE else 1

    def encode_into(self, data: Any, out: np.ndarray) -> int | None:
        """Compress ``data`` into ``out`` (bytes, at least ``len(data) + 16`` of them) and
        return the frame's size, the same frame :meth:`encode_bytes` makes; ``None`` when
        numcodecs' Blosc library cannot be called this way (use :meth:`encode_bytes`).

        Writing into a buffer the caller reuses saves a fresh allocation, and its page faults,
        per chunk.
        """
        compress = _blosc_compress_ctx()
        raw = memoryview(data).cast("B")
        if (
            compress is None
            or out.dtype != np.uint8
            or not out.flags.c_contiguous
            or not out.flags.writeable
            or out.nbytes < raw.nbytes + BLOSC_MAX_OVERHEAD
        ):
            return None
        size = self._frame_typesize()
        if size <= 1 or raw.nbytes % size:
            size = 1  # as encode_bytes: the frame's typesize is the element size it compressed
        source = np.frombuffer(raw, dtype=np.uint8)
        n = compress(
            self.clevel,
            BLOSC_SHUFFLES.index(self.shuffle),
            size,
            raw.nbytes,
            source.ctypes.data,
            out.ctypes.data,
            out.nbytes,
            self.cname.encode(),
            self.blocksize,
            1,
        )
        return int(n) if n > 0 else None


@functools.cache
def blosc_compressors() -> frozenset[str]:
    """The compressors numcodecs' build of c-blosc has."""
    from numcodecs import blosc

    return frozenset(blosc.list_compressors())


def _checked_frame(data: Any, expected_size: int | None) -> tuple[memoryview, int]:
    """The Blosc frame at the start of ``data`` and the bytes it decodes to, after checking
    its header against what is stored and expected, before c-blosc reads it.

    Raises
    ------
    DecodeError
        The header is cut short, claims more bytes than are stored, or decodes to another
        size than ``expected_size`` (or more than the decode limit when that is unknown).
    """
    view = memoryview(data)
    if view.nbytes < FRAME_HEADER.size:
        raise DecodeError(f"blosc frame of {view.nbytes} bytes is shorter than its header")
    _, _, _, _, nbytes, _, cbytes = FRAME_HEADER.unpack_from(view)
    if not FRAME_HEADER.size <= cbytes <= view.nbytes:
        raise DecodeError(f"blosc frame says {cbytes} bytes, but {view.nbytes} are stored")
    if expected_size is not None and nbytes != expected_size:
        raise DecodeError(f"blosc frame holds {nbytes} bytes, expected {expected_size}")
    if nbytes > limit_for(expected_size):
        raise too_large("blosc", limit_for(expected_size), expected_size)
    return view[:cbytes], nbytes  # some writers (z5) leave padding after the frame


def _decode_error(frame: memoryview, reason: str) -> DecodeError:
    """The error for a frame c-blosc refused: the compressor it lacks, when that is why."""
    missing = _missing_blosc_compressor(frame)
    if missing is not None:
        return DecodeError(
            f"blosc frame was compressed with {missing}, which the c-blosc of this "
            f"numcodecs lacks (it has {', '.join(sorted(blosc_compressors()))})"
        )
    return DecodeError(f"blosc frame is corrupt: {reason}")


def _is_flat_bytes(out: Any, nbytes: int) -> bool:
    """Whether ``out`` is a flat, writable, C-contiguous uint8 array of ``nbytes``."""
    return (
        isinstance(out, np.ndarray)
        and out.dtype == np.uint8
        and out.ndim == 1
        and out.nbytes == nbytes
        and out.flags.c_contiguous
        and out.flags.writeable
    )


def _writable_view(ffi: Any, out: Any, nbytes: int) -> Any:
    """``out`` as a cffi buffer to decode ``nbytes`` into, or ``None`` when it cannot take them
    (missing, another size, read-only or not contiguous)."""
    if out is None or out.nbytes != nbytes:
        return None
    try:
        return ffi.from_buffer(out, require_writable=True)
    except (TypeError, BufferError, ValueError):
        return None


@functools.cache
def _blosc_decompress_ctx() -> tuple[Any, Any] | None:
    """``(ffi, library)``: the c-blosc that numcodecs bundles, opened through cffi to call its
    ``blosc_decompress_ctx``, or ``None`` where that cannot be done (decode through numcodecs then).

    Called directly, a small frame decodes in about 60% of numcodecs' time (1 KiB of zstd:
    4.2 us against 7.1 us), which counts when a shard holds thousands of inner chunks. The
    function keeps no global state, and cffi releases the GIL during the call.
    """
    path = _numcodecs_blosc_path()
    try:
        import cffi

        if path is None:
            from numcodecs import blosc

            path = blosc.__file__
        ffi = cffi.FFI()
        ffi.cdef("int blosc_decompress_ctx(const void *, void *, size_t, int);")
        library = ffi.dlopen(path)
        library.blosc_decompress_ctx  # noqa: B018 - an old c-blosc without it is not used
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    return ffi, library


def _missing_blosc_compressor(frame: memoryview) -> str | None:
    """The compressor a frame needs that numcodecs' c-blosc lacks, if that is why it failed."""
    flags = frame[2]
    if flags & MEMCPYED:
        return None
    code = flags >> 5
    name = _BLOSC_FORMATS.get(code)
    if name is None:
        return f"an unknown compressor (code {code})"
    return None if name in blosc_compressors() else name


@functools.cache
def _blosc_compress_ctx() -> Any:
    """``blosc_compress_ctx`` of the c-blosc that numcodecs bundles (the library
    :meth:`BloscCodec.encode_bytes` calls), or ``None`` where its extension does not export it.
    ctypes releases the GIL during the call; the function keeps no global state."""
    import ctypes

    path = _numcodecs_blosc_path()
    try:
        if path is None:
            from numcodecs import blosc

            path = blosc.__file__
        function = ctypes.CDLL(path).blosc_compress_ctx
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    size_t = ctypes.c_size_t
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        size_t,
        size_t,
        ctypes.c_void_p,
        ctypes.c_void_p,
        size_t,
        ctypes.c_char_p,
        size_t,
        ctypes.c_int,
    ]
    function.restype = ctypes.c_int
    return function


def _numcodecs_blosc_path() -> str | None:
    """The file of numcodecs' ``blosc`` extension, found without importing numcodecs (whose
    import, every codec it registers, costs more than a short stream's first frames); ``None``
    when it is not found that way."""
    import importlib.machinery
    import importlib.util
    import os
    import sys

    loaded = sys.modules.get("numcodecs.blosc")
    if loaded is not None:
        return getattr(loaded, "__file__", None)
    try:
        spec = importlib.util.find_spec("numcodecs")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = os.path.join(folder, "blosc" + suffix)
            if os.path.isfile(candidate):
                return candidate
    return None
