"""Reads of zstd-compressed arrays: large chunks the output cannot take whole are decoded a few
planes at a time (never through a scratch chunk of their full size), frames are decoded with a
context each thread keeps, and the shards of a local sharded array are read and decoded shard by
shard. Values are compared with numpy's selections of the array that was written."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

import xzaro
import xzaro.array as array_module
import xzaro.slabs as slabs
from xzaro.codecs import zstd_contexts
from xzaro.errors import DecodeError
from xzaro.shard_reader import ShardReader

pytestmark = pytest.mark.skipif(
    not zstd_contexts.available(), reason="the zstandard package is not installed"
)

# chunks of 4 MiB (the streamed size) and more: 64 x 128 x 128 float32 = 4 MiB
SHAPE, CHUNK = (150, 128, 200), (64, 128, 128)


def _values(shape: tuple[int, ...]) -> np.ndarray:
    z, y, x = np.indices(shape, dtype=np.float32)
    return (x + y * 0.5 + z * 1000).astype(np.float32)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("zstd") / "big.zarr"
    return path, _write_big(path)


def _write_big(path: Path) -> np.ndarray:
    """The test array written by zarr-python in 4 MiB zstd chunks; its values."""
    values = _values(SHAPE)
    z = zarr.create_array(
        store=str(path),
        shape=SHAPE,
        chunks=CHUNK,
        dtype=values.dtype,
        compressors=zarr.codecs.ZstdCodec(level=1),
        fill_value=0,
    )
    z[...] = values
    return values


SELECTIONS = [
    (slice(None),) * 3,
    (slice(10, 140), slice(3, 120), slice(5, 190)),
    (slice(1, 149, 7), slice(None), slice(100, 200, 3)),
    (slice(None, None, -5), 7, slice(199, 0, -11)),
    (63, slice(None), slice(None)),
    (slice(60, 70), slice(120, 128), slice(120, 140)),
    (slice(127, 129), 0, 0),
    ([3, 64, 65, 130], slice(0, 5), slice(None)),
]


@pytest.mark.parametrize("selection", SELECTIONS, ids=range(len(SELECTIONS)))
def test_large_chunks_decode_plane_by_plane(
    big: tuple[Path, np.ndarray], selection: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No selection asks for a scratch buffer of a whole 4 MiB chunk, and every value is
    numpy's (strided, reversed, integer and array selections, across chunk edges)."""
    path, values = big
    asked: list[tuple[int, ...]] = []
    original = array_module.thread_buffer

    def recording(shape, dtype, purpose=""):
        asked.append(tuple(shape))
        return original(shape, dtype, purpose)

    monkeypatch.setattr(array_module, "thread_buffer", recording)
    monkeypatch.setattr(slabs, "thread_buffer", recording)
    got = xzaro.open_array(str(path))[selection]
    np.testing.assert_array_equal(got, values[selection])
    if not any(isinstance(s, list) for s in selection):  # array selections use the scratch
        assert CHUNK not in asked
        assert all(np.prod(s) * 4 <= slabs.SLAB_BYTES for s in asked)


def _corrupt(path: Path, change) -> None:
    chunk = path / "c" / "1" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    chunk.write_bytes(bytes(change(data)))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d[: len(d) // 2],  # cut short
        lambda d: d + d,  # a second frame: more bytes than the chunk holds
        lambda d: d[:10] + bytes(len(d) - 10),  # blocks zeroed
    ],
    ids=["short", "two-frames", "zeroed"],
)
def test_streamed_chunk_of_the_wrong_size_raises(tmp_path: Path, change) -> None:
    """A large chunk decoded plane by plane is still checked to hold exactly its bytes."""
    values = _write_big(tmp_path / "a.zarr")
    _corrupt(tmp_path / "a.zarr", change)
    a = xzaro.open_array(str(tmp_path / "a.zarr"))
    with pytest.raises(DecodeError):
        a[64:70, 3:5, 0:10]
    np.testing.assert_array_equal(a[0:64, 3:5, 0:10], values[0:64, 3:5, 0:10])


def test_each_thread_keeps_one_decompression_context() -> None:
    """The context is made once per thread and reused for every frame that thread decodes."""
    mine = zstd_contexts.decompressor()
    assert zstd_contexts.decompressor() is mine
    theirs: list[object] = []
    t = threading.Thread(target=lambda: theirs.append(zstd_contexts.decompressor()))
    t.start()
    t.join()
    assert theirs[0] is not None and theirs[0] is not mine


@pytest.fixture(params=["libzstd", "stream"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Frames decoded by libzstd in one call (zstandard's cffi module), or by the thread's
    ``ZstdDecompressor`` stream where that module cannot be imported."""
    if request.param == "libzstd" and zstd_contexts.libzstd is None:
        pytest.skip("zstandard's cffi module needs the cffi package")
    if request.param == "stream":
        monkeypatch.setattr(zstd_contexts, "libzstd", None)
    return str(request.param)


@pytest.mark.parametrize("extra", [b"", b"\x00"])
def test_decompress_into_checks_the_size(extra: bytes, decoder: str) -> None:
    import zstandard

    raw = np.arange(1000, dtype="<u4").tobytes()
    frame = zstandard.ZstdCompressor(level=1).compress(raw)
    out = np.empty(len(raw), dtype=np.uint8)
    assert zstd_contexts.decompress_into(frame, out)
    assert out.tobytes() == raw
    with pytest.raises(DecodeError):  # the frame holds more than the buffer
        zstd_contexts.decompress_into(frame, np.empty(len(raw) - 1, dtype=np.uint8))
    with pytest.raises(DecodeError):  # or less
        zstd_contexts.decompress_into(frame + extra, np.empty(len(raw) + 1, dtype=np.uint8))


def test_partial_shards_are_read_and_decoded_shard_by_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hyperslab over many partial shards of local files decodes each shard's inner chunks
    right after reading them, not once every shard has been read (which held the stored bytes
    of the whole selection at once)."""
    shape = (64, 64)
    values = np.arange(np.prod(shape), dtype="<i4").reshape(shape)
    z = zarr.create_array(
        store=str(tmp_path / "s.zarr"),
        shape=shape,
        chunks=(4, 4),
        shards=(16, 16),
        dtype=values.dtype,
        compressors=zarr.codecs.ZstdCodec(level=1),
        fill_value=-1,
    )
    z[...] = values
    events: list[str] = []
    lock = threading.Lock()
    read = ShardReader.inner_of_local
    place = array_module.ZaroArray._place

    def reading(self, shard, chunks):
        with lock:
            events.append("read")
        return read(self, shard, chunks)

    def placing(self, *args):
        with lock:
            events.append("decode")
        return place(self, *args)

    monkeypatch.setattr(ShardReader, "inner_of_local", reading)
    monkeypatch.setattr(array_module.ZaroArray, "_place", placing)
    box = (slice(6, 58), slice(6, 58))  # 12 shards partly (4 whole ones are read whole)
    got = xzaro.open_array(str(tmp_path / "s.zarr"))[box]
    np.testing.assert_array_equal(got, values[box])
    assert events.count("read") == 12
    last_read = len(events) - 1 - events[::-1].index("read")
    assert events.index("decode") < last_read


def test_readers_open_at_once_in_one_thread_do_not_share_a_context() -> None:
    """A second stream opened while the first is half read decodes on its own context, so
    neither is disturbed."""
    import zstandard

    first = np.arange(300_000, dtype="<u4").tobytes()
    second = (np.arange(300_000, dtype="<u4") * 7).tobytes()
    a = zstd_contexts.reader(zstandard.ZstdCompressor(level=1).compress(first), len(first))
    b = zstd_contexts.reader(zstandard.ZstdCompressor(level=1).compress(second), len(second))
    assert a is not None and b is not None
    half = len(first) // 2
    got_a, got_b = bytearray(len(first)), bytearray(len(second))
    a.read_into(memoryview(got_a)[:half])
    b.read_into(memoryview(got_b)[:half])
    a.read_into(memoryview(got_a)[half:])
    b.read_into(memoryview(got_b)[half:])
    a.finish()
    b.finish()
    assert bytes(got_a) == first and bytes(got_b) == second
    c = zstd_contexts.reader(zstandard.ZstdCompressor(level=1).compress(first), len(first))
    assert c is not None and c._owns_thread_context  # the thread's context is free again
    c.close()


def test_decompress_into_takes_two_frames_and_refuses_a_bomb(decoder: str) -> None:
    """Concatenated frames decode as one chunk; a header declaring 2**40 bytes for a small
    buffer is refused before anything is allocated or written past the buffer."""
    import zstandard

    raw = np.arange(1000, dtype="<u4").tobytes()
    compressor = zstandard.ZstdCompressor(level=1)
    frames = compressor.compress(raw[:1500]) + compressor.compress(raw[1500:])
    out = np.zeros(len(raw) + 16, dtype=np.uint8)
    assert zstd_contexts.decompress_into(frames, out[: len(raw)])
    assert out[: len(raw)].tobytes() == raw and not out[len(raw) :].any()
    # single-segment frame header: magic, descriptor (8-byte content size), the size, then a
    # raw block header that promises nothing it has
    bomb = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + (2**40).to_bytes(8, "little") + b"\x01\x00\x00"
    with pytest.raises(DecodeError):
        zstd_contexts.decompress_into(bomb, out[:64])
    with pytest.raises(DecodeError):
        zstd_contexts.decompress_into(memoryview(bytearray(bomb)), out[:64])
