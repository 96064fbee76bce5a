"""The ``zlib`` codec (bytes->bytes): RFC 1950 streams.

V2 ``{"id": "zlib", "level": 1}`` (numcodecs ``Zlib``). V3 has no core zlib codec: it is written
``{"name": "numcodecs.zlib", "configuration": {"level": 1}}`` as zarr-python writes it, and the
bare name ``zlib`` is read too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from xzaro.codecs.base import BytesBytesCodec, integer_setting
from xzaro.codecs.bounded import inflate


@dataclass(frozen=True)
class ZlibCodec(BytesBytesCodec):
    """zlib (RFC 1950)."""

    level: int = 1
    name = "zlib"
    v2_id = "zlib"

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", integer_setting("zlib", "level", self.level, -1, 9))

    def configuration(self) -> dict[str, Any]:
        return {"level": self.level}

    @classmethod
    def from_v2(cls, config: dict[str, Any]) -> ZlibCodec:
        return cls(level=config.get("level", 1))

    def to_json(self) -> dict[str, Any]:
        return {"name": "numcodecs.zlib", "configuration": self.configuration()}

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        return inflate(data, zlib.MAX_WBITS, expected_size, "zlib")

    def encode_bytes(self, data: Any) -> bytes:
        return zlib.compress(data, self.level)
