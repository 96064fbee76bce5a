"""Any numcodecs codec as a chain member: V3 ``numcodecs.<id>`` names and V2 filters/compressors.

The codec's kind (array->array, array->bytes or bytes->bytes) comes from its id. Array->array
filters declare the dtype of their encoded side where numcodecs fixes it, so the ``bytes``
codec after them can check sizes exactly.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xzaro.codecs.base import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    ChunkSpec,
    Codec,
    check_safe,
)
from xzaro.errors import DecodeError, MetadataError, UnsupportedError

ARRAY_ARRAY_IDS = frozenset(
    {"delta", "fixedscaleoffset", "quantize", "astype", "packbits", "bitround", "categorize"}
)
ARRAY_BYTES_IDS = frozenset(
    {"pcodec", "zfpy", "vlen-utf8", "vlen-bytes", "vlen-array", "json2", "msgpack2", "pickle"}
)


@functools.lru_cache(maxsize=256)
def _numcodecs_impl(config_json: str) -> Any:
    import numcodecs

    return numcodecs.get_codec(json.loads(config_json))


def _encoded_spec(codec_id: str, config: dict, spec: ChunkSpec) -> ChunkSpec:
    """The encoded-side spec of a numcodecs array->array filter (shape ``None`` if unknown)."""
    if codec_id in ("delta", "fixedscaleoffset", "quantize", "categorize"):
        dtype = np.dtype(config.get("astype") or config.get("dtype") or spec.dtype)
        return ChunkSpec(spec.shape, dtype, None)
    if codec_id == "astype":
        return ChunkSpec(spec.shape, np.dtype(config["encode_dtype"]), None)
    if codec_id in ("bitround", "shuffle"):
        return spec
    if codec_id == "packbits" and spec.shape is not None:
        n = int(np.prod(spec.shape, dtype=np.int64))
        return ChunkSpec((1 + (n + 7) // 8,), np.dtype(np.uint8), None)
    return ChunkSpec(None, np.dtype(np.uint8), None)


def _as_array(result: Any, spec: ChunkSpec, what: str) -> np.ndarray:
    """Shape a numcodecs decode result as the chunk ``spec`` says, or fail loudly."""
    from numcodecs.compat import ensure_ndarray_like

    arr = np.asarray(ensure_ndarray_like(result))
    if spec.shape is None:
        return arr
    n = int(np.prod(spec.shape, dtype=np.int64))
    if arr.dtype != spec.dtype and not (arr.dtype.hasobject or spec.dtype.hasobject):
        flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
        if flat.nbytes != n * spec.dtype.itemsize:
            raise DecodeError(
                f"{what} decoded {flat.nbytes} bytes, expected {n * spec.dtype.itemsize} "
                f"for shape {spec.shape} and dtype {spec.dtype}"
            )
        return flat.view(spec.dtype).reshape(spec.shape)
    if arr.size != n:
        raise DecodeError(f"{what} decoded {arr.size} items, expected {n} for {spec.shape}")
    if arr.dtype != spec.dtype:
        arr = arr.astype(spec.dtype)
    return arr.reshape(spec.shape)


@dataclass(frozen=True)
class NumcodecsCodec(Codec):
    """A numcodecs codec given by id and configuration (``numcodecs.<id>`` in V3)."""

    codec_id: str
    config: dict = field(default_factory=dict, hash=False)
    #: A V2 filter: it works on the chunk before serialisation, whatever numcodecs calls it.
    v2_filter: bool = False
    name = "numcodecs"

    @property
    def kind(self) -> str:  # type: ignore[override]
        if self.codec_id in ARRAY_BYTES_IDS:
            return ARRAY_BYTES
        if self.v2_filter or self.codec_id in ARRAY_ARRAY_IDS:
            return ARRAY_ARRAY
        return BYTES_BYTES

    @classmethod
    def from_id(
        cls,
        codec_id: str,
        config: dict,
        *,
        allow_unsafe: bool = False,
        url: str | None = None,
        key: str | None = None,
    ) -> NumcodecsCodec:
        """Build from an id and configuration, checking numcodecs knows the codec."""
        import numcodecs

        check_safe(codec_id, allow_unsafe, url=url, key=key)
        config = {k: v for k, v in config.items() if k != "id"}
        try:
            numcodecs.get_codec({"id": codec_id, **config})
        except Exception as e:
            unknown = (
                isinstance(e, KeyError)
                or type(e).__name__ == "UnknownCodecError"
                or str(e).startswith("codec not available")  # numcodecs < 0.15.1
            )
            if unknown:
                raise UnsupportedError(
                    f"unknown codec {codec_id!r} (not in numcodecs' registry)",
                    url=url,
                    key=key,
                    field="codecs",
                ) from e
            raise MetadataError(
                f"invalid configuration for codec {codec_id!r}: {e}",
                url=url,
                key=key,
                field="codecs",
            ) from e
        return cls(codec_id, config)

    def to_json(self) -> dict:
        return {"name": f"numcodecs.{self.codec_id}", "configuration": dict(self.config)}

    def to_v2(self) -> dict:
        """The V2 ``filters``/``compressor`` form ``{"id": ..., ...}``."""
        return {"id": self.codec_id, **self.config}

    def label(self) -> str:
        return self.codec_id

    def impl(self) -> Any:
        """The numcodecs codec object (created once per process)."""
        return _numcodecs_impl(json.dumps({"id": self.codec_id, **self.config}, sort_keys=True))

    def encoded_size(self, size: Any) -> int | None:
        """Encoded sizes of numcodecs codecs are not known in advance."""
        return None

    def resolve(self, spec: ChunkSpec) -> ChunkSpec:
        return _encoded_spec(self.codec_id, self.config, spec)

    def decode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        try:
            result = self.impl().decode(np.ascontiguousarray(arr))
        except DecodeError:
            raise
        except Exception as e:
            raise DecodeError(f"{self.codec_id} could not decode chunk: {e}") from e
        return _as_array(result, spec, self.codec_id)

    def encode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        # numcodecs may hand back a differently typed view of the same bytes (bitround: uint).
        return _as_array(self.impl().encode(np.ascontiguousarray(arr)), self.resolve(spec), "")

    def decode_to_array(self, data: Any, spec: ChunkSpec) -> np.ndarray:
        try:
            result = self.impl().decode(data)
        except Exception as e:
            raise DecodeError(f"{self.codec_id} could not decode chunk: {e}") from e
        return _as_array(result, spec, self.codec_id)

    def encode_from_array(self, arr: np.ndarray, spec: ChunkSpec) -> bytes:
        return bytes(self.impl().encode(np.ascontiguousarray(arr)))

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        try:
            result = self.impl().decode(data)
        except Exception as e:
            raise DecodeError(f"{self.codec_id} could not decode chunk: {e}") from e
        if expected_size is not None:
            got = memoryview(result).nbytes
            if got != expected_size:
                raise DecodeError(f"{self.codec_id} decoded {got} bytes, expected {expected_size}")
        return result

    def encode_bytes(self, data: Any) -> bytes:
        return bytes(self.impl().encode(data))
