"""xzaro reads every store of the zarr-python matrix exactly as zarr-python does.

Values are compared bit for bit (floats and complex through their unsigned-integer views, so NaN
payloads and -0.0 count); strings and bytes element by element. Metadata (dtype, shape, chunks,
fill value, attributes, dimension names) is compared with zarr-python's reading of the same store.
A few stores are also read by tensorstore as a second oracle.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
import zarr_matrix as zm
from helpers import TEXT_KINDS, assert_same, bits, seeded_rng

import xzaro
from xzaro.errors import NodeNotFoundError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CASE_IDS = [c.id for c in zm.CASES]

# Known xzaro bugs, reported to the lead: (reason, tests of the case that fail). Each is a strict
# xfail, so a fix shows up as XPASS(strict) -> remove the entry then.
_READS = frozenset(
    {
        "test_values",
        "test_read_region",
        "test_iter_chunks_and_read_chunk",
        "test_random_selections",
    }
)
_BUG_DATETIME = "datetime64/timedelta64 + zstd: memoryview of an M8/m8 out buffer raises ValueError"
_BUG_SHUFFLE = "V2 shuffle filter is classed bytes->bytes: 'codecs are out of order' MetadataError"
_BUG_VLEN_BYTES_FILL = "vlen-bytes fill value \"\" parsed as str '' instead of b''"
_BUG_ELLIPSIS = "a[0, ..., 0]-style selections give a numpy scalar; numpy gives a 0-d array"
KNOWN_BUGS: dict[str, tuple[str, frozenset[str]]] = {}


def cases_for(test: str, ids: list[str] | None = None) -> list[Any]:
    """The case ids as pytest params, known bugs of ``test`` marked as strict xfails."""
    out = []
    for cid in CASE_IDS if ids is None else ids:
        bug = KNOWN_BUGS.get(cid)
        if bug is not None and test in bug[1]:
            out.append(pytest.param(cid, marks=pytest.mark.xfail(strict=True, reason=bug[0])))
        else:
            out.append(cid)
    return out


@pytest.fixture(scope="session")
def matrix_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zm.build_all(tmp_path_factory.mktemp("matrix"))


# ----------------------------------------------------------------------------------------------
# comparison helpers
# ----------------------------------------------------------------------------------------------


def is_text(dtype: np.dtype) -> bool:
    return dtype.kind in TEXT_KINDS


def assert_fill(actual: Any, expected: Any, dtype: np.dtype) -> None:
    if expected is None:
        assert actual is None, f"fill_value {actual!r}, expected None"
        return
    assert actual is not None, f"fill_value None, expected {expected!r}"
    if is_text(dtype):
        assert actual == expected
        return
    assert isinstance(actual, np.generic), f"fill_value {actual!r} is not a numpy scalar"
    if dtype.kind in "SU":  # a numpy bytes_/str_ scalar's dtype is as long as its value
        assert actual.dtype.kind == dtype.kind, actual.dtype
    else:
        assert np.dtype(actual.dtype).newbyteorder("=") == dtype.newbyteorder("="), actual.dtype
    a = np.array(actual, dtype=dtype).reshape(())
    e = np.array(expected, dtype=dtype).reshape(())
    assert bits(a).tobytes() == bits(e).tobytes(), f"fill_value {actual!r} != {expected!r}"


@dataclass
class Oracle:
    values: np.ndarray
    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: tuple[int, ...] | None
    shards: tuple[int, ...] | None
    fill_value: Any
    attrs: dict[str, Any]
    dimension_names: tuple[str | None, ...] | None


def _zarr_oracle(case: zm.Case, root: Path) -> Oracle:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = zarr.open_array(str(case.store_dir(root)), path=case.path, mode="r")
        values = z[...]
    attrs = dict(z.attrs.asdict())
    if z.metadata.zarr_format == 2:
        dims = attrs.pop("_ARRAY_DIMENSIONS", None)
        dims = tuple(dims) if dims is not None else None
    else:
        dims = z.metadata.dimension_names
        dims = tuple(dims) if dims is not None else None
    return Oracle(
        values=np.asarray(values),
        dtype=z.dtype if not isinstance(z.dtype, np.dtypes.StringDType) else np.dtype(object),
        shape=tuple(z.shape),
        chunks=tuple(z.chunks),
        shards=tuple(z.shards) if z.shards is not None else None,
        fill_value=z.fill_value,
        attrs=attrs,
        dimension_names=dims,
    )


_ORACLES: dict[tuple[str, Path], Oracle] = {}


def oracle(case: zm.Case, root: Path) -> Oracle:
    key = (case.id, root)
    if key not in _ORACLES:
        if case.zarr_readable:
            _ORACLES[key] = _zarr_oracle(case, root)
        else:
            assert case.expected is not None
            e = case.expected
            _ORACLES[key] = Oracle(
                values=e,
                dtype=case.expected_dtype or e.dtype,
                shape=e.shape,
                chunks=None,
                shards=None,
                fill_value=case.expected_fill,
                attrs=case.attrs,
                dimension_names=case.dimension_names,
            )
    return _ORACLES[key]


@functools.cache
def _open_cached(store: str, path: str) -> Any:
    return xzaro.open_array(store, path)


def open_x(case: zm.Case, root: Path) -> Any:
    return _open_cached(str(case.store_dir(root)), case.path)


def chunk_grid(shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(math.ceil(s / c) for s, c in zip(shape, chunks))


# ----------------------------------------------------------------------------------------------
# per-case tests
# ----------------------------------------------------------------------------------------------


def test_matrix_is_large_enough() -> None:
    assert len(zm.CASES) >= 80
    assert {c.zarr_format for c in zm.CASES} == {2, 3}


@pytest.mark.parametrize("case_id", cases_for("test_values"))
def test_values(matrix_root: Path, case_id: str) -> None:
    case = zm.CASE_BY_ID[case_id]
    o = oracle(case, matrix_root)
    a = open_x(case, matrix_root)
    out = np.asarray(a[...])
    if not is_text(o.dtype):
        assert out.dtype == a.dtype, "a[...] dtype differs from a.dtype"
    assert_same(out, o.values, case_id, any_byteorder=True)
    # values the case wrote and that were neither dropped nor lossy-encoded are in the store
    if (
        case.data is not None
        and case.region is None
        and not case.delete_chunks
        and case.edit is None
        and "lossy" not in case.tags
        and not is_text(o.dtype)
        and o.dtype.kind not in "mM"
    ):
        assert_same(
            out, case.data.astype(o.dtype), f"{case_id} vs written data", any_byteorder=True
        )


@pytest.mark.parametrize("case_id", cases_for("test_metadata"))
def test_metadata(matrix_root: Path, case_id: str) -> None:
    case = zm.CASE_BY_ID[case_id]
    o = oracle(case, matrix_root)
    a = open_x(case, matrix_root)
    if is_text(o.dtype):
        assert is_text(a.dtype), a.dtype
    else:
        assert a.dtype == o.dtype, (a.dtype, o.dtype)
    assert tuple(a.shape) == o.shape
    assert a.ndim == len(o.shape)
    assert a.size == math.prod(o.shape)
    shards = tuple(a.shards) if a.shards is not None else None
    if case.expected_chunks is not None:
        assert (tuple(a.chunks), shards) == (case.expected_chunks, case.expected_shards)
    elif o.chunks is not None:
        assert (tuple(a.chunks), shards) == (o.chunks, o.shards)
    assert_fill(a.fill_value, o.fill_value, a.dtype)
    assert dict(a.attrs) == o.attrs
    dims = a.dimension_names
    assert (tuple(dims) if dims is not None else None) == o.dimension_names
    ci = a.chunk_info()
    grid = chunk_grid(o.shape, tuple(a.chunks))
    assert tuple(ci.chunk_grid_shape) == grid
    assert ci.nchunks == math.prod(grid)
    if shards is not None:
        assert tuple(ci.shard_grid_shape) == chunk_grid(o.shape, shards)
    assert a.meta.zarr_format == case.zarr_format
    assert a.meta.node_type == "array"
    assert tuple(a.meta.shape) == o.shape


def _regions(shape: tuple[int, ...], seed: str) -> list[tuple[tuple[int, ...], tuple]]:
    rng = seeded_rng(seed)
    out: list[tuple[tuple[int, ...], tuple]] = [
        (tuple(0 for _ in shape), tuple(None for _ in shape)),
        (tuple(0 for _ in shape), tuple(shape)),
    ]
    for _ in range(3):
        start = tuple(int(rng.integers(0, s + 1)) for s in shape)
        count = tuple(
            None if rng.random() < 0.25 else int(rng.integers(0, s - st + 1))
            for s, st in zip(shape, start)
        )
        out.append((start, count))
    return out


@pytest.mark.parametrize("case_id", cases_for("test_read_region"))
def test_read_region(matrix_root: Path, case_id: str) -> None:
    case = zm.CASE_BY_ID[case_id]
    o = oracle(case, matrix_root)
    a = open_x(case, matrix_root)
    for start, count in _regions(o.shape, case_id):
        sel = tuple(slice(st, None if c is None else st + c) for st, c in zip(start, count))
        got = a.read_region(start, count)
        assert_same(
            got, o.values[sel], f"{case_id} read_region({start}, {count})", any_byteorder=True
        )


@pytest.mark.parametrize("case_id", cases_for("test_iter_chunks_and_read_chunk"))
def test_iter_chunks_and_read_chunk(matrix_root: Path, case_id: str) -> None:
    case = zm.CASE_BY_ID[case_id]
    o = oracle(case, matrix_root)
    a = open_x(case, matrix_root)
    chunks = tuple(a.chunks)
    grid = chunk_grid(o.shape, chunks)
    out = np.empty(o.shape, dtype=object if is_text(o.dtype) else o.values.dtype)
    seen = []
    for idx, arr in a.iter_chunks():
        idx = tuple(idx)
        seen.append(idx)
        sel = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, chunks, o.shape))
        assert_same(arr, o.values[sel], f"{case_id} chunk {idx}", any_byteorder=True)
        out[sel] = arr
    assert sorted(seen) == sorted(itertools.product(*map(range, grid)))
    assert_same(out, o.values, f"{case_id} assembled from iter_chunks", any_byteorder=True)
    # read_chunk on the first and the last chunk (edge chunks are trimmed)
    for idx in {tuple(0 for _ in grid), tuple(g - 1 for g in grid)}:
        if any(g == 0 for g in grid):
            continue
        sel = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, chunks, o.shape))
        assert_same(
            a.read_chunk(idx), o.values[sel], f"{case_id} read_chunk({idx})", any_byteorder=True
        )
    if grid:
        with pytest.raises(IndexError):
            a.read_chunk(grid)


def random_selection(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple:
    """A random numpy basic selection: ints (negative too), stepped slices, Ellipsis."""
    sel: list[Any] = []
    for s in shape:
        r = rng.random()
        if r < 0.25 and s > 0:
            i = int(rng.integers(-s, s))
            sel.append(i)
        elif r < 0.35:
            sel.append(slice(None))
        else:
            start = int(rng.integers(-s - 2, s + 3)) if rng.random() < 0.8 else None
            stop = int(rng.integers(-s - 2, s + 3)) if rng.random() < 0.8 else None
            step = int(rng.choice([1, 1, 2, 3, -1, -2]))
            sel.append(slice(start, stop, step))
    if shape and rng.random() < 0.3:
        k = int(rng.integers(0, len(sel) + 1))
        # replace a run of trailing or leading entries with an Ellipsis
        sel = [*sel[:k], Ellipsis] if rng.random() < 0.5 else [Ellipsis, *sel[k:]]
    elif shape and rng.random() < 0.2:
        sel = sel[: int(rng.integers(0, len(sel) + 1))]
    return tuple(sel)


@pytest.mark.parametrize("case_id", cases_for("test_random_selections"))
def test_random_selections(matrix_root: Path, case_id: str) -> None:
    case = zm.CASE_BY_ID[case_id]
    o = oracle(case, matrix_root)
    a = open_x(case, matrix_root)
    rng = seeded_rng("sel" + case_id)
    for _ in range(6):
        sel = random_selection(rng, o.shape)
        expected = o.values[sel]
        got = a[sel]
        assert_same(np.asarray(got), np.asarray(expected), f"{case_id}[{sel}]", any_byteorder=True)


# ----------------------------------------------------------------------------------------------
# specific properties
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", sorted(zm.NAN_PAYLOAD_CASES))
def test_nan_payload_fillbits(matrix_root: Path, case_id: str) -> None:
    case = zm.CASE_BY_ID[case_id]
    payload = zm.NAN_PAYLOAD_CASES[case_id]
    a = open_x(case, matrix_root)
    u = f"u{a.dtype.itemsize}"
    assert int(np.array(a.fill_value, dtype=a.dtype).view(u)) == payload
    out = a[...]
    missing = np.ones(out.shape, dtype=bool)
    missing[case.region] = False
    assert missing.any()
    assert set(out[missing].view(u).tolist()) == {payload}


@pytest.mark.parametrize("case_id", [c.id for c in zm.CASES if c.delete_chunks or c.region])
def test_missing_chunks_read_as_fill(matrix_root: Path, case_id: str) -> None:
    """Independently of zarr-python: the regions never written hold the fill value."""
    case = zm.CASE_BY_ID[case_id]
    a = open_x(case, matrix_root)
    out = a[...]
    fill = a.fill_value
    if fill is None:  # V2 null: zeros / empty strings
        fill = "" if is_text(a.dtype) else np.zeros((), dtype=a.dtype)
    written = np.zeros(out.shape, dtype=bool)
    if case.region is not None:
        written[case.region] = True
    else:
        written[...] = True
    grid_chunks = tuple(a.shards or a.chunks)
    for key in case.delete_chunks:
        parts = key.removeprefix("c/").removeprefix("c.").replace("/", ".").split(".")
        idx = tuple(int(p) for p in parts)
        sel = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, grid_chunks))
        written[sel] = False
    assert (~written).any()
    if is_text(a.dtype):
        assert all(v == fill for v in out[~written].tolist())
    else:
        exp = np.full(int((~written).sum()), fill, dtype=a.dtype)
        assert bits(out[~written]).tobytes() == bits(exp).tobytes()


SCALAR_CASES = ["v2_shape_0d", "v3_shape_0d_bool", "v2_f4", "v3_shape_5d", "v2_filt_categorize_U"]


@pytest.mark.parametrize(
    "case_id", cases_for("test_scalar_and_zero_dim_results_follow_numpy", SCALAR_CASES)
)
def test_scalar_and_zero_dim_results_follow_numpy(matrix_root: Path, case_id: str) -> None:
    """Like numpy: an Ellipsis keeps a 0-d array; integers alone on every axis give a scalar."""
    case = zm.CASE_BY_ID[case_id]
    o = oracle(case, matrix_root)
    a = open_x(case, matrix_root)
    nd = len(o.shape)
    sels: list[tuple] = [(...,), (), (0,) * nd, (*(0,) * nd, ...), (..., *(-1,) * nd)]
    for sel in sels:
        expected = o.values[sel]
        got = a[sel]
        assert isinstance(got, np.ndarray) == isinstance(expected, np.ndarray), (
            f"{case_id}[{sel}] gave {type(got).__name__}, numpy gives {type(expected).__name__}"
        )
        assert_same(np.asarray(got), np.asarray(expected), f"{case_id}[{sel}]", any_byteorder=True)


def test_v2_array_dimensions_not_in_attrs(matrix_root: Path) -> None:
    case = zm.CASE_BY_ID["v2_f4"]
    a = open_x(case, matrix_root)
    assert "_ARRAY_DIMENSIONS" not in a.attrs
    assert tuple(a.dimension_names) == ("y", "x")
    assert a.attrs["units"] == "m"


def test_meta_to_json_round_trips_through_json(matrix_root: Path) -> None:
    import json

    for cid in ["v2_f4", "v3_shard_end_crc", "v3_fill_nan_payload_f4", "v2_fill_null_i4"]:
        a = open_x(zm.CASE_BY_ID[cid], matrix_root)
        doc = a.meta.to_json()
        text = doc if isinstance(doc, str) else json.dumps(doc, allow_nan=False)
        assert json.loads(text)


def test_missing_array_raises(matrix_root: Path, tmp_path: Path) -> None:
    with pytest.raises(NodeNotFoundError):
        xzaro.open_array(str(tmp_path / "nothing-here.zarr"))
    case = zm.CASE_BY_ID["v2_nested_path"]
    with pytest.raises(NodeNotFoundError):
        xzaro.open_array(str(case.store_dir(matrix_root)), "grp/sub/nope")


# ----------------------------------------------------------------------------------------------
# groups
# ----------------------------------------------------------------------------------------------

GROUP_IDS = [g.id for g in zm.GROUP_CASES]
GROUP_BY_ID = {g.id: g for g in zm.GROUP_CASES}


def _zarr_group(case: zm.GroupCase, root: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zarr.open_group(
            str(case.store_dir(root)),
            mode="r",
            use_consolidated=True if case.consolidated else None,
        )


def _walk_compare(xg: Any, zg: Any, prefix: str, seen: list[str]) -> None:
    assert dict(xg.attrs) == dict(zg.attrs.asdict()), prefix
    z_members = dict(zg.members())
    x_members = dict(xg.members())
    assert sorted(x_members) == sorted(z_members), prefix
    assert sorted(dict(xg.arrays())) == sorted(
        k for k, v in z_members.items() if isinstance(v, zarr.Array)
    )
    assert sorted(dict(xg.groups())) == sorted(
        k for k, v in z_members.items() if isinstance(v, zarr.Group)
    )
    for name, zv in z_members.items():
        full = f"{prefix}/{name}" if prefix else name
        assert name in xg
        xv = x_members[name]
        seen.append(full)
        if isinstance(zv, zarr.Array):
            assert isinstance(xv, xzaro.ZaroArray), full
            _compare_array(xv, zv, full)
            via_item = xg[name]
            assert_same(via_item[...], np.asarray(xv[...]), full, any_byteorder=True)
        else:
            assert isinstance(xv, xzaro.ZaroGroup), full
            assert xv.path.strip("/").endswith(full), (xv.path, full)
            _walk_compare(xv, zv, full, seen)


def _compare_array(xa: Any, za: Any, what: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(za[...])
    assert_same(xa[...], expected, what, any_byteorder=True)
    attrs = dict(za.attrs.asdict())
    if za.metadata.zarr_format == 2:
        dims = attrs.pop("_ARRAY_DIMENSIONS", None)
    else:
        dims = za.metadata.dimension_names
    assert dict(xa.attrs) == attrs, what
    got = xa.dimension_names
    assert (tuple(got) if got is not None else None) == (
        tuple(dims) if dims is not None else None
    ), what
    assert_fill(xa.fill_value, za.fill_value, xa.dtype)


@pytest.mark.parametrize("consolidated", [None, True], ids=["auto", "consolidated"])
@pytest.mark.parametrize("gid", GROUP_IDS)
def test_group_tree(matrix_root: Path, gid: str, consolidated: bool | None) -> None:
    case = GROUP_BY_ID[gid]
    if consolidated and not case.consolidated:
        pytest.skip("store has no consolidated metadata")
    zg = _zarr_group(case, matrix_root)
    xg = xzaro.open_group(str(case.store_dir(matrix_root)), consolidated=consolidated)
    assert xg.meta.zarr_format == case.zarr_format
    assert xg.meta.node_type == "group"
    seen: list[str] = []
    _walk_compare(xg, zg, "", seen)
    expected_arrays = set(zm.GROUP_ARRAYS)
    assert expected_arrays <= set(seen)
    assert {"g1", "g1/g2", "g1/g2/g3", "empty", "other"} <= set(seen)
    # names with "/" reach deep nodes directly
    for apath, (data, _kw) in zm.GROUP_ARRAYS.items():
        xa = xg[apath]
        assert isinstance(xa, xzaro.ZaroArray)
        exp = data.astype(object) if data.dtype.kind in "OT" else data
        assert_same(xa[...], exp, apath, any_byteorder=True)
        assert apath in xg
    deep = xg["g1/g2/g3"]
    assert isinstance(deep, xzaro.ZaroGroup)
    assert dict(deep.attrs) == zm.GROUP_ATTRS["g1/g2/g3"]
    assert isinstance(deep["deep"], xzaro.ZaroArray)
    assert "nope" not in xg
    assert "g1/nope" not in xg
    with pytest.raises((NodeNotFoundError, KeyError)):
        xg["g1/nope"]


@pytest.mark.parametrize("gid", GROUP_IDS)
def test_group_arrays_open_by_path(matrix_root: Path, gid: str) -> None:
    case = GROUP_BY_ID[gid]
    if case.drop_node_metadata:
        pytest.skip("opening below the root of a consolidated-only store is not specified")
    store = str(case.store_dir(matrix_root))
    consolidated = True if case.consolidated else None
    for apath, (data, _kw) in zm.GROUP_ARRAYS.items():
        a = xzaro.open_array(store, apath, consolidated=consolidated)
        exp = data.astype(object) if data.dtype.kind in "OT" else data
        assert_same(a[...], exp, apath, any_byteorder=True)
    sub = xzaro.open_group(store, "g1/g2", consolidated=consolidated)
    assert dict(sub.attrs) == zm.GROUP_ATTRS["g1/g2"]
    assert sorted(sub.members()) == ["a2", "g3"]


# ----------------------------------------------------------------------------------------------
# tensorstore as a second oracle
# ----------------------------------------------------------------------------------------------

TS_IDS = [c.id for c in zm.CASES if c.tensorstore]


@pytest.mark.parametrize("case_id", TS_IDS)
def test_tensorstore_agrees(matrix_root: Path, case_id: str) -> None:
    ts = pytest.importorskip("tensorstore")
    case = zm.CASE_BY_ID[case_id]
    spec = {
        "driver": "zarr" if case.zarr_format == 2 else "zarr3",
        "kvstore": {"driver": "file", "path": str(case.array_dir(matrix_root)) + "/"},
        "open": True,
    }
    t = ts.open(spec, read=True).result()
    expected = np.asarray(t.read().result())
    got = open_x(case, matrix_root)[...]
    assert_same(got, expected.astype(expected.dtype.newbyteorder("=")), case_id, any_byteorder=True)


def test_tensorstore_covers_enough() -> None:
    assert len(TS_IDS) >= 15
