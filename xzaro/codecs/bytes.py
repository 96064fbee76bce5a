"""The ``bytes`` codec (array->bytes): fixed-size elements in C order, in a given byte order.

V3 ``{"name": "bytes", "configuration": {"endian": "little"}}``; V3 only (a V2 array keeps its
byte order in its ``dtype``, which becomes this codec when it is read).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.codecs.base import ArrayBytesCodec, ChunkSpec
from xzaro.errors import DecodeError, MetadataError

_NATIVE = sys.byteorder


def _endian_char(endian: str | None) -> str:
    return {"little": "<", "big": ">", None: "="}[endian]


@dataclass(frozen=True)
class BytesCodec(ArrayBytesCodec):
    """Serialise fixed-size elements in C order with the given byte order."""

    endian: str | None = "little"
    name = "bytes"
    v2_member = "dtype"

    def __post_init__(self) -> None:
        if self.endian not in ("little", "big", None):
            raise MetadataError(f"bytes endian must be 'little' or 'big', got {self.endian!r}")

    def configuration(self) -> dict[str, Any]:
        return {} if self.endian is None else {"endian": self.endian}

    def label(self) -> str:
        return "bytes" if self.endian in (None, _NATIVE) else f"bytes({self.endian})"

    def stored_dtype(self, dtype: np.dtype) -> np.dtype:
        """The dtype of the serialised elements (the array dtype with this byte order)."""
        if dtype.itemsize <= 1 or self.endian is None:
            return dtype
        if dtype.byteorder == "|" and dtype.fields is None:
            return dtype
        # A structured dtype's fields all take the codec's byte order (numpy applies it to each).
        return dtype.newbyteorder(_endian_char(self.endian))  # type: ignore[arg-type]

    def is_identity_for(self, dtype: np.dtype) -> bool:
        """Whether serialising ``dtype`` is a plain memory copy (no byte swap)."""
        return self.stored_dtype(dtype) == dtype

    def encoded_size(self, spec: ChunkSpec) -> int | None:
        return spec.nbytes

    def decode_to_array(self, data: Any, spec: ChunkSpec) -> np.ndarray:
        if spec.shape is None:
            return np.frombuffer(data, dtype=np.uint8)
        stored = self.stored_dtype(spec.dtype)
        expected = spec.nbytes
        got = memoryview(data).nbytes
        if got != expected:
            raise DecodeError(
                f"decoded chunk has {got} bytes, expected {expected} for shape "
                f"{spec.shape} and dtype {spec.dtype}"
            )
        arr = np.frombuffer(data, dtype=stored).reshape(spec.shape)
        if stored != spec.dtype:
            arr = arr.astype(spec.dtype)
        return arr

    def encode_from_array(self, arr: np.ndarray, spec: ChunkSpec) -> Any:
        if spec.shape is None:  # after a filter whose output layout is its own business
            return np.ascontiguousarray(arr).tobytes()
        stored = self.stored_dtype(spec.dtype)
        arr = np.require(arr, dtype=stored, requirements="C")
        return arr.reshape(-1).view(np.uint8)  # the bytes, without a copy
