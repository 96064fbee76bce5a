"""The ``gzip`` codec (bytes->bytes): RFC 1952 streams.

V3 ``{"name": "gzip", "configuration": {"level": 5}}``, V2 ``{"id": "gzip", "level": 5}``
(numcodecs ``GZip``). A chunk that is really a zlib stream (no gzip header) is read, and logged.
A chunk may hold several gzip members (their bytes concatenated) and zero padding after them, as
Python's ``gzip`` reads it; any other bytes after a stream are an error.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from xzaro.codecs.base import BytesBytesCodec, integer_setting
from xzaro.codecs.bounded import GZIP_MAGIC, inflate
from xzaro.log import info


def _is_zlib_header(data: Any) -> bool:
    head = bytes(memoryview(data)[:2])
    return len(head) == 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


@dataclass(frozen=True)
class GzipCodec(BytesBytesCodec):
    """gzip (RFC 1952). A chunk that is really a zlib stream is read, and logged."""

    level: int = 5
    name = "gzip"
    v2_id = "gzip"

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", integer_setting("gzip", "level", self.level, -1, 9))

    def configuration(self) -> dict[str, Any]:
        return {"level": self.level}

    @classmethod
    def from_v2(cls, config: dict[str, Any]) -> GzipCodec:
        return cls(level=config.get("level", 5))

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        head = bytes(memoryview(data)[:2])
        if head != GZIP_MAGIC and _is_zlib_header(data):
            info("gzip codec: chunk is a zlib stream (no gzip header); decoding it as zlib")
            return inflate(data, zlib.MAX_WBITS, expected_size, "zlib", after="nothing")
        return inflate(data, 16 + zlib.MAX_WBITS, expected_size, "gzip", after="gzip members")

    def encode_bytes(self, data: Any) -> bytes:
        c = zlib.compressobj(self.level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(data) + c.flush()
