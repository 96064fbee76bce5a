"""Bytes->bytes codecs: ``gzip``, ``zlib``, ``blosc``, ``zstd`` and the ``crc32c`` checksum.

Every decoder checks the decoded size against what the chunk must hold before or while it
decompresses, so a corrupt or hostile chunk can never make xzaro allocate unbounded memory or
silently reshape data.
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.codecs.base import BytesBytesCodec, register
from xzaro.codecs.bounded import limit_for, too_large
from xzaro.errors import ChecksumError, DecodeError, MetadataError
from xzaro.log import info

_GZIP_MAGIC = b"\x1f\x8b"


def _inflate(data: Any, wbits: int, expected_size: int | None, what: str) -> bytes:
    """Inflate a deflate stream, refusing to produce more than ``expected_size`` bytes."""
    d = zlib.decompressobj(wbits)
    limit = limit_for(expected_size)
    try:
        out = d.decompress(data, limit + 1)
        if len(out) > limit:
            raise too_large(what, limit, expected_size)
        if not d.eof:
            raise DecodeError(f"{what} stream is truncated")
    except zlib.error as e:
        raise DecodeError(f"{what} stream is corrupt: {e}") from e
    return out


def _is_zlib_header(data: Any) -> bool:
    head = bytes(memoryview(data)[:2])
    return len(head) == 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


@register
@dataclass(frozen=True)
class GzipCodec(BytesBytesCodec):
    """gzip (RFC 1952). A chunk that is really a zlib stream is read, and logged."""

    level: int = 5
    name = "gzip"

    def configuration(self) -> dict:
        return {"level": self.level}

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        head = bytes(memoryview(data)[:2])
        if head != _GZIP_MAGIC and _is_zlib_header(data):
            info("gzip codec: chunk is a zlib stream (no gzip header); decoding it as zlib")
            return _inflate(data, zlib.MAX_WBITS, expected_size, "zlib")
        return _inflate(data, 16 + zlib.MAX_WBITS, expected_size, "gzip")

    def encode_bytes(self, data: Any) -> bytes:
        c = zlib.compressobj(self.level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(data) + c.flush()


@register
@dataclass(frozen=True)
class ZlibCodec(BytesBytesCodec):
    """zlib (RFC 1950)."""

    level: int = 1
    name = "zlib"

    def configuration(self) -> dict:
        return {"level": self.level}

    def to_json(self) -> dict:
        # V3 has no core zlib codec; zarr-python and others know it by its numcodecs name.
        return {"name": "numcodecs.zlib", "configuration": self.configuration()}

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        return _inflate(data, zlib.MAX_WBITS, expected_size, "zlib")

    def encode_bytes(self, data: Any) -> bytes:
        return zlib.compress(data, self.level)


_SHUFFLE_NAMES = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle", -1: "shuffle"}
_SHUFFLE_IDS = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_BLOSC_HEADER = struct.Struct("<BBBBIII")


@register
@dataclass(frozen=True)
class BloscCodec(BytesBytesCodec):
    """Blosc 1 frames (lz4, lz4hc, zstd, zlib, blosclz; no/byte/bit shuffle)."""

    cname: str = "lz4"
    clevel: int = 5
    shuffle: str = "shuffle"
    typesize: int | None = None
    blocksize: int = 0
    name = "blosc"

    def __post_init__(self) -> None:
        if isinstance(self.shuffle, int) and not isinstance(self.shuffle, bool):
            object.__setattr__(self, "shuffle", _SHUFFLE_NAMES.get(self.shuffle, "?"))
        if not isinstance(self.shuffle, str) or self.shuffle not in _SHUFFLE_IDS:
            raise MetadataError(f"invalid blosc shuffle {self.shuffle!r:.80}", field="codecs")
        if not isinstance(self.cname, str) or self.cname not in (
            "lz4",
            "lz4hc",
            "zstd",
            "zlib",
            "blosclz",
            "snappy",
        ):
            raise MetadataError(f"invalid blosc cname {self.cname!r}", field="codecs")

    def configuration(self) -> dict:
        config: dict[str, Any] = {
            "cname": self.cname,
            "clevel": self.clevel,
            "shuffle": self.shuffle,
            "blocksize": self.blocksize,
        }
        if self.typesize is not None:
            config["typesize"] = self.typesize
        return config

    def label(self) -> str:
        return f"blosc({self.cname})"

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        from numcodecs import blosc

        view = memoryview(data)
        if view.nbytes < _BLOSC_HEADER.size:
            raise DecodeError(f"blosc frame of {view.nbytes} bytes is shorter than its header")
        _, _, _, _, nbytes, _, cbytes = _BLOSC_HEADER.unpack_from(view)
        if cbytes > view.nbytes:
            raise DecodeError(f"blosc frame says {cbytes} bytes but only {view.nbytes} are stored")
        view = view[:cbytes]  # some writers (z5) leave padding after the frame
        if expected_size is not None and nbytes != expected_size:
            raise DecodeError(f"blosc frame holds {nbytes} bytes, expected {expected_size}")
        if nbytes > limit_for(expected_size):
            raise too_large("blosc", limit_for(expected_size), expected_size)
        try:
            if out is not None and out.nbytes == nbytes:
                blosc.decompress(view, out)
                return out
            return blosc.decompress(view)
        except RuntimeError as e:
            missing = _missing_blosc_compressor(view)
            if missing is not None:
                raise DecodeError(
                    f"blosc frame was compressed with {missing}, which the c-blosc of this "
                    f"numcodecs lacks (it has {', '.join(sorted(_blosc_compressors()))})"
                ) from e
            raise DecodeError(f"blosc frame is corrupt: {e}") from e

    def encode_bytes(self, data: Any, typesize: int | None = None) -> bytes:
        from numcodecs import blosc

        size = self.typesize or typesize or 1
        raw = memoryview(data).cast("B")
        if size in (2, 4, 8) and raw.nbytes % size == 0:
            arr = np.frombuffer(raw, dtype=f"u{size}")
        elif size > 1 and raw.nbytes % size == 0:
            arr = np.frombuffer(raw, dtype=f"V{size}")
        else:
            arr = np.frombuffer(raw, dtype=np.uint8)
        return bytes(
            blosc.compress(
                arr, self.cname.encode(), self.clevel, _SHUFFLE_IDS[self.shuffle], self.blocksize
            )
        )

    def encode_into(self, data: Any, typesize: int | None, out: np.ndarray) -> int | None:
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
        size = self.typesize or typesize or 1
        if size <= 1 or raw.nbytes % size:
            size = 1  # as encode_bytes: the frame's typesize is the element size it compressed
        source = np.frombuffer(raw, dtype=np.uint8)
        n = compress(
            self.clevel,
            _SHUFFLE_IDS[self.shuffle],
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


#: Bytes Blosc may add to a chunk it cannot compress.
BLOSC_MAX_OVERHEAD = 16

#: The compressor a Blosc 1 frame was made with: bits 5-7 of its flags byte (header byte 2).
_BLOSC_FORMATS = {0: "blosclz", 1: "lz4", 2: "snappy", 3: "zlib", 4: "zstd"}
#: Flag of a frame whose blocks were stored uncompressed (no compressor needed to read it).
_BLOSC_MEMCPYED = 0x02


@functools.cache
def _blosc_compressors() -> frozenset[str]:
    """The compressors numcodecs' build of c-blosc has."""
    from numcodecs import blosc

    return frozenset(blosc.list_compressors())


def _missing_blosc_compressor(frame: memoryview) -> str | None:
    """The compressor a frame needs that numcodecs' c-blosc lacks, if that is why it failed."""
    flags = frame[2]
    if flags & _BLOSC_MEMCPYED:
        return None
    code = flags >> 5
    name = _BLOSC_FORMATS.get(code)
    if name is None:
        return f"an unknown compressor (code {code})"
    return None if name in _blosc_compressors() else name


@functools.cache
def _blosc_compress_ctx() -> Any:
    """``blosc_compress_ctx`` of the c-blosc that numcodecs bundles (the library
    :meth:`BloscCodec.encode_bytes` calls), or ``None`` where its extension does not export it.
    ctypes releases the GIL during the call; the function keeps no global state."""
    import ctypes

    try:
        from numcodecs import blosc

        function = ctypes.CDLL(blosc.__file__).blosc_compress_ctx
    except (ImportError, OSError, AttributeError):
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


@register
@dataclass(frozen=True)
class ZstdCodec(BytesBytesCodec):
    """Zstandard frames, optionally with a content checksum."""

    level: int = 0
    checksum: bool = False
    name = "zstd"

    def configuration(self) -> dict:
        return {"level": self.level, "checksum": self.checksum}

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        from numcodecs import zstd

        try:
            if expected_size is not None:
                dest = out if out is not None and out.nbytes == expected_size else None
                if dest is None:
                    dest = np.empty(expected_size, dtype=np.uint8)
                result = zstd.decompress(memoryview(data), dest)
                if memoryview(result).nbytes != expected_size:
                    raise DecodeError(
                        f"zstd frame holds {memoryview(result).nbytes} bytes, "
                        f"expected {expected_size}"
                    )
                return dest
            return _zstd_unsized(data)
        except (RuntimeError, ValueError) as e:
            raise DecodeError(f"zstd frame is corrupt or has the wrong size: {e}") from e

    def encode_bytes(self, data: Any) -> bytes:
        from numcodecs import zstd

        return bytes(zstd.compress(memoryview(data), self.level, self.checksum))


def _zstd_content_size(view: memoryview) -> int | None:
    """The decoded size a zstd frame header declares, ``None`` if it declares none."""
    if view.nbytes < 6 or bytes(view[:4]) != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = view[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    at = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    width = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if width == 0 or view.nbytes < at + width:
        return None
    size = int.from_bytes(view[at : at + width], "little")
    return size + 256 if width == 2 else size


def _zstd_unsized(data: Any) -> Any:
    """Decode a zstd frame whose size the chunk does not fix, within the unsized ceiling."""
    from numcodecs import zstd

    view = memoryview(data).cast("B")
    limit = limit_for(None)
    declared = _zstd_content_size(view)
    if declared is not None:
        if declared > limit:
            raise too_large("zstd", limit, None)
        return zstd.decompress(view)
    try:
        import zstandard
    except ImportError:  # no streaming decoder to bound with: numcodecs' own, unbounded
        return zstd.decompress(view)
    reader = zstandard.ZstdDecompressor().stream_reader(bytes(view), read_across_frames=True)
    out = bytearray()
    try:
        while piece := reader.read(1 << 20):
            out += piece
            if len(out) > limit:
                raise too_large("zstd", limit, None)
    except zstandard.ZstdError as e:
        raise DecodeError(f"zstd frame is corrupt: {e}") from e
    return bytes(out)


def crc32c_of(data: Any) -> int:
    """CRC32C (Castagnoli) of a bytes-like object."""
    import crc32c

    return crc32c.crc32c(data)


@register
@dataclass(frozen=True)
class Crc32cCodec(BytesBytesCodec):
    """Append a little-endian CRC32C; verified on every decode."""

    name = "crc32c"

    @classmethod
    def from_config(cls, config: dict) -> Crc32cCodec:
        return cls()

    def encoded_size(self, size: int | None) -> int | None:
        return None if size is None else size + 4

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        view = memoryview(data).cast("B")
        if view.nbytes < 4:
            raise ChecksumError(f"crc32c: {view.nbytes} bytes cannot hold a checksum")
        body = view[:-4]
        (stored,) = struct.unpack("<I", view[-4:])
        actual = crc32c_of(body)
        if actual != stored:
            raise ChecksumError(f"crc32c mismatch: stored {stored:#010x}, computed {actual:#010x}")
        return body

    def encode_bytes(self, data: Any) -> bytes:
        data = bytes(data)
        return data + struct.pack("<I", crc32c_of(data))
