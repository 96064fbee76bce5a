"""The ``sharding_indexed`` codec: many inner chunks in one object, with a fixed-size index.

The index is an array of ``(offset, nbytes)`` uint64 pairs, one per inner chunk in C order,
encoded with ``index_codecs`` and stored at the end (default) or the start of the shard. A pair of
``2**64 - 1`` marks an inner chunk that is not stored (it reads as the fill value).
ZaroArray uses :meth:`ShardingCodec.index_request` and :meth:`ShardingCodec.decode_index` to
fetch only the inner chunks a read needs; :meth:`decode_to_array` decodes a whole shard.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.codecs.array_codecs import BytesCodec
from xzaro.codecs.base import ArrayBytesCodec, ChunkSpec, Codec, codec_from_json, register
from xzaro.codecs.compression import Crc32cCodec
from xzaro.codecs.pipeline import CodecPipeline
from xzaro.concurrency import concurrent_map
from xzaro.dtypes import fill_array
from xzaro.errors import DecodeError, MetadataError, UnsupportedError

EMPTY = np.uint64(2**64 - 1)


def _parse_chain(docs: Any, field: str) -> tuple[Codec, ...]:
    if not isinstance(docs, (list, tuple)):
        raise MetadataError(f"sharding {field} must be a list", field="codecs")
    return tuple(c for c in (codec_from_json(d) for d in docs) if c is not None)


@register
@dataclass(frozen=True)
class ShardingCodec(ArrayBytesCodec):
    """Sharding: ``chunk_shape`` inner chunks encoded with ``codecs`` inside each shard."""

    chunk_shape: tuple[int, ...]
    codecs: tuple[Codec, ...] = (BytesCodec(),)
    index_codecs: tuple[Codec, ...] = (BytesCodec(), Crc32cCodec())
    index_location: str = "end"
    name = "sharding_indexed"

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunk_shape", tuple(int(n) for n in self.chunk_shape))
        if any(n <= 0 for n in self.chunk_shape):
            raise MetadataError(
                f"sharding chunk_shape must be positive, got {list(self.chunk_shape)}",
                field="codecs",
            )
        if self.index_location not in ("start", "end"):
            raise MetadataError(
                f"sharding index_location must be 'start' or 'end', got {self.index_location!r}",
                field="codecs",
            )

    @classmethod
    def from_config(cls, config: dict) -> Codec:
        return cls(
            chunk_shape=tuple(config["chunk_shape"]),
            codecs=_parse_chain(config.get("codecs", [{"name": "bytes"}]), "codecs"),
            index_codecs=_parse_chain(
                config.get("index_codecs", [{"name": "bytes"}, {"name": "crc32c"}]),
                "index_codecs",
            ),
            index_location=config.get("index_location", "end"),
        )

    def configuration(self) -> dict:
        return {
            "chunk_shape": list(self.chunk_shape),
            "codecs": [c.to_json() for c in self.codecs],
            "index_codecs": [c.to_json() for c in self.index_codecs],
            "index_location": self.index_location,
        }

    def label(self) -> str:
        inner = " -> ".join(c.label() for c in self.codecs)
        return f"sharding_indexed[{inner}]"

    # ------------------------------------------------------------------ geometry and index
    def chunks_per_shard(self, shard_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Inner chunks along each dimension of a shard."""
        if len(shard_shape) != len(self.chunk_shape) or any(
            s % c for s, c in zip(shard_shape, self.chunk_shape)
        ):
            raise MetadataError(
                f"sharding chunk_shape {list(self.chunk_shape)} must evenly divide the shard "
                f"shape {list(shard_shape)}",
                field="codecs",
            )
        return tuple(s // c for s, c in zip(shard_shape, self.chunk_shape))

    def index_pipeline(self, shard_shape: tuple[int, ...]) -> CodecPipeline:
        """The pipeline for the shard index array."""
        return _index_pipeline(self.index_codecs, self.chunks_per_shard(shard_shape))

    def index_nbytes(self, shard_shape: tuple[int, ...]) -> int:
        """Stored size of the index, which the spec requires to be fixed."""
        size = self.index_pipeline(shard_shape).encoded_size
        if size is None:
            raise UnsupportedError(
                "sharding index_codecs must produce a fixed-size index "
                f"({[c.name for c in self.index_codecs]})",
                field="codecs",
            )
        return size

    def index_request(self, shard_shape: tuple[int, ...]) -> tuple[int, int]:
        """``(offset, length)`` of the index in a shard object (a negative offset for a suffix)."""
        n = self.index_nbytes(shard_shape)
        return (-n, n) if self.index_location == "end" else (0, n)

    def decode_index(self, data: Any, shard_shape: tuple[int, ...]) -> np.ndarray:
        """Decode stored index bytes into an ``(n_inner, 2)`` uint64 array in C order."""
        index = self.index_pipeline(shard_shape).decode(data)
        return np.ascontiguousarray(index, dtype=np.uint64).reshape(-1, 2)

    def inner_pipeline(self, dtype: np.dtype, fill_value: Any) -> CodecPipeline:
        """The pipeline decoding one inner chunk."""
        return CodecPipeline(self.codecs, self.chunk_shape, dtype, fill_value)

    def locate_index(self, shard: Any, shard_shape: tuple[int, ...]) -> np.ndarray:
        """Read the index from a whole shard object, checking every range lies inside it."""
        size = memoryview(shard).nbytes
        offset, length = self.index_request(shard_shape)
        if size < length:
            raise DecodeError(f"shard of {size} bytes is shorter than its {length}-byte index")
        start = size - length if offset < 0 else 0
        index = self.decode_index(memoryview(shard)[start : start + length], shard_shape)
        check_index(index, size)
        return index

    # ------------------------------------------------------------------ whole-shard codec
    def decode_to_array(self, data: Any, spec: ChunkSpec) -> np.ndarray:
        assert spec.shape is not None
        out = fill_array(spec.shape, spec.dtype, spec.fill_value)
        index = self.locate_index(data, spec.shape)
        inner = self.inner_pipeline(spec.dtype, spec.fill_value)
        view = memoryview(data)
        cps = self.chunks_per_shard(spec.shape)
        for i, idx in enumerate(itertools.product(*map(range, cps))):
            offset, nbytes = index[i]
            if offset == EMPTY and nbytes == EMPTY:
                continue
            region = tuple(slice(j * c, (j + 1) * c) for j, c in zip(idx, self.chunk_shape))
            out[region] = inner.decode(view[int(offset) : int(offset) + int(nbytes)])
        return out

    def encode_from_array(self, arr: np.ndarray, spec: ChunkSpec) -> bytes:
        """Encode a whole shard; inner chunks equal to the fill value are not stored."""
        return b"".join(self.encode_parts(arr, spec))

    def encode_parts(self, arr: np.ndarray, spec: ChunkSpec) -> list[bytes | memoryview]:
        """A whole shard as its consecutive parts (chunks and index), not yet joined."""
        assert spec.shape is not None

        def inner_chunk(idx: tuple[int, ...]) -> np.ndarray:
            region = tuple(slice(j * c, (j + 1) * c) for j, c in zip(idx, self.chunk_shape))
            return arr[region]

        return self.encode_chunks(inner_chunk, spec)

    def encode_chunks(
        self,
        inner_chunk: Callable[[tuple[int, ...]], np.ndarray | None],
        spec: ChunkSpec,
        out: Callable[[tuple[int, ...]], np.ndarray] | None = None,
    ) -> list[bytes | memoryview]:
        """A shard of ``spec.shape`` as its parts, from ``inner_chunk(index)``: the inner chunk
        at that grid index within the shard, or ``None`` when it is not stored (beyond the
        array's end). Inner chunks holding only the fill value are not stored either.
        ``out(index)`` may give a byte buffer for each encoded inner chunk (see
        :meth:`CodecPipeline.encode`)."""
        assert spec.shape is not None
        cps = self.chunks_per_shard(spec.shape)
        inner = self.inner_pipeline(spec.dtype, spec.fill_value)
        fill = fill_array((), spec.dtype, spec.fill_value)
        index = np.full((int(np.prod(cps)), 2), EMPTY, dtype=np.uint64)

        def encode_inner(idx: tuple[int, ...]) -> bytes | memoryview | None:
            chunk = inner_chunk(idx)
            if chunk is None or is_fill(chunk, fill):
                return None
            target = out(idx) if out is not None else None
            return inner.encode(np.require(chunk, requirements="C"), target)

        # Inner chunks encode in parallel (inline when already on a pool thread).
        blobs = concurrent_map(encode_inner, list(itertools.product(*map(range, cps))))
        parts: list[bytes | memoryview] = []
        pos = self.index_nbytes(spec.shape) if self.index_location == "start" else 0
        for i, blob in enumerate(blobs):
            if blob is None:
                continue
            index[i] = (pos, len(blob))
            parts.append(blob)
            pos += len(blob)
        index_blob = self.index_pipeline(spec.shape).encode(index.reshape(*cps, 2))
        return [index_blob, *parts] if self.index_location == "start" else [*parts, index_blob]


_UINT_VIEW = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


#: Elements compared per step when checking a chunk against a non-zero fill value.
_FILL_STEP = 1 << 18


def is_fill(chunk: np.ndarray, fill: np.ndarray) -> bool:
    """Whether every element of ``chunk`` equals ``fill`` (a 0-d array of the same dtype) bit
    for bit (NaN == NaN), without materialising a fill chunk.

    The first element decides most chunks that hold data at once.
    """
    if chunk.dtype.hasobject:
        return bool(np.all(chunk == fill[()]))
    if chunk.size == 0:
        return True
    view = _UINT_VIEW.get(chunk.dtype.itemsize)
    if view is None or chunk.dtype != fill.dtype:
        return chunk.tobytes() == fill.tobytes() * chunk.size
    bits = chunk.view(view)
    value = fill.view(view)[()]
    if bits.flat[0] != value:
        return False
    if value == 0:
        return not bits.any()
    if not bits.flags.c_contiguous:
        return bool(np.all(bits == value))
    flat = bits.reshape(-1)
    return all(
        bool(np.all(flat[i : i + _FILL_STEP] == value)) for i in range(0, flat.size, _FILL_STEP)
    )


def check_index(index: np.ndarray, size: int) -> None:
    """Fail if any stored inner chunk's byte range lies outside a shard of ``size`` bytes."""
    offsets, nbytes = index[:, 0], index[:, 1]
    empty = (offsets == EMPTY) & (nbytes == EMPTY)
    stored = ~empty
    if np.any(stored & ((offsets > size) | (nbytes > size - np.minimum(offsets, size)))):
        raise DecodeError(f"shard index points outside the {size}-byte shard")


@functools.lru_cache(maxsize=64)
def _index_pipeline(index_codecs: tuple[Codec, ...], cps: tuple[int, ...]) -> CodecPipeline:
    return CodecPipeline(index_codecs, (*cps, 2), np.dtype(np.uint64), None)
