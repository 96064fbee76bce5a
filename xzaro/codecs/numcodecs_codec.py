"""Any numcodecs codec as a chain member: V3 ``numcodecs.<id>`` names and V2 filters/compressors.

The codec's kind (array->array, array->bytes or bytes->bytes) comes from its id. Array->array
filters declare the dtype of their encoded side where numcodecs fixes it, so the ``bytes``
codec after them can check sizes exactly. The array->bytes codecs of numeric arrays (``pcodec``,
``zfpy``) decode no more items than the chunk holds; ``pickle`` decodes only in a codec built
with the caller's opt-in (numcodecs' own switch is process-wide, and stays as it is).
"""

from __future__ import annotations

import functools
import json
import pickle
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xzaro.codecs.base import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    UNSAFE_CODEC_IDS,
    BytesBytesCodec,
    ChunkSpec,
    Codec,
    check_safe,
)
from xzaro.codecs.blosc import BloscCodec
from xzaro.codecs.bounded import BOUNDED_BYTES_DECODERS
from xzaro.codecs.gzip import GzipCodec
from xzaro.codecs.zlib import ZlibCodec
from xzaro.codecs.zstd import ZstdCodec
from xzaro.errors import DecodeError, MetadataError, UnsafeCodecError, UnsupportedError

ARRAY_ARRAY_IDS = frozenset(
    {"delta", "fixedscaleoffset", "quantize", "astype", "packbits", "bitround", "categorize"}
)
#: Array->bytes codecs of object arrays (V2 lists them among the filters).
OBJECT_CODEC_IDS = frozenset(
    {"vlen-utf8", "vlen-bytes", "vlen-array", "json2", "msgpack2", "pickle"}
)
#: Array->bytes codecs of numeric arrays (V2 gives them as the compressor, which zarr-python 2
#: hands the chunk array).
NUMERIC_ARRAY_BYTES_IDS = frozenset({"pcodec", "zfpy"})
ARRAY_BYTES_IDS = OBJECT_CODEC_IDS | NUMERIC_ARRAY_BYTES_IDS


@functools.lru_cache(maxsize=256)
def _numcodecs_impl(config_json: str) -> Any:
    import numcodecs

    return numcodecs.get_codec(json.loads(config_json))


def _encoded_spec(codec_id: str, config: dict[str, Any], spec: ChunkSpec) -> ChunkSpec:
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


def _decode_pcodec(data: Any, spec: ChunkSpec) -> np.ndarray:
    """A pcodec stream decoded into a chunk-sized array: a stream of more or fewer items than
    the chunk holds is refused, never truncated or padded."""
    from pcodec import standalone

    assert spec.shape is not None  # only called for chunks of a known shape
    n = int(np.prod(spec.shape, dtype=np.int64))
    out = np.empty(n, dtype=spec.dtype.newbyteorder("="))
    try:
        progress = standalone.simple_decompress_into(bytes(data), out)
    except Exception as e:  # pcodec raises RuntimeError (corrupt) or TypeError (dtype)
        raise DecodeError(f"pcodec could not decode chunk into {n} {spec.dtype}: {e}") from e
    if not progress.finished:
        raise DecodeError(f"pcodec chunk holds more than the {n} items of a {spec.shape} chunk")
    if progress.n_processed != n:
        raise DecodeError(
            f"pcodec chunk holds {progress.n_processed} items, expected {n} for {spec.shape}"
        )
    return out


#: Zero bytes appended to a zfp stream before zfpy reads it: zfp reads whole 64-bit words and
#: checks no bounds, so a truncated stream would otherwise make it read past the buffer.
_ZFP_PADDING = bytes(16)


def _decode_zfpy(data: Any, spec: ChunkSpec) -> Any:
    """A zfp stream decoded after its header shows it holds exactly the chunk's items.

    zfp streams carry neither a length nor a checksum: a stream cut short after its header
    decodes (in zfpy, numcodecs and zarr-python alike) to wrong values that no reader can tell.
    """
    import zfpy

    assert spec.shape is not None  # only called for chunks of a known shape
    n = int(np.prod(spec.shape, dtype=np.int64))
    blob = bytes(data) + _ZFP_PADDING
    try:
        header = zfpy.header(blob)
        dims = [int(header[k]) for k in ("nx", "ny", "nz", "nw")]
        used = dims[: dims.index(0)] if 0 in dims else dims
        if not used or any(dims[len(used) :]):
            raise DecodeError(f"zfpy chunk header is corrupt (dimensions {dims})")
        count = int(np.prod(used, dtype=np.int64))
        if count != n:
            raise DecodeError(f"zfpy chunk holds {count} items, expected {n} for {spec.shape}")
        return zfpy.decompress_numpy(blob)
    except DecodeError:
        raise
    except Exception as e:
        raise DecodeError(f"zfpy could not decode chunk: {e}") from e


_BOUNDED_DECODERS = {"pcodec": _decode_pcodec, "zfpy": _decode_zfpy}


#: The numcodecs compressors whose streams xzaro's own codecs decode, bounded by the chunk's
#: size (the configuration only matters when encoding), by id.
_OWN_DECODERS: dict[str | None, BytesBytesCodec] = {
    cls.v2_id: cls() for cls in (ZstdCodec, ZlibCodec, GzipCodec, BloscCodec)
}


@dataclass(frozen=True)
class NumcodecsCodec(Codec):
    """A numcodecs codec given by id and configuration (``numcodecs.<id>`` in V3)."""

    codec_id: str
    config: dict[str, Any] = field(default_factory=dict, hash=False)
    #: A V2 filter: it works on the chunk before serialisation, whatever numcodecs calls it.
    v2_filter: bool = False
    #: The caller opted in to a codec that can execute code while decoding (``pickle``).
    allow_unsafe: bool = field(default=False, compare=False)
    name = "numcodecs"
    encodes_into = False

    @property
    def kind(self) -> str:  # type: ignore[override]
        if self.codec_id in ARRAY_BYTES_IDS:
            return ARRAY_BYTES
        if self.v2_filter or self.codec_id in ARRAY_ARRAY_IDS:
            return ARRAY_ARRAY
        return BYTES_BYTES

    @property
    def serialises_objects(self) -> bool:
        """Whether this is the array->bytes codec of an object array (``vlen-*``, ``pickle``...)."""
        return self.codec_id in OBJECT_CODEC_IDS

    def as_v2_filter(self, v2_filter: bool) -> NumcodecsCodec:
        """The same codec, used (or not) as a V2 filter."""
        return replace(self, v2_filter=v2_filter)

    @classmethod
    def from_id(
        cls,
        codec_id: str,
        config: dict[str, Any],
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
        return cls(codec_id, config, allow_unsafe=codec_id in UNSAFE_CODEC_IDS)

    def to_json(self) -> dict[str, Any]:
        return {"name": f"numcodecs.{self.codec_id}", "configuration": dict(self.config)}

    def to_v2(self) -> dict[str, Any]:
        """The V2 ``filters``/``compressor`` form ``{"id": ..., ...}``."""
        return {"id": self.codec_id, **self.config}

    def is_v2_compressor(self, alone: bool) -> bool:
        if self.kind == ARRAY_BYTES:
            # pcodec, zfpy: zarr-python 2 hands the compressor the chunk array, which they serialise
            return not self.serialises_objects
        return self.kind == BYTES_BYTES

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

    def _decode(self, data: Any) -> Any:
        """numcodecs' decode; ``pickle`` decodes here, for a codec built with the opt-in."""
        if self.codec_id == "pickle":
            check_safe(self.codec_id, self.allow_unsafe, url=None, key=None)
            return pickle.loads(memoryview(data))
        return self.impl().decode(data)

    def decode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        try:
            result = self._decode(np.ascontiguousarray(arr))
        except (DecodeError, UnsafeCodecError):
            raise
        except Exception as e:
            raise DecodeError(f"{self.codec_id} could not decode chunk: {e}") from e
        return _as_array(result, spec, self.codec_id)

    def encode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        # numcodecs may hand back a differently typed view of the same bytes (bitround: uint).
        return _as_array(self.impl().encode(np.ascontiguousarray(arr)), self.resolve(spec), "")

    def decode_to_array(self, data: Any, spec: ChunkSpec) -> np.ndarray:
        bounded = _BOUNDED_DECODERS.get(self.codec_id)
        if bounded is not None and spec.shape is not None and not spec.dtype.hasobject:
            arr = bounded(data, spec)
            if arr.dtype == spec.dtype.newbyteorder("=") != spec.dtype:
                arr = arr.astype(spec.dtype)  # decoded in native byte order: convert the values
            return _as_array(arr, spec, self.codec_id)
        try:
            result = self._decode(data)
        except UnsafeCodecError:
            raise
        except Exception as e:
            raise DecodeError(f"{self.codec_id} could not decode chunk: {e}") from e
        return _as_array(result, spec, self.codec_id)

    def encode_from_array(self, arr: np.ndarray, spec: ChunkSpec) -> bytes:
        return bytes(self.impl().encode(np.ascontiguousarray(arr)))

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        bounded = BOUNDED_BYTES_DECODERS.get(self.codec_id)
        if bounded is not None:
            return bounded(data, expected_size, self.config)
        own = _OWN_DECODERS.get(self.codec_id)
        if own is not None:  # numcodecs.zstd etc.: xzaro's own streams
            return own.decode_bytes(data, expected_size, out)
        try:
            result = self._decode(data)
        except UnsafeCodecError:
            raise
        except Exception as e:
            raise DecodeError(f"{self.codec_id} could not decode chunk: {e}") from e
        if expected_size is not None:
            got = memoryview(result).nbytes
            if got != expected_size:
                raise DecodeError(f"{self.codec_id} decoded {got} bytes, expected {expected_size}")
        return result

    def encode_bytes(self, data: Any) -> bytes:
        return bytes(self.impl().encode(data))
