"""A codec chain bound to one chunk shape and dtype: decode and encode whole chunks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xzaro.codecs import zstd_contexts
from xzaro.codecs.base import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    ChunkSpec,
    Codec,
)
from xzaro.codecs.bytes import BytesCodec
from xzaro.codecs.zstd import ZstdCodec
from xzaro.errors import DecodeError, MetadataError, ZaroError


class CodecPipeline:
    """Decode and encode chunks of one shape and dtype through a V3-style codec chain.

    Parameters
    ----------
    codecs
        The chain, in encode order: array->array codecs, exactly one array->bytes codec,
        then bytes->bytes codecs.
    shape, dtype, fill_value
        The decoded chunk.
    """

    def __init__(
        self, codecs: Sequence[Codec], shape: tuple[int, ...], dtype: np.dtype, fill_value: Any
    ) -> None:
        self.codecs = tuple(codecs)
        self.spec = ChunkSpec(tuple(shape), np.dtype(dtype), fill_value)
        kinds = [c.kind for c in self.codecs]
        n_ab = kinds.count(ARRAY_BYTES)
        if n_ab != 1:
            raise MetadataError(
                f"a codec chain needs exactly one array->bytes codec, found {n_ab} in "
                f"{[c.name for c in self.codecs]}",
                field="codecs",
            )
        i_ab = kinds.index(ARRAY_BYTES)
        if any(k != ARRAY_ARRAY for k in kinds[:i_ab]) or any(
            k != BYTES_BYTES for k in kinds[i_ab + 1 :]
        ):
            raise MetadataError(
                f"codecs are out of order (array->array, array->bytes, bytes->bytes): "
                f"{[c.name for c in self.codecs]}",
                field="codecs",
            )
        # Typed loosely: numcodecs wrappers implement every kind's methods.
        chain: tuple[Any, ...] = tuple(self.codecs)
        self.array_array = chain[:i_ab]
        self.array_bytes = chain[i_ab]

        specs = [self.spec]
        for aa in self.array_array:
            specs.append(aa.resolve(specs[-1]))
        self.array_specs = specs[:-1]
        self.bytes_spec = specs[-1]
        # Settings that depend on the data type (Blosc's typesize) are filled in once, here.
        self.bytes_bytes = tuple(bb.evolve_from_spec(self.bytes_spec) for bb in chain[i_ab + 1 :])
        self.encodes_into = len(self.bytes_bytes) == 1 and self.bytes_bytes[0].encodes_into

        size = self.array_bytes.encoded_size(self.bytes_spec)
        self.bytes_in_sizes: list[int | None] = []
        for bb in self.bytes_bytes:
            self.bytes_in_sizes.append(size)
            size = bb.encoded_size(size)
        self.encoded_size: int | None = size
        self.decodes_in_place = (
            not self.array_array
            and isinstance(self.array_bytes, BytesCodec)
            and self.array_bytes.is_identity_for(self.spec.dtype)
            and not self.spec.dtype.hasobject
        )
        #: Whether a stored chunk can be decoded part by part (:meth:`frame_reader`): its
        #: decoded bytes are the chunk's elements in C order, out of zstd frames.
        self.streams = (
            self.decodes_in_place
            and len(self.bytes_bytes) == 1
            and isinstance(self.bytes_bytes[0], ZstdCodec)
            and zstd_contexts.available()
        )

    def decode(self, data: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Decode one stored chunk.

        If ``out`` (C-contiguous, of the chunk's shape and dtype) is given, the chunk is
        decoded into it, straight from the decompressor when the chain allows, and ``out`` is
        returned.

        Raises
        ------
        DecodeError
            The chunk is corrupt, or what its codecs make of it is not an array of the
            chunk's shape and dtype (a filter, or numpy casting its result, refused it).
        """
        try:
            return self._decode(data, out)
        except ZaroError:
            raise
        except (ValueError, TypeError, OverflowError) as e:
            raise DecodeError(
                f"chunk does not decode to {self.spec.dtype} of shape {self.spec.shape}: {e}"
            ) from e

    def _decode(self, data: Any, out: np.ndarray | None) -> np.ndarray:
        buf = data
        raw_out = None
        if out is not None and self.decodes_in_place and self.bytes_bytes:
            raw_out = out.reshape(-1).view(np.uint8)  # a byte view any decompressor can fill
        for i in range(len(self.bytes_bytes) - 1, -1, -1):
            target = raw_out if i == 0 else None
            buf = self.bytes_bytes[i].decode_bytes(buf, self.bytes_in_sizes[i], target)
        if out is not None and raw_out is not None and buf is raw_out:
            return out
        arr: np.ndarray = self.array_bytes.decode_to_array(buf, self.bytes_spec)
        for codec, spec in zip(reversed(self.array_array), reversed(self.array_specs)):
            arr = codec.decode_array(arr, spec)
        if arr.shape != self.spec.shape:
            raise DecodeError(f"decoded chunk has shape {arr.shape}, expected {self.spec.shape}")
        if out is not None:
            out[...] = arr
            return out
        return arr

    def decode_flat(self, data: Any, raw: np.ndarray) -> None:
        """Decode one stored chunk into ``raw``, its bytes as a flat C-contiguous uint8 array,
        where :attr:`decodes_in_place`: :meth:`decode` without its reshaping, for callers
        decoding thousands of small chunks into rows of one buffer.

        Raises
        ------
        DecodeError
            The chunk is corrupt or decodes to another number of bytes.
        """
        buf = data
        for i in range(len(self.bytes_bytes) - 1, -1, -1):
            buf = self.bytes_bytes[i].decode_bytes(buf, self.bytes_in_sizes[i], None if i else raw)
        if buf is raw:
            return
        got = np.frombuffer(buf, dtype=np.uint8)
        if got.nbytes != raw.nbytes:
            raise DecodeError(f"chunk decodes to {got.nbytes} bytes, expected {raw.nbytes}")
        raw[...] = got

    def flat_decoder(self, raw: np.ndarray) -> Callable[[Any, int], None]:
        """``decode(data, at)``: one stored chunk decoded into ``raw[at : at + nbytes]`` (its
        bytes; ``raw`` a flat, writable, C-contiguous uint8 array), where :attr:`decodes_in_place`:
        :meth:`decode_flat` for the loop over thousands of tiny chunks, without a view of
        ``raw`` per chunk where the compressor has a decoder by offset. For the calling thread
        only.

        Raises
        ------
        DecodeError
            (from ``decode``) The chunk is corrupt or decodes to another number of bytes.
        """
        size = self.spec.nbytes or 0
        if len(self.bytes_bytes) == 1 and self.bytes_in_sizes[0] == size:
            # codecs other than BytesBytesCodec's (numcodecs' own, wrapped) have none
            decoder_at = getattr(self.bytes_bytes[0], "decoder_at", None)
            by_offset: Callable[[Any, int], None] | None = (
                decoder_at(raw, size) if decoder_at is not None else None
            )
            if by_offset is not None:
                return by_offset
        decode_flat = self.decode_flat
        last = raw.nbytes - size  # the furthest a chunk may start

        def decode(data: Any, at: int) -> None:
            if not 0 <= at <= last:
                raise IndexError(f"no {size} bytes at {at} of {raw.nbytes}")
            decode_flat(data, raw[at : at + size])

        return decode

    def frame_reader(self, data: Any) -> zstd_contexts.FrameReader | None:
        """A reader of the decoded chunk's bytes in C order, part by part, where
        :attr:`streams` (else ``None``): a large chunk is then taken apart a few planes at a
        time, in cache, instead of through a scratch buffer of its full size."""
        if not self.streams or self.spec.nbytes is None:
            return None
        return zstd_contexts.reader(data, self.spec.nbytes)

    def encode(self, arr: np.ndarray, out: np.ndarray | None = None) -> bytes | memoryview:
        """Encode one chunk of the pipeline's shape and dtype.

        Returns the encoded bytes, or a byte view of them where making ``bytes`` would only copy
        (an uncompressed chunk): stores and concatenation accept either. ``out`` (uint8) may
        receive the result instead, when a single compressor that can encode into a buffer
        (:attr:`~xzaro.codecs.base.BytesBytesCodec.encodes_into`: Blosc) ends the chain; the
        result is then a view of it.
        """
        if arr.shape != self.spec.shape:
            raise ValueError(f"chunk has shape {arr.shape}, expected {self.spec.shape}")
        for codec, spec in zip(self.array_array, self.array_specs):
            arr = codec.encode_array(arr, spec)
        buf: Any = self.array_bytes.encode_from_array(arr, self.bytes_spec)
        if out is not None and self.encodes_into:
            n = self.bytes_bytes[0].encode_into(buf, out)
            if n is not None:
                return out.data[:n]
        for codec in self.bytes_bytes:
            buf = codec.encode_bytes(buf)
        if isinstance(buf, bytes):
            return buf
        view = memoryview(buf)
        return view if view.format == "B" and view.ndim == 1 else view.cast("B")

    def describe(self) -> str:
        """The chain as ``bytes -> blosc(lz4) -> crc32c``."""
        return " -> ".join(c.label() for c in self.codecs)


def pipeline_for(meta: Any) -> CodecPipeline:
    """The pipeline decoding one stored object (a chunk, or a whole shard) of ``meta``'s array."""
    shape = meta.shard_shape or meta.chunk_shape
    return CodecPipeline(meta.codecs, shape, meta.dtype, meta.fill_value_or_default)
