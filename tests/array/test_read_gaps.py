"""The smaller read gaps of issue 11, each against the stores zarr-python writes and its own read.

* ``encoding["preferred_chunks"]`` is the stored object: the chunk, as with ``engine="zarr"``,
  or the shard of a sharded array (``read_unit="chunk"``: its inner chunk). The Dask chunks of
  ``chunks={}``/``"auto"``/a mapping and xarray's "The specified chunks separate the stored
  chunks" warning are those ``engine="zarr"`` gives for an unsharded array whose chunks are
  those objects; an explicit ``read_unit`` still gives large blocks of whole stored objects;
* ``consolidated=None`` on a store without consolidated metadata warns as ``engine="zarr"`` does;
* fsspec mappers open (memory, local, S3 with its options), and ``xzaro.open_mfdataset`` opens a
  remote glob pattern;
* ``read_unit`` takes byte sizes (``"200MiB"``) and refuses garbage, naming the argument;
* ``ZaroArray`` takes integer and boolean index arrays: numpy's result for one, orthogonal
  (zarr-python's ``oindex``) for several, each needed chunk fetched once.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import fsspec
import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xzaro
from xzaro.errors import NodeNotFoundError, StoreError
from xzaro.stores import MemoryStore

ENGINE = "zaro"
SEPARATE = "The specified chunks separate the stored chunks"
NOT_CONSOLIDATED = "Failed to open Zarr store with consolidated metadata"


def _dataset() -> xr.Dataset:
    rng = np.random.default_rng(11)
    return xr.Dataset(
        {
            "v": (("x", "y"), rng.standard_normal((40, 30))),
            "w": (("x",), np.arange(40, dtype="int32")),
        },
        coords={"x": np.arange(40), "y": np.arange(30) * 0.5},
    )


#: name -> (zarr_format, encoding of "v"): chunks 10 x 6, and a sharded V3 layout
LAYOUTS: dict[str, tuple[int, dict[str, Any]]] = {
    "v2": (2, {"chunks": (10, 6)}),
    "v3": (3, {"chunks": (10, 6)}),
    "v3_sharded": (3, {"chunks": (5, 3), "shards": (10, 6)}),
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The dataset written by zarr-python (through ``to_zarr``) in every layout, consolidated."""
    root = tmp_path_factory.mktemp("read_gaps")
    out = {}
    for name, (fmt, encoding) in LAYOUTS.items():
        path = root / f"{name}.zarr"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _dataset().to_zarr(
                path, zarr_format=fmt, encoding={"v": encoding, "w": {"chunks": (10,)}}
            )
        out[name] = path
    return out


def _open(path: Any, engine: str, **kwargs: Any) -> tuple[xr.Dataset, list[str]]:
    """The dataset, and the texts of the warnings the open gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = xr.open_dataset(path, engine=engine, **kwargs)
    return ds, [str(w.message) for w in caught]


# --- 1. preferred_chunks, Dask chunks and xarray's chunk warning ------------------------------


#: The unsharded layout whose chunks are each layout's stored objects (its shards, if any).
STORED_OBJECTS = {"v2": "v2", "v3": "v3", "v3_sharded": "v3"}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_preferred_chunks_are_the_stored_objects(written: dict[str, Path], name: str) -> None:
    """The chunks of engine="zarr" for unsharded arrays; the shards of a sharded one."""
    ours, _ = _open(written[name], ENGINE)
    theirs, _ = _open(written[STORED_OBJECTS[name]], "zarr")
    for var in ("v", "w"):
        assert ours[var].encoding["preferred_chunks"] == theirs[var].encoding["preferred_chunks"]
    layout = LAYOUTS[name][1]
    assert ours["v"].encoding["preferred_chunks"] == dict(
        zip(("x", "y"), layout.get("shards", layout["chunks"]))
    )
    inner, _ = _open(written[name], ENGINE, read_unit="chunk")
    assert inner["v"].encoding["preferred_chunks"] == dict(zip(("x", "y"), layout["chunks"]))


CHUNKS = [
    {},
    "auto",
    {"x": 20},  # two stored chunks: no warning
    {"x": 20, "y": 12},
    {"x": -1},
    {"x": "auto", "y": -1},
    {"x": 15},  # splits stored chunks: the warning
    {"y": 4},
    {"x": (15, 25)},
]


@pytest.mark.parametrize("name", list(LAYOUTS))
@pytest.mark.parametrize("chunks", CHUNKS, ids=str)
def test_dask_chunks_and_warning_as_zarr(written: dict[str, Path], name: str, chunks: Any) -> None:
    """The Dask chunks engine="zarr" gives for the unsharded layout whose chunks are this
    layout's stored objects (for a sharded one: its shards), and the "separate the stored
    chunks" warning exactly when engine="zarr" gives it there (for blocks of whole stored
    objects: never)."""
    with dask.config.set({"array.chunk-size": "4KiB"}):  # "auto" grows a few chunks
        ours, our_warnings = _open(written[name], ENGINE, chunks=chunks)
        theirs, their_warnings = _open(written[STORED_OBJECTS[name]], "zarr", chunks=chunks)
    for var in ours.variables:
        assert ours[var].chunks == theirs[var].chunks, var
    ours_warn = any(SEPARATE in w for w in our_warnings)
    assert ours_warn == any(SEPARATE in w for w in their_warnings)
    layout = LAYOUTS[name][1]
    stored = {"v": layout.get("shards", layout["chunks"]), "w": (10,)}
    aligned = all(
        b % c == 0
        for var, chunks in stored.items()
        for blocks, c in zip(ours[var].chunks, chunks)
        for b in blocks[:-1]
    )
    assert ours_warn == (not aligned)
    if chunks == {}:
        xr.testing.assert_identical(ours.load(), theirs.load())


def test_a_shard_over_the_dask_chunk_size_is_tiled_by_inner_chunks(
    written: dict[str, Path],
) -> None:
    """A shard larger than ``array.chunk-size`` gives blocks of whole inner chunks that tile
    it, grown from the fastest dimension: (5, 3) inner chunks of float64 in (10, 6) shards."""
    expected, _ = _open(written["v3"], "zarr")
    for limit, block in [("480B", (10, 6)), ("240B", (5, 6)), ("200B", (5, 3)), ("8B", (5, 3))]:
        with dask.config.set({"array.chunk-size": limit}):
            ds, texts = _open(written["v3_sharded"], ENGINE, chunks={})
        assert ds["v"].encoding["preferred_chunks"] == dict(zip(("x", "y"), block)), limit
        assert tuple(b[0] for b in ds["v"].chunks) == block, limit
        assert not any(SEPARATE in t for t in texts)
        xr.testing.assert_identical(ds.load(), expected.load())


@pytest.mark.parametrize("name", ["v2", "v3_sharded"])
def test_explicit_read_unit_gives_blocks_of_whole_stored_objects(
    written: dict[str, Path], name: str
) -> None:
    stored = LAYOUTS[name][1].get("shards") or LAYOUTS[name][1]["chunks"]
    ds, texts = _open(written[name], ENGINE, chunks={}, read_unit="4KiB")
    v = ds["v"]
    block = tuple(blocks[0] for blocks in v.chunks)
    assert v.encoding["preferred_chunks"] == dict(zip(v.dims, block))
    assert all(b % s == 0 for b, s in zip(block, stored))
    assert 2048 <= np.prod(block) * 8 <= 4096
    assert v.data.npartitions < np.prod([-(-n // c) for n, c in zip(v.shape, stored)])
    assert not any(SEPARATE in t for t in texts)
    expected, _ = _open(written[name], "zarr")
    xr.testing.assert_identical(ds.load(), expected.load())


# --- 2. consolidated=None without consolidated metadata ---------------------------------------


@pytest.mark.parametrize("fmt", [2, 3])
def test_unconsolidated_store_warns_as_zarr_does(tmp_path: Path, fmt: int) -> None:
    path = tmp_path / "plain.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _dataset().to_zarr(path, zarr_format=fmt, consolidated=False)
    with pytest.warns(RuntimeWarning, match=NOT_CONSOLIDATED):
        xr.open_dataset(path, engine="zarr")
    with pytest.warns(RuntimeWarning, match=NOT_CONSOLIDATED) as record:
        ds = xr.open_dataset(path, engine=ENGINE)
    assert any(str(path) in str(w.message) for w in record)
    xr.testing.assert_identical(ds.load(), _dataset())
    _, texts = _open(path, ENGINE, consolidated=False)
    assert not any(NOT_CONSOLIDATED in t for t in texts)
    with pytest.raises(NodeNotFoundError, match="consolidated"):
        xr.open_dataset(path, engine=ENGINE, consolidated=True)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_consolidated_store_does_not_warn(written: dict[str, Path], name: str) -> None:
    _, texts = _open(written[name], ENGINE)
    assert not any(NOT_CONSOLIDATED in t for t in texts)


def test_reference_store_does_not_warn(tmp_path: Path) -> None:
    """Kerchunk references hold every document in one file: nothing to consolidate."""
    kerchunk_hdf = pytest.importorskip("kerchunk.hdf")
    pytest.importorskip("h5netcdf")
    nc = tmp_path / "a.nc"
    _dataset().to_netcdf(nc, engine="h5netcdf")
    refs = kerchunk_hdf.SingleHdf5ToZarr(str(nc), inline_threshold=0).translate()
    assert ".zmetadata" not in refs["refs"]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    ds, texts = _open(str(tmp_path / "refs.json"), ENGINE)
    assert not any(NOT_CONSOLIDATED in t for t in texts)
    xr.testing.assert_identical(ds.load(), xr.open_dataset(nc, engine="h5netcdf").load())


# --- 3. fsspec mappers and remote glob patterns ----------------------------------------------


@pytest.fixture
def memory_url() -> Iterator[str]:
    url = f"memory://xzaro-read-gaps/{uuid.uuid4().hex}"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def _write_zarr(url: str, ds: xr.Dataset, fmt: int = 3, **kwargs: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(url, zarr_format=fmt, **kwargs)


def _assert_mapper_reads(mapper: Any, url: str, **options: Any) -> None:
    ours, _ = _open(mapper, ENGINE)
    theirs, _ = _open(url, "zarr", storage_options=options or None)
    xr.testing.assert_identical(ours.load(), theirs.load())
    zarr_v = zarr.open_array(url, path="v", mode="r", storage_options=options or None)
    np.testing.assert_array_equal(xzaro.open_array(mapper, "v")[...], zarr_v[...])
    zarr_w = zarr.open_array(url, path="w", mode="r", storage_options=options or None)
    np.testing.assert_array_equal(xzaro.open_group(mapper)["w"][[3, 1]], zarr_w.oindex[[3, 1]])


@pytest.mark.parametrize("fmt", [2, 3])
def test_memory_mapper(memory_url: str, fmt: int) -> None:
    url = f"{memory_url}/a.zarr"
    _write_zarr(url, _dataset(), fmt)
    _assert_mapper_reads(fsspec.get_mapper(url), url)


def test_local_mapper(tmp_path: Path) -> None:
    url = str(tmp_path / "a.zarr")
    _write_zarr(url, _dataset(), 2)
    _assert_mapper_reads(fsspec.get_mapper(url), url)


def _upload(s3_server: dict[str, Any], local: Path, name: str) -> str:
    """A local store copied to the S3 server (one batched upload): its URL."""
    s3fs = pytest.importorskip("s3fs")
    bucket = s3_server["make_bucket"]("xzaro-read-gaps")
    url = f"s3://{bucket}/{uuid.uuid4().hex}/{name}"
    s3fs.S3FileSystem(**s3_server["storage_options"]).put(str(local), url, recursive=True)
    return url


def _small() -> xr.Dataset:
    """Few objects: the S3 test server answers slowly."""
    return _dataset().isel(x=slice(0, 20), y=slice(0, 6))


def test_s3_mapper_keeps_its_file_system_options(s3_server: dict[str, Any], tmp_path: Path) -> None:
    s3fs = pytest.importorskip("s3fs")
    options = s3_server["storage_options"]
    _write_zarr(str(tmp_path / "a.zarr"), _small(), 3, encoding={"v": {"chunks": (10, 6)}})
    url = _upload(s3_server, tmp_path / "a.zarr", "a.zarr")
    ours, _ = _open(s3fs.S3Map(url, s3=s3fs.S3FileSystem(**options)), ENGINE)
    theirs, _ = _open(url, "zarr", storage_options=options)
    xr.testing.assert_identical(ours.load(), theirs.load())
    array = xzaro.open_array(fsspec.get_mapper(url, **options), "v")
    np.testing.assert_array_equal(array[[19, 0, 19], 3:5], _small()["v"].values[[19, 0, 19], 3:5])


def test_mapper_over_a_wrapping_file_system_is_refused(memory_url: str) -> None:
    url = f"{memory_url}/a.zarr"
    _write_zarr(url, _dataset())
    with pytest.raises(StoreError, match="chained URL"):
        xzaro.open_group(fsspec.get_mapper(f"simplecache::{url}"))


def _mf_parts() -> list[xr.Dataset]:
    ds = _dataset()
    return [ds.isel(x=slice(0, 20)), ds.isel(x=slice(20, 40))]


def _assert_mfdataset(
    pattern: str, urls: list[str], options: dict[str, Any] | None, expected: xr.Dataset
) -> None:
    """xzaro.open_mfdataset(pattern) is xr.open_mfdataset(urls, engine="zarr")."""
    kwargs: dict[str, Any] = {"storage_options": options} if options else {}
    ours = xzaro.open_mfdataset(pattern, combine="by_coords", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = xr.open_mfdataset(urls, engine="zarr", combine="by_coords", **kwargs)
    for var in ours.variables:
        assert ours[var].chunks == theirs[var].chunks, var
    xr.testing.assert_identical(ours.load(), theirs.load())
    xr.testing.assert_identical(ours.load(), expected)


def test_open_mfdataset_memory_glob(memory_url: str) -> None:
    for i, part in enumerate(_mf_parts()):
        _write_zarr(f"{memory_url}/run-{i}.zarr", part)
    _write_zarr(f"{memory_url}/other.zarr", _dataset().isel(x=[0]))
    urls = [f"{memory_url}/run-{i}.zarr" for i in range(2)]
    _assert_mfdataset(f"{memory_url}/run-*.zarr", urls, None, _dataset())
    with pytest.raises(NodeNotFoundError, match="no store matches"):
        xzaro.open_mfdataset(f"{memory_url}/nothing-*.zarr")


def test_open_mfdataset_s3_glob(s3_server: dict[str, Any], tmp_path: Path) -> None:
    for i, part in enumerate(_mf_parts()):
        _write_zarr(str(tmp_path / "runs" / f"run-{i}.zarr"), part.drop_vars("v"), 2)
    base = _upload(s3_server, tmp_path / "runs", "runs")
    options = s3_server["storage_options"]
    urls = [f"{base}/run-{i}.zarr" for i in range(2)]
    _assert_mfdataset(f"{base}/run-*.zarr", urls, options, _dataset().drop_vars("v"))


# --- 4. read_unit as a byte size -------------------------------------------------------------


def test_read_unit_byte_sizes(written: dict[str, Path]) -> None:
    path = written["v2"]
    by_int, _ = _open(path, ENGINE, chunks={}, read_unit=4096)
    by_text, _ = _open(path, ENGINE, chunks={}, read_unit="4KiB")
    assert by_int.chunks == by_text.chunks != _open(path, ENGINE, chunks={})[0].chunks
    big, _ = _open(path, ENGINE, chunks={}, read_unit="200MiB")
    assert big["v"].data.npartitions == 1
    xr.testing.assert_identical(big.load(), _open(path, "zarr")[0].load())


@pytest.mark.parametrize(
    "bad", ["lots", "", "-5MB", "0B", 0, -1, True, 1.5, ["chunk"], {"x": "a"}, {"x": 0}], ids=repr
)
def test_read_unit_garbage_is_refused(written: dict[str, Path], bad: Any) -> None:
    with pytest.raises(ValueError, match="read_unit"):
        xr.open_dataset(written["v2"], engine=ENGINE, chunks={}, read_unit=bad)


# --- 5. integer and boolean array indexing on ZaroArray ---------------------------------------

SHAPE = (7, 5, 6)


@pytest.fixture(scope="module", params=["v2", "v3", "v3_sharded"])
def indexed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """(xzaro array, zarr-python array, the values) of one zarr-python-written array."""
    name = request.param
    path = tmp_path_factory.mktemp("indexing") / f"{name}.zarr"
    kwargs: dict[str, Any] = {"chunks": (3, 2, 4), "zarr_format": 2 if name == "v2" else 3}
    if name == "v3_sharded":
        kwargs = {"chunks": (1, 2, 2), "shards": (3, 2, 4), "zarr_format": 3}
    z = zarr.create_array(path, shape=SHAPE, dtype="int32", fill_value=-1, **kwargs)
    values = np.arange(np.prod(SHAPE), dtype="int32").reshape(SHAPE)
    z[:6] = values[:6]  # the last row's chunks are never written: fill
    values[6:] = -1
    reread = zarr.open_array(path, mode="r")
    np.testing.assert_array_equal(reread[...], values)
    return xzaro.open_array(str(path)), reread, values


NUMPY_CASES = [
    [0, 2, 4],
    [6, 0, 3, 3, -1],
    np.array([], dtype=int),
    (slice(None), [4, 0, 4]),
    (0, slice(1, 4), [5, 1]),  # advanced indices apart: numpy puts the array first
    (2, [1, 3]),
    ([1, 2], 3),
    ([[0, 1], [6, 2]],),  # a 2-D index array
    (1, slice(None), [[0, 1], [2, 3]]),
    (Ellipsis, [1, 1, 0]),
    (np.array([True, False, True, True, False, False, True]),),
    (slice(None, None, -2), slice(None), np.array([True, False, False, True, True, False])),
    (slice(None, None, -1), [0, 2]),
    (2, Ellipsis, [0]),
    ([-7, 6], 2, slice(None)),
    (slice(None), 0, [[1], [2]]),
]


@pytest.mark.parametrize("selection", NUMPY_CASES, ids=repr)
def test_one_index_array_is_numpys(indexed: Any, selection: Any) -> None:
    ours, _, values = indexed
    expected = values[selection]
    got = ours[selection]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


OUTER_CASES = [
    ([0, 2], [1, 3]),
    ([3, 1], slice(None), [5, 0, 5]),
    (np.array([True, False, True, False, False, False, True]), 1, [0, 0]),
    ([6, -1], np.array([True, True, False, False, True]), slice(1, 5)),
    (slice(None), [4], [5, 3, 1]),
]


@pytest.mark.parametrize("selection", OUTER_CASES, ids=repr)
def test_several_index_arrays_are_orthogonal_as_zarr_oindex(indexed: Any, selection: Any) -> None:
    ours, theirs, _ = indexed
    expected = theirs.oindex[selection]
    np.testing.assert_array_equal(ours[selection], expected)
    np.testing.assert_array_equal(ours.oindex[selection], expected)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ([7], "out of bounds"),
        ([0, -8], "out of bounds"),
        ((slice(None), [0, 5]), "out of bounds"),
        (np.array([True, False]), "boolean index"),
        (np.ones((7, 5), dtype=bool), "boolean index"),
        ([0.5, 1], "integers or booleans"),
        (True, "valid indices"),
        (([0, 1], [[0, 1]]), "1-D index arrays"),
    ],
    ids=repr,
)
def test_bad_index_arrays_raise_index_error(indexed: Any, selection: Any, message: str) -> None:
    ours, _, _ = indexed
    with pytest.raises(IndexError, match=message):
        ours[selection]


class CountingStore(MemoryStore):
    """A memory store that records every key it is asked for."""

    def __init__(self, data: dict[str, bytes]) -> None:
        super().__init__(data)
        self.asked: list[str] = []

    def get(self, key: str) -> bytes | None:
        self.asked.append(key)
        return super().get(key)

    def get_many(self, keys: Any) -> list[bytes | None]:
        self.asked.extend(keys)
        return super().get_many(keys)

    def get_ranges(self, requests: Any) -> list[bytes | None]:
        self.asked.extend(key for key, _, _ in requests)
        return super().get_ranges(requests)


def test_unsorted_repeated_indices_fetch_each_chunk_once(tmp_path: Path) -> None:
    path = tmp_path / "a.zarr"
    z = zarr.create_array(path, shape=(20, 9), chunks=(4, 3), dtype="float64", zarr_format=3)
    values = np.arange(180.0).reshape(20, 9)
    z[...] = values
    files = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    store = CountingStore(files)
    array = xzaro.open_array(store)
    store.asked.clear()
    rows = [17, 0, 17, 5, 1, 0, 19]
    np.testing.assert_array_equal(array[rows], values[rows])
    assert sorted(store.asked) == sorted({f"c/{r // 4}/{c}" for r in rows for c in range(3)})
    store.asked.clear()
    np.testing.assert_array_equal(array[[3, 2, 3], [8, 0, 8]], z.oindex[[3, 2, 3], [8, 0, 8]])
    assert sorted(store.asked) == ["c/0/0", "c/0/2"]


@st.composite
def _index_for_axis(draw: st.DrawFn, n: int) -> Any:
    kind = draw(st.sampled_from(["int", "slice", "array", "mask"]))
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    if kind == "slice":
        start, stop = draw(st.integers(-n - 1, n + 1)), draw(st.integers(-n - 1, n + 1))
        return slice(start, stop, draw(st.sampled_from([1, 2, -1, -3])))
    if kind == "mask":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=6))


@st.composite
def _selections(draw: st.DrawFn) -> tuple:
    return tuple(draw(_index_for_axis(n)) for n in SHAPE[: draw(st.integers(1, len(SHAPE)))])


def _n_arrays(selection: tuple) -> int:
    return sum(isinstance(s, list | np.ndarray) for s in selection)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(selection=_selections())
def test_property_indexing_matches_numpy_and_zarr(indexed: Any, selection: tuple) -> None:
    ours, theirs, values = indexed
    if _n_arrays(selection) <= 1:
        expected = values[selection]
        got = ours[selection]
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
    if _n_arrays(selection) and not any(
        (isinstance(s, slice) and s.step < 0) or (isinstance(s, list) and not s) for s in selection
    ):
        # zarr-python's oindex takes no negative steps and no empty lists
        np.testing.assert_array_equal(ours.oindex[selection], theirs.oindex[selection])
        if _n_arrays(selection) > 1:
            np.testing.assert_array_equal(ours[selection], theirs.oindex[selection])


def test_xarray_outer_and_vectorized_indexing_through_the_engine(
    written: dict[str, Path],
) -> None:
    ours, _ = _open(written["v3_sharded"], ENGINE)
    theirs, _ = _open(written["v3_sharded"], "zarr")
    outer = {"x": [30, 2, 2, 39], "y": [5, 0]}
    xr.testing.assert_identical(ours["v"].isel(outer).load(), theirs["v"].isel(outer).load())
    points = {
        "x": xr.DataArray([4, 39, 4, 0], dims="p"),
        "y": xr.DataArray([1, 29, 2, 0], dims="p"),
    }
    xr.testing.assert_identical(ours["v"].isel(points).load(), theirs["v"].isel(points).load())
    ours_dask, _ = _open(written["v2"], ENGINE, chunks={})
    theirs_dask, _ = _open(written["v2"], "zarr", chunks={})
    xr.testing.assert_identical(
        ours_dask["v"].isel(points).compute(), theirs_dask["v"].isel(points).compute()
    )
