"""Icechunk repositories as stores: reads of any version, writes committed once, virtual chunks
through the target allow-list, pickling, and the fork/merge pattern on a Dask cluster.

zarr-python (through Icechunk's own store) is the oracle; the package never imports it.
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

icechunk = pytest.importorskip("icechunk")
xr = pytest.importorskip("xarray")

from xzaro.errors import NodeExistsError, NodeNotFoundError, StoreError  # noqa: E402
from xzaro.meta import GroupMeta, ZaroMeta  # noqa: E402
from xzaro.stores import Store, SupportsListDir  # noqa: E402
from xzaro.stores.icechunk import (  # noqa: E402
    IcechunkStore,
    icechunk_store_for,
    open_icechunk,
    parse_url,
)
from xzaro.writers.store_array import write_metadata  # noqa: E402
from xzaro.writers.writer import writer_for  # noqa: E402

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]

GROUP = b'{"zarr_format":3,"node_type":"group","attributes":{}}'
ARRAY = {
    "zarr_format": 3,
    "node_type": "array",
    "shape": [8, 6],
    "data_type": "int32",
    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 3]}},
    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
    "fill_value": 0,
    "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
    "attributes": {},
    "dimension_names": ["x", "y"],
}
BLOB = bytes(range(256)) * 4


def _dataset(offset: float = 0.0) -> Any:
    values = np.arange(48, dtype="float64").reshape(8, 6) + offset
    return xr.Dataset(
        {"t": (("x", "y"), values, {"units": "K"})},
        coords={"x": np.arange(8), "y": np.arange(6) * 10},
        attrs={"title": "icechunk"},
    )


def _write(store: IcechunkStore, ds: Any, **kwargs: Any) -> None:
    """to_store into a transactional store: metadata first (the template), then the data."""
    ds.zaro.to_store(store, compute=False, **kwargs).compute()


@pytest.fixture
def repo() -> Any:
    return icechunk.Repository.create(icechunk.in_memory_storage())


def _takes_empty_chunks() -> bool:
    """Whether this Icechunk stores a zero-length chunk (1.x does; 2.x refuses one)."""
    store = open_icechunk(icechunk.Repository.create(icechunk.in_memory_storage()), mode="a")
    store.set("zarr.json", GROUP)
    write_metadata(store, "a", ZaroMeta.from_json(dict(ARRAY, shape=[800, 6])))
    try:
        store.set("a/c/0/0", b"")
    except StoreError as e:
        assert e.key == "a/c/0/0" and "zero-length" in e.message
        return False
    return True


#: The smallest chunk this Icechunk stores: empty where it takes one, else one byte.
SMALLEST = b"" if _takes_empty_chunks() else b"\0"


@pytest.fixture
def blob_store(repo: Any) -> IcechunkStore:
    """A writable store holding a group, an array ``a``, chunk ``a/c/0/0`` = BLOB and chunk
    ``a/c/0/1`` = SMALLEST."""
    store = open_icechunk(repo, mode="a")
    store.set("zarr.json", GROUP)
    write_metadata(store, "a", ZaroMeta.from_json(dict(ARRAY, shape=[800, 6])))
    store.set("a/c/0/0", BLOB)
    store.set("a/c/0/1", SMALLEST)
    return store


# --- the store protocol ------------------------------------------------------------------------


def test_is_a_store_with_list_dir(blob_store: IcechunkStore) -> None:
    assert isinstance(blob_store, Store)
    assert isinstance(blob_store, SupportsListDir)
    assert blob_store.url == "icechunk://<session>?branch=main"


def test_reads_and_missing_keys(blob_store: IcechunkStore) -> None:
    store = blob_store
    assert store.get("zarr.json") == GROUP
    assert store.get("a/c/0/0") == BLOB
    assert store.get("a/c/0/1") == SMALLEST
    # missing: absent chunks, absent nodes, chunks of absent arrays, keys Icechunk cannot hold
    missing = ["a/c/1/1", "b/zarr.json", "b/c/0/0", ".zarray", ".zmetadata", "a/.zattrs"]
    missing += ["a/.xzaro-append.json", "zarr.json/below"]
    assert store.get_many(["a/c/0/0", *missing]) == [BLOB] + [None] * len(missing)
    assert store.get_many([]) == []
    assert store.exists("a/c/0/0") and store.exists("a/c/0/1")
    assert not store.exists("a/c/1/1") and not store.exists(".zgroup")
    assert store.get_size("a/c/0/0") == len(BLOB)
    assert store.get_size("a/c/0/1") == len(SMALLEST)
    assert store.get_size("a/c/1/1") is None


def test_ranges_are_exact(blob_store: IcechunkStore) -> None:
    requests = [
        ("a/c/0/0", 0, 10),
        ("a/c/0/0", 100, 50),
        ("a/c/0/0", 1000, None),
        ("a/c/0/0", 1000, 100),
        ("a/c/0/0", 0, None),
        ("a/c/0/0", -16, None),
        ("a/c/0/0", -16, 3),
        ("a/c/0/0", -5000, None),
        ("a/c/0/0", 5000, 10),
        ("a/c/0/0", 5000, None),
        ("a/c/0/0", 10, 0),
        ("zarr.json", 5, 1000),  # a metadata document past its end
        ("zarr.json", -1000, None),
        ("a/c/0/1", 0, 4),
        ("a/c/1/1", 0, 10),
        (".zarray", -4, None),
    ]
    expected = [
        BLOB[:10],
        BLOB[100:150],
        BLOB[1000:],
        BLOB[1000:],
        BLOB,
        BLOB[-16:],
        BLOB[-16:],
        BLOB,
        b"",
        b"",
        b"",
        GROUP[5:],
        GROUP,
        SMALLEST,
        None,
        None,
    ]
    assert blob_store.get_ranges(requests) == expected
    assert blob_store.get_ranges([]) == []
    with pytest.raises(ValueError, match="length"):
        blob_store.get_ranges([("a/c/0/0", 0, -1)])


def test_listing(blob_store: IcechunkStore) -> None:
    store = blob_store
    assert store.list() == ["a/c/0/0", "a/c/0/1", "a/zarr.json", "zarr.json"]
    assert store.list("a") == ["a/c/0/0", "a/c/0/1", "a/zarr.json"]
    assert store.list("a/c/0") == ["a/c/0/0", "a/c/0/1"]  # not a node: listed and filtered
    assert store.list("nope") == []
    assert store.list_dir() == ["a", "zarr.json"]
    assert store.list_dir("a") == ["c", "zarr.json"]
    assert store.list_dir("nope") == []


def test_writes_and_deletes(blob_store: IcechunkStore) -> None:
    store = blob_store
    store.set_many([("a/c/1/0", bytearray(b"one")), ("a/c/1/1", memoryview(b"two"))])
    assert store.get_many(["a/c/1/0", "a/c/1/1"]) == [b"one", b"two"]
    store.delete("a/c/1/0")
    store.delete("a/c/1/0")  # missing: no error
    store.delete(".zarray")  # cannot exist: no error
    assert store.get("a/c/1/0") is None
    store.delete("a/zarr.json")  # a node's document removes the node
    assert store.list() == ["zarr.json"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (".zarray", "Zarr V3"),
        ("a/0.0", "Zarr V3"),
        ("a/.xzaro-append.json", "Zarr V3"),
        ("nope/c/0/0", "metadata first"),
        ("a/c/999/0", "invalid chunk index"),
    ],
)
def test_refused_writes_name_the_key(blob_store: IcechunkStore, key: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        blob_store.set(key, b"x")
    assert info.value.key == key
    assert info.value.url == blob_store.url


@pytest.mark.parametrize("key", ["..", "../x", "a/../../x", "./x", "%2e%2e/x"])
def test_keys_leaving_the_root(blob_store: IcechunkStore, key: str) -> None:
    for call in (
        lambda: blob_store.get(key),
        lambda: blob_store.get_ranges([(key, 0, 4)]),
        lambda: blob_store.set(key, b"x"),
        lambda: blob_store.delete(key),
        lambda: blob_store.list(key),
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert info.value.key == key


def test_read_only_session_refuses_writes(repo: Any, blob_store: IcechunkStore) -> None:
    blob_store.commit("blob")
    store = open_icechunk(repo)
    assert store.read_only and store.get("a/c/0/0") == BLOB
    with pytest.raises(StoreError, match="read-only") as info:
        store.set("a/c/1/1", b"x")
    assert info.value.key == "a/c/1/1"
    # after its commit the writing store is read-only too, on the new snapshot
    assert blob_store.read_only and "?snapshot=" in blob_store.url
    assert open_icechunk(repo, tag=None).url == "icechunk://<session>?branch=main"


# --- xzaro and zarr-python, both ways ----------------------------------------------------------


def test_xzaro_writes_zarr_python_reads(repo: Any) -> None:
    store = open_icechunk(repo, mode="a")
    ds = _dataset()
    _write(store, ds.chunk({"x": 4}), encoding={"t": {"chunks": (4, 3)}})
    assert open_icechunk(repo).list() == []  # nothing on the branch before the commit
    store.commit("xzaro wrote")

    back = xr.open_dataset(open_icechunk(repo), engine="zaro")
    xr.testing.assert_identical(back.load(), ds)
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(repo.readonly_session("main").store, mode="r")
    np.testing.assert_array_equal(group["t"][:], ds.t.values)
    np.testing.assert_array_equal(group["y"][:], ds.y.values)
    assert group.attrs["title"] == "icechunk"
    oracle = xr.open_zarr(repo.readonly_session("main").store, consolidated=False)
    xr.testing.assert_identical(oracle.load(), ds)


def test_zarr_python_writes_xzaro_reads(repo: Any) -> None:
    session = repo.writable_session("main")
    ds = _dataset(5.0)
    ds.to_zarr(session.store, zarr_format=3, consolidated=False)
    session.commit("zarr-python wrote")
    back = xr.open_dataset(open_icechunk(repo), engine="zaro")
    xr.testing.assert_identical(back.load(), ds)
    # the objects users hold: a session, and Icechunk's own store
    for obj in (repo.readonly_session("main"), repo.readonly_session("main").store):
        store = icechunk_store_for(obj)
        assert isinstance(store, IcechunkStore)
        np.testing.assert_array_equal(xr.open_dataset(store, engine="zaro").t.values, ds.t.values)
    assert icechunk_store_for("not icechunk") is None


def test_sharded_write_and_read(repo: Any) -> None:
    store = open_icechunk(repo, mode="a")
    ds = _dataset()
    _write(store, ds.chunk({"x": 8}), encoding={"t": {"chunks": (2, 3), "shards": (8, 6)}})
    store.commit("sharded")
    zarr = pytest.importorskip("zarr")
    oracle = zarr.open_array(repo.readonly_session("main").store, path="t", mode="r")
    assert oracle.shards == (8, 6)
    np.testing.assert_array_equal(oracle[:], ds.t.values)
    back = xr.open_dataset(open_icechunk(repo), engine="zaro")
    np.testing.assert_array_equal(back.t.isel(x=slice(1, 3)).values, ds.t.values[1:3])


# --- versions --------------------------------------------------------------------------------


def test_branches_tags_and_snapshots(repo: Any) -> None:
    store = open_icechunk(repo, mode="a")
    _write(store, _dataset(0.0))
    first = store.commit("first")
    repo.create_tag("v1", first)
    repo.create_branch("dev", first)
    store = open_icechunk(repo, mode="a")
    _write(store, _dataset(100.0), mode="w")
    second = store.commit("second")
    dev = open_icechunk(repo, branch="dev", mode="r+")
    _write(dev, _dataset(7.0), mode="w")
    dev.commit("on dev")

    def t0(**version: Any) -> float:
        store = open_icechunk(repo, **version)
        return float(xr.open_dataset(store, engine="zaro").t.values[0, 0])

    assert t0() == 100.0
    assert t0(branch="main") == 100.0
    assert t0(tag="v1") == 0.0
    assert t0(snapshot_id=first) == 0.0
    assert t0(snapshot_id=second) == 100.0
    assert t0(branch="dev") == 7.0
    with pytest.raises(NodeNotFoundError):
        open_icechunk(repo, tag="nope")
    with pytest.raises(ValueError, match="one of"):
        open_icechunk(repo, tag="v1", branch="main")
    with pytest.raises(ValueError, match="read-only"):
        open_icechunk(repo, tag="v1", mode="a")


def test_failed_write_leaves_the_branch_unchanged(repo: Any) -> None:
    store = open_icechunk(repo, mode="a")
    _write(store, _dataset(0.0))
    store.commit("good")

    def explode(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block_info[0]["chunk-location"][0] == 1:
            raise RuntimeError("the source failed midway")
        return block + 1000

    bad = _dataset(0.0).chunk({"x": 4})
    bad["t"] = bad.t.copy(data=bad.t.data.map_blocks(explode, dtype="float64"))
    store = open_icechunk(repo, mode="a")
    with pytest.raises(RuntimeError, match="midway"):
        _write(store, bad, mode="w")
    assert store.session.has_uncommitted_changes  # the first block went into the session...
    back = xr.open_dataset(open_icechunk(repo), engine="zaro")
    xr.testing.assert_identical(back.load(), _dataset(0.0))  # ...the branch never saw it


# --- opening by location and URL ---------------------------------------------------------------


def test_local_repository_and_url(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    with pytest.raises(NodeNotFoundError):
        open_icechunk(path)
    store = open_icechunk(path, mode="w-")
    _write(store, _dataset(3.0))
    snapshot = store.commit("local")
    with pytest.raises(NodeExistsError):
        open_icechunk(path, mode="w-")
    for url in (f"icechunk://{path}", f"icechunk://{path}?branch=main"):
        assert xr.open_dataset(open_icechunk(url), engine="zaro").t.values[0, 0] == 3.0
    by_snapshot = open_icechunk(f"icechunk://file://{path}?snapshot={snapshot}")
    assert by_snapshot.get("t/zarr.json") is not None
    with pytest.raises(ValueError, match="no storage_options"):
        open_icechunk(path, storage_options={"key": "k"})


def test_parse_url() -> None:
    assert parse_url("icechunk:///data/repo") == ("/data/repo", {})
    assert parse_url("icechunk://s3://b/p?tag=v1") == ("s3://b/p", {"tag": "v1"})
    for bad in ("icechunk://", "icechunk://x?branch=a&tag=b", "icechunk://x?ref=a", "s3://b"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_s3_repository(s3_server: dict[str, Any]) -> None:
    bucket = s3_server["make_bucket"]("xzaro-icechunk")
    options = s3_server["storage_options"]
    store = open_icechunk(f"s3://{bucket}/repo", storage_options=options, mode="w-")
    _write(store, _dataset(2.0))
    store.commit("on s3")
    again = open_icechunk(f"icechunk://s3://{bucket}/repo?branch=main", storage_options=options)
    assert again.url == f"icechunk://s3://{bucket}/repo?branch=main"
    xr.testing.assert_identical(xr.open_dataset(again, engine="zaro").load(), _dataset(2.0))
    with pytest.raises(ValueError, match="unknown storage_options"):
        open_icechunk(f"s3://{bucket}/repo", storage_options={**options, "bogus": 1})


# --- virtual chunks --------------------------------------------------------------------------


def _virtual_repo(tmp_path: Path) -> tuple[Path, bytes]:
    """A local repository whose array ``a`` has chunk 0/0 virtual in ``data/blob`` (inside
    its container) and chunk 1/1 pointing at a file of no container."""
    data = tmp_path / "data"
    data.mkdir()
    payload = np.arange(12, dtype="<i4").tobytes()
    (data / "blob").write_bytes(b"JUNK" + payload)
    (tmp_path / "secret").write_bytes(payload)
    config = icechunk.RepositoryConfig.default()
    prefix = f"file://{data}/"
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(data)))
    )
    storage = icechunk.local_filesystem_storage(str(tmp_path / "repo"))
    repo = icechunk.Repository.create(storage, config, {prefix: None})
    session = repo.writable_session("main")
    store = IcechunkStore(session)
    store.set("zarr.json", GROUP)
    write_metadata(store, "a", ZaroMeta.from_json(ARRAY))
    zstore = session.store
    zstore.set_virtual_ref("a/c/0/0", f"{prefix}blob", offset=4, length=len(payload))
    zstore.set_virtual_ref(
        "a/c/1/1",
        f"file://{tmp_path}/secret",
        offset=0,
        length=len(payload),
        validate_container=False,
    )
    session.commit("virtual")
    return tmp_path / "repo", payload


def test_virtual_chunks_through_the_allow_list(tmp_path: Path) -> None:
    path, payload = _virtual_repo(tmp_path)
    store = open_icechunk(path)  # a local repository may reach local files
    assert store.get("a/c/0/0") == payload
    assert store.get_ranges([("a/c/0/0", 4, 8)]) == [payload[4:12]]
    with pytest.raises(StoreError, match="virtual chunk container") as info:
        store.get("a/c/1/1")  # no container holds it: never read
    assert info.value.key == "a/c/1/1"

    refused = open_icechunk(path, allowed_protocols={"s3", "https"})
    with pytest.raises(StoreError, match="authorize") as info:
        refused.get("a/c/0/0")
    assert info.value.key == "a/c/0/0" and "icechunk://" in str(info.value.url)
    with pytest.raises(StoreError):
        xr.open_dataset(refused, engine="zaro").a.load()
    with pytest.raises(ValueError, match="not read"):
        open_icechunk(path, allowed_protocols={"s3"}, virtual_credentials={"file:///x/": None})


# --- pickling and Dask distributed ---------------------------------------------------------------


def _read(store: IcechunkStore) -> list[bytes | None]:
    return store.get_many(["t/zarr.json", "t/c/0/0", "missing/zarr.json"])


def test_read_only_store_pickles_to_another_process(tmp_path: Path) -> None:
    store = open_icechunk(tmp_path / "repo", mode="w-")
    with pytest.raises(StoreError, match="fork"):
        pickle.dumps(store)  # a writable session does not travel
    _write(store, _dataset())
    store.commit("x")
    reader = open_icechunk(tmp_path / "repo")
    payload = pickle.dumps(reader)
    assert len(payload) < 4096
    expected = _read(reader)
    assert expected[0] is not None and expected[1] is not None and expected[2] is None
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(_read, reader).result(timeout=90) == expected


def _write_block(store: IcechunkStore, meta: ZaroMeta, origin: tuple[int, int]) -> IcechunkStore:
    """A worker's task: write one aligned block with xzaro's writer into its fork, return it."""
    block = np.arange(48, dtype="int32").reshape(8, 6)[origin[0] : origin[0] + 4]
    writer_for(store, "a", meta).write_block(block, origin)
    return store


def test_distributed_fork_and_merge(tmp_path: Path, dask_client: Any) -> None:
    store = open_icechunk(tmp_path / "repo", mode="w-")
    meta = ZaroMeta.from_json(ARRAY)
    fork = store.fork()  # Icechunk forks a session with no writes yet
    write_metadata(fork, "", GroupMeta(3, {}))
    write_metadata(fork, "a", meta)
    futures = [dask_client.submit(_write_block, fork, meta, (x, 0), pure=False) for x in (0, 4)]
    forks = dask_client.gather(futures)
    assert len({f.session.snapshot_id for f in forks}) == 1
    store.merge(*forks)
    store.commit("distributed")
    back = open_icechunk(tmp_path / "repo")
    zarr = pytest.importorskip("zarr")
    oracle = zarr.open_array(
        icechunk.Repository.open(icechunk.local_filesystem_storage(str(tmp_path / "repo")))
        .readonly_session("main")
        .store,
        path="a",
        mode="r",
    )
    np.testing.assert_array_equal(oracle[:], np.arange(48, dtype="int32").reshape(8, 6))
    assert sorted(k for k in back.list("a") if "/c/" in k) == [
        "a/c/0/0",
        "a/c/0/1",
        "a/c/1/0",
        "a/c/1/1",
    ]


def test_append_and_region_writes(repo: Any) -> None:
    store = open_icechunk(repo, mode="a")
    ds = _dataset()
    _write(store, ds.chunk({"x": 4}), encoding={"t": {"chunks": (4, 3)}})
    store.commit("first")
    more = _dataset(50.0).assign_coords(x=np.arange(8, 16))
    store = open_icechunk(repo, mode="a")
    _write(store, more.chunk({"x": 4}), mode="a", append_dim="x")
    store.commit("append")
    store = open_icechunk(repo, mode="a")
    patch = (ds.isel(x=slice(4, 8)) * 0 - 1).drop_vars(["x", "y"])
    _write(store, patch.chunk({"x": 4}), mode="r+", region={"x": slice(4, 8)})
    store.commit("region")
    back = xr.open_dataset(open_icechunk(repo), engine="zaro").load()
    expected = np.concatenate([ds.t.values, more.t.values])
    expected[4:8] = -1
    np.testing.assert_array_equal(back.t.values, expected)
    np.testing.assert_array_equal(back.x.values, np.arange(16))
