"""Rectilinear chunk grids (zarr-extensions ``chunk-grids/rectilinear``) on the read side.

Arrays zarr-python >= 3.2 writes (behind its ``array.rectilinear_chunks`` flag; run in the 3.12
venv where it exists) read exactly through ``xzaro.open_array`` and ``engine="zaro"``, whose Dask
chunks are the stored chunks; hand-written documents cover what zarr-python does not write
(edges past the extent, a dimension given as one integer); hostile grids are metadata errors
naming the field, and huge run-length encoded grids cost nothing.
"""

from __future__ import annotations

import json
import pickle
import shutil
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from capped import run_capped
from helpers import assert_same, run_venv312, v3_array_doc

import xzaro
from xzaro.errors import MetadataError, UnsupportedError
from xzaro.meta import ZaroMeta, node_from_json

GiB = 1024**3

ORACLE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import zarr

    zarr.config.set({"array.rectilinear_chunks": True})
    root = sys.argv[1]
    rng = np.random.default_rng(7)
    sizes = {}

    def save(name, a):
        np.save(f"{root}/{name}.npy", a[...])
        sizes[name] = [list(s) for s in a.read_chunk_sizes]

    months = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    a = zarr.create_array(f"{root}/time.zarr", shape=(365,), chunks=[months], dtype="f4",
                          fill_value=np.nan)
    a[:90] = rng.standard_normal(90).astype("f4")
    a[200:] = rng.standard_normal(165).astype("f4")
    save("time", a)
    b = zarr.create_array(f"{root}/grid2d.zarr", shape=(10, 7), chunks=[[3, 3, 4], [2, 5]],
                          dtype="i2", fill_value=-1)
    b[:6, :] = np.arange(42, dtype="i2").reshape(6, 7)
    b[9, 6] = 99
    save("grid2d", b)
    c = zarr.create_array(f"{root}/mixed.zarr", shape=(9, 20), chunks=[4, [5, 5, 10]],
                          dtype="u1", fill_value=7, compressors=None)
    c[:] = (np.arange(180) % 251).astype("u1").reshape(9, 20)
    save("mixed", c)
    d = zarr.create_array(f"{root}/sharded.zarr", shape=(12, 8), chunks=(2, 4),
                          shards=[[4, 8], [8]], dtype="f8", fill_value=-0.5)
    d[:4] = rng.standard_normal((4, 8))
    d[6:10, 4:] = rng.standard_normal((4, 4))
    save("sharded", d)
    e = zarr.create_array(f"{root}/sharded_start.zarr", shape=(15, 6), chunks=(3, 2),
                          shards=[[6, 3, 6], [4, 2]], dtype="<i8", fill_value=0,
                          compressors=None)
    e[:] = np.arange(90).reshape(15, 6)
    save("sharded_start", e)

    g = zarr.open_group(f"{root}/ds.zarr", mode="w")
    t = g.create_array("time", shape=(90,), chunks=[[31, 28, 31]], dtype="i8",
                       dimension_names=["time"], fill_value=0)
    t[:] = np.arange(90)
    v = g.create_array("temp", shape=(90, 8), chunks=[[31, 28, 31], 4], dtype="f4",
                       dimension_names=["time", "x"], fill_value=np.nan)
    v[:] = rng.standard_normal((90, 8)).astype("f4")
    s = g.create_array("sharded", shape=(90, 8), chunks=(1, 4), shards=[[31, 28, 31], [8]],
                       dtype="f4", dimension_names=["time", "x"], fill_value=np.nan)
    s[:] = rng.standard_normal((90, 8)).astype("f4")
    for name in ("temp", "sharded"):
        save("ds_" + name, g[name])
    json.dump(sizes, open(f"{root}/sizes.json", "w"))
    print(zarr.__version__)
    """
)

ORACLE_ARRAYS = ["time", "grid2d", "mixed", "sharded", "sharded_start"]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The arrays zarr-python >= 3.2 writes with rectilinear grids, with its own reads."""
    root = tmp_path_factory.mktemp("rectilinear")
    result = run_venv312(ORACLE_SCRIPT, str(root))
    if result.returncode:
        pytest.skip(f"zarr-python writes no rectilinear grids here: {result.stderr[-300:]}")
    return root


def _sizes(root: Path) -> dict[str, list[list[int]]]:
    return json.loads((root / "sizes.json").read_text())


def _compact(sizes: list[list[int]]) -> tuple[Any, ...]:
    """xarray's spelling of chunk sizes: one int where they are regular, else all of them."""
    return tuple(s[0] if len(set(s[:-1])) <= 1 and s[-1] <= s[0] else tuple(s) for s in sizes)


def _selections(shape: tuple[int, ...]) -> list[tuple[Any, ...]]:
    """Basic, strided, reversed, integer-array and mask selections over ``shape``."""
    n = shape[0]
    found: list[tuple[Any, ...]] = [
        (),
        (slice(1, None, 3),),
        (slice(None, None, -2),),
        (n // 2,),
        ([0, n - 1, 3 % n, 0, -1],),
        (Ellipsis, -1),
        (np.arange(n) % 3 == 0,),
    ]
    if len(shape) > 1:
        found.append((slice(2, n - 1), slice(1, None, 2)))
    return found


@pytest.mark.parametrize("name", ORACLE_ARRAYS)
def test_reads_what_zarr_python_wrote(oracle: Path, name: str) -> None:
    expected = np.load(oracle / f"{name}.npy")
    array = xzaro.open_array(oracle / f"{name}.zarr")
    assert_same(array[...], expected)
    for selection in _selections(expected.shape):
        assert_same(array[selection], expected[selection], str(selection))
    assert_same(array.oindex[[1, 0, 5], ...], expected[[1, 0, 5], ...])
    assert_same(array.read_region([1] * expected.ndim), expected[(slice(1, None),) * expected.ndim])


@pytest.mark.parametrize("name", ORACLE_ARRAYS)
def test_chunks_are_the_stored_chunks(oracle: Path, name: str) -> None:
    expected = np.load(oracle / f"{name}.npy")
    sizes = _sizes(oracle)[name]
    array = xzaro.open_array(oracle / f"{name}.zarr")
    assert array.chunks == _compact(sizes)
    info = array.chunk_info()
    assert info.chunk_grid_shape == tuple(len(s) for s in sizes)
    assert info.nchunks == int(np.prod([len(s) for s in sizes]))
    seen = 0
    for index, block in array.iter_chunks():
        starts = [sum(s[:i]) for s, i in zip(sizes, index)]
        region = tuple(slice(a, a + s[i]) for a, s, i in zip(starts, sizes, index))
        assert_same(block, expected[region], str(index))
        assert_same(array.read_chunk(index), expected[region], str(index))
        seen += 1
    assert seen == info.nchunks


def test_dask_chunks_of_the_zaro_engine_are_the_stored_objects(oracle: Path) -> None:
    """chunks={} gives one block per stored object: the chunk, or the (rectilinear) shard."""
    sizes = _sizes(oracle)
    with xr.open_dataset(oracle / "ds.zarr", engine="zaro", chunks={}, consolidated=False) as ds:
        assert ds.temp.chunks == tuple(tuple(s) for s in sizes["ds_temp"])
        assert ds.temp.encoding["chunks"] == ((31, 28, 31), 4)
        assert ds.sharded.chunks == ((31, 28, 31), (8,))
        assert ds.sharded.encoding["shards"] == ((31, 28, 31), 8)
        assert_same(ds.temp.values, np.load(oracle / "ds_temp.npy"))
        assert_same(ds.sharded.values, np.load(oracle / "ds_sharded.npy"))
        np.testing.assert_array_equal(ds.time.values, np.arange(90))
    with xr.open_dataset(
        oracle / "ds.zarr", engine="zaro", chunks={}, consolidated=False, read_unit="chunk"
    ) as ds:
        assert ds.sharded.chunks == tuple(tuple(s) for s in sizes["ds_sharded"])
        assert_same(ds.sharded.values, np.load(oracle / "ds_sharded.npy"))


@pytest.mark.parametrize(
    ("read_unit", "time_chunks"),
    [("chunk", (31, 28, 31)), ({"time": 40}, (59, 31)), (2 * 31 * 4 * 4, (59, 31))],
)
def test_read_units_are_whole_stored_chunks(
    oracle: Path, read_unit: Any, time_chunks: tuple[int, ...]
) -> None:
    with xr.open_dataset(
        oracle / "ds.zarr", engine="zaro", chunks={}, consolidated=False, read_unit=read_unit
    ) as ds:
        assert ds.temp.chunks[0] == time_chunks
        assert_same(ds.temp.values, np.load(oracle / "ds_temp.npy"))


THEIR_READ = textwrap.dedent(
    """
    import sys, numpy, zarr
    zarr.config.set({"array.rectilinear_chunks": True})
    numpy.save(sys.argv[2], zarr.open_array(sys.argv[1], mode="r")[...])
    """
)


def test_shards_past_the_extent_are_read_as_zarr_python_reads_them(
    oracle: Path, tmp_path: Path
) -> None:
    """The spec allows edges past the array's extent: the shards zarr-python wrote, with the
    array cut short and a trailing shard declared, read as zarr-python reads them."""
    path = tmp_path / "cut.zarr"
    shutil.copytree(oracle / "sharded_start.zarr", path)
    doc = json.loads((path / "zarr.json").read_text())
    doc["shape"] = [13, 5]
    doc["chunk_grid"]["configuration"]["chunk_shapes"] = [[6, 3, 6, 6], [4, 2]]
    (path / "zarr.json").write_text(json.dumps(doc))
    theirs = tmp_path / "theirs.npy"
    result = run_venv312(THEIR_READ, str(path), str(theirs))
    assert result.returncode == 0, result.stderr[-500:]
    expected = np.load(oracle / "sharded_start.npy")[:13, :5]
    assert_same(np.load(theirs), expected)
    array = xzaro.open_array(path)
    assert array.shards == ((6, 3, 4), 4)
    assert_same(array[...], expected)
    assert_same(array[11:, 3:], expected[11:, 3:])


# ------------------------------------------------------------------------------ by hand
def _v3_doc(shape: list[int], chunk_shapes: Any, **fields: Any) -> dict:
    """An int16 array (fill -7, bytes little-endian) with a rectilinear grid of ``chunk_shapes``."""
    grid = {
        "name": "rectilinear",
        "configuration": {"kind": "inline", "chunk_shapes": chunk_shapes},
    }
    fields = {
        "chunk_grid": grid,
        "fill_value": -7,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        **fields,
    }
    return v3_array_doc(shape, [], "int16", **fields)


def _edges(entry: Any, extent: int) -> list[int]:
    """One dimension's edge lengths spelled out (an integer repeats to cover the extent)."""
    if isinstance(entry, int):
        return [entry] * max(1, -(-extent // entry))
    out: list[int] = []
    for item in entry:
        out += [item[0]] * item[1] if isinstance(item, list) else [item]
    return out


def _write_by_hand(path: Path, data: np.ndarray, chunk_shapes: Any, skip: set) -> None:
    """A rectilinear array written chunk by chunk, each chunk padded to its edge lengths."""
    path.mkdir()
    (path / "zarr.json").write_text(json.dumps(_v3_doc(list(data.shape), chunk_shapes)))
    edges = [_edges(e, n) for e, n in zip(chunk_shapes, data.shape)]
    starts = [np.concatenate(([0], np.cumsum(e))).tolist() for e in edges]
    for index in np.ndindex(*(len(e) for e in edges)):
        lo = [s[i] for s, i in zip(starts, index)]
        if index in skip or any(a >= n for a, n in zip(lo, data.shape)):
            continue
        chunk = np.full([e[i] for e, i in zip(edges, index)], -7, dtype="<i2")
        part = data[tuple(slice(a, a + e[i]) for a, e, i in zip(lo, edges, index))]
        chunk[tuple(slice(0, n) for n in part.shape)] = part
        key = path.joinpath("c", *map(str, index))
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(chunk.tobytes())


def test_the_specs_example_reads_exactly(tmp_path: Path) -> None:
    """zarr-extensions' example: an integer, explicit edges, runs, runs and edges, and edges
    past the extent; two chunks are missing and read as the fill value."""
    chunk_shapes = [4, [1, 2, 3], [[4, 2]], [[1, 3], 3], [4, 4, 4]]
    data = np.arange(6**5, dtype="<i2").reshape((6,) * 5)
    skip = {(0, 1, 0, 0, 0), (1, 2, 1, 3, 1)}
    _write_by_hand(tmp_path / "a", data, chunk_shapes, skip)
    expected = data.copy()
    expected[0:4, 1:3, 0:4, 0:1, 0:4] = -7
    expected[4:6, 3:6, 4:6, 3:6, 4:6] = -7
    array = xzaro.open_array(tmp_path / "a")
    assert array.chunks == (4, (1, 2, 3), 4, (1, 1, 1, 3), 4)
    assert_same(array[...], expected)
    assert_same(array[1::2, ::-1, 3, [5, 0, 2], 2:5], expected[1::2, ::-1, 3, [5, 0, 2], 2:5])
    assert_same(array.oindex[[0, 5], :, [1, 4], 3, :], expected[[0, 5]][:, :, [1, 4]][:, :, :, 3])


def test_metadata_emits_the_grid_it_read() -> None:
    doc = _v3_doc([10, 6], [[[3, 2], 4], 2])
    meta = ZaroMeta.from_json(doc, key="a/zarr.json")
    assert meta.to_json()["chunk_grid"] == doc["chunk_grid"]
    assert ZaroMeta.from_json(meta.to_json()) == meta
    assert meta.chunk_shape == (4, 2)  # the largest chunk along each dimension
    assert meta.grid_shape == (3, 3)
    with pytest.raises(UnsupportedError, match="rectilinear") as info:
        meta.storage_shape  # noqa: B018 - a property that refuses
    assert info.value.field == "chunk_grid"


def test_a_rectilinear_array_pickles_and_reads_elsewhere(tmp_path: Path) -> None:
    data = np.arange(30, dtype="<i2").reshape(10, 3)
    _write_by_hand(tmp_path / "a", data, [[1, 2, 3, 4], 3], set())
    array = pickle.loads(pickle.dumps(xzaro.open_array(tmp_path / "a")))
    assert_same(array[2:9], data[2:9])


HOSTILE: list[tuple[Any, str]] = [
    ([[3, 3], 5], "sum to 6"),
    ([[-1, 11], 5], "from 1 to 2\\*\\*63-1"),
    ([[0, 10], 5], "from 1 to 2\\*\\*63-1"),
    ([[2.5, 7.5], 5], "from 1 to 2\\*\\*63-1"),
    ([[True, 9], 5], "from 1 to 2\\*\\*63-1"),
    ([["3", 7], 5], "from 1 to 2\\*\\*63-1"),
    ([[2**63, 1], 5], "from 1 to 2\\*\\*63-1"),
    ([0, 5], "from 1 to 2\\*\\*63-1"),
    ([[[[2, 3]]], 5], "\\[size, count\\]"),
    ([[[2, 3, 4]], 5], "\\[size, count\\]"),
    ([[[]], 5], "\\[size, count\\]"),
    ([[[2, 0]], 5], "count must be an integer from 1"),
    ([[[2, -5]], 5], "count must be an integer from 1"),
    ([[[2, 5.0]], 5], "count must be an integer from 1"),
    ([[[[2], 5]], 5], "edge length must be"),
    ([[], 5], "non-empty list"),
    ([None, 5], "non-empty list"),
    ([{"a": 1}, 5], "non-empty list"),
    ([[1] * 10**7, 5], "more than the 1048576"),
    ([[10]], "1 dimensions, shape has 2"),
    ("abc", "one entry per dimension"),
    (5, "one entry per dimension"),
]


@pytest.mark.parametrize(("chunk_shapes", "message"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_grids_are_metadata_errors_naming_the_field(
    chunk_shapes: Any, message: str
) -> None:
    with pytest.raises(MetadataError, match=message) as info:
        node_from_json(_v3_doc([10, 5], chunk_shapes), url="memory://s", key="a/zarr.json")
    assert info.value.field in ("chunk_grid", "chunk_grid.chunk_shapes")
    assert (info.value.url, info.value.key) == ("memory://s", "a/zarr.json")


@pytest.mark.parametrize(
    ("configuration", "field"),
    [
        ({"chunk_shapes": [[10], [5]]}, "chunk_grid.kind"),
        ({"kind": "file", "chunk_shapes": [[10], [5]]}, "chunk_grid.kind"),
        ([1], "chunk_grid.configuration"),
    ],
)
def test_grids_of_another_kind_are_refused(configuration: Any, field: str) -> None:
    doc = _v3_doc([10, 5], None)
    doc["chunk_grid"] = {"name": "rectilinear", "configuration": configuration}
    with pytest.raises(MetadataError) as info:
        node_from_json(doc, url="memory://s", key="a/zarr.json")
    assert info.value.field == field and info.value.key == "a/zarr.json"


def test_shards_that_are_no_whole_number_of_inner_chunks_are_refused() -> None:
    sharding = {
        "name": "sharding_indexed",
        "configuration": {"chunk_shape": [2, 5], "codecs": [{"name": "bytes"}]},
    }
    doc = _v3_doc([10, 5], [[4, 2, 3, 1], 5], codecs=[sharding])
    with pytest.raises(MetadataError, match="dimension 0 has shards of 1") as info:
        node_from_json(doc, url="memory://s", key="a/zarr.json")
    assert info.value.field == "codecs" and info.value.key == "a/zarr.json"
    ok = _v3_doc([10, 5], [[4, 2, 4], 5], codecs=[sharding])
    assert node_from_json(ok).grid_shape == (3, 1)


def _huge_read(path: Path) -> tuple[int, list[int]]:
    array = xzaro.open_array(path)
    return array.chunk_info().nchunks, array[10**12 - 3 :].tolist()


def test_huge_run_length_encoded_grids_cost_nothing(tmp_path: Path) -> None:
    """``[[1, 10**12]]`` is a trillion chunks in 24 bytes: kept as one run, never spelled out."""
    path = tmp_path / "a"
    path.mkdir()
    doc = _v3_doc([10**12, 2**40], [[[1, 10**12]], [[2**38, 3], 2**38]])
    (path / "zarr.json").write_text(json.dumps(doc))
    outcome = run_capped(_huge_read, path, mem_bytes=GiB, timeout=60)
    assert outcome.kind == "raised" and outcome.raised("OutOfMemoryError"), outcome
    doc["shape"] = [10**12, 1]
    doc["chunk_grid"]["configuration"]["chunk_shapes"][1] = [[1, 1]]
    (path / "zarr.json").write_text(json.dumps(doc))
    outcome = run_capped(_huge_read, path, mem_bytes=GiB, timeout=60)
    assert outcome.kind == "ok", outcome
    assert outcome.value == (10**12, [[-7], [-7], [-7]])
