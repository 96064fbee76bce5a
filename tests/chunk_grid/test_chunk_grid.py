"""The chunk grid object and the chunk key encoding, against brute force over explicit chunks."""

from __future__ import annotations

import itertools
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xzaro.chunk_grid import (
    ChunkGrid,
    RectilinearDimension,
    RegularDimension,
    ShardGrid,
)
from xzaro.chunk_grid.dimensions import DimensionGrid
from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.errors import MetadataError
from xzaro.indexing import Box


def _edges(dim: Any) -> list[tuple[int, int]]:
    """``(start, edge length)`` of every chunk of a dimension, spelled out."""
    out, start = [], 0
    for k in range(dim.nchunks):
        out.append((start, dim.chunk_size(k)))
        start += dim.chunk_size(k)
    return out


def _expanded(runs: list[tuple[int, int]]) -> list[int]:
    return [size for size, count in runs for _ in range(count)]


runs_strategy = st.lists(st.tuples(st.integers(1, 7), st.integers(1, 4)), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(runs=runs_strategy, data=st.data())
def test_rectilinear_dimension_agrees_with_its_edges_spelled_out(runs: Any, data: Any) -> None:
    sizes = _expanded(runs)
    extent = data.draw(st.integers(0, sum(sizes)))
    dim = RectilinearDimension(runs, extent)
    starts = np.concatenate(([0], np.cumsum(sizes)))
    holding = [k for k in range(len(sizes)) if starts[k] < extent]
    assert dim.nchunks == len(holding)
    for k in holding:
        assert dim.chunk_start(k) == starts[k]
        assert dim.chunk_size(k) == sizes[k]
        assert dim.data_size(k) == min(sizes[k], extent - starts[k])
    expected = [int(np.searchsorted(starts, i, side="right")) - 1 for i in range(extent)]
    assert [dim.index_to_chunk(i) for i in range(extent)] == expected
    assert dim.indices_to_chunks(np.arange(extent, dtype=np.int64)).tolist() == expected
    assert sum(dim.chunk_sizes()) == extent
    assert set(dim.edge_lengths()) == set(sizes)


@pytest.mark.parametrize("extent", [0, 1, 9, 10, 11, 2**63 - 1])
def test_regular_dimension_is_integer_arithmetic(extent: int) -> None:
    dim = RegularDimension(10, extent)
    assert dim.nchunks == -(-extent // 10)
    last = extent - 1
    if extent:
        k = dim.index_to_chunk(last)
        assert k == last // 10 and dim.chunk_start(k) == k * 10
        assert dim.data_size(k) == extent - k * 10
    if extent < 100:
        assert dim.chunk_sizes() == tuple(dim.data_size(k) for k in range(dim.nchunks))
        assert list(dim.chunks_in(0, extent)) == list(range(dim.nchunks))


def _reassemble(grid: ChunkGrid, box: Box) -> np.ndarray:
    """Read ``box`` of ``arange(shape)`` chunk by chunk through the grid's pieces."""
    full = np.arange(int(np.prod(grid.shape))).reshape(grid.shape)
    out = np.full(box.shape, -1)
    for piece in grid.pieces(box):
        region = grid.chunk_region(piece.chunk_index)
        chunk = np.full(grid.stored_shape(piece.chunk_index), -2)
        chunk[tuple(slice(0, r.stop - r.start) for r in region)] = full[region]
        out[piece.out] = piece.take(chunk)
        if piece.full:
            assert chunk[piece.local].shape == tuple(r.stop - r.start for r in region)
    return out


dimension_strategy = st.one_of(
    st.builds(lambda size: ("regular", size), st.integers(1, 6)),
    st.builds(lambda runs: ("rectilinear", runs), runs_strategy),
)


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(dimension_strategy, min_size=1, max_size=3), data=st.data())
def test_pieces_of_a_box_read_what_numpy_reads(specs: Any, data: Any) -> None:
    dims: list[Any] = []
    for kind, spec in specs:
        if kind == "regular":
            dims.append(RegularDimension(spec, data.draw(st.integers(0, 20))))
        else:
            dims.append(RectilinearDimension(spec, data.draw(st.integers(0, sum(_expanded(spec))))))
    grid = ChunkGrid(dims, "rectilinear")
    ranges: list[tuple[int, int, int, np.ndarray | None]] = []
    for d in dims:
        if d.extent and data.draw(st.booleans()):
            chosen = data.draw(st.sets(st.integers(0, d.extent - 1), max_size=6))
            ranges.append((0, d.extent, 1, np.array(sorted(chosen), dtype=np.int64)))
        else:
            a = data.draw(st.integers(0, d.extent))
            b = data.draw(st.integers(a, d.extent))
            ranges.append((a, b, data.draw(st.integers(1, 5)), None))
    start, stop, step, points = (tuple(r) for r in zip(*ranges))
    index = [np.arange(a, b, s) if p is None else p for a, b, s, p in ranges]
    box = Box(start, stop, step, points)
    expected = np.arange(int(np.prod(grid.shape))).reshape(grid.shape)[np.ix_(*index)]
    np.testing.assert_array_equal(_reassemble(grid, box), expected)


SPEC_EXAMPLE = {
    "name": "rectilinear",
    "configuration": {
        "kind": "inline",
        "chunk_shapes": [4, [1, 2, 3], [[4, 2]], [[1, 3], 3], [4, 4, 4]],
    },
}


def test_the_specs_example_grid() -> None:
    """zarr-extensions ``chunk-grids/rectilinear``: five ways to spell a dimension of 6."""
    grid = ChunkGrid.from_json(SPEC_EXAMPLE, (6, 6, 6, 6, 6))
    assert grid.name == "rectilinear" and not grid.is_regular
    assert grid.grid_shape == (2, 3, 2, 4, 2)
    assert grid.nchunks == 2 * 3 * 2 * 4 * 2
    assert grid.chunk_sizes() == ((4, 2), (1, 2, 3), (4, 2), (1, 1, 1, 3), (4, 2))
    assert grid.compact_sizes() == (4, (1, 2, 3), 4, (1, 1, 1, 3), 4)
    assert grid.stored_shape((1, 2, 1, 3, 1)) == (4, 3, 4, 3, 4)
    assert grid.chunk_region((1, 2, 1, 3, 1)) == (
        slice(4, 6),
        slice(3, 6),
        slice(4, 6),
        slice(3, 6),
        slice(4, 6),
    )
    again = ChunkGrid.from_json(grid.to_json(), grid.shape)
    assert again == grid
    assert grid.to_json()["configuration"]["chunk_shapes"][4] == [[4, 3]]  # runs, kept


def test_a_regular_grid_round_trips_and_counts_chunks() -> None:
    doc = {"name": "regular", "configuration": {"chunk_shape": [3, 5]}}
    grid = ChunkGrid.from_json(doc, (10, 5))
    assert grid == ChunkGrid.regular((10, 5), (3, 5))
    assert grid.is_regular and grid.grid_shape == (4, 1) and grid.chunk_shape == (3, 5)
    assert grid.to_json() == doc
    assert grid.compact_sizes() == (3, 5)


def test_chunk_positions_round_trip_in_c_order() -> None:
    grid = ChunkGrid.from_json(SPEC_EXAMPLE, (6, 6, 6, 6, 6))
    chunks = list(itertools.product(*(range(n) for n in grid.grid_shape)))
    assert [grid.linear_index(c) for c in chunks] == list(range(grid.nchunks))
    assert [grid.chunk_at(i) for i in range(grid.nchunks)] == chunks


def test_a_chunk_outside_the_grid_is_an_index_error() -> None:
    grid = ChunkGrid.regular((10, 4), (3, 4))
    assert grid.check_chunk([3, 0]) == (3, 0)
    for bad in [(4, 0), (0, 1), (-1, 0), (0,)]:
        with pytest.raises(IndexError, match=r"outside the chunk grid \(4, 1\)"):
            grid.check_chunk(bad)


def test_grids_pickle_small_and_equal() -> None:
    grid = ChunkGrid.from_json(
        {
            "name": "rectilinear",
            "configuration": {"kind": "inline", "chunk_shapes": [[[1, 10**6]]]},
        },
        (10**6,),
    )
    grid.dimensions[0].indices_to_chunks(np.arange(5))  # fills the numpy cache
    data = pickle.dumps(grid)
    assert len(data) < 300
    assert pickle.loads(data) == grid
    assert hash(pickle.loads(data)) == hash(grid)


def test_with_shape_keeps_edges_and_refuses_an_extent_they_do_not_reach() -> None:
    grid = ChunkGrid([RectilinearDimension([(3, 2)], 5), RegularDimension(4, 5)], "rectilinear")
    assert grid.with_shape((6, 9)).grid_shape == (2, 3)
    assert grid.with_shape((2, 0)).grid_shape == (1, 0)
    with pytest.raises(MetadataError, match="sum to 6, less than the array's extent 7") as info:
        grid.with_shape((7, 5))
    assert info.value.field == "chunk_grid.chunk_shapes"


@pytest.mark.parametrize(
    "shards",
    [
        ChunkGrid.regular((13, 7), (4, 6)),
        ChunkGrid(
            [RectilinearDimension([(4, 1), (2, 2), (8, 1)], 13), RegularDimension(6, 7)],
            "rectilinear",
        ),
    ],
    ids=["regular", "rectilinear"],
)
def test_shard_grid_places_inner_chunks_as_spelled_out(shards: ChunkGrid) -> None:
    inner = (2, 3)
    layout = ShardGrid(shards, inner)
    chunks = ChunkGrid.regular(shards.shape, inner)
    seen: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for chunk in itertools.product(*(range(n) for n in chunks.grid_shape)):
        start = tuple(r.start for r in chunks.chunk_region(chunk))
        shard = layout.shard_of(chunk)
        region = shards.chunk_region(shard)
        assert all(r.start <= a < r.stop for r, a in zip(region, start))
        seen.setdefault(shard, []).append(chunk)
    for shard, inside in seen.items():
        per_shard = [s // c for s, c in zip(layout.shard_shape(shard), inner)]
        origin = [shards.dimensions[d].chunk_start(shard[d]) // inner[d] for d in range(2)]
        positions = [(c[0] - origin[0]) * per_shard[1] + (c[1] - origin[1]) for c in inside]
        assert [layout.position(c, shard) for c in inside] == positions
        assert layout.chunks_inside(shard) == len(inside)


# ------------------------------------------------------------------------------ chunk keys
@pytest.mark.parametrize(
    ("encoding", "index", "key"),
    [
        (ChunkKeyEncoding("default", "/"), (1, 20), "c/1/20"),
        (ChunkKeyEncoding("default", "."), (1, 20), "c.1.20"),
        (ChunkKeyEncoding("default", "/"), (), "c"),
        (ChunkKeyEncoding("v2", "."), (1, 20), "1.20"),
        (ChunkKeyEncoding("v2", "/"), (0, 0), "0/0"),
        (ChunkKeyEncoding("v2", "."), (), "0"),
    ],
)
def test_chunk_keys_encode_and_decode(
    encoding: ChunkKeyEncoding, index: tuple[int, ...], key: str
) -> None:
    grid_shape = tuple(i + 1 for i in index)
    assert encoding.chunk_key(index) == key
    assert encoding.chunk_index(key, grid_shape) == index
    assert encoding.keys_below()(index) == key
    assert encoding.keys_below("g/a/")(index) == "g/a/" + key


@pytest.mark.parametrize(
    ("encoding", "key"),
    [
        (ChunkKeyEncoding("default", "/"), "c/01/2"),  # leading zero
        (ChunkKeyEncoding("default", "/"), "c/+1/2"),  # sign
        (ChunkKeyEncoding("default", "/"), "c/-1/2"),
        (ChunkKeyEncoding("default", "/"), "c/1"),  # too few parts
        (ChunkKeyEncoding("default", "/"), "c/1/2/3"),  # too many
        (ChunkKeyEncoding("default", "/"), "c/1/9"),  # beyond the grid
        (ChunkKeyEncoding("default", "/"), "c.1.2"),  # another separator
        (ChunkKeyEncoding("default", "/"), "1/2"),  # no prefix
        (ChunkKeyEncoding("default", "/"), "c/\u0661/2"),  # an Arabic-Indic digit
        (ChunkKeyEncoding("default", "/"), "c/1/" + "9" * 20),
        (ChunkKeyEncoding("default", "/"), "c//2"),
        (ChunkKeyEncoding("v2", "."), "c.1.2"),
        (ChunkKeyEncoding("v2", "."), "1.2.zarray"),
        (ChunkKeyEncoding("v2", "."), ".zattrs"),
    ],
)
def test_keys_that_are_no_chunk_keys_are_metadata_errors(
    encoding: ChunkKeyEncoding, key: str
) -> None:
    with pytest.raises(MetadataError, match="not the key of a chunk") as info:
        encoding.chunk_index(key, (4, 5))
    assert info.value.key == key
    assert info.value.field == "chunk_key_encoding"


def test_a_0d_array_has_one_key() -> None:
    for encoding in (ChunkKeyEncoding("default"), ChunkKeyEncoding("v2", ".")):
        with pytest.raises(MetadataError):
            encoding.chunk_index("c/0" if encoding.name == "default" else "0.0", ())


def test_v2_separator() -> None:
    assert ChunkKeyEncoding.from_v2(None) == ChunkKeyEncoding("v2", ".")
    assert ChunkKeyEncoding.from_v2("/") == ChunkKeyEncoding("v2", "/")
    with pytest.raises(MetadataError) as info:
        ChunkKeyEncoding.from_v2("-")
    assert info.value.field == "dimension_separator"


@settings(max_examples=500, deadline=None)
@given(
    size=st.integers(1, 9),
    extent=st.integers(0, 90),
    bounds=st.tuples(st.integers(0, 90), st.integers(0, 90)),
    step=st.sampled_from([1, 1, 1, 2, 3, 10]),
)
def test_regular_slice_pieces_are_the_general_ones(
    size: int, extent: int, bounds: tuple[int, int], step: int
) -> None:
    """The regular dimension's quick path (step 1, whole inner chunks by comprehension) gives
    exactly what the general walk gives."""
    start, stop = sorted(min(b, extent) for b in bounds)
    dim = RegularDimension(size, extent)
    assert dim.slice_pieces(start, stop, step) == DimensionGrid.slice_pieces(dim, start, stop, step)
