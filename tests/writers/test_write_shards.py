"""``ShardWriter`` and sharded ``to_store``: the shard index, whole-shard blocks, shards capped
at the array's extent.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections import Counter
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import xarray as xr
from helpers import assert_same, ts_read, zarr_read
from write_cases import EMPTY, QUIET, RecordingStore, meta_for, sample, to_dir

import xzaro
from xzaro.codecs import ZstdCodec
from xzaro.writers import AlignmentError, ShardWriter, write_metadata, writer_for

pytestmark = QUIET


def _parse_shard(blob: bytes, n_inner: int) -> np.ndarray:
    """The ``(offset, nbytes)`` index at the end of a shard, after checking its crc32c."""
    import crc32c

    index_len = n_inner * 16 + 4
    assert len(blob) >= index_len
    raw, (crc,) = blob[-index_len:-4], struct.unpack("<I", blob[-4:])
    assert crc32c.crc32c(raw) == crc, "shard index crc32c mismatch"
    return np.frombuffer(raw, dtype="<u8").reshape(n_inner, 2)


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8"])
def test_shard_writer_index(tmp_path: Path, dtype: str) -> None:
    shape, chunks, shards = (10, 7), (2, 3), (4, 6)
    data = sample(dtype, shape, seed="sw")
    if dtype == "float32":
        data = np.nan_to_num(data, nan=1.0, posinf=2.0, neginf=3.0)  # only 0.0 is fill
    data[0:2, 3:6] = 0  # inner chunk (0, 1) of shard (0, 0) is fill
    data[4:8, 0:6] = 0  # shard (1, 0) is all fill: no object
    meta = meta_for(shape, chunks, shards, dtype=dtype, compressor=ZstdCodec(1))
    store = RecordingStore()
    w = writer_for(store, "a", meta)
    assert type(w) is ShardWriter and w.unit == shards
    assert w.write_block(data, (0, 0)) == len(store.data) == 5
    assert sorted(store.data) == ["a/c/0/0", "a/c/0/1", "a/c/1/1", "a/c/2/0", "a/c/2/1"]
    assert Counter(store.log).most_common(1)[0][1] == 1

    cps = (shards[0] // chunks[0], shards[1] // chunks[1])
    n_inner = math.prod(cps)
    fill_chunk = np.zeros(chunks, dtype=dtype)
    for key, blob in store.data.items():
        si, sj = (int(p) for p in key.split("/")[-2:])
        index = _parse_shard(blob, n_inner)
        pos = 0
        for k, (ci, cj) in enumerate(itertools.product(range(cps[0]), range(cps[1]))):
            y0, x0 = si * shards[0] + ci * chunks[0], sj * shards[1] + cj * chunks[1]
            expected = fill_chunk.copy()
            part = data[y0 : y0 + chunks[0], x0 : x0 + chunks[1]]
            expected[: part.shape[0], : part.shape[1]] = part
            offset, nbytes = (int(x) for x in index[k])
            if not expected.any():
                # fill-only inner chunks (and those wholly outside the array) are not stored
                assert (offset, nbytes) == (EMPTY, EMPTY), (key, k)
                continue
            assert offset == pos, "inner chunks are packed back to back from the start"
            raw = numcodecs.Zstd().decode(blob[offset : offset + nbytes])
            got = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(chunks)
            assert_same(got, expected, f"{key} inner {k}")
            pos += nbytes
        assert pos == len(blob) - (n_inner * 16 + 4), "index right after the chunks, at the end"

    write_metadata(store, "a", meta)
    root = to_dir(store, tmp_path / "s.zarr")
    assert_same(xzaro.open_array(store, "a")[...], data, "xzaro")
    assert_same(zarr_read(root, "a"), data, "zarr")
    assert_same(ts_read(root, "a", 3), data, "tensorstore")


def test_shard_writer_blocks_of_whole_shards() -> None:
    data = sample("int32", (10, 7), seed="sw2")
    meta = meta_for((10, 7), (2, 3), (4, 6), dtype="int32")
    store = RecordingStore()
    w = ShardWriter(store, "", meta)
    for origin, shape in [((0, 0), (4, 7)), ((4, 0), (4, 6)), ((4, 6), (4, 1)), ((8, 0), (2, 7))]:
        sl = tuple(slice(o, o + n) for o, n in zip(origin, shape))
        w.write_block(data[sl], origin)
    assert sorted(store.log) == sorted(f"c/{i}/{j}" for i in range(3) for j in range(2))
    write_metadata(store, "", meta)
    assert_same(xzaro.open_array(store)[...], data)
    with pytest.raises(AlignmentError):  # a shard is the unit, not an inner chunk
        w.write_block(data[0:2, 0:3], (0, 0))


def test_shards_are_capped_at_the_array_extent(tmp_path: Path) -> None:
    """A shard larger than the array holds all of it (in whole chunks), as a coarse pyramid
    level needs; zarr-python reads the result."""
    data = sample("int16", (5, 21), seed="cap")
    ds = xr.Dataset({"v": (("y", "x"), data)})
    ds.zaro.to_store(tmp_path / "s.zarr", chunks={"y": 8, "x": 4}, shards={"y": 64, "x": 64})
    meta = xzaro.open_array(tmp_path / "s.zarr", "v").meta
    assert meta.chunk_shape == (5, 4) and meta.shard_shape == (5, 24)
    assert_same(zarr_read(tmp_path / "s.zarr", "v"), data)
