"""Inner chunks of sharded arrays in local files: each shard opened once per read, its index
decoded again only when its stored bytes change, and a shard rewritten, cut short or removed
between reads read as it now is (never through an index of what it was)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zarr

import xzaro
from xzaro.codecs import ShardingCodec
from xzaro.errors import DecodeError

SHAPE, SHARD, INNER = (32, 32), (16, 16), (4, 4)


def _write(path: Path, values: np.ndarray, compressed: bool = True) -> None:
    z = zarr.create_array(
        store=str(path),
        shape=values.shape,
        chunks=INNER,
        shards=SHARD,
        dtype=values.dtype,
        compressors=zarr.codecs.ZstdCodec(level=1) if compressed else None,
        fill_value=-1,
        overwrite=True,
    )
    z[...] = values


def _values(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, SHAPE).astype("i4")


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Counts the shard indexes decoded."""
    calls: list[int] = []
    original = ShardingCodec.decode_index

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ShardingCodec, "decode_index", counting)
    return calls


def _inner_by_inner(a: xzaro.ZaroArray) -> np.ndarray:
    out = np.empty(SHAPE, dtype="i4")
    for y in range(0, SHAPE[0], INNER[0]):
        for x in range(0, SHAPE[1], INNER[1]):
            out[y : y + INNER[0], x : x + INNER[1]] = a[y : y + INNER[0], x : x + INNER[1]]
    return out


def test_inner_chunk_reads_decode_each_index_once(tmp_path, decodes):
    values = _values(1)
    _write(tmp_path / "a.zarr", values)
    a = xzaro.open_array(str(tmp_path / "a.zarr"))
    np.testing.assert_array_equal(_inner_by_inner(a), values)
    np.testing.assert_array_equal(_inner_by_inner(a), values)
    assert len(decodes) == 4  # four shards, 128 reads


@pytest.mark.parametrize("compressed", [True, False], ids=["new-layout", "same-layout"])
def test_shard_rewritten_in_place_reads_new_values(tmp_path, compressed):
    path = tmp_path / "a.zarr"
    old, new = _values(1), _values(2)
    _write(path, old, compressed)
    a = xzaro.open_array(str(path))
    np.testing.assert_array_equal(a[0:4, 0:4], old[0:4, 0:4])
    # another program's writer: the same file, rewritten in place (same inode)
    _write(tmp_path / "b.zarr", new, compressed)
    shard = path / "c" / "0" / "0"
    fresh = (tmp_path / "b.zarr" / "c" / "0" / "0").read_bytes()
    inode = shard.stat().st_ino
    with open(shard, "r+b") as f:
        f.write(fresh)
        f.truncate()
    assert shard.stat().st_ino == inode
    np.testing.assert_array_equal(a[4:8, 4:8], new[4:8, 4:8])
    np.testing.assert_array_equal(_inner_by_inner(a)[:16, :16], new[:16, :16])


def test_shard_cut_short_between_reads_is_an_error(tmp_path):
    path = tmp_path / "a.zarr"
    values = _values(3)
    _write(path, values)
    a = xzaro.open_array(str(path))
    np.testing.assert_array_equal(a[0:4, 0:4], values[0:4, 0:4])
    shard = path / "c" / "0" / "0"
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)
    with pytest.raises(DecodeError) as e:
        a[4:8, 4:8]
    assert e.value.key == "c/0/0" and e.value.url


def test_shard_removed_between_reads_reads_as_fill(tmp_path):
    path = tmp_path / "a.zarr"
    _write(path, _values(4))
    a = xzaro.open_array(str(path))
    a[0:4, 0:4]
    (path / "c" / "0" / "0").unlink()
    np.testing.assert_array_equal(a[4:8, 4:8], np.full((4, 4), -1, "i4"))
