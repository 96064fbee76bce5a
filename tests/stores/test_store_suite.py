"""The conformance suite: one set of checks run against every store type.

Stores: :class:`~xzaro.stores.LocalStore` (a local directory), fsspec's ``memory://``,
:class:`~xzaro.stores.MemoryStore`, S3 (moto), GCS (gcp-storage-emulator), HTTP (read-only;
objects are written straight into the served directory), a Kerchunk JSON reference store
(read-only; each object is a target file with a reference to it), and
:class:`~xzaro.stores.obstore_store.ObstoreStore` over S3 and HTTP (read-only).
Servers are started only when a test needs them. Every path-based store also refuses keys that
would leave its root.
"""

from __future__ import annotations

import json
import multiprocessing
import operator
import os
import pickle
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from zarr_written import SECRET

from xzaro.errors import StoreError
from xzaro.stores import FsspecStore, LocalStore, MemoryStore, Store, open_store
from xzaro.stores.base import object_deliveries
from xzaro.stores.obstore_store import ObstoreStore

BACKENDS = [
    "local",
    "memory-fsspec",
    "memory-dict",
    "s3",
    "gcs",
    "http",
    "reference-json",
    "obstore-s3",
    "obstore-http",
]
#: Backends whose pickled store can be reopened by another process.
SHAREABLE = {"local", "s3", "gcs", "http", "reference-json", "obstore-s3", "obstore-http"}

BLOB = bytes(range(256)) * 4  # 1024 bytes


@dataclass
class Backend:
    name: str
    store: Any
    put: Callable[[str, bytes], None]
    writable: bool = True
    #: Whether the store answers ``get_size`` (reference stores do not).
    sized: bool = True


def _http_backend(request: pytest.FixtureRequest, obstore: bool = False) -> Backend:
    base_url, directory = request.getfixturevalue("http_server")
    sub = uuid.uuid4().hex
    root = Path(directory) / sub
    root.mkdir()

    def put(key: str, value: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value)

    if obstore:
        store = ObstoreStore(f"{base_url}/{sub}/")
        return Backend("obstore-http", store, put, writable=False)
    return Backend("http", open_store(f"{base_url}/{sub}/"), put, writable=False)


def _reference_backend(tmp_path: Path) -> Backend:
    """A Kerchunk JSON reference store; each object put is a target file behind 4 junk bytes,
    referenced by range, or a whole target file (every other put), and the store is opened
    afresh (re-reading the references) after each put."""
    targets = tmp_path / "targets"
    targets.mkdir()
    refs_file = tmp_path / "refs.json"
    refs_file.write_text("{}")
    refs: dict[str, Any] = {}
    backend = Backend("reference-json", open_store(str(refs_file)), lambda k, v: None, False, False)

    def put(key: str, value: bytes) -> None:
        target = targets / uuid.uuid4().hex
        if len(refs) % 2:
            target.write_bytes(value)
            refs[key] = [str(target)]
        else:
            target.write_bytes(b"JUNK" + value)
            refs[key] = [str(target), 4, len(value)]
        refs_file.write_text(json.dumps(refs))
        backend.store = open_store(str(refs_file))

    backend.put = put
    return backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name = request.param
    sub = uuid.uuid4().hex
    if name == "local":
        store = open_store(tmp_path / "data.zarr", mode="w")
    elif name == "memory-fsspec":
        store = open_store(f"memory://xzaro-tests/{sub}")
    elif name == "memory-dict":
        store = MemoryStore()
    elif name == "s3":
        s3 = request.getfixturevalue("s3_server")
        bucket = s3["make_bucket"]("xzaro-tests")
        store = open_store(f"s3://{bucket}/{sub}", s3["storage_options"])
    elif name == "gcs":
        gcs = request.getfixturevalue("gcs_server")
        store = open_store(f"gs://{gcs['bucket']}/{sub}", gcs["storage_options"])
    elif name == "http":
        return _http_backend(request)
    elif name == "obstore-s3":
        pytest.importorskip("obstore")
        s3 = request.getfixturevalue("s3_server")
        bucket = s3["make_bucket"]("xzaro-tests")
        store = ObstoreStore(f"s3://{bucket}/{sub}", s3["storage_options"])
    elif name == "obstore-http":
        pytest.importorskip("obstore")
        return _http_backend(request, obstore=True)
    else:
        return _reference_backend(tmp_path)
    return Backend(name, store, store.set)


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[ProcessPoolExecutor]:
    """One spawned worker process shared by the pickling tests."""
    with pytest.MonkeyPatch.context() as mp:
        # the worker must not pick gcsfs's extended class (see the gcs_server fixture)
        mp.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        pool.submit(os.getpid).result(timeout=60)  # start the worker while the variable is set
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def test_is_a_store(backend: Backend) -> None:
    assert isinstance(backend.store, Store)
    assert isinstance(backend.store.url, str)


def test_get_and_missing(backend: Backend) -> None:
    backend.put("zarr.json", b"{}")
    backend.put("a/b/c", b"hello")
    store = backend.store
    assert store.get("zarr.json") == b"{}"
    assert store.get("a/b/c") == b"hello"
    assert store.get("missing") is None
    assert store.get("a/nope/c") is None
    assert store.get("zarr.json/below-a-file") is None


def test_get_empty_object(backend: Backend) -> None:
    backend.put("empty", b"")
    assert backend.store.get("empty") == b""


def test_get_many_mixed(backend: Backend) -> None:
    present = {f"c/{i}/0": f"chunk-{i}".encode() for i in range(0, 20, 2)}
    for key, value in present.items():
        backend.put(key, value)
    keys = [f"c/{i}/0" for i in range(20)]
    assert backend.store.get_many(keys) == [present.get(k) for k in keys]
    assert backend.store.get_many([]) == []


def test_objects_delivered_one_by_one(backend: Backend) -> None:
    """``object_deliveries``: every key's body (``None``: missing) reaches ``take`` once, with
    its index, whether the store hands the bodies over as they come or in one batch."""
    present = {f"d/{i}": f"object-{i}".encode() * (i + 1) for i in range(0, 12, 3)}
    for key, value in present.items():
        backend.put(key, value)
    keys = [f"d/{i}" for i in range(12)]
    taken: dict[int, bytes | None] = {}

    def take(i: int, data: Any) -> None:
        assert i not in taken
        taken[i] = None if data is None else bytes(data)

    object_deliveries(backend.store)(keys, take)
    assert taken == {i: present.get(k) for i, k in enumerate(keys)}
    taken.clear()
    object_deliveries(backend.store)([], take)
    assert taken == {}


def test_get_ranges(backend: Backend) -> None:
    backend.put("shard", BLOB)
    requests = [
        ("shard", 0, 10),
        ("shard", 100, 50),
        ("shard", 1000, None),
        ("shard", 1000, 100),
        ("shard", 0, None),
        ("shard", -16, None),
        ("shard", -16, 3),
        ("shard", -5000, None),
        ("shard", 5000, 10),
        ("shard", 5000, None),
        ("shard", 10, 0),
        ("missing", 0, 10),
        ("missing", -4, None),
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
        None,
        None,
    ]
    assert backend.store.get_ranges(requests) == expected
    assert backend.store.get_ranges([]) == []


def test_get_size_and_exists(backend: Backend) -> None:
    backend.put("a/b", BLOB)
    store = backend.store
    assert store.exists("a/b")
    assert not store.exists("a/missing")
    if backend.sized:
        assert store.get_size("a/b") == len(BLOB)
        assert store.get_size("a/missing") is None


def test_list(backend: Backend) -> None:
    keys = ["zarr.json", "c/0/0", "c/0/1", "c/01/0", "c/1/0", "x/zarr.json"]
    for key in keys:
        backend.put(key, b"v")
    store = backend.store
    assert store.list() == sorted(keys)
    assert store.list("c") == ["c/0/0", "c/0/1", "c/01/0", "c/1/0"]
    assert store.list("c/0") == ["c/0/0", "c/0/1"]
    assert store.list("c/0/") == ["c/0/0", "c/0/1"]
    assert store.list("nope") == []


def _writable(backend: Backend) -> Any:
    if not backend.writable:
        pytest.skip(f"{backend.name} is read-only")
    return backend.store


def test_set_overwrite_delete(backend: Backend) -> None:
    store = _writable(backend)
    store.set("g/a/zarr.json", b"one")
    assert store.get("g/a/zarr.json") == b"one"
    store.set("g/a/zarr.json", bytearray(b"two"))
    assert store.get("g/a/zarr.json") == b"two"
    store.set("g/a/c/0", memoryview(b"three"))
    assert store.get("g/a/c/0") == b"three"
    store.delete("g/a/zarr.json")
    assert store.get("g/a/zarr.json") is None
    assert not store.exists("g/a/zarr.json")
    store.delete("g/a/zarr.json")  # missing: no error
    store.delete("never/there")
    assert store.list() == ["g/a/c/0"]


def test_set_many(backend: Backend) -> None:
    store = _writable(backend)
    # The GCS emulator drops a trailing "\r" from multipart uploads (real GCS does not), so the
    # random payloads end in a fixed byte.
    items = [(f"c/{i // 10}/{i % 10}", os.urandom(100 + i) + b"!") for i in range(40)]
    store.set_many(iter(items))
    store.set_many([])
    assert store.get_many([k for k, _ in items]) == [v for _, v in items]
    assert store.list("c") == sorted(k for k, _ in items)


def test_large_object(backend: Backend) -> None:
    big = os.urandom(3 * 2**20 + 7) + b"!"
    backend.put("big", big)
    store = backend.store
    assert store.get("big") == big
    assert store.get_ranges([("big", 2**20, 2**20), ("big", -7, None)]) == [
        big[2**20 : 2**21],
        big[-7:],
    ]


def test_bad_range_length(backend: Backend) -> None:
    with pytest.raises(ValueError, match="length"):
        backend.store.get_ranges([("k", 0, -1)])


def test_pickle_round_trip(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.put("zarr.json", b'{"zarr_format": 3}')
    payload = pickle.dumps(backend.store)
    clone = pickle.loads(payload)
    assert clone.url == backend.store.url or isinstance(clone, MemoryStore)
    if backend.name == "memory-dict":
        assert clone.get("zarr.json") == b'{"zarr_format": 3}'
        return
    assert len(payload) < 1024, len(payload)
    assert b"FileSystem" not in payload
    assert clone.get("zarr.json") == b'{"zarr_format": 3}'
    if backend.name in SHAREABLE:
        pool = request.getfixturevalue("spawn_pool")
        read = operator.methodcaller("get_many", ["zarr.json", "missing"])
        assert pool.submit(read, backend.store).result(timeout=60) == [
            b'{"zarr_format": 3}',
            None,
        ]


# --- keys that would leave the store ---------------------------------------------------------

BAD_KEYS = ["..", "../x", "a/../../x", "./x", "a/./b", "%2e%2e/x", "a/%2E%2e/%2e%2e/x"]


@pytest.fixture(params=["local", "memory-fsspec", "memory-dict", "obstore-s3"])
def bare_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A store whose parent holds ``x`` (SECRET): a key with ``..`` would reach it."""
    if request.param == "local":
        (tmp_path / "x").write_bytes(SECRET)
        root = tmp_path / "store"
        root.mkdir()
        (root / "a").mkdir()
        yield open_store(root, mode="r+")
    elif request.param == "memory-fsspec":
        store = open_store(f"memory://xzaro-attack/{os.urandom(6).hex()}/store")
        FsspecStore(store.url.rsplit("/", 1)[0]).set("x", SECRET)
        yield store
    elif request.param == "obstore-s3":
        pytest.importorskip("obstore")
        s3 = request.getfixturevalue("s3_server")
        base = f"s3://{s3['make_bucket']('xzaro-attack')}/{os.urandom(6).hex()}"
        ObstoreStore(base, s3["storage_options"]).set("x", SECRET)
        yield ObstoreStore(f"{base}/store", s3["storage_options"])
    else:
        yield MemoryStore({"x": SECRET})


@pytest.mark.parametrize("key", BAD_KEYS)
def test_store_refuses_keys_leaving_the_root(bare_store: Any, key: str) -> None:
    for call in (
        lambda: bare_store.get(key),
        lambda: bare_store.get_many(["ok", key]),
        lambda: bare_store.get_ranges([(key, 0, 4)]),
        lambda: bare_store.get_size(key),
        lambda: bare_store.exists(key),
        lambda: bare_store.set(key, b"overwritten"),
        lambda: bare_store.set_many([(key, b"overwritten")]),
        lambda: bare_store.delete(key),
        lambda: bare_store.list(key),
        lambda: bare_store.list_dir(key),
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert info.value.key == key
        assert SECRET.decode() not in str(info.value)
    if isinstance(bare_store, LocalStore):
        assert (Path(bare_store.url).parent / "x").read_bytes() == SECRET
