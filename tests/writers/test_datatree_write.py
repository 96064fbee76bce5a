"""Writing a ``DataTree``: ``dt.zaro.to_store`` against xarray's own ``DataTree.to_zarr``.

Every store is read back by zarr-python (``zarr.open_group``) and, for round trips, by
``xr.open_datatree`` with both ``engine="zaro"`` and ``engine="zarr"``. A counter in the Dask
source proves that work shared by several nodes is computed once for the whole tree.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from dask.delayed import Delayed

import xzaro
from xzaro.errors import MetadataError, NodeExistsError, ZaroError
from xzaro.paths import InvalidNameError
from xzaro.stores import MemoryStore

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

FORMATS = [2, 3]


class Counter:
    """A Dask source that counts how often it is computed."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def array(self, shape: tuple[int, ...]) -> da.Array:
        """A Dask array built from one delayed call: computing it increments ``calls``."""

        def make() -> np.ndarray:
            with self._lock:
                self.calls += 1
            return np.arange(np.prod(shape), dtype="float64").reshape(shape)

        source = da.from_delayed(dask.delayed(make)(), shape=shape, dtype="float64")
        return source.rechunk(tuple(max(1, n // 2) for n in shape))


def three_levels(source: Any) -> xr.DataTree:
    """``/`` (with coordinates), ``/c`` and ``/c/g``, every data variable derived from
    ``source`` (6 x 8), with attributes on every node."""
    x = np.arange(8) * 10
    y = np.arange(6)
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(
                {"a": (("y", "x"), source)}, coords={"x": x, "y": y}, attrs={"level": "root"}
            ),
            "/c": xr.Dataset(
                {"b": (("y", "x"), source * 2), "s": ((), 1.5)}, attrs={"level": "child"}
            ),
            "/c/g": xr.Dataset(
                {"w": (("y", "x"), source + 1)},
                coords={"z": ("z", np.array([1, 2, 3], dtype="int16"))},
                attrs={"level": "grandchild"},
            ),
            "/e": xr.Dataset(attrs={"level": "empty"}),
        }
    )


def zarr_groups(path: Path) -> dict[str, dict[str, Any]]:
    """Every group zarr-python finds: its attributes and its arrays' values, by group path."""
    out: dict[str, dict[str, Any]] = {}

    def walk(group: zarr.Group, name: str) -> None:
        arrays = {key: arr[...] for key, arr in group.arrays()}
        out[name] = {"attrs": dict(group.attrs), "arrays": arrays}
        for key, child in group.groups():
            walk(child, f"{name}/{key}".lstrip("/"))

    walk(zarr.open_group(str(path), mode="r"), "")
    return out


def assert_groups_equal(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        got, want = actual[name], expected[name]
        assert got["arrays"].keys() == want["arrays"].keys(), name
        for key, value in want["arrays"].items():
            np.testing.assert_array_equal(got["arrays"][key], value, err_msg=f"{name}/{key}")
        assert got["attrs"].keys() == want["attrs"].keys(), name
        for key, value in want["attrs"].items():
            if key != "_FillValue":  # the same value in another spelling (NaN vs "NaN")
                assert got["attrs"][key] == value, f"{name}: {key}"


def assert_round_trip(path: Path, expected: xr.DataTree) -> None:
    for engine in ("zaro", "zarr"):
        with xr.open_datatree(str(path), engine=engine) as got:
            xr.testing.assert_identical(got.load(), expected)


# ----------------------------------------------------------------------------------------------
# one computation for the whole tree
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_three_levels_shared_source_computed_once(tmp_path: Path, zarr_format: int) -> None:
    counter = Counter()
    tree = three_levels(counter.array((6, 8)))
    path = tmp_path / "t.zarr"
    written = tree.zaro.to_store(path, zarr_format=zarr_format, chunks=(3, 4))
    assert counter.calls == 1
    assert isinstance(written, int) and written > 0

    group = zarr.open_group(str(path), mode="r")
    assert group.metadata.zarr_format == zarr_format
    expected = np.arange(48.0).reshape(6, 8)
    np.testing.assert_array_equal(group["a"][...], expected)
    np.testing.assert_array_equal(group["c/b"][...], expected * 2)
    np.testing.assert_array_equal(group["c/g/w"][...], expected + 1)
    assert group["c/s"][...] == 1.5
    assert group["c/g/w"].chunks == (3, 4)
    assert dict(group.attrs)["level"] == "root"
    assert dict(group["c"].attrs)["level"] == "child"
    assert dict(group["e"].attrs)["level"] == "empty"
    # coordinates are written where they are defined, not again in the children
    assert "x" in group and "x" not in group["c"] and "x" not in group["c/g"]
    assert_round_trip(path, tree.compute())


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_compute_false_writes_the_template_and_one_delayed_computing_once(
    tmp_path: Path, zarr_format: int
) -> None:
    counter = Counter()
    tree = three_levels(counter.array((6, 8)))
    path = tmp_path / "t.zarr"
    task = tree.zaro.to_store(path, zarr_format=zarr_format, compute=False)
    assert isinstance(task, Delayed)
    assert counter.calls == 0
    # as DataTree.to_zarr: the metadata of every node (and the in-memory data) is there at once
    template = zarr.open_group(str(path), mode="r")
    assert template["c/g/w"].shape == (6, 8)
    assert template["c/s"][...] == 1.5
    np.testing.assert_array_equal(template["x"][...], tree["x"].values)
    assert template["c/g/w"].nchunks_initialized == 0
    expected = three_levels(np.arange(48.0).reshape(6, 8))  # the same values, in memory
    with xr.open_datatree(str(path), engine="zarr") as in_progress:
        assert not in_progress.load().equals(expected)
    assert task.compute() > 0
    assert counter.calls == 1
    assert_round_trip(path, expected)


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_template_filled_with_mode_r_plus(tmp_path: Path, zarr_format: int) -> None:
    """xarray's ``test_rplus_mode``: a template written with ``compute=False`` (never
    computed) is filled by writing the tree again with ``mode="r+"``."""
    tree = three_levels(da.from_array(np.arange(48.0).reshape(6, 8), chunks=(3, 4)))
    path = tmp_path / "t.zarr"
    tree.zaro.to_store(path, zarr_format=zarr_format, compute=False)
    tree.zaro.to_store(path, mode="r+")
    assert zarr.open_group(str(path), mode="r").metadata.zarr_format == zarr_format
    assert_round_trip(path, tree.compute())


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("compute", [True, False])
def test_no_redundant_computation_of_blockwise_work(
    tmp_path: Path, ndim: int, compute: bool
) -> None:
    """xarray's ``test_to_zarr_no_redundant_computation``: a blockwise step used by two nodes
    (one stores it, the other a step built on it) runs once per block."""
    calls: list[int] = []

    def expensive(block: np.ndarray) -> np.ndarray:
        calls.append(1)
        return block + 1

    shape = (4,) * ndim
    base = da.random.random(shape, chunks=2)
    derived1 = base.map_blocks(expensive, meta=np.array((), np.float64))
    derived2 = derived1 + 1
    dims = ("x", "y")[:ndim]
    tree = xr.DataTree.from_dict(
        {
            "group1": xr.Dataset({"derived": (dims, derived1)}),
            "group2": xr.Dataset({"derived": (dims, derived2)}),
        }
    )
    result = tree.zaro.to_store(tmp_path / "t.zarr", compute=compute)
    if not compute:
        result.compute()
    assert len(calls) == derived1.npartitions
    group = zarr.open_group(str(tmp_path / "t.zarr"), mode="r")
    np.testing.assert_array_equal(group["group2/derived"][...], group["group1/derived"][...] + 1)


def test_no_redundant_computation_zero_dimensional(tmp_path: Path) -> None:
    calls: list[int] = []

    def expensive(x: np.ndarray) -> np.ndarray:
        calls.append(1)
        return x + 1

    derived1 = da.random.random((), chunks=()).map_blocks(expensive, meta=np.array((), float))
    tree = xr.DataTree.from_dict(
        {
            "group1": xr.Dataset({"derived": derived1}),
            "group2": xr.Dataset({"derived": derived1 + 1}),
        }
    )
    tree.zaro.to_store(tmp_path / "t.zarr")
    assert len(calls) == 1


# ----------------------------------------------------------------------------------------------
# where the tree goes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_sub_tree_written_at_store_root_as_xarray_does(tmp_path: Path, zarr_format: int) -> None:
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    sub = tree["c"]
    ours, theirs = tmp_path / "xzaro.zarr", tmp_path / "xarray.zarr"
    sub.zaro.to_store(ours, zarr_format=zarr_format)
    sub.to_zarr(str(theirs), zarr_format=zarr_format)

    got = zarr_groups(ours)
    assert set(got) == {"", "g"}
    assert set(got[""]["arrays"]) == {"b", "s", "x", "y"}  # x, y inherited from the parent
    assert_groups_equal(got, zarr_groups(theirs))

    expected = sub.copy()
    expected.name = None
    assert_round_trip(ours, expected)


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_tree_written_at_group(tmp_path: Path, zarr_format: int) -> None:
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    path = tmp_path / "t.zarr"
    tree["c"].zaro.to_store(path, group="out/here", zarr_format=zarr_format)
    got = zarr_groups(path)
    assert set(got) == {"", "out", "out/here", "out/here/g"}
    assert got["out/here"]["attrs"]["level"] == "child"
    assert got["out/here/g"]["attrs"]["level"] == "grandchild"
    np.testing.assert_array_equal(
        got["out/here/g"]["arrays"]["w"], np.arange(48.0).reshape(6, 8) + 1
    )
    with xr.open_datatree(str(path), engine="zarr", group="out/here") as back:
        np.testing.assert_array_equal(back["g/w"].values, got["out/here/g"]["arrays"]["w"])


# ----------------------------------------------------------------------------------------------
# per-node encoding
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_per_node_encoding(tmp_path: Path, zarr_format: int) -> None:
    tree = three_levels(da.from_array(np.arange(48.0).reshape(6, 8), chunks=(6, 8)))
    path = tmp_path / "t.zarr"
    encoding = {
        "/": {"a": {"chunks": (2, 8)}},
        "/c": {"b": {"chunks": (6, 2)}},
        "/c/g": {"w": {"chunks": (3, 3)}},
    }
    tree.zaro.to_store(path, zarr_format=zarr_format, encoding=encoding)
    group = zarr.open_group(str(path), mode="r")
    assert group["a"].chunks == (2, 8)
    assert group["c/b"].chunks == (6, 2)
    assert group["c/g/w"].chunks == (3, 3)
    np.testing.assert_array_equal(group["c/g/w"][...], np.arange(48.0).reshape(6, 8) + 1)
    assert_round_trip(path, tree.compute())


def test_sub_tree_encoding_is_keyed_by_node_path(tmp_path: Path) -> None:
    """As ``DataTree.to_zarr``: a sub-tree's encoding keys are its nodes' ``path``."""
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    encoding = {"/c": {"b": {"chunks": (3, 8)}}, "/c/g": {"w": {"chunks": (2, 2)}}}
    tree["c"].zaro.to_store(tmp_path / "t.zarr", encoding=encoding)
    group = zarr.open_group(str(tmp_path / "t.zarr"), mode="r")
    assert group["b"].chunks == (3, 8)
    assert group["g/w"].chunks == (2, 2)


@pytest.mark.parametrize(
    "encoding, match",
    [
        ({"/not/a/group": {"v": {}}}, "unexpected encoding group"),
        ({"/g": {"w": {"chunks": (2, 2)}}}, "unexpected encoding group"),  # relative, not path
        ({"/c/g": {"nope": {"chunks": (2,)}}}, "not in it"),
        ({"/c/g": {"x": {"chunks": (2,)}}}, "not in it"),  # inherited, not written there
        ({"/c": ["b"]}, "must map"),
    ],
)
@pytest.mark.parametrize("mode", ["w-", "w"])
def test_bad_encoding_refused_before_anything_is_written(
    tmp_path: Path, encoding: dict, match: str, mode: str
) -> None:
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    path = tmp_path / "t.zarr"
    old = xr.Dataset({"old": ("t", np.arange(3))})
    if mode == "w":
        old.zaro.to_store(path)
    before = sorted(p.relative_to(path) for p in path.rglob("*")) if path.exists() else None
    with pytest.raises(MetadataError, match=match) as info:
        tree.zaro.to_store(path, encoding=encoding, mode=mode)
    assert isinstance(info.value, ValueError)  # what DataTree.to_zarr raises
    assert info.value.url is not None and info.value.key is not None
    after = sorted(p.relative_to(path) for p in path.rglob("*")) if path.exists() else None
    assert after == before
    if mode == "w":
        assert set(zarr.open_group(str(path), mode="r").array_keys()) == {"old"}


@pytest.mark.parametrize(
    "make, error",
    [
        (  # an encoding key prepare_store refuses, in the deepest node
            lambda tree: (tree, {"/c/g": {"w": {"chunkz": (2, 2)}}}),
            ValueError,
        ),
        (  # a node name Zarr reserves
            lambda tree: (
                xr.DataTree.from_dict({"/": tree["/"].to_dataset(), "/zarr.json": xr.Dataset()}),
                None,
            ),
            InvalidNameError,
        ),
    ],
)
def test_mode_w_removes_nothing_unless_every_node_can_be_written(
    tmp_path: Path, make: Callable[[xr.DataTree], tuple[xr.DataTree, Any]], error: type
) -> None:
    path = tmp_path / "t.zarr"
    old = three_levels(np.arange(48.0).reshape(6, 8))
    old.zaro.to_store(path)
    before = {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    tree, encoding = make(three_levels(np.arange(48.0).reshape(6, 8)))
    with pytest.raises(error) as info:
        tree.zaro.to_store(path, mode="w", encoding=encoding)
    if isinstance(info.value, ZaroError):
        assert info.value.url == str(path) or str(path) in str(info.value.url)
    after = {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert after == before
    assert_round_trip(path, old)


# ----------------------------------------------------------------------------------------------
# inherited coordinates
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", FORMATS)
@pytest.mark.parametrize("write_inherited_coords", [False, True])
def test_write_inherited_coords_matches_xarray(
    tmp_path: Path, zarr_format: int, write_inherited_coords: bool
) -> None:
    tree = three_levels(da.from_array(np.arange(48.0).reshape(6, 8), chunks=(3, 4)))
    ours, theirs = tmp_path / "xzaro.zarr", tmp_path / "xarray.zarr"
    kwargs: dict[str, Any] = dict(
        zarr_format=zarr_format, write_inherited_coords=write_inherited_coords
    )
    tree.zaro.to_store(ours, **kwargs)
    tree.to_zarr(str(theirs), **kwargs)
    got = zarr_groups(ours)
    assert_groups_equal(got, zarr_groups(theirs))
    assert ("x" in got["c/g"]["arrays"]) is write_inherited_coords
    assert ("x" in got["c"]["arrays"]) is write_inherited_coords
    assert "z" in got["c/g"]["arrays"] and "z" not in got[""]["arrays"]
    assert_round_trip(ours, tree.compute())

    # a child group opened on its own has the coordinates only if they were written there
    expected = tree["c"].copy(inherit=write_inherited_coords).compute()
    expected.name = None
    for engine in ("zaro", "zarr"):
        with xr.open_datatree(str(ours), group="c", engine=engine) as child:
            xr.testing.assert_identical(child.load(), expected)


# ----------------------------------------------------------------------------------------------
# modes, consolidated metadata, progress
# ----------------------------------------------------------------------------------------------


def test_mode_w_minus_refuses_existing(tmp_path: Path) -> None:
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    tree.zaro.to_store(tmp_path / "t.zarr")
    with pytest.raises(NodeExistsError) as info:
        tree.zaro.to_store(tmp_path / "t.zarr")
    assert isinstance(info.value, FileExistsError)  # what DataTree.to_zarr raises


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_mode_w_replaces_the_old_store_once(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "t.zarr"
    old = xr.DataTree.from_dict(
        {"/": xr.Dataset({"gone": ("t", np.arange(4))}), "/old/deep": xr.Dataset({"v": 1})}
    )
    old.zaro.to_store(path, zarr_format=5 - zarr_format)
    counter = Counter()
    tree = three_levels(counter.array((6, 8)))
    tree.zaro.to_store(path, mode="w", zarr_format=zarr_format)
    got = zarr_groups(path)
    assert set(got) == {"", "c", "c/g", "e"}
    assert "gone" not in got[""]["arrays"]
    assert zarr.open_group(str(path), mode="r").metadata.zarr_format == zarr_format
    other_format = {2: "zarr.json", 3: ".zgroup"}[zarr_format]
    assert not list(path.rglob(other_format))
    assert counter.calls == 1
    assert_round_trip(path, tree.compute())


def test_mode_a_adds_a_node_in_the_stored_format(tmp_path: Path) -> None:
    path = tmp_path / "t.zarr"
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    tree.zaro.to_store(path, zarr_format=2)
    more = tree.copy()
    more["new"] = xr.DataTree(xr.Dataset({"n": ("k", np.arange(5))}))
    more.zaro.to_store(path, mode="a")
    group = zarr.open_group(str(path), mode="r")
    assert group["new"].metadata.zarr_format == 2
    np.testing.assert_array_equal(group["new/n"][...], np.arange(5))
    assert_round_trip(path, more)


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_mode_a_append_dim_grows_the_nodes_that_have_it(tmp_path: Path, zarr_format: int) -> None:
    def tree(start: int, n: int, const: float) -> xr.DataTree:
        t = np.arange(start, start + n)
        return xr.DataTree.from_dict(
            {
                "/": xr.Dataset(coords={"x": [10, 20]}, attrs={"title": "grows"}),
                "/c": xr.Dataset(
                    {"b": (("t", "x"), np.stack([t, -t], axis=1).astype("float64"))},
                    coords={"t": t},
                ),
                "/k": xr.Dataset({"const": ("z", np.full(3, const))}),
            }
        )

    path = tmp_path / "t.zarr"
    tree(0, 4, 1.0).zaro.to_store(path, zarr_format=zarr_format, chunks=2)
    assert tree(4, 3, 2.0).zaro.to_store(path, append_dim="t") > 0
    group = zarr.open_group(str(path), mode="r")
    np.testing.assert_array_equal(group["c/t"][...], np.arange(7))
    np.testing.assert_array_equal(group["c/b"][:, 1], -np.arange(7.0))
    np.testing.assert_array_equal(group["k/const"][...], np.full(3, 2.0))  # written again
    assert group.attrs["title"] == "grows"
    expected = xr.DataTree.from_dict(
        {
            "/": tree(0, 1, 2.0)["/"].to_dataset(),
            "/c": xr.concat(
                [tree(0, 4, 0)["c"].to_dataset(), tree(4, 3, 0)["c"].to_dataset()], "t"
            ),
            "/k": tree(0, 1, 2.0)["k"].to_dataset(),
        }
    )
    assert_round_trip(path, expected)
    with pytest.raises(MetadataError, match="append_dim") as info:
        tree(7, 1, 3.0).zaro.to_store(path, append_dim="T")
    assert info.value.url is not None
    np.testing.assert_array_equal(zarr.open_group(str(path))["c/t"][...], np.arange(7))


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_consolidated_once_for_the_whole_tree(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "t.zarr"
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    tree.zaro.to_store(path, zarr_format=zarr_format)
    if zarr_format == 2:
        assert [p.relative_to(path) for p in path.rglob(".zmetadata")] == [Path(".zmetadata")]
        keys = json.loads((path / ".zmetadata").read_text())["metadata"]
        assert {"c/g/w/.zarray", "c/.zattrs", "e/.zgroup", ".zattrs"} <= set(keys)
        assert keys[".zattrs"]["level"] == "root"
    else:
        docs = {
            str(p.relative_to(path)): json.loads(p.read_text()) for p in path.rglob("zarr.json")
        }
        inline = [name for name, doc in docs.items() if "consolidated_metadata" in doc]
        assert inline == ["zarr.json"]
        nodes = docs["zarr.json"]["consolidated_metadata"]["metadata"]
        assert {"a", "c", "c/b", "c/g", "c/g/w", "e"} <= set(nodes)
    consolidated = zarr.open_consolidated(str(path), mode="r", zarr_format=zarr_format)
    np.testing.assert_array_equal(consolidated["c/g/w"][...], np.arange(48.0).reshape(6, 8) + 1)
    assert dict(consolidated["c/g"].attrs)["level"] == "grandchild"


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_not_consolidated(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "t.zarr"
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    tree.zaro.to_store(path, zarr_format=zarr_format, consolidated=False)
    assert not list(path.rglob(".zmetadata"))
    assert not any("consolidated_metadata" in p.read_text() for p in path.rglob("zarr.json"))
    assert_round_trip(path, tree)


def test_keywords_pass_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.zarr"
    tree = three_levels(da.from_array(np.arange(48.0).reshape(6, 8), chunks=(3, 8)))
    tree.zaro.to_store(path, chunks=(3, 2), shards=(6, 4), compressor=None, progress=True)
    out = capsys.readouterr()
    assert "100%" in out.out + out.err
    group = zarr.open_group(str(path), mode="r")
    for name in ("a", "c/b", "c/g/w"):
        assert group[name].chunks == (3, 2)
        assert group[name].shards == (6, 4)
        assert group[name].compressors == ()
    assert_round_trip(path, tree.compute())


def test_in_memory_store() -> None:
    store = MemoryStore()
    tree = three_levels(np.arange(48.0).reshape(6, 8))
    tree.zaro.to_store(store)
    np.testing.assert_array_equal(
        xzaro.open_array(store, "c/g/w")[...], np.arange(48.0).reshape(6, 8) + 1
    )


def test_empty_tree(tmp_path: Path) -> None:
    assert xr.DataTree().zaro.to_store(tmp_path / "t.zarr") == 0
    assert zarr_groups(tmp_path / "t.zarr") == {"": {"attrs": {}, "arrays": {}}}
