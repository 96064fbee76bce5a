"""Whole shards of small inner chunks decoded in one pass (``xzaro.whole_shards``): exact values
against numpy, from local files and from a store of round trips, with inner chunks missing
(fill), shards at the array's edge, strided selections, and corrupt chunks named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import xzaro
from xzaro.errors import DecodeError
from xzaro.indexing import Box
from xzaro.stores import MemoryStore
from xzaro.whole_shards import WholeShards

SHAPE = (70, 100)
CHUNKS = (8, 8)
SHARDS = (32, 48)  # 2 x 2 whole shards inside the array, the others cut by its edge


def _values() -> np.ndarray:
    values = np.arange(np.prod(SHAPE), dtype="float32").reshape(SHAPE)
    values[8:16, 16:24] = 0  # one inner chunk of fill: not stored, missing from its shard
    values[40:48, :] = 0
    return values


def _write(store: object) -> None:
    array = zarr.create_array(
        store, shape=SHAPE, chunks=CHUNKS, shards=SHARDS, dtype="float32", fill_value=0
    )
    array[...] = _values()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    placed: list[int | None] = []
    original = WholeShards.place

    def place(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        placed.append(result)
        return result

    monkeypatch.setattr(WholeShards, "place", place)
    return placed


@pytest.mark.parametrize(
    "selection",
    [
        (slice(None), slice(None)),
        (slice(0, 32), slice(48, 96)),  # one whole shard
        (slice(0, 64), slice(0, 96)),  # the four whole shards
        (slice(3, 61), slice(5, 99)),  # shards cut by the selection
        (slice(None, None, 2), slice(None)),  # steps: never one pass
        (slice(None, None, -1), slice(10, 90, 3)),
    ],
    ids=str,
)
def test_values_are_numpys(
    tmp_path: Path, selection: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(str(tmp_path / "a.zarr"))
    placed = _counting(monkeypatch)
    got = xzaro.open_array(str(tmp_path / "a.zarr"))[selection]
    np.testing.assert_array_equal(got, _values()[selection])
    if selection in [(slice(0, 32), slice(48, 96)), (slice(0, 64), slice(0, 96))]:
        assert placed and all(p is not None for p in placed)


def test_whole_shards_inside_the_array_take_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(str(tmp_path / "a.zarr"))
    placed = _counting(monkeypatch)
    got = xzaro.open_array(str(tmp_path / "a.zarr"))[...]
    np.testing.assert_array_equal(got, _values())
    one_pass = [p for p in placed if p is not None]
    assert len(one_pass) == 4  # the shards cut by the array's edge take the general path
    assert sum(one_pass) == 1 + 12  # fill chunks, not stored: (1, 2) and row 5 inside


def test_a_read_of_whole_shards_lists_no_inner_chunk(tmp_path: Path) -> None:
    """Where every shard a read touches is whole, its pieces are not listed inner chunk by
    inner chunk: each such shard goes straight to its part of the output."""
    _write(str(tmp_path / "a.zarr"))
    array = xzaro.open_array(str(tmp_path / "a.zarr"))
    whole, shard_of = array._whole, array.shard_of

    def split(stop: tuple[int, int], step: tuple[int, int] = (1, 1)) -> tuple[dict, dict]:
        box = Box((0, 0), stop, step)
        return whole.split(box, np.empty(box.shape, "float32"), shard_of)

    by_shard, dests = split((64, 96))
    assert by_shard == {(0, 0): [], (0, 1): [], (1, 0): [], (1, 1): []}
    assert dests[(1, 0)].shape == SHARDS
    assert np.shares_memory(dests[(1, 0)], dests[(1, 0)].base[32:64, 0:48])
    # a shard cut by the selection: every piece is listed; only whole shards go in one pass
    by_shard, dests = split((64, 90))
    assert sum(map(len, by_shard.values())) == 8 * 12
    assert sorted(dests) == [(0, 0), (1, 0)]
    # shards cut by the array's edge, or a read with steps: every piece listed
    by_shard, dests = split(SHAPE)
    assert all(by_shard.values()) and sorted(dests) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    by_shard, dests = split((64, 96), (2, 1))
    assert all(by_shard.values()) and not dests


def test_a_store_of_round_trips_takes_the_same_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that is not local files (whole shards fetched by request) decodes the same."""
    path = tmp_path / "a.zarr"
    _write(str(path))
    files = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    placed = _counting(monkeypatch)
    array = xzaro.open_array(MemoryStore(files))
    np.testing.assert_array_equal(array[...], _values())
    np.testing.assert_array_equal(array[32:64, 48:96], _values()[32:64, 48:96])
    assert len([p for p in placed if p is not None]) == 5


@pytest.mark.parametrize(
    ("serializer", "compressors"),
    [
        ("auto", None),
        ("auto", [zarr.codecs.GzipCodec(level=1)]),
        ("auto", [zarr.codecs.BloscCodec(cname="lz4", shuffle="bitshuffle")]),
        ("auto", [zarr.codecs.BloscCodec(cname="zstd", shuffle="shuffle")]),
        ("auto", [zarr.codecs.ZstdCodec(), zarr.codecs.Crc32cCodec()]),
        (zarr.codecs.BytesCodec(endian="big"), [zarr.codecs.ZstdCodec()]),
    ],
    ids=["uncompressed", "gzip", "blosc-lz4", "blosc-zstd", "zstd-crc32c", "big-endian"],
)
def test_every_inner_codec_chain_takes_the_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serializer: object, compressors: object
) -> None:
    """Inner chunks decoded straight into the shard's scratch rows (chains whose decoded bytes
    are the elements) and through the general decode (big-endian) give zarr-python's values."""
    path = str(tmp_path / "a.zarr")
    array = zarr.create_array(
        path,
        shape=SHAPE,
        chunks=CHUNKS,
        shards=SHARDS,
        dtype="float32",
        fill_value=0,
        serializer=serializer,
        compressors=compressors,
    )
    array[...] = _values()
    placed = _counting(monkeypatch)
    np.testing.assert_array_equal(xzaro.open_array(path)[0:64, 0:96], array[0:64, 0:96])
    assert sorted(p for p in placed if p is not None) == [0, 1, 6, 6]


def test_a_corrupt_inner_chunk_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.zarr"
    _write(str(path))
    shard = path / "c" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[:64] = b"\xff" * 64  # the first inner chunk's frame
    shard.write_bytes(bytes(data))
    with pytest.raises(DecodeError) as caught:
        xzaro.open_array(str(path))[0:32, 0:48]
    assert caught.value.key == "c/0/0"
    assert str(path) in str(caught.value.url)


def test_large_inner_chunks_are_left_to_the_general_path(tmp_path: Path) -> None:
    path = tmp_path / "big.zarr"
    array = zarr.create_array(
        str(path), shape=(512, 512), chunks=(256, 256), shards=(512, 512), dtype="float32"
    )
    values = np.random.default_rng(1).random((512, 512), dtype="float32")
    array[...] = values
    opened = xzaro.open_array(str(path))
    assert opened._whole.count is None  # 256 KiB inner chunks: one pass does not pay
    np.testing.assert_array_equal(opened[...], values)


@pytest.mark.parametrize("sharded", [True, False])
def test_tiny_chunks_are_decoded_by_one_thread_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sharded: bool
) -> None:
    """Runs of tiny decodes (whole shards of 1 KiB inner chunks; small local chunks) from
    several threads at once take turns (``concurrency.TINY_DECODES``), and read right."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from xzaro.codecs import CodecPipeline, batch_decode

    monkeypatch.setattr(batch_decode, "_MULTI", False)  # each chunk decoded on its own
    data = np.arange(256 * 256, dtype="f4").reshape(256, 256)
    z = zarr.create_array(
        str(tmp_path / "a"),
        shape=data.shape,
        chunks=(1, 256) if not sharded else (16, 16),
        shards=(64, 64) if sharded else None,
        dtype="f4",
        compressors=zarr.codecs.ZstdCodec(level=1),
    )
    z[...] = data
    active, most, lock = [0], [0], threading.Lock()
    flat_decoder = CodecPipeline.flat_decoder

    def counted(self: CodecPipeline, raw: np.ndarray):  # type: ignore[no-untyped-def]
        decode = flat_decoder(self, raw)

        def run(data: object, at: int) -> None:
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            try:
                decode(data, at)
            finally:
                with lock:
                    active[0] -= 1

        return run

    monkeypatch.setattr(CodecPipeline, "flat_decoder", counted)
    arrays = [xzaro.open_array(str(tmp_path / "a")) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: a[...], arrays * 3))
    for got in results:
        np.testing.assert_array_equal(got, data)
    assert most[0] == 1
