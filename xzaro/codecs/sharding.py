"""The ``sharding_indexed`` codec: many inner chunks in one object, with a fixed-size index.

The index is an array of ``(offset, nbytes)`` uint64 pairs, one per inner chunk in C order,
encoded with ``index_codecs`` and stored at the end (default) or the start of the shard. A pair of
``2**64 - 1`` marks an inner chunk that is not stored (it reads as the fill value); zarrita marks
it ``(offset, 2**64 - 1)``, which reads the same way, and is logged. A decoded index is a
:class:`ShardIndex`. ZaroArray uses :meth:`ShardingCodec.index_request` and
:meth:`ShardingCodec.decode_index` to fetch only the inner chunks a read needs;
:meth:`decode_to_array` decodes a whole shard.
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
from xzaro.errors import DecodeError, MetadataError, UnsupportedError, brief
from xzaro.log import info

EMPTY = np.uint64(2**64 - 1)
#: No shard is larger than this: an index entry reaching beyond it is corrupt whatever the
#: shard's size (used when a partial read has not fetched the whole shard).
_MAX_SHARD_SIZE = 2**63


@dataclass(frozen=True, eq=False)
class ShardIndex:
    """The decoded index of one shard: where each inner chunk lies, in C order of the shard's
    chunk grid.

    ``entries`` is an ``(n_inner, 2)`` uint64 array of ``(offset, nbytes)`` pairs; an inner chunk
    that is not stored is ``(2**64-1, 2**64-1)`` there. Ask :meth:`is_empty` and
    :meth:`chunk_slice` rather than comparing entries with the marker.
    """

    entries: np.ndarray

    @classmethod
    def from_pairs(
        cls, pairs: np.ndarray, *, url: str | None = None, key: str | None = None
    ) -> ShardIndex:
        """The index from its decoded ``(offset, nbytes)`` pairs.

        An entry ``(offset, 2**64-1)`` (zarrita's empty inner chunk) becomes the standard
        marker, with one log line for the shard; ``(2**64-1, nbytes)`` is corrupt.
        """
        entries = np.ascontiguousarray(pairs, dtype=np.uint64).reshape(-1, 2)
        offsets, nbytes = entries[:, 0], entries[:, 1]
        broken = np.flatnonzero((offsets == EMPTY) & (nbytes != EMPTY))
        if broken.size:
            i = int(broken[0])
            raise DecodeError(
                f"shard index is corrupt: inner chunk {i} has no offset but a length of "
                f"{int(nbytes[i])} bytes"
            )
        loose = np.flatnonzero((nbytes == EMPTY) & (offsets != EMPTY))
        if loose.size:
            entries = entries.copy()
            entries[loose, 0] = EMPTY
            info(
                "shard%s: the index marks %d inner chunk(s) %s empty with a non-standard "
                "offset (offset, 2**64-1) instead of (2**64-1, 2**64-1); read as fill",
                "" if key is None else f" {key!r} of {url}",
                loose.size,
                loose.tolist()[:8],
            )
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> np.ndarray:
        """The ``(offset, nbytes)`` pair of inner chunk ``i``."""
        return self.entries[i]

    def is_empty(self, i: int) -> bool:
        """Whether inner chunk ``i`` is not stored (it reads as the fill value)."""
        return bool(self.entries[i, 1] == EMPTY)

    def chunk_slice(self, i: int) -> slice | None:
        """The byte range of inner chunk ``i`` in the shard, ``None`` if it is not stored."""
        if self.is_empty(i):
            return None
        offset, nbytes = (int(v) for v in self.entries[i])
        return slice(offset, offset + nbytes)

    def check(self, size: int | None) -> None:
        """Fail if a stored inner chunk's byte range lies outside a shard of ``size`` bytes
        (``None``: a size not known, so only ranges no shard can hold fail)."""
        limit = _MAX_SHARD_SIZE if size is None else size
        offsets, nbytes = self.entries[:, 0], self.entries[:, 1]
        stored = nbytes != EMPTY
        outside = stored & ((offsets > limit) | (nbytes > limit - np.minimum(offsets, limit)))
        if np.any(outside):
            i = int(np.flatnonzero(outside)[0])
            where = f"inner chunk {i} at {int(offsets[i])}+{int(nbytes[i])}"
            if size is None:
                raise DecodeError(f"shard index is corrupt: {where} is beyond any shard's end")
            raise DecodeError(f"shard index points outside the {size}-byte shard ({where})")


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
    def from_config(cls, config: dict) -> Codec:
        return cls(
            chunk_shape=config.get("chunk_shape"),
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
            where = index.chunk_slice(i)
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


def check_index(index: ShardIndex, size: int | None) -> None:
    """Fail if any stored inner chunk's byte range lies outside a shard of ``size`` bytes
    (``None`` when the size is not known; see :meth:`ShardIndex.check`)."""
    index.check(size)


@functools.lru_cache(maxsize=64)
def _index_pipeline(index_codecs: tuple[Codec, ...], cps: tuple[int, ...]) -> CodecPipeline:
    return CodecPipeline(index_codecs, (*cps, 2), np.dtype(np.uint64), None)
