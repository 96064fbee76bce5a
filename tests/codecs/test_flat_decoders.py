"""``CodecPipeline.flat_decoder``: chunks decoded by offset into one flat buffer (the loop over
thousands of tiny local chunks). Zstd and Blosc decode straight to the offset, other chains
through ``decode_flat``; every chain gives ``decode``'s bytes, and no frame, however corrupt or
wherever it is asked to go, writes a byte outside its own place."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from xzaro.codecs import (
    BloscCodec,
    BytesCodec,
    CodecPipeline,
    Crc32cCodec,
    GzipCodec,
    ZstdCodec,
)
from xzaro.errors import DecodeError

SHAPE = (4, 16)
CHAINS: dict[str, list[Any]] = {
    "zstd": [BytesCodec(), ZstdCodec(level=1)],
    "blosc-lz4": [BytesCodec(), BloscCodec("lz4", 5, "shuffle")],
    "blosc-zstd-bitshuffle": [BytesCodec(), BloscCodec("zstd", 3, "bitshuffle")],
    "gzip": [BytesCodec(), GzipCodec(level=1)],
    "zstd+crc32c": [BytesCodec(), ZstdCodec(level=1), Crc32cCodec()],
    "uncompressed": [BytesCodec()],
}
SENTINEL = 0xA5


def _pipeline(name: str) -> CodecPipeline:
    return CodecPipeline(CHAINS[name], SHAPE, np.dtype("<f4"), 0.0)


def _chunk(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=SHAPE).astype("<f4")


@pytest.mark.parametrize("name", list(CHAINS))
def test_chunks_land_at_their_offsets_as_decode_gives_them(name: str) -> None:
    pipeline = _pipeline(name)
    size = pipeline.spec.nbytes
    assert size is not None
    raw = np.full(3 * size + 5, SENTINEL, np.uint8)
    if name.startswith(("zstd", "blosc")) and "crc32c" not in name:

        def no_views(*args: Any) -> None:
            raise AssertionError("zstd and Blosc decode by offset, without a view per chunk")

        pipeline.decode_flat = no_views  # type: ignore[method-assign]
    decode = pipeline.flat_decoder(raw)
    chunks = [_chunk(seed) for seed in range(3)]
    for i, chunk in enumerate(chunks):
        decode(bytes(pipeline.encode(chunk)), 5 + i * size)
    assert (raw[:5] == SENTINEL).all()
    got = raw[5:].view("<f4").reshape(3, *SHAPE)
    for i, chunk in enumerate(chunks):
        np.testing.assert_array_equal(got[i], chunk)
        # from memory the caller holds, as a local read hands it over
        decode(memoryview(bytearray(pipeline.encode(chunks[2 - i]))), 5 + i * size)
        np.testing.assert_array_equal(got[i], pipeline.decode(pipeline.encode(chunks[2 - i])))


def _corruptions(pipeline: CodecPipeline) -> list[bytes]:
    encoded = bytes(pipeline.encode(_chunk(0)))
    larger = CodecPipeline(pipeline.codecs, (5, 16), np.dtype("<f4"), 0.0)
    smaller = CodecPipeline(pipeline.codecs, (3, 16), np.dtype("<f4"), 0.0)
    bad = [
        encoded[: len(encoded) // 2],
        encoded[:3],
        b"",
        bytes(larger.encode(np.ones((5, 16), "<f4"))),
        bytes(smaller.encode(np.ones((3, 16), "<f4"))),
    ]
    if pipeline.bytes_bytes:  # flipped bits: only raw bytes of the right length are any chunk
        bad.append(bytes(b ^ 0x5A for b in encoded))
    return bad


def _decoder(name: str, places: int) -> tuple[CodecPipeline, int, np.ndarray, Any]:
    """The chain's pipeline, its chunk's size, a buffer of ``places`` chunks of sentinel bytes
    and the pipeline's decoder by offset into it."""
    pipeline = _pipeline(name)
    size = pipeline.spec.nbytes
    assert size is not None
    raw = np.full(places * size, SENTINEL, np.uint8)
    return pipeline, size, raw, pipeline.flat_decoder(raw)


@pytest.mark.parametrize("name", list(CHAINS))
def test_corrupt_frames_raise_and_write_nothing_outside_their_place(name: str) -> None:
    pipeline, size, raw, decode = _decoder(name, 3)
    for bad in _corruptions(pipeline):
        with pytest.raises(DecodeError):
            decode(bad, size)
        assert (raw[:size] == SENTINEL).all() and (raw[2 * size :] == SENTINEL).all()


@pytest.mark.parametrize("name", list(CHAINS))
def test_an_offset_outside_the_buffer_is_refused(name: str) -> None:
    pipeline, size, raw, decode = _decoder(name, 2)
    encoded = bytes(pipeline.encode(_chunk(1)))
    for at in (-1, -size, size + 1, 2 * size, 10**12):
        with pytest.raises(IndexError):
            decode(encoded, at)
    assert (raw == SENTINEL).all()
    decode(encoded, size)  # the last place that fits
    np.testing.assert_array_equal(raw[size:].view("<f4").reshape(SHAPE), _chunk(1))
