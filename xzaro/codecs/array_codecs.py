"""Codecs that touch the array itself: ``transpose`` (array->array), ``bytes`` and the
variable-length ``vlen-utf8`` / ``vlen-bytes`` serialisers (array->bytes)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.codecs.base import ArrayArrayCodec, ArrayBytesCodec, ChunkSpec, Codec, register
from xzaro.errors import DecodeError, MetadataError

_NATIVE = sys.byteorder


@register
@dataclass(frozen=True)
class TransposeCodec(ArrayArrayCodec):
    """Permute the chunk's axes: ``order`` is the permutation applied on encode."""

    order: tuple[int, ...]
    name = "transpose"

    def __post_init__(self) -> None:
        order = self.order
        if isinstance(order, str):  # early drafts allowed "C" / "F"
            raise MetadataError(
                f"transpose order must be a permutation list, got {order!r}", field="codecs"
            )
        object.__setattr__(self, "order", tuple(int(i) for i in order))
        if sorted(self.order) != list(range(len(self.order))):
            raise MetadataError(
                f"transpose order {list(self.order)} is not a permutation", field="codecs"
            )

    def configuration(self) -> dict:
        return {"order": list(self.order)}

    def resolve(self, spec: ChunkSpec) -> ChunkSpec:
        if spec.shape is None:
            return spec
        if len(spec.shape) != len(self.order):
            raise MetadataError(
                f"transpose order {list(self.order)} does not match {len(spec.shape)} dimensions",
                field="codecs",
            )
        return ChunkSpec(tuple(spec.shape[i] for i in self.order), spec.dtype, spec.fill_value)

    def decode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        return arr.transpose(np.argsort(self.order))

    def encode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        return arr.transpose(self.order)


def _endian_char(endian: str | None) -> str:
    return {"little": "<", "big": ">", None: "="}[endian]


@register
@dataclass(frozen=True)
class BytesCodec(ArrayBytesCodec):
    """Serialise fixed-size elements in C order with the given byte order."""

    endian: str | None = "little"
    name = "bytes"

    def __post_init__(self) -> None:
        if self.endian not in ("little", "big", None):
            raise MetadataError(f"bytes endian must be 'little' or 'big', got {self.endian!r}")

    def configuration(self) -> dict:
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


class _VLenCodec(ArrayBytesCodec):
    _numcodecs_id: str

    @classmethod
    def from_config(cls, config: dict) -> Codec:
        return cls()

    def _impl(self) -> Any:
        import numcodecs

        return numcodecs.get_codec({"id": self._numcodecs_id})

    def decode_to_array(self, data: Any, spec: ChunkSpec) -> np.ndarray:
        try:
            items = self._impl().decode(data)
        except Exception as e:  # numcodecs raises bare ValueErrors/RuntimeErrors on bad input
            raise DecodeError(f"{self.name} could not decode chunk: {e}") from e
        n = int(np.prod(spec.shape, dtype=np.int64)) if spec.shape is not None else len(items)
        if len(items) != n:
            raise DecodeError(f"{self.name} chunk holds {len(items)} items, expected {n}")
        return items.reshape(spec.shape) if spec.shape is not None else items

    def encode_from_array(self, arr: np.ndarray, spec: ChunkSpec) -> bytes:
        return bytes(self._impl().encode(np.ascontiguousarray(arr, dtype=object).reshape(-1)))


@register
@dataclass(frozen=True)
class VLenUTF8Codec(_VLenCodec):
    """Variable-length UTF-8 strings (numcodecs ``vlen-utf8`` layout)."""

    name = "vlen-utf8"
    _numcodecs_id = "vlen-utf8"


@register
@dataclass(frozen=True)
class VLenBytesCodec(_VLenCodec):
    """Variable-length byte strings (numcodecs ``vlen-bytes`` layout)."""

    name = "vlen-bytes"
    _numcodecs_id = "vlen-bytes"
