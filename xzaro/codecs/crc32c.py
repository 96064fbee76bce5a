"""The ``crc32c`` codec (bytes->bytes): a little-endian CRC32C appended, verified on decode.

V3 ``{"name": "crc32c"}``. Written to V2 as ``{"id": "crc32c"}`` (the last filter of a chain of
several entries, the compressor when alone), which is read back as numcodecs' ``CRC32C``: the same
stream, so this codec claims no V2 id of its own.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from xzaro.codecs.base import BytesBytesCodec
from xzaro.errors import ChecksumError


def crc32c_of(data: Any) -> int:
    """CRC32C (Castagnoli) of a bytes-like object."""
    import crc32c

    return crc32c.crc32c(data)


@dataclass(frozen=True)
class Crc32cCodec(BytesBytesCodec):
    """Append a little-endian CRC32C; verified on every decode."""

    name = "crc32c"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Crc32cCodec:
        return cls()

    def to_v2(self) -> dict[str, Any]:
        return {"id": "crc32c"}

    def is_v2_compressor(self, alone: bool) -> bool:
        return alone

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
        raw = bytes(data)
        return raw + struct.pack("<I", crc32c_of(raw))
