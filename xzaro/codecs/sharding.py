"""The ``sharding_indexed`` codec (array->bytes): many inner chunks in one object, with an index.

V3 ``{"name": "sharding_indexed", "configuration": {"chunk_shape": [...], "codecs": [...],
"index_codecs": [...], "index_location": "end"}}``; V3 only. The index (a :class:`ShardIndex`) is
encoded with ``index_codecs`` and stored at the end (default) or the start of the shard. ZaroArray
uses :meth:`ShardingCodec.index_request` and :meth:`ShardingCodec.decode_index` to fetch only the
inner chunks a read needs; :meth:`ShardingCodec.decode_to_array` decodes a whole shard.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.buffers import thread_buffer
from xzaro.codecs.base import ArrayBytesCodec, ChunkSpec, Codec
from xzaro.codecs.bytes import BytesCodec
from xzaro.codecs.crc32c import Crc32cCodec
from xzaro.codecs.pipeline import CodecPipeline
from xzaro.codecs.shard_index import ShardIndex
from xzaro.concurrency import concurrent_map
from xzaro.dtypes import fill_array, is_fill
from xzaro.errors import DecodeError, MetadataError, UnsupportedError, brief


@dataclass(frozen=True)
class ShardingCodec(ArrayBytesCodec):
    """Sharding: ``chunk_shape`` inner chunks encoded with ``codecs`` inside each shard."""

    chunk_shape: tuple[int, ...]
    codecs: tuple[Codec, ...] = (BytesCodec(),)
    index_codecs: tuple[Codec, ...] = (BytesCodec(), Crc32cCodec())
    index_location: str = "end"
    name = "sharding_indexed"
    nested_chains = ("codecs", "index_codecs")

    def __post_init__(self) -> None:
        if not isinstance(self.chunk_shape, (list, tuple)) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in self.chunk_shape
        ):
            raise MetadataError(
                f"sharding chunk_shape must be a list of integers, got {brief(self.chunk_shape)}",
                field="codecs",
            )
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
    def from_config(cls, config: dict[str, Any]) -> Codec:
        """Build from a configuration whose chains the registry has parsed."""
        return cls(
            chunk_shape=config.get("chunk_shape"),  # type: ignore[arg-type]  # checked on init
            codecs=config.get("codecs", (BytesCodec(),)),
            index_codecs=config.get("index_codecs", (BytesCodec(), Crc32cCodec())),
            index_location=config.get("index_location", "end"),
        )

    def configuration(self) -> dict[str, Any]:
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

    def decode_index(
        self,
        data: Any,
        shard_shape: tuple[int, ...],
        *,
        url: str | None = None,
        key: str | None = None,
    ) -> ShardIndex:
        """Decode stored index bytes (``url`` and ``key`` name the shard in the log)."""
        index = self.index_pipeline(shard_shape).decode(data)
        return ShardIndex.from_pairs(index, url=url, key=key)

    def encode_index(self, index: ShardIndex, shard_shape: tuple[int, ...]) -> bytes | memoryview:
        """The stored bytes of a shard's index."""
        cps = self.chunks_per_shard(shard_shape)
        return self.index_pipeline(shard_shape).encode(index.entries.reshape(*cps, 2))

    def inner_pipeline(self, dtype: np.dtype, fill_value: Any) -> CodecPipeline:
        """The pipeline decoding one inner chunk."""
        return CodecPipeline(self.codecs, self.chunk_shape, dtype, fill_value)

    def locate_index(
        self,
        shard: Any,
        shard_shape: tuple[int, ...],
        *,
        url: str | None = None,
        key: str | None = None,
    ) -> ShardIndex:
        """Read the index from a whole shard object, checking every range lies inside it."""
        size = memoryview(shard).nbytes
        offset, length = self.index_request(shard_shape)
        if size < length:
            raise DecodeError(f"shard of {size} bytes is shorter than its {length}-byte index")
        start = size - length if offset < 0 else 0
        view = memoryview(shard)[start : start + length]
        index = self.decode_index(view, shard_shape, url=url, key=key)
        index.check(size)
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
            where = index.get_chunk_slice(i)
            if where is None:
                continue
            region = tuple(slice(j * c, (j + 1) * c) for j, c in zip(idx, self.chunk_shape))
            out[region] = inner.decode(view[where])
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
        index = ShardIndex.create_empty(math.prod(cps))
        scratch_ok = bool(inner.bytes_bytes) and not spec.dtype.hasobject

        def encode_inner(idx: tuple[int, ...]) -> bytes | memoryview | None:
            chunk = inner_chunk(idx)
            if chunk is None or is_fill(chunk, fill):
                return None
            target = out(idx) if out is not None else None
            if not chunk.flags.c_contiguous:
                if scratch_ok:
                    # a compressor returns new bytes: the copy can live in a reused buffer
                    scratch = thread_buffer(chunk.shape, chunk.dtype, "inner chunk")
                    np.copyto(scratch, chunk)
                    chunk = scratch
                else:
                    chunk = np.ascontiguousarray(chunk)
            return inner.encode(chunk, target)

        # Inner chunks encode in parallel (inline when already on a pool thread).
        blobs = concurrent_map(encode_inner, list(itertools.product(*map(range, cps))))
        parts: list[bytes | memoryview] = []
        pos = self.index_nbytes(spec.shape) if self.index_location == "start" else 0
        for i, blob in enumerate(blobs):
            if blob is None:
                continue
            index.set_chunk_slice(i, slice(pos, pos + len(blob)))
            parts.append(blob)
            pos += len(blob)
        index_blob = self.encode_index(index, spec.shape)
        return [index_blob, *parts] if self.index_location == "start" else [*parts, index_blob]


@functools.lru_cache(maxsize=64)
def _index_pipeline(index_codecs: tuple[Codec, ...], cps: tuple[int, ...]) -> CodecPipeline:
    return CodecPipeline(index_codecs, (*cps, 2), np.dtype(np.uint64), None)
