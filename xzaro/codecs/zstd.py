"""The ``zstd`` codec (bytes->bytes): Zstandard frames, optionally with a content checksum.

V3 ``{"name": "zstd", "configuration": {"level": 0, "checksum": false}}``, V2
``{"id": "zstd", "level": 0}`` (numcodecs ``Zstd``; ``"checksum": true`` only when set).

With the ``zstandard`` package installed, frames are encoded and decoded by contexts each
thread keeps (see :mod:`xzaro.codecs.zstd_contexts`); numcodecs, which creates one per frame,
does it otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.codecs import zstd_contexts
from xzaro.codecs.base import BytesBytesCodec, flag_setting, integer_setting
from xzaro.codecs.bounded import limit_for, too_large
from xzaro.errors import DecodeError

#: The compression levels a zstd codec may record: libzstd's ``int``, which it clamps to the
#: levels it has (numcodecs writes levels above 22 as given).
ZSTD_MIN_LEVEL, ZSTD_MAX_LEVEL = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class ZstdCodec(BytesBytesCodec):
    """Zstandard frames, optionally with a content checksum."""

    level: int = 0
    checksum: bool = False
    name = "zstd"
    v2_id = "zstd"

    def __post_init__(self) -> None:
        level = integer_setting("zstd", "level", self.level, ZSTD_MIN_LEVEL, ZSTD_MAX_LEVEL)
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "checksum", flag_setting("zstd", "checksum", self.checksum))

    def configuration(self) -> dict[str, Any]:
        return {"level": self.level, "checksum": self.checksum}

    @classmethod
    def from_v2(cls, config: dict[str, Any]) -> ZstdCodec:
        return cls(level=config.get("level", 0), checksum=config.get("checksum", False))

    def to_v2(self) -> dict[str, Any]:
        return {"id": "zstd", "level": self.level, **({"checksum": True} if self.checksum else {})}

    def decoder_at(self, raw: np.ndarray, size: int) -> Callable[[Any, int], None] | None:
        return zstd_contexts.decoder_at(raw, size)

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        try:
            if expected_size is not None:
                dest = out if out is not None and out.nbytes == expected_size else None
                if dest is None:
                    dest = np.empty(expected_size, dtype=np.uint8)
                if zstd_contexts.decompress_into(data, dest):
                    return dest
                from numcodecs import zstd  # imported here: the line above decodes most frames

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
        made = zstd_contexts.compress(memoryview(data), self.level, self.checksum)
        if made is not None:
            return made
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
