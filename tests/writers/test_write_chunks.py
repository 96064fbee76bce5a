"""The writer classes on their own: ``ChunkWriter`` blocks, misaligned blocks refused, and
chunk-major tiles (as the streaming device holds frames).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import assert_same, ts_read, zarr_read
from hypothesis import given, settings
from hypothesis import strategies as st
from write_cases import QUIET, meta_for, sample, to_dir

import xzaro
from xzaro.codecs import BLOSC_MAX_OVERHEAD
from xzaro.stores import MemoryStore
from xzaro.stores.base import to_bytes
from xzaro.writers import AlignmentError, ChunkWriter, ShardWriter, write_metadata, writer_for
from xzaro.writers.tiles import from_tiles, tile_grid, to_tiles

pytestmark = QUIET


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_chunk_writer_aligned_blocks(tmp_path: Path, zarr_format: int) -> None:
    data = sample("float32", (10, 7), seed="cw")
    data[4:8, 3:6] = 0.0  # one chunk of fill: not written
    meta = meta_for((10, 7), (4, 3), zarr_format=zarr_format)
    store = MemoryStore()
    w = writer_for(store, "a", meta)
    assert type(w) is ChunkWriter
    assert w.unit == (4, 3)
    blocks = [((0, 0), (8, 3)), ((0, 3), (8, 4)), ((8, 0), (2, 7))]  # the last ones end the array
    written = 0
    for origin, shape in blocks:
        sl = tuple(slice(o, o + n) for o, n in zip(origin, shape))
        written += w.write_block(data[sl], origin)
    assert written == 3 * 3 - 1 == len(store.data)
    assert w.key((1, 1)) not in store.data
    write_metadata(store, "a", meta)
    assert_same(xzaro.open_array(store, "a")[...], data, "xzaro")
    root = to_dir(store, tmp_path / "s.zarr")
    assert_same(zarr_read(root, "a"), data, "zarr")
    assert_same(ts_read(root, "a", zarr_format), data, "tensorstore")
    # one chunk per object, with the array's key encoding
    expected_key = "a/2.1" if zarr_format == 2 else "a/c/2/1"
    assert w.key((2, 1)) == expected_key and expected_key in store.data


@pytest.mark.parametrize(
    ("origin", "shape"),
    [
        ((1, 0), (4, 3)),  # starts inside a chunk
        ((0, 0), (5, 3)),  # ends inside a chunk that is not the last
        ((0, 2), (4, 5)),  # starts inside along the second axis
        ((4, 3), (4, 2)),  # ends inside the last column of chunks... not at the array end
    ],
)
@pytest.mark.parametrize("sharded", [False, True])
def test_writer_refuses_misaligned_blocks(
    origin: tuple[int, int], shape: tuple[int, int], sharded: bool
) -> None:
    meta = (
        meta_for((10, 7), (2, 1), (4, 3)) if sharded else meta_for((10, 7), (4, 3), zarr_format=2)
    )
    store = MemoryStore()
    w = writer_for(store, "a", meta)
    assert isinstance(w, ShardWriter if sharded else ChunkWriter)
    block = np.ones(shape, dtype="float32")
    with pytest.raises(AlignmentError, match="does not align"):
        w.write_block(block, origin)
    assert issubclass(AlignmentError, ValueError)
    assert store.data == {}  # nothing was written


def test_writer_class_checks_layout() -> None:
    with pytest.raises(ValueError, match="ShardWriter"):
        ChunkWriter(MemoryStore(), "a", meta_for((4,), (2,), (4,)))
    with pytest.raises(ValueError, match="sharding"):
        ShardWriter(MemoryStore(), "a", meta_for((4,), (2,)))
    with pytest.raises(ValueError, match="multiples"):
        meta_for((8,), (3,), (4,))
    with pytest.raises(ValueError, match="zarr_format=3"):
        meta_for((8,), (2,), (4,), zarr_format=2)


@pytest.mark.parametrize(
    ("shape", "chunks", "shards", "zarr_format"),
    [
        ((10, 7), (4, 3), None, 2),
        ((10, 7), (4, 3), None, 3),
        ((9, 16, 13), (2, 5, 4), (4, 10, 12), 3),  # ragged shards: some inner chunks beyond
        ((3, 48, 64), (3, 8, 8), (3, 48, 56), 3),
    ],
)
def test_write_tiles_stores_what_write_block_stores(
    tmp_path: Path, shape: Any, chunks: Any, shards: Any, zarr_format: int
) -> None:
    """Chunk-major tiles (as the streaming writer holds frames) give byte-identical objects;
    fill-only chunks and shards are skipped the same way."""
    data = sample("uint16", shape, seed="tiles")
    data[: chunks[0]] = 0  # a fill-only layer: inner chunks (and perhaps shards) not stored
    meta = meta_for(shape, chunks, shards, zarr_format=zarr_format, dtype="uint16", fill=0)
    by_block, by_tiles = MemoryStore(), MemoryStore()
    writer_for(by_block, "a", meta).write_block(data, (0,) * len(shape))
    w = writer_for(by_tiles, "a", meta)
    tiles = to_tiles(data, chunks, 0)
    np.testing.assert_array_equal(from_tiles(tiles, shape), data)
    unit = meta.storage_shape
    per = tuple(u // c for u, c in zip(unit, chunks))
    # two blocks of whole stored objects along axis 0
    split = per[0] * max(1, tiles.shape[0] // per[0] // 2)
    w.write_tiles(tiles[:split], (0,) * len(shape))
    if split < tiles.shape[0]:
        w.write_tiles(tiles[split:], (split, *(0,) * (len(shape) - 1)))
    assert by_tiles.data == by_block.data
    # Encoded into caller-owned bytes (as the streaming writer recycles them): the same objects.
    slot = math.prod(chunks) * 2 + BLOSC_MAX_OVERHEAD
    out = np.zeros((*tiles.shape[: len(shape)], slot), np.uint8)
    items = w.encode_tiles(tiles, (0,) * len(shape), out)
    assert {key: to_bytes(value) for key, value in items} == by_block.data
    assert out.any() == bool(items)  # the compressed chunks went there
    if per[0] > 1:  # one inner chunk of a shard is not a stored object
        with pytest.raises(AlignmentError):
            w.write_tiles(tiles[1:2], (1, *(0,) * (len(shape) - 1)))
    with pytest.raises(ValueError, match="are not chunks"):
        w.write_tiles(data, (0,) * len(shape))
    write_metadata(by_tiles, "a", meta)
    root = to_dir(by_tiles, tmp_path / "t.zarr")
    assert_same(zarr_read(root, "a"), data, "zarr")


@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_tiles_round_trip(shape: list[int], data: Any) -> None:
    chunk = tuple(data.draw(st.integers(1, n + 2)) for n in shape)
    block = np.arange(math.prod(shape), dtype=np.int32).reshape(shape)
    tiles = to_tiles(block, chunk, -1)
    assert tiles.shape == (*tile_grid(tuple(shape), chunk), *chunk)
    np.testing.assert_array_equal(from_tiles(tiles, tuple(shape)), block)
    for index in np.ndindex(*tiles.shape[: len(shape)]):
        region = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunk))
        piece = block[region]
        np.testing.assert_array_equal(tiles[index][tuple(map(slice, piece.shape))], piece)
        assert (tiles[index] == -1).sum() == math.prod(chunk) - piece.size
