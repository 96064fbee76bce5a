"""Decompression bombs: every decoder stops at the size its chunk may have.

Each bomb is a small chunk that decompresses to 512 MiB. It is decoded in a child process
allowed 256 MiB more than the test process, so a decoder that inflates first and checks after
fails its test instead of the machine.
"""

from __future__ import annotations

import bz2
import lzma
from typing import Any

import numcodecs
import numpy as np
import pytest
from capped import run_capped
from helpers import v2_array_doc, v3_array_doc

from xzaro.codecs.bounded import MAX_UNSIZED_CHUNK_BYTES
from xzaro.errors import DecodeError
from xzaro.meta import ZaroMeta, node_from_json

GiB = 1024**3
BOMB = GiB // 2
CAP = {"mem_bytes": GiB // 4, "timeout": 60.0}


def _v2(compressor: dict | None, *, dtype: str = "<f8", filters: Any = None) -> ZaroMeta:
    doc = v2_array_doc(
        [1000], [1000], dtype, compressor=compressor, fill_value=None, filters=filters
    )
    meta = node_from_json(doc, url="memory://bombs", key="a/.zarray")
    assert isinstance(meta, ZaroMeta)
    return meta


def _zeros_compressed(codec: Any, nbytes: int) -> bytes:
    step = 64 * 1024**2
    if isinstance(codec, numcodecs.BZ2):
        c = bz2.BZ2Compressor(1)
        out = b"".join(c.compress(bytes(step)) for _ in range(nbytes // step))
        return out + c.flush()
    if isinstance(codec, numcodecs.LZMA):
        c = lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=1)
        out = b"".join(c.compress(bytes(step)) for _ in range(nbytes // step))
        return out + c.flush()
    return bytes(codec.encode(bytes(nbytes)))


def _decode(meta: ZaroMeta, data: bytes) -> str:
    from xzaro.codecs import pipeline_for

    try:
        pipeline_for(meta).decode(data)
    except DecodeError as e:
        return f"DecodeError: {e}"
    return "decoded"


SIZED = {
    "bz2": ({"id": "bz2", "level": 1}, numcodecs.BZ2(1)),
    "lzma": ({"id": "lzma", "format": 1, "check": -1, "preset": None, "filters": None}, None),
    "lz4": ({"id": "lz4", "acceleration": 1}, numcodecs.LZ4()),
    "zlib": ({"id": "zlib", "level": 1}, numcodecs.Zlib(1)),
    "gzip": ({"id": "gzip", "level": 1}, numcodecs.GZip(1)),
    "zstd": ({"id": "zstd", "level": 1}, numcodecs.Zstd(1)),
}


@pytest.mark.parametrize("name", sorted(SIZED))
def test_fixed_size_chunk_bomb_is_refused(name: str) -> None:
    """A 1000-float chunk (8,000 bytes) whose stream inflates to 512 MiB."""
    config, codec = SIZED[name]
    bomb = _zeros_compressed(codec or numcodecs.LZMA(preset=1), BOMB)
    assert len(bomb) < 8 * 1024**2
    outcome = run_capped(_decode, _v2(config), bomb, **CAP)
    assert outcome.kind == "ok", outcome
    assert outcome.value.startswith("DecodeError"), outcome.value
    assert "8000" in outcome.value


@pytest.mark.parametrize("name", ["bz2", "zlib", "zstd", "lz4"])
def test_string_chunk_bomb_is_held_to_the_ceiling(name: str, monkeypatch: Any) -> None:
    """A vlen-utf8 chunk has no size in advance: the unsized ceiling holds it."""
    import xzaro.codecs.bounded as bounded

    monkeypatch.setattr(bounded, "MAX_UNSIZED_CHUNK_BYTES", 32 * 1024**2)
    config, codec = SIZED[name]
    bomb = _zeros_compressed(codec, BOMB // 4)
    meta = _v2(config, dtype="|O", filters=[{"id": "vlen-utf8"}])
    outcome = run_capped(_decode, meta, bomb, **CAP)
    assert outcome.kind == "ok", outcome
    assert "ceiling" in outcome.value, outcome.value


def test_strings_within_the_ceiling_decode() -> None:
    values = ["a", "bb", "ccc"] * 300 + ["d"] * 100
    for name in ("bz2", "lzma", "lz4", "zstd", "zlib"):
        config, codec = SIZED[name]
        codec = codec or numcodecs.LZMA(preset=1)
        data = codec.encode(numcodecs.VLenUTF8().encode(values))
        meta = _v2(config, dtype="|O", filters=[{"id": "vlen-utf8"}])
        from xzaro.codecs import pipeline_for

        assert pipeline_for(meta).decode(data).tolist() == values


def test_default_ceiling_is_two_gib() -> None:
    assert 2 * GiB == MAX_UNSIZED_CHUNK_BYTES


def _v3(codec: dict) -> ZaroMeta:
    doc = v3_array_doc(
        [1000],
        [1000],
        "float64",
        codecs=[{"name": "bytes", "configuration": {"endian": "little"}}, codec],
    )
    meta = node_from_json(doc, url="memory://bombs", key="a/zarr.json")
    assert isinstance(meta, ZaroMeta)
    return meta


@pytest.mark.parametrize("name", ["zstd", "zlib", "gzip", "bz2", "lz4"])
def test_v3_numcodecs_spelling_bomb_is_refused(name: str) -> None:
    """zarr-python 3 writes numcodecs compressors as ``numcodecs.<id>``: bounded too."""
    bomb = _zeros_compressed(SIZED[name][1], BOMB)
    meta = _v3({"name": f"numcodecs.{name}", "configuration": {}})
    outcome = run_capped(_decode, meta, bomb, **CAP)
    assert outcome.kind == "ok", outcome
    assert outcome.value.startswith("DecodeError"), outcome.value
    assert "8000" in outcome.value


def test_v3_numcodecs_spelling_decodes_as_zarr_python_writes_it(tmp_path: Any) -> None:
    zarr = pytest.importorskip("zarr")
    from zarr.codecs import numcodecs as zn

    import xzaro

    values = np.arange(1000, dtype="f8")
    for codec in (zn.Zstd(level=1), zn.Zlib(level=1), zn.GZip(level=1), zn.BZ2(level=1)):
        path = tmp_path / f"{type(codec).__name__}.zarr"
        z = zarr.create_array(path, shape=(1000,), chunks=(100,), dtype="f8", compressors=codec)
        z[:] = values
        np.testing.assert_array_equal(xzaro.open_array(path)[...], values)


def _decode_mutated_blosc_frames(seed: int, count: int) -> list[str]:
    """Decode ``count`` mutated Blosc frames of a 4,096-float chunk: each must give the
    chunk's bytes or a DecodeError (never a crash, a write past the chunk, another error)."""
    from numcodecs import blosc

    from xzaro.codecs import BloscCodec

    rng = np.random.default_rng(seed)
    data = (rng.normal(0, 40, 4096) + 1000).astype("<f4")
    outcomes = []
    for i in range(count):
        cname = ("zstd", "lz4", "blosclz", "zlib")[i % 4]
        frame = bytearray(blosc.compress(data, cname.encode(), 5, i % 3, 4096 * (1 + i % 2)))
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(0, len(frame)))
            if rng.random() < 0.3:  # a header or block-start field made huge or negative
                at = int(rng.integers(4, 28)) & ~3
                frame[at : at + 4] = int(rng.choice([0, 2**31 - 1, 2**32 - 1, 1 << 20])).to_bytes(
                    4, "little"
                )
            else:
                frame[at] = int(rng.integers(0, 256))
        if rng.random() < 0.2:
            frame = frame[: int(rng.integers(0, len(frame)))]
        guard = np.full(data.nbytes + 4096, 0xA5, np.uint8)
        try:
            got = BloscCodec(cname, 5, "shuffle", 4).decode_bytes(
                bytes(frame), data.nbytes, guard[: data.nbytes]
            )
            outcomes.append("decoded" if np.asarray(got).nbytes == data.nbytes else "short")
        except DecodeError:
            outcomes.append("DecodeError")
        if (guard[data.nbytes :] != 0xA5).any():
            outcomes.append("wrote past the chunk")
    return outcomes


@pytest.mark.parametrize("seed", range(4))
def test_mutated_blosc_frames_decode_or_raise(seed: int) -> None:
    """numcodecs' c-blosc, called directly with the frame's own sizes, on damaged frames."""
    outcome = run_capped(_decode_mutated_blosc_frames, seed, 400, **CAP)
    assert outcome.kind == "ok", outcome
    assert set(outcome.value) <= {"decoded", "DecodeError"}, outcome.value
    assert "DecodeError" in outcome.value
