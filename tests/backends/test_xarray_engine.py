"""xzaro's xarray engine (``engine="zaro"``) reads every store as xarray's zarr engine does.

The oracle is ``xr.open_dataset(..., engine="zarr")`` (zarr-python underneath) on the same store:
datasets must be identical after loading (values, dimensions, coordinates, attributes) and have
the same dtypes after decoding. The stores are the zarr-python matrix of :mod:`zarr_matrix`,
each wrapped into a group with dimension names, and the datasets of :mod:`xarray_cases` written
by ``to_zarr``. Beyond equality: read units and Dask chunks, ``keep_variables``, pickling into
another process, a distributed cluster, ``open_mfdataset``, ``load_async`` and remote stores.
"""

from __future__ import annotations

import asyncio
import json
import math
import pickle
import pickletools
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.array as da
import fsspec
import numpy as np
import pytest
import xarray as xr
import xarray_cases as xc
import zarr_matrix as zm
from helpers import CONFORMANCE, CONFORMANCE_STORES
from xarray.backends import BackendArray
from xarray.core import indexing

from xzaro.compat import xarray_encodes_per_zarr_format

ENGINE = "zaro"
CHUNK_MODES = {"eager": None, "dask": {}, "auto": "auto"}

CONFORMANCE_IDS = [rel for rel, _, _ in CONFORMANCE_STORES]

#: matrix stores zarr-python can read (the others have no oracle here)
MATRIX_IDS = [c.id for c in zm.CASES if c.zarr_readable]
#: the Dataset stores of xarray_cases compared variable by variable (trees have their own tests)
DATASET_IDS = [n for n, s in xc.DATASET_STORES.items() if s.kind != "tree"]
TREE_IDS = [n for n, s in xc.DATASET_STORES.items() if s.kind == "tree"]


# ----------------------------------------------------------------------------------------------
# fixtures and helpers
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> xc.Built:
    """Every Dataset store of xarray_cases."""
    return xc.build_all(tmp_path_factory.mktemp("xr-stores"))


@pytest.fixture(scope="session")
def xr_matrix_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zarr-python matrix (zarr_matrix.build_all)."""
    return zm.build_all(tmp_path_factory.mktemp("xr-matrix"))


@pytest.fixture(scope="session")
def wrapped_root(tmp_path_factory: pytest.TempPathFactory, xr_matrix_root: Path) -> Path:
    """The matrix stores wrapped into groups with dimension names (xarray_cases.build_wrapped)."""
    return xc.build_wrapped(tmp_path_factory.mktemp("xr-wrapped"), xr_matrix_root)


def open_zaro(path: Any, **kw: Any) -> xr.Dataset:
    return xr.open_dataset(path, engine=ENGINE, **kw)


def open_zarr(path: Any, **kw: Any) -> xr.Dataset:
    """The oracle: xarray's own zarr engine (warnings about consolidation etc. silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_dataset(path, engine="zarr", **kw)


_ORACLES: dict[tuple[str, str], xr.Dataset] = {}


def oracle(path: str, **kw: Any) -> xr.Dataset:
    """engine="zarr"'s reading of ``path``, loaded (cached: the tests only read it)."""
    key = (path, repr(sorted(kw.items())))
    if key not in _ORACLES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _ORACLES[key] = open_zarr(path, chunks=None, **kw).load()
    return _ORACLES[key]


def raises_like_zarr(path: str, **kw: Any) -> bool:
    """If engine="zarr" cannot open ``path`` so (e.g. ``chunks="auto"`` of an object array),
    check that engine="zaro" raises the same kind of error, and return True."""
    try:
        open_zarr(path, **kw)
    except Exception as exc:
        with pytest.raises(type(exc)):
            open_zaro(path, **kw)
        return True
    return False


def _norm_dtype(dt: np.dtype) -> np.dtype:
    # numpy's StringDType and object arrays of str are the same strings; the exact string dtype
    # is checked on its own in test_vlen_string_dtype_matches_zarr
    return np.dtype(object) if dt.kind in "OT" else dt


def assert_same(actual: xr.Dataset, expected: xr.Dataset, what: str = "") -> None:
    """Identical after loading, and the same dtype for every variable."""
    actual = actual.load()
    xr.testing.assert_identical(actual, expected)
    for name, var in expected.variables.items():
        a, e = _norm_dtype(actual[name].dtype), _norm_dtype(var.dtype)
        assert a == e, f"{what} {name}: dtype {actual[name].dtype} != {var.dtype}"


def assert_tree_same(actual: xr.DataTree, expected: xr.DataTree) -> None:
    actual = actual.load()
    xr.testing.assert_identical(actual, expected)
    for node in expected.subtree:
        other = actual[node.path] if node.path != "/" else actual
        for name, var in node.variables.items():
            got = other[name].dtype
            assert _norm_dtype(got) == _norm_dtype(var.dtype), (node.path, name, got, var.dtype)


def assert_dask_backed(ds: xr.Dataset) -> None:
    for name, var in ds.data_vars.items():
        if var.ndim:
            assert isinstance(var.data, da.Array), f"{name} is not a Dask array"


def backend_array(var: xr.Variable) -> BackendArray:
    """The engine's BackendArray under xarray's lazy wrappers of a variable."""
    a: Any = var._data
    for _ in range(20):
        if isinstance(a, BackendArray):
            return a
        a = getattr(a, "array", None)
        if a is None:
            break
    raise AssertionError(f"no BackendArray under {type(var._data).__name__}")


def assert_blocks_align(chunks: tuple[tuple[int, ...], ...], storage: tuple[int, ...]) -> None:
    """Every Dask block but the last along a dimension is a whole number of storage chunks."""
    for dim, (blocks, c) in enumerate(zip(chunks, storage)):
        for b in blocks[:-1]:
            assert b % c == 0, f"dim {dim}: block {b} splits the storage chunk {c}: {blocks}"


def assert_blocks_follow_preferred(
    var: xr.DataArray, preferred: dict[str, int], shape: tuple[int, ...]
) -> None:
    for dim, blocks, n in zip(var.dims, var.chunks, shape):
        p = preferred[dim]
        assert all(b == p for b in blocks[:-1]), (dim, blocks, p)
        assert 0 < blocks[-1] <= p, (dim, blocks, p)
        assert sum(blocks) == n


# ----------------------------------------------------------------------------------------------
# registration
# ----------------------------------------------------------------------------------------------


def test_engine_is_registered() -> None:
    assert ENGINE in xr.backends.list_engines()


def test_guess_can_open_leaves_plain_zarr_paths_to_zarr(stores: xc.Built) -> None:
    from xzaro.backends.xarray import ZaroBackendEntrypoint

    entry = ZaroBackendEntrypoint()
    assert entry.guess_can_open("x.zarr") is False
    assert entry.guess_can_open("x.zarr/") is False
    assert entry.guess_can_open(Path("x.zarr")) is False
    path = stores.path("basic_v3_cons_chunked")
    assert entry.guess_can_open(path) is False
    assert xr.backends.plugins.guess_engine(path) == "zarr"
    # and so an open without an engine is still zarr-python's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_dataset(path)
    assert "compressors" in ds["v_int16"].encoding, ds["v_int16"].encoding


# ----------------------------------------------------------------------------------------------
# equality with engine="zarr"
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(CHUNK_MODES))
@pytest.mark.parametrize("case_id", MATRIX_IDS)
def test_matrix_store_matches_zarr(wrapped_root: Path, case_id: str, mode: str) -> None:
    path = str(xc.wrapped_path(wrapped_root, case_id))
    try:
        expected = oracle(path)
    except Exception as exc:  # pragma: no cover - depends on zarr-python/xarray versions
        pytest.skip(f'engine="zarr" cannot open it: {type(exc).__name__}: {exc}')
    if raises_like_zarr(path, chunks=CHUNK_MODES[mode]):
        return
    ds = open_zaro(path, chunks=CHUNK_MODES[mode])
    if mode != "eager" and ds["v"].ndim:
        assert_dask_backed(ds)
    assert_same(ds, expected, case_id)


@pytest.mark.parametrize("mode", list(CHUNK_MODES))
@pytest.mark.parametrize("name", DATASET_IDS)
def test_dataset_store_matches_zarr(stores: xc.Built, name: str, mode: str) -> None:
    path = stores.path(name)
    if raises_like_zarr(path, chunks=CHUNK_MODES[mode]):
        return
    ds = open_zaro(path, chunks=CHUNK_MODES[mode])
    if mode != "eager":
        assert_dask_backed(ds)
    assert_same(ds, oracle(path), name)


# use_zarr_fill_value_as_mask is not among them: xarray's zarr engine ignores it (its entrypoint
# passes None on), so it is checked on its own terms in test_use_zarr_fill_value_as_mask
DECODE_OPTIONS = [
    {"mask_and_scale": False},
    {"decode_times": False},
    {"decode_times": False, "mask_and_scale": False},
    {"decode_coords": False},
    {"decode_coords": "all"},
    {"concat_characters": False},
    {"decode_timedelta": True},
    {"decode_timedelta": False},
    {"consolidated": False},
    {"drop_variables": ["lat", "v_int16", "t2m", "no_such_variable"]},
]


@pytest.mark.parametrize("options", DECODE_OPTIONS, ids=repr)
@pytest.mark.parametrize(
    "name", ["netcdf_v2", "netcdf_v3", "basic_v2_cons_chunked", "basic_v3_plain_chunked"]
)
def test_decoding_options_match_zarr(stores: xc.Built, name: str, options: dict) -> None:
    path = stores.path(name)
    expected = oracle(path, **options)
    assert_same(open_zaro(path, **options), expected, f"{name} {options}")


def test_use_zarr_fill_value_as_mask(stores: xc.Built) -> None:
    import zarr

    # V2: the zarr fill_value is the CF _FillValue by default (and with True), not with False
    path = stores.path("netcdf_v2")
    raw = zarr.open_array(path, path="t2m", mode="r")
    assert raw.fill_value == -32767
    packed = np.asarray(raw[...])
    assert (packed == -32767).any()
    assert_same(open_zaro(path, use_zarr_fill_value_as_mask=True), oracle(path))
    ds = open_zaro(path, use_zarr_fill_value_as_mask=False).load()
    assert "_FillValue" not in ds["t2m"].encoding
    assert not np.isnan(ds["t2m"].values).any()
    np.testing.assert_allclose(ds["t2m"].values, packed * 0.01 + 273.15, rtol=1e-12)

    # V3: not by default (nor with False), but with True
    path = stores.path("sharded_v3")
    raw = zarr.open_array(path, path="w", mode="r")
    values = np.asarray(raw[...])
    fill = raw.fill_value
    assert (values == fill).any()
    assert_same(open_zaro(path, use_zarr_fill_value_as_mask=False), oracle(path))
    ds = open_zaro(path, use_zarr_fill_value_as_mask=True).load()
    assert ds["w"].dtype.kind == "f"
    np.testing.assert_array_equal(ds["w"].values, np.where(values == fill, np.nan, values))


@pytest.mark.parametrize("name", ["basic_v2_cons_chunked", "basic_v3_plain_whole"])
def test_fixed_string_dtypes_match_zarr(stores: xc.Built, name: str) -> None:
    """Fixed-width unicode and bytes keep engine="zarr"'s exact dtypes."""
    path = stores.path(name)
    expected = oracle(path)
    ds = open_zaro(path).load()
    for v in ("s_fixed", "s_bytes", "label"):
        assert ds[v].dtype == expected[v].dtype, (v, ds[v].dtype, expected[v].dtype)


@pytest.mark.parametrize("name", ["basic_v2_cons_chunked", "basic_v3_plain_whole"])
def test_vlen_strings_are_object_arrays(stores: xc.Built, name: str) -> None:
    """A deliberate difference: variable-length strings read as object arrays of ``str``, as
    with xarray's netCDF engines (zarr-python 3 returns numpy's StringDType); values match."""
    path = stores.path(name)
    expected = oracle(path)
    ds = open_zaro(path).load()
    assert ds["s_object"].dtype == np.dtype(object)
    assert all(isinstance(v, str) for v in ds["s_object"].values.ravel())
    assert ds["s_object"].values.tolist() == expected["s_object"].values.tolist()


@pytest.mark.parametrize("rel", CONFORMANCE_IDS)
def test_conformance_store_matches_zarr(rel: str) -> None:
    path = CONFORMANCE / rel
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    try:
        expected = oracle(str(path))
    except Exception as exc:
        pytest.skip(f'engine="zarr" cannot open it as a Dataset: {type(exc).__name__}')
    assert_same(open_zaro(str(path)), expected, rel)


# ----------------------------------------------------------------------------------------------
# a NetCDF-style dataset, checked on its own terms
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [2, 3])
def test_netcdf_style_decoding(stores: xc.Built, fmt: int) -> None:
    src = xc.netcdf_dataset()
    path = stores.path(f"netcdf_v{fmt}")
    ds = open_zaro(path).load()
    assert set(ds.coords) == {"time", "lat", "lon"}
    assert set(ds.data_vars) == {"t2m", "mask"}
    assert ds["t2m"].dtype == np.float64
    assert ds["time"].dtype.kind == "M"
    np.testing.assert_array_equal(ds["time"].values, src["time"].values)
    np.testing.assert_array_equal(ds["lat"].values, src["lat"].values)
    # packed to 0.01 K: NaN where written, within half a step elsewhere
    np.testing.assert_array_equal(np.isnan(ds["t2m"].values), np.isnan(src["t2m"].values))
    np.testing.assert_allclose(ds["t2m"].values, src["t2m"].values, atol=0.0051)
    assert ds["t2m"].attrs["units"] == "K"
    assert "scale_factor" not in ds["t2m"].attrs
    enc = ds["t2m"].encoding
    assert np.dtype(enc["dtype"]) == np.int16
    assert enc["scale_factor"] == 0.01
    assert enc["add_offset"] == 273.15
    assert enc["_FillValue"] == -32767
    assert ds.attrs == {"Conventions": "CF-1.8", "source": "xarray_cases"}

    raw = open_zaro(path, mask_and_scale=False, decode_times=False).load()
    assert raw["t2m"].dtype == np.int16
    assert raw["t2m"].attrs["scale_factor"] == 0.01
    assert raw["t2m"].attrs["_FillValue"] == -32767
    packed = raw["t2m"].values
    assert (packed[np.isnan(src["t2m"].values)] == -32767).all()
    assert raw["time"].dtype.kind in "iuf"
    assert raw["time"].attrs["units"] == "days since 2000-01-01"
    np.testing.assert_allclose(raw["time"].values, np.arange(5) * 0.25)


# ----------------------------------------------------------------------------------------------
# groups and trees
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", [None, {}], ids=["eager", "dask"])
@pytest.mark.parametrize("name", TREE_IDS)
def test_open_datatree_matches_zarr(stores: xc.Built, name: str, chunks: Any) -> None:
    path = stores.path(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = xr.open_datatree(path, engine="zarr").load()
    tree = xr.open_datatree(path, engine=ENGINE, chunks=chunks)
    assert_tree_same(tree, expected)


@pytest.mark.parametrize("name", TREE_IDS)
def test_open_groups_matches_zarr(stores: xc.Built, name: str) -> None:
    path = stores.path(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = xr.open_groups(path, engine="zarr")
    groups = xr.open_groups(path, engine=ENGINE)
    assert set(groups) == set(expected) == {"/", "/a", "/a/b", "/c", "/empty"}
    for key, ds in groups.items():
        assert_same(ds, expected[key].load(), key)


@pytest.mark.parametrize("group", ["a", "a/b", "/a/b", "c"])
@pytest.mark.parametrize("name", TREE_IDS)
def test_open_dataset_group_matches_zarr(stores: xc.Built, name: str, group: str) -> None:
    path = stores.path(name)
    assert_same(open_zaro(path, group=group), oracle(path, group=group), group)


def test_open_dataset_group_in_matrix_store(xr_matrix_root: Path) -> None:
    """The matrix's nested array (V3, with dimension_names) as a variable of its group."""
    case = zm.CASE_BY_ID["v3_nested_path"]
    path = str(case.store_dir(xr_matrix_root))
    ds = open_zaro(path, group="grp/sub")
    assert_same(ds, oracle(path, group="grp/sub"))
    np.testing.assert_array_equal(ds["arr"].values, case.data)


def test_missing_group_raises(stores: xc.Built) -> None:
    path = stores.path("tree_v3")
    with pytest.raises((KeyError, FileNotFoundError, OSError, ValueError)):
        open_zaro(path, group="no/such/group")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("basic_v3_plain_whole", {"zarr_format": 2}),
        ("basic_v2_plain_whole", {"zarr_format": 3}),
        ("basic_v3_plain_whole", {"consolidated": True}),
    ],
    ids=["v3-as-2", "v2-as-3", "consolidated-missing"],
)
def test_wrong_format_or_missing_consolidation_raises(
    stores: xc.Built, name: str, options: dict
) -> None:
    path = stores.path(name)
    with pytest.raises(Exception):  # noqa: B017 - engine="zarr" raises here too
        open_zarr(path, **options)
    with pytest.raises(Exception):  # noqa: B017
        open_zaro(path, **options)


def test_engine_only_keywords_accepted(stores: xc.Built) -> None:
    path = stores.path("netcdf_v3")
    ds = open_zaro(path, verbose=True, allow_unsafe_codecs=False, read_unit=None)
    assert_same(ds, oracle(path))


@pytest.mark.parametrize("name", ["basic_v2_cons_whole", "basic_v3_plain_whole"])
def test_right_zarr_format_opens(stores: xc.Built, name: str) -> None:
    path = stores.path(name)
    fmt = xc.DATASET_STORES[name].zarr_format
    assert_same(open_zaro(path, zarr_format=fmt), oracle(path))


# ----------------------------------------------------------------------------------------------
# indexing
# ----------------------------------------------------------------------------------------------

INDEXING_STORES = ["basic_v2_cons_chunked", "basic_v3_plain_chunked", "sharded_v3"]


def _indexing_case(stores: xc.Built, name: str) -> tuple[str, xr.Dataset, tuple[str, ...], int]:
    """The store's path, engine="zarr"'s reading of it, its (time, y, x) dimension names and
    the number of time steps."""
    path = stores.path(name)
    expected = oracle(path)
    dims = ("time", "y", "x") if "time" in expected.dims else ("t", "y", "x")
    return path, expected, dims, expected.sizes[dims[0]]


@pytest.mark.parametrize("chunks", [None, {}], ids=["lazy", "dask"])
@pytest.mark.parametrize("name", INDEXING_STORES)
def test_orthogonal_isel(stores: xc.Built, name: str, chunks: Any) -> None:
    path, expected, (t, y, x), nt = _indexing_case(stores, name)
    selections = [
        {t: [0, nt - 1, 2], y: np.array([4, 0, 2]), x: slice(1, None)},
        {t: np.array([nt - 1, nt - 1, 0]), x: [3, 1]},
        {t: -1, y: [1], x: np.array([0, 2, 3])},
        {t: slice(None, None, -2), y: np.array([], dtype=int)},
        {y: np.array([True, False, True, True, False])} if "time" in expected.dims else {y: 3},
    ]
    ds = open_zaro(path, chunks=chunks)
    for sel in selections:
        got = ds.isel(sel)
        assert_same(got, expected.isel(sel), f"isel({sel})")


@pytest.mark.parametrize("chunks", [None, {}], ids=["lazy", "dask"])
@pytest.mark.parametrize("name", INDEXING_STORES)
def test_vectorised_isel(stores: xc.Built, name: str, chunks: Any) -> None:
    path, expected, (t, y, x), nt = _indexing_case(stores, name)
    sel = {
        t: xr.DataArray([0, nt - 1, 2, 2], dims="p"),
        y: xr.DataArray([4, 0, 1, 3], dims="p"),
        x: xr.DataArray([[0, 1], [3, 2]], dims=("q", "r")),
    }
    ds = open_zaro(path, chunks=chunks)
    assert_same(ds.isel(sel), expected.isel(sel), "vectorised")
    # and against plain numpy fancy indexing of the loaded values
    var = "v" if "v" in expected else "v_float64"
    got = ds[var].isel(sel).values
    want = expected[var].values[
        np.array([0, nt - 1, 2, 2])[:, None, None],
        np.array([4, 0, 1, 3])[:, None, None],
        np.array([[0, 1], [3, 2]])[None, :, :],
    ]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["basic_v2_cons_chunked", "basic_v3_plain_whole"])
def test_sel_with_slices(stores: xc.Built, name: str) -> None:
    path = stores.path(name)
    expected = oracle(path)
    ds = open_zaro(path)
    for sel in (
        {"time": slice("2000-01-02", "2000-01-04")},
        {"y": slice(-5.0, 6.0), "x": slice(3, 9)},
        {"time": slice("2000-01-05", None), "y": slice(None, 0.0)},
        {"x": [0, 9], "y": slice(10.0, -10.0)},
    ):
        assert_same(ds.sel(sel), expected.sel(sel), f"sel({sel})")


@pytest.mark.parametrize("name", ["netcdf_v2", "sharded_v3", "basic_v3_plain_chunked"])
def test_backend_array_outer_indexing(stores: xc.Built, name: str) -> None:
    """The lazy variables are BackendArrays that take Basic and Outer indexers directly."""
    import zarr

    path = stores.path(name)
    ds = open_zaro(path, mask_and_scale=False, decode_times=False)
    for vname, var in ds.variables.items():
        if var.ndim < 2 or vname in ds.indexes:
            continue
        arr = backend_array(var)
        raw = np.asarray(zarr.open_array(path, path=vname, mode="r")[...])
        assert tuple(arr.shape) == raw.shape
        assert np.dtype(arr.dtype) == raw.dtype or raw.dtype.kind in "OT"
        ndim = raw.ndim
        basic = (1,) + (slice(None, None, 2),) * (ndim - 1)
        outer = (np.array([2, 0, 1]),) + (np.array([0, 2]),) * (ndim - 1)
        outer_np = np.ix_(*outer)
        np.testing.assert_array_equal(np.asarray(arr[indexing.BasicIndexer(basic)]), raw[basic])
        np.testing.assert_array_equal(np.asarray(arr[indexing.OuterIndexer(outer)]), raw[outer_np])
        mixed = (np.array([1, 1]), slice(1, 3)) + (slice(None),) * (ndim - 2)
        np.testing.assert_array_equal(
            np.asarray(arr[indexing.OuterIndexer(mixed)]), raw[np.ix_([1, 1], [1, 2])]
        )
        got = asyncio.run(arr.async_getitem(indexing.OuterIndexer(outer)))
        np.testing.assert_array_equal(np.asarray(got), raw[outer_np])


# ----------------------------------------------------------------------------------------------
# encoding, read units and Dask chunks
# ----------------------------------------------------------------------------------------------

ENCODING_KEYS = {"chunks", "preferred_chunks", "shards", "dtype", "zarr_format", "codecs"}


@pytest.mark.parametrize(
    "name", ["basic_v2_cons_chunked", "basic_v3_plain_chunked", "netcdf_v2", "sharded_v3"]
)
def test_encoding(stores: xc.Built, name: str) -> None:
    import zarr

    path = stores.path(name)
    fmt = xc.DATASET_STORES[name].zarr_format
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zds = xr.open_dataset(path, engine="zarr")
        group = zarr.open_group(path, mode="r")
    ds = open_zaro(path)
    for vname, var in ds.variables.items():
        enc = var.encoding
        zenc = zds[vname].encoding
        za = group[vname]
        missing = ENCODING_KEYS - set(enc)
        assert not missing, f"{vname}: encoding lacks {missing}: {enc}"
        assert tuple(enc["chunks"]) == tuple(zenc["chunks"]), vname
        assert (tuple(enc["shards"]) if enc["shards"] else None) == (
            tuple(zenc["shards"]) if zenc["shards"] else None
        ), vname
        assert enc["zarr_format"] == fmt
        if za.dtype.kind not in "OT":
            assert np.dtype(enc["dtype"]) == zenc.get("dtype", za.dtype), vname
        codecs = str(enc["codecs"]).lower()
        assert codecs, vname
        for c in zenc.get("compressors") or ():
            cid = getattr(c, "codec_id", None) or type(c).__name__.lower().removesuffix("codec")
            assert cid in codecs, (vname, cid, codecs)
        pref = enc["preferred_chunks"]
        assert set(pref) == set(var.dims), vname
        # the stored object: engine="zarr"'s chunk, or the shard of a sharded array
        stored = zenc["shards"] or zenc["chunks"]
        assert pref == dict(zip(var.dims, stored)), vname


@pytest.mark.parametrize(
    "name", ["basic_v2_cons_chunked", "basic_v3_plain_chunked", "netcdf_v2", "sharded_v3"]
)
def test_encoding_fill_value(stores: xc.Built, name: str) -> None:
    """encoding["fill_value"] is the Zarr array's fill value, in V2 and V3 stores alike."""
    import zarr

    path = stores.path(name)
    group = zarr.open_group(path, mode="r")
    ds = open_zaro(path)
    for vname, var in ds.variables.items():
        assert "fill_value" in var.encoding, f"{vname}: encoding lacks fill_value"
        fill, zfill = var.encoding["fill_value"], group[vname].fill_value
        if isinstance(zfill, float | np.floating) and np.isnan(zfill):
            assert np.isnan(fill), (vname, fill)
        elif zfill is None:
            assert fill is None, (vname, fill)
        else:
            assert fill == zfill, (vname, fill, zfill)


@pytest.mark.parametrize("fmt", [2, 3])
def test_to_zarr_round_trip(stores: xc.Built, fmt: int, tmp_path: Path) -> None:
    """A dataset read by the engine writes back with to_zarr (its encoding does not get in the
    way) and reads back the same. Its codecs are those of its own format, as engine="zarr"
    gives them, so writing the other format with to_zarr needs them dropped (as it does after
    engine="zarr"); ``to_store`` converts them."""
    src = stores.path(f"netcdf_v{fmt}")
    ds = open_zaro(src)
    out = tmp_path / "copy.zarr"
    for other in (2, 3):
        copy = ds.copy()
        if other != fmt:
            for var in copy.variables.values():
                for key in ("compressors", "filters", "serializer"):
                    var.encoding.pop(key, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copy.to_zarr(out, mode="w", zarr_format=other, consolidated=True)
        assert_same(open_zaro(str(out)), oracle(src), f"V{fmt} -> V{other}")
        back = open_zaro(str(out), mask_and_scale=False)
        assert back["t2m"].dtype == np.int16
        ds.zaro.to_store(tmp_path / f"to_store_v{other}.zarr", zarr_format=other)
        assert_same(open_zaro(str(tmp_path / f"to_store_v{other}.zarr")), oracle(src), "to_store")


@pytest.mark.parametrize("fmt", [2, 3])
def test_byte_read_unit_gives_few_whole_chunk_blocks(stores: xc.Built, fmt: int) -> None:
    """1,024 chunks of 1 KiB: chunks={}, chunks="auto" and a read unit of some MiB give few
    blocks of whole stored chunks, each one batched fetch; read_unit="shard" gives one block per
    stored chunk (as engine="zarr")."""
    path = stores.path(f"big_v{fmt}")
    expected = oracle(path)
    assert open_zaro(path, chunks={}, read_unit="shard")["big"].data.npartitions == 1024
    grouped = open_zaro(path, chunks={})["big"]
    assert grouped.data.npartitions == 1
    assert_same(grouped.to_dataset(), expected[["big"]])
    auto = open_zaro(path, chunks="auto")["big"]
    assert auto.data.npartitions <= 1024 // 16
    assert_blocks_align(auto.chunks, xc.BIG_CHUNKS)
    ds = open_zaro(path, chunks={}, read_unit="64MiB")
    big = ds["big"]
    enc = big.encoding
    assert tuple(enc["chunks"]) == xc.BIG_CHUNKS
    nchunks = math.prod(math.ceil(s / c) for s, c in zip(xc.BIG_SHAPE, xc.BIG_CHUNKS))
    assert nchunks == 1024
    assert_blocks_follow_preferred(big, enc["preferred_chunks"], xc.BIG_SHAPE)
    assert_blocks_align(big.chunks, xc.BIG_CHUNKS)
    assert big.data.npartitions <= nchunks // 16
    total = big.sum()
    ntasks = len(dict(total.data.__dask_graph__()))
    assert ntasks < nchunks // 10, f"{ntasks} tasks for {nchunks} storage chunks"
    np.testing.assert_allclose(float(total), float(expected["big"].values.sum()), rtol=1e-10)
    assert_same(ds, expected)


@pytest.mark.parametrize("fmt", [2, 3])
def test_read_unit_chunk_is_one_block_per_storage_chunk(stores: xc.Built, fmt: int) -> None:
    path = stores.path(f"big_v{fmt}")
    ds = open_zaro(path, chunks={}, read_unit="chunk")
    big = ds["big"]
    assert dict(big.encoding["preferred_chunks"]) == dict(zip(big.dims, xc.BIG_CHUNKS))
    assert big.chunks == tuple((c,) * (s // c) for s, c in zip(xc.BIG_SHAPE, xc.BIG_CHUNKS)), (
        big.chunks
    )
    assert big.data.npartitions == 1024
    sub = ds.isel(row=slice(5, 300), col=[3, 200, 17])
    assert_same(sub, oracle(path).isel(row=slice(5, 300), col=[3, 200, 17]))


@pytest.mark.parametrize("fmt", [2, 3])
def test_read_unit_bytes(stores: xc.Built, fmt: int) -> None:
    path = stores.path(f"big_v{fmt}")
    unit = 2**20
    ds = open_zaro(path, chunks={}, read_unit=unit)
    big = ds["big"]
    assert_blocks_follow_preferred(big, big.encoding["preferred_chunks"], xc.BIG_SHAPE)
    assert_blocks_align(big.chunks, xc.BIG_CHUNKS)
    block = tuple(blocks[0] for blocks in big.chunks)
    nbytes = math.prod(block) * big.dtype.itemsize
    assert unit // 4 <= nbytes <= unit, (block, nbytes)
    assert 2 <= big.data.npartitions <= 8, big.chunks
    np.testing.assert_array_equal(big.values, oracle(path)["big"].values)


def test_read_unit_dict(stores: xc.Built) -> None:
    path = stores.path("big_v3")
    only_big = {"keep_variables": ["big"], "chunks": {}}  # variables with a "row" dimension
    ds = open_zaro(path, read_unit={"row": 64}, **only_big)
    assert set(ds.variables) == {"big", "row"}
    big = ds["big"]
    assert big.encoding["preferred_chunks"]["row"] == 64
    assert big.chunks[0] == (64,) * 16
    assert_blocks_align(big.chunks, xc.BIG_CHUNKS)
    np.testing.assert_array_equal(big.values, oracle(path)["big"].values)
    # sizes that are not whole storage chunks are rounded up to them, never splitting one
    big = open_zaro(path, read_unit={"row": 50}, **only_big)["big"]
    row = big.encoding["preferred_chunks"]["row"]
    assert row >= 50 and row % xc.BIG_CHUNKS[0] == 0, row
    assert_blocks_align(big.chunks, xc.BIG_CHUNKS)


def test_read_unit_dict_for_a_whole_dataset(stores: xc.Built) -> None:
    """Like ``chunks=``, a mapping applies to the dimensions each variable has."""
    path = stores.path("big_v3")
    ds = open_zaro(path, chunks={}, read_unit={"row": 64, "col": 32})
    assert ds["big"].encoding["preferred_chunks"] == {"row": 64, "col": 32}
    assert ds["small"].encoding["preferred_chunks"] == {"col": 32}
    assert ds["big"].chunks == ((64,) * 16, (32,) * 8)
    assert_same(ds, oracle(path))


def test_sharded_read_units(stores: xc.Built) -> None:
    path = stores.path("sharded_v3")
    expected = oracle(path)
    shape = expected["v"].shape
    layouts = {"v": ((2, 3, 5), (8, 6, 10)), "w": ((4, 4, 5), (8, 12, 10))}

    for read_unit in (None, "shard"):  # the default is the shard, which fits array.chunk-size
        ds = open_zaro(path, chunks={}, read_unit=read_unit)
        for name, (chunks, shards) in layouts.items():
            var = ds[name]
            assert tuple(var.encoding["chunks"]) == chunks
            assert tuple(var.encoding["shards"]) == shards
            pref = var.encoding["preferred_chunks"]
            assert pref == dict(zip(var.dims, shards))
            assert_blocks_follow_preferred(var, pref, shape)
            assert var.chunks == tuple((s,) * (n // s) for s, n in zip(shards, shape))
        assert ds["plain"].encoding["shards"] is None
        assert_same(ds, expected)

    ds = open_zaro(path, chunks={}, read_unit="chunk")
    for name, (chunks, _) in layouts.items():
        assert ds[name].encoding["preferred_chunks"] == dict(zip(ds[name].dims, chunks))
    assert ds["v"].data.npartitions == 8 * 4 * 2
    assert_same(ds, expected)


# ----------------------------------------------------------------------------------------------
# keep_variables / drop_variables
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "keep", "coords"),
    [
        ("basic_v3_cons_chunked", ["v_int16"], {"time", "y", "x", "lat", "lon", "label"}),
        ("basic_v2_plain_whole", ["v_int16"], {"time", "y", "x", "lat", "lon", "label"}),
        ("basic_v2_cons_chunked", ["s_fixed"], {"y"}),
        ("basic_v3_plain_chunked", ["s_fixed", "scalar"], {"y"}),
        ("netcdf_v2", ["mask"], {"lat", "lon"}),
        ("netcdf_v3", ["t2m"], {"time", "lat", "lon"}),
        ("sharded_v3", ["plain"], {"y"}),
    ],
)
def test_keep_variables(stores: xc.Built, name: str, keep: list[str], coords: set[str]) -> None:
    path = stores.path(name)
    ds = open_zaro(path, keep_variables=keep)
    assert set(ds.data_vars) == set(keep)
    assert set(ds.coords) == coords
    expected = oracle(path)[keep]
    assert_same(ds, expected.drop_vars(set(expected.coords) - coords))


def _break_codec(store: Path, var: str) -> None:
    """Give ``var`` an unknown codec, in its own metadata and in the consolidated metadata."""
    for doc in (store / var / "zarr.json", store / "zarr.json"):
        meta = json.loads(doc.read_text())
        node = meta if doc.parent.name == var else None
        if node is None:
            node = (meta.get("consolidated_metadata") or {}).get("metadata", {}).get(var)
        if node is not None:
            node["codecs"] = [*node["codecs"], {"name": "no_such_codec", "configuration": {}}]
        doc.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "name",
    [
        "basic_v3_cons_chunked",
        "basic_v3_plain_whole",
    ],
)
def test_keep_variables_opens_nothing_else(stores: xc.Built, name: str, tmp_path: Path) -> None:
    """A variable that keep_variables leaves out is never opened: a broken one does not matter."""
    store = tmp_path / "broken.zarr"
    shutil.copytree(stores.path(name), store)
    _break_codec(store, "v_uint8")
    with pytest.raises(Exception):  # noqa: B017 - the broken variable cannot be read
        open_zaro(str(store)).load()
    expected = oracle(stores.path(name))
    ds = open_zaro(str(store), keep_variables=["v_int16"]).load()
    assert_same(ds, expected[["v_int16"]])


@pytest.mark.parametrize("name", ["basic_v3_cons_chunked", "netcdf_v2"])
def test_drop_variables(stores: xc.Built, name: str) -> None:
    path = stores.path(name)
    drop = ["lat", "v_uint8", "mask", "time"]
    ds = open_zaro(path, drop_variables=drop)
    assert not set(drop) & set(ds.variables)
    assert_same(ds, oracle(path, drop_variables=drop))


# ----------------------------------------------------------------------------------------------
# pickling, other processes, distributed, open_mfdataset, load_async
# ----------------------------------------------------------------------------------------------

_CHILD = (
    "import pickle, sys\n"
    "objs = pickle.load(sys.stdin.buffer)\n"
    "sys.stdout.buffer.write(pickle.dumps([o.compute() for o in objs]))\n"
)


_RESOURCE_MODULES = ("fsspec", "s3fs", "gcsfs", "aiohttp", "concurrent", "_thread", "asyncio")


def assert_no_resources_pickled(blob: bytes) -> None:
    """No file system, pool, lock or event loop travels in a pickle of lazy data."""
    names = {
        str(arg)
        for op, arg, _ in pickletools.genops(blob)
        if op.name in ("GLOBAL", "SHORT_BINUNICODE", "BINUNICODE", "UNICODE") and arg
    }
    modules = {n.split(" ")[0] for n in names}
    bad = sorted(m for m in modules for r in _RESOURCE_MODULES if m == r or m.startswith(r + "."))
    assert not bad, f"the pickle holds objects of {bad}"


def compute_in_subprocess(*objs: Any, cwd: Path) -> list[Any]:
    """Pickle ``objs``, compute them in a fresh Python process, return the results."""
    blob = pickle.dumps(list(objs))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=blob,
        capture_output=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return pickle.loads(proc.stdout)


@pytest.mark.parametrize(
    ("name", "chunks"), [("netcdf_v3", None), ("sharded_v3", {})], ids=["lazy", "dask"]
)
def test_pickle_is_small_and_computes_elsewhere(
    stores: xc.Built, name: str, chunks: Any, tmp_path: Path
) -> None:
    path = stores.path(name)
    ds = open_zaro(path, chunks=chunks)
    blob = pickle.dumps(ds)
    assert len(blob) < 50_000, f"pickle of {len(ds.variables)} variables is {len(blob)} bytes"
    assert_no_resources_pickled(blob)
    expected = oracle(path)
    assert_same(pickle.loads(blob), expected, "unpickled here")
    # a lazily indexed selection travels too
    sel = {"y": [3, 0], "x": slice(1, None, 2)}
    sub = open_zaro(path, chunks=chunks).isel(sel)
    got, got_sub = compute_in_subprocess(ds, sub, cwd=tmp_path)
    assert_same(got, expected, "computed in another process")
    assert_same(got_sub, expected.isel(sel), "selection computed in another process")


def test_backend_array_pickle_is_small(stores: xc.Built) -> None:
    ds = open_zaro(stores.path("big_v3"))
    arr = backend_array(ds["big"].variable)
    assert len(pickle.dumps(arr)) < 10_000
    assert_no_resources_pickled(pickle.dumps(arr))
    again = pickle.loads(pickle.dumps(arr))
    key = indexing.OuterIndexer((np.array([1000, 3]), slice(250, None)))
    np.testing.assert_array_equal(np.asarray(again[key]), np.asarray(arr[key]))


@pytest.mark.timeout(180)
def test_distributed_local_cluster(stores: xc.Built, dask_client: Any) -> None:
    path = stores.path("big_v3")
    expected = oracle(path)["big"].values
    ds = open_zaro(path, chunks={}, read_unit=2**18)
    assert ds["big"].data.npartitions >= 4
    total = float(ds["big"].sum().compute())
    col_mean = ds["big"].mean("row").compute()
    sel = ds["big"].isel(row=[1000, 2, 513], col=slice(7, 70)).compute()
    assert len(dask_client.scheduler_info()["workers"]) == 2
    np.testing.assert_allclose(total, expected.sum(), rtol=1e-10)
    np.testing.assert_allclose(col_mean.values, expected.mean(axis=0), rtol=1e-10)
    np.testing.assert_array_equal(sel.values, expected[[1000, 2, 513], 7:70])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"combine": "by_coords", "data_vars": "all"},
        {"combine": "nested", "concat_dim": "time", "data_vars": "all"},
        {"combine": "nested", "concat_dim": "time", "parallel": True, "data_vars": "all"},
    ],
    ids=["by_coords", "nested", "parallel"],
)
def test_open_mfdataset_matches_zarr(stores: xc.Built, kwargs: dict) -> None:
    paths = [stores.path(f"mf_{i}") for i in range(len(xc.MF_STEPS))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = xr.open_mfdataset(paths, engine="zarr", **kwargs).load()
    ds = xr.open_mfdataset(paths, engine=ENGINE, **kwargs)
    assert_dask_backed(ds)
    assert ds.sizes["time"] == sum(xc.MF_STEPS)
    assert_same(ds, expected)


@pytest.mark.parametrize("name", ["basic_v3_cons_chunked", "netcdf_v2", "sharded_v3"])
def test_load_async(stores: xc.Built, name: str) -> None:
    path = stores.path(name)
    expected = open_zaro(path).load()
    ds = open_zaro(path)
    for var in ds.variables.values():
        if not var._in_memory:
            arr = backend_array(var)
            assert type(arr).async_getitem is not BackendArray.async_getitem
    if not xarray_encodes_per_zarr_format() and any(v.dtype == bool for v in ds.variables.values()):
        pytest.skip("xarray < 2026.9 stores booleans as int8 and cannot load those asynchronously")

    async def main() -> xr.Dataset:
        return await ds.load_async()

    loaded = asyncio.run(main())
    assert all(v._in_memory for v in loaded.variables.values())
    assert_same(loaded, expected)
    assert_same(loaded, oracle(path))

    sel = {"y": [3, 0, 1], "x": slice(None, None, 2)}
    sub = open_zaro(path).isel(sel)
    assert_same(asyncio.run(_load_async(sub)), expected.isel(sel), "async selection")


async def _load_async(ds: xr.Dataset) -> xr.Dataset:
    return await ds.load_async()


# ----------------------------------------------------------------------------------------------
# remote stores
# ----------------------------------------------------------------------------------------------

REMOTE_STORES = ["netcdf_v2", "basic_v3_plain_whole", "sharded_v3"]


def _upload(fs: fsspec.AbstractFileSystem, src: Path, dest: str) -> None:
    for p in sorted(src.rglob("*")):
        if p.is_file():
            fs.pipe_file(f"{dest}/{p.relative_to(src).as_posix()}", p.read_bytes())


@pytest.fixture(scope="module", params=["s3", "http"])
def remote(request: pytest.FixtureRequest, stores: xc.Built) -> Iterator[tuple[str, dict]]:
    """``(base_url, storage_options)`` of a backend holding REMOTE_STORES."""
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = server["make_bucket"]("xr-engine")
        options = server["storage_options"]
        fs = fsspec.filesystem("s3", **options)
        for name in REMOTE_STORES:
            _upload(fs, Path(stores.path(name)), f"{bucket}/{name}.zarr")
        yield f"s3://{bucket}", options
    else:
        base_url, directory = request.getfixturevalue("http_server")
        for name in REMOTE_STORES:
            dest = Path(directory) / "xr-engine" / f"{name}.zarr"
            shutil.copytree(stores.path(name), dest, dirs_exist_ok=True)
        yield f"{base_url}/xr-engine", {}


@pytest.mark.parametrize("name", REMOTE_STORES)
def test_remote_store_matches_local(
    remote: tuple[str, dict], stores: xc.Built, name: str, tmp_path: Path
) -> None:
    base, options = remote
    url = f"{base}/{name}.zarr"
    expected = oracle(stores.path(name))
    ds = open_zaro(url, storage_options=options, chunks={})
    assert_same(ds, expected, url)
    sel = {"y": [3, 1], "x": slice(1, 3)}
    lazy = open_zaro(url, storage_options=options)
    assert_same(lazy.isel(sel), expected.isel(sel), url)
    if name == "netcdf_v2":  # a remote dataset pickles and computes in another process too
        lazy = open_zaro(url, storage_options=options)
        assert_no_resources_pickled(pickle.dumps(lazy))
        (got,) = compute_in_subprocess(lazy, cwd=tmp_path)
        assert_same(got, expected, f"{url} in another process")
