"""The ``vlen-utf8`` and ``vlen-bytes`` codecs (array->bytes): variable-length strings.

V3 ``{"name": "vlen-utf8"}`` / ``{"name": "vlen-bytes"}``, V2 ``{"id": "vlen-utf8"}`` /
``{"id": "vlen-bytes"}`` (numcodecs' layout: an item count, then each item's length and bytes).
V2 lists them among the ``filters``, as the object codec of an object array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.codecs.base import ArrayBytesCodec, ChunkSpec, Codec
from xzaro.errors import DecodeError


class VLenCodec(ArrayBytesCodec):
    """The numcodecs layout of variable-length items, shared by both codecs."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Codec:
        return cls()

    def _impl(self) -> Any:
        import numcodecs

        return numcodecs.get_codec({"id": self.name})

    def decode_to_array(self, data: Any, spec: ChunkSpec) -> np.ndarray:
        try:
            items: np.ndarray = self._impl().decode(data)
        except Exception as e:  # numcodecs raises bare ValueErrors/RuntimeErrors on bad input
            raise DecodeError(f"{self.name} could not decode chunk: {e}") from e
        n = int(np.prod(spec.shape, dtype=np.int64)) if spec.shape is not None else len(items)
        if len(items) != n:
            raise DecodeError(f"{self.name} chunk holds {len(items)} items, expected {n}")
        return items.reshape(spec.shape) if spec.shape is not None else items

    def encode_from_array(self, arr: np.ndarray, spec: ChunkSpec) -> bytes:
        return bytes(self._impl().encode(np.ascontiguousarray(arr, dtype=object).reshape(-1)))


@dataclass(frozen=True)
class VLenUTF8Codec(VLenCodec):
    """Variable-length UTF-8 strings (numcodecs ``vlen-utf8`` layout)."""

    name = "vlen-utf8"
    v2_id = "vlen-utf8"


@dataclass(frozen=True)
class VLenBytesCodec(VLenCodec):
    """Variable-length byte strings (numcodecs ``vlen-bytes`` layout)."""

    name = "vlen-bytes"
    v2_id = "vlen-bytes"
