"""Decompression that never produces more bytes than a chunk may hold.

A chunk of a fixed-size data type decodes to exactly the bytes of its shape, so every decoder is
given that size and stops one byte past it. A chunk whose size is not known in advance (a
variable-length string or object chunk before its array->bytes codec) is held to a ceiling
instead: :data:`MAX_UNSIZED_CHUNK_BYTES`, 2 GiB unless the environment variable
``XZARO_MAX_UNSIZED_CHUNK_BYTES`` says otherwise.
"""

from __future__ import annotations

import bz2
import lzma
import os
import struct
import zlib
from collections.abc import Callable
from typing import Any, Literal

from xzaro.errors import DecodeError


def _ceiling_from_environment() -> int:
    text = os.environ.get("XZARO_MAX_UNSIZED_CHUNK_BYTES", "")
    try:
        value = int(text) if text else 2 * 1024**3
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(
            f"XZARO_MAX_UNSIZED_CHUNK_BYTES must be a positive number of bytes, got {text!r}"
        )
    return value


#: The most bytes a chunk whose decoded size is not known in advance may decode to.
MAX_UNSIZED_CHUNK_BYTES = _ceiling_from_environment()


def limit_for(expected_size: int | None) -> int:
    """The most bytes a decoder may produce for a chunk of ``expected_size`` bytes."""
    return MAX_UNSIZED_CHUNK_BYTES if expected_size is None else expected_size


def too_large(what: str, limit: int, expected_size: int | None) -> DecodeError:
    """The error for a stream that decodes to more than ``limit`` bytes."""
    if expected_size is not None:
        return DecodeError(f"{what} stream decodes to more than the expected {limit} bytes")
    return DecodeError(
        f"{what} stream decodes to more than {limit} bytes, the ceiling for chunks whose size is "
        "not known in advance (raise it with XZARO_MAX_UNSIZED_CHUNK_BYTES)"
    )


#: What may follow a deflate stream in a chunk: anything, which is not read (the zlib codec,
#: as ``zlib.decompress`` and numcodecs do); nothing; or further gzip members and zero padding
#: (the gzip codec, as Python's ``gzip`` and numcodecs read them).
AfterStream = Literal["ignored", "nothing", "gzip members"]
GZIP_MAGIC = b"\x1f\x8b"


def inflate(
    data: Any, wbits: int, expected_size: int | None, what: str, after: AfterStream = "ignored"
) -> bytes:
    """Inflate a deflate stream (``wbits`` as :func:`zlib.decompressobj` takes it), refusing to
    produce more than ``expected_size`` bytes; ``after`` (:data:`AfterStream`) says
    what may follow the stream. Bytes after a gzip member that are neither zero padding nor
    another member are an error, as ``gzip.decompress`` has them: a chunk with trailing bytes,
    or a shard index entry that covers another inner chunk's stream and more, never reads as
    the first stream's values."""
    limit = limit_for(expected_size)
    parts: list[bytes] = []
    made = 0
    rest: Any = data
    while True:
        d = zlib.decompressobj(wbits)
        try:
            part = d.decompress(rest, limit + 1 - made)
        except zlib.error as e:
            raise DecodeError(f"{what} stream is corrupt: {e}") from e
        made += len(part)
        parts.append(part)
        if made > limit:
            raise too_large(what, limit, expected_size)
        if not d.eof:
            raise DecodeError(f"{what} stream is truncated")
        rest = d.unused_data
        if after == "gzip members":
            rest = rest.lstrip(b"\x00")
        if after == "ignored" or not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if after == "nothing" or rest[:2] != GZIP_MAGIC:
            raise DecodeError(
                f"{what} stream is followed by {len(rest)} bytes that are not part of it"
            )


def _streams(data: Any, make: Callable[[], Any], what: str, expected_size: int | None) -> bytes:
    """Decompress one or more concatenated streams with at most the allowed output."""
    limit = limit_for(expected_size)
    out = bytearray()
    rest = bytes(memoryview(data))
    while True:
        d = make()
        try:
            out += d.decompress(rest, max_length=limit + 1 - len(out))
        except (OSError, EOFError, ValueError, lzma.LZMAError) as e:
            raise DecodeError(f"{what} stream is corrupt: {e}") from e
        if len(out) > limit:
            raise too_large(what, limit, expected_size)
        if not d.eof:
            raise DecodeError(f"{what} stream is truncated")
        rest = d.unused_data
        if not rest:
            return bytes(out)


def decode_bz2(data: Any, expected_size: int | None, config: dict[str, Any]) -> bytes:
    """numcodecs ``bz2``."""
    return _streams(data, bz2.BZ2Decompressor, "bz2", expected_size)


def decode_lzma(data: Any, expected_size: int | None, config: dict[str, Any]) -> bytes:
    """numcodecs ``lzma`` (its ``format`` and, for raw streams, ``filters``)."""
    fmt = config.get("format", lzma.FORMAT_XZ)
    filters = config.get("filters") if fmt == lzma.FORMAT_RAW else None
    try:
        lzma.LZMADecompressor(format=fmt, filters=filters)
    except (TypeError, ValueError, lzma.LZMAError) as e:
        raise DecodeError(f"lzma configuration cannot decode: {e}") from e
    return _streams(
        data, lambda: lzma.LZMADecompressor(format=fmt, filters=filters), "lzma", expected_size
    )


_LZ4_SIZE = struct.Struct("<i")


def decode_lz4(data: Any, expected_size: int | None, config: dict[str, Any]) -> Any:
    """numcodecs ``lz4``: a 4-byte little-endian decoded size, then one LZ4 block."""
    from numcodecs import LZ4

    view = memoryview(data)
    if view.nbytes < _LZ4_SIZE.size:
        raise DecodeError(f"lz4 block of {view.nbytes} bytes is shorter than its size header")
    (size,) = _LZ4_SIZE.unpack_from(view)
    limit = limit_for(expected_size)
    if size < 0 or size > limit or (expected_size is not None and size != expected_size):
        if size > limit:
            raise too_large("lz4", limit, expected_size)
        raise DecodeError(f"lz4 block says it holds {size} bytes, expected {expected_size}")
    try:
        return LZ4().decode(view)
    except Exception as e:
        raise DecodeError(f"lz4 block is corrupt: {e}") from e


#: numcodecs compressors with no decoded size xzaro can trust, decoded here with a bound.
BOUNDED_BYTES_DECODERS: dict[str, Callable[[Any, int | None, dict[str, Any]], Any]] = {
    "bz2": decode_bz2,
    "lzma": decode_lzma,
    "lz4": decode_lz4,
}
