"""One behaviour suite for every store backend, plus backend-specific error and bound checks.

Backends: a local directory, fsspec's ``memory://``, :class:`MemoryStore`, S3 (moto), GCS
(gcp-storage-emulator) and HTTP (read-only; objects are written straight into the served
directory). Servers are started only when a test needs them.
"""

from __future__ import annotations

import logging
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
from servers import free_port

from xzaro.errors import NodeNotFoundError, StoreError, ZaroError
from xzaro.stores import FsspecStore, MemoryStore, Store, open_store

BACKENDS = ["local", "memory-fsspec", "memory-dict", "s3", "gcs", "http"]
#: Backends whose pickled store can be reopened by another process.
SHAREABLE = {"local", "s3", "gcs", "http"}

BLOB = bytes(range(256)) * 4  # 1024 bytes


@dataclass
class Backend:
    name: str
    store: Any
    put: Callable[[str, bytes], None]
    writable: bool = True


def _http_backend(request: pytest.FixtureRequest) -> Backend:
    base_url, directory = request.getfixturevalue("http_server")
    sub = uuid.uuid4().hex
    root = Path(directory) / sub
    root.mkdir()

    def put(key: str, value: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value)

    return Backend("http", open_store(f"{base_url}/{sub}/"), put, writable=False)


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
    else:
        return _http_backend(request)
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


# --- the shared suite ------------------------------------------------------------------------


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
    assert store.get_size("a/b") == len(BLOB)
    assert store.get_size("a/missing") is None
    assert store.exists("a/b")
    assert not store.exists("a/missing")


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


# --- errors that must not look like missing keys ---------------------------------------------


@pytest.mark.parametrize("code", [500, 403])
def test_http_server_error_raises(http_server: tuple[str, Path], code: int) -> None:
    base_url, directory = http_server
    (directory / "ok").write_bytes(b"fine")
    store = open_store(base_url)
    bad = f"a/__error{code}__/c/0"
    for call in (
        lambda: store.get(bad),
        lambda: store.get_many(["ok", bad, "missing"]),
        lambda: store.get_ranges([("ok", 0, 2), (bad, -4, None)]),
        lambda: store.exists(bad),
    ):
        with pytest.raises(StoreError, match=str(code)) as info:
            call()
        assert info.value.key == bad
        assert info.value.url == base_url
    assert store.get_many(["ok", "missing"]) == [b"fine", None]


def test_http_connection_refused_raises() -> None:
    store = FsspecStore(f"http://127.0.0.1:{free_port()}/data")
    with pytest.raises(StoreError) as info:
        store.get("zarr.json")
    assert info.value.key == "zarr.json"


def test_http_is_read_only(http_server: tuple[str, Path]) -> None:
    store = open_store(http_server[0])
    with pytest.raises(StoreError):
        store.set("k", b"v")


def test_s3_wrong_credentials_raise(s3_server: dict[str, Any]) -> None:
    bucket = s3_server["make_bucket"]("xzaro-auth")
    good = open_store(f"s3://{bucket}/a", s3_server["storage_options"])
    good.set("k", b"v")
    options = s3_server["server"].storage_options(key="wrong", secret="wrong")
    store = open_store(f"s3://{bucket}/a", options)
    with s3_server["server"].iam_checks():
        with pytest.raises(StoreError) as info:
            store.get("k")
        assert info.value.key == "k"
        with pytest.raises(StoreError):
            store.get_many(["k", "missing"])


def test_s3_missing_bucket_is_node_not_found(s3_server: dict[str, Any]) -> None:
    """A bucket that does not exist is reported, never read as a store full of fill values."""
    store = open_store("s3://no-such-bucket-xzaro/data", s3_server["storage_options"])
    with pytest.raises(NodeNotFoundError, match="bucket"):
        store.get("zarr.json")
    with pytest.raises(NodeNotFoundError):
        store.get_many(["c/0", "c/1"])
    with pytest.raises(NodeNotFoundError):
        store.list()


def test_local_directory_key_raises(tmp_path: Path) -> None:
    store = open_store(tmp_path, mode="r")
    (tmp_path / "group" / "array").mkdir(parents=True)
    for call in (
        lambda: store.get("group/array"),
        lambda: store.get_many(["group/array"]),
        lambda: store.get_ranges([("group", -4, None)]),
        lambda: store.get_size("group"),
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert info.value.url == str(tmp_path)
    with pytest.raises(StoreError):
        store.set("group", b"x")
    assert not store.exists("group")


def test_local_set_is_atomic_and_tidy(tmp_path: Path) -> None:
    store = open_store(tmp_path / "new" / "store.zarr", mode="w")
    store.set_many((f"c/{i}", b"x" * i) for i in range(50))
    files = sorted(p.name for p in (tmp_path / "new" / "store.zarr" / "c").iterdir())
    assert files == sorted(str(i) for i in range(50))


def test_local_fast_path(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert isinstance(store, FsspecStore)
    assert store.is_local
    assert store.root == str(tmp_path)


# --- concurrency bound -----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [8, 64])
def test_http_get_many_is_bounded(http_server_handle: Any, limit: int) -> None:
    sub = uuid.uuid4().hex
    root = http_server_handle.directory / sub
    (root / "c").mkdir(parents=True)
    keys = [f"c/{i}" for i in range(500)]
    for i, key in enumerate(keys):
        (root / key).write_bytes(i.to_bytes(4, "little"))
    store = FsspecStore(f"{http_server_handle.base_url}/{sub}", max_concurrency=limit)
    http_server_handle.reset_stats()
    http_server_handle.delay = 0.002
    try:
        values = store.get_many(keys)
    finally:
        http_server_handle.delay = 0.0
    assert values == [i.to_bytes(4, "little") for i in range(500)]
    assert http_server_handle.requests == 500
    assert 2 <= http_server_handle.max_in_flight <= limit


# --- open_store -----------------------------------------------------------------------------


def test_open_store_returns_store_as_is() -> None:
    store = MemoryStore({"k": b"v"})
    assert open_store(store) is store


def test_open_store_local_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "data.zarr").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="xzaro"):
        relative = open_store("data.zarr/")
    assert relative.url == str(tmp_path / "data.zarr")
    assert "with local" in caplog.text
    assert open_store("~/data.zarr").url == str(tmp_path / "data.zarr")
    assert open_store(f"file://{tmp_path}/data.zarr").url == str(tmp_path / "data.zarr")
    assert open_store(tmp_path / "data.zarr").url == str(tmp_path / "data.zarr")


def test_open_store_missing_local_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.zarr"
    with pytest.raises(NodeNotFoundError) as info:
        open_store(missing)
    assert str(missing) in str(info.value)
    store = open_store(missing, mode="w")
    store.set("zarr.json", b"{}")
    assert open_store(missing).get("zarr.json") == b"{}"


def test_open_store_unknown_protocol() -> None:
    with pytest.raises(StoreError, match="no fsspec implementation for protocol 'foo'"):
        open_store("foo://bucket/data")


def test_open_store_bad_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        open_store(tmp_path, mode="x")


def test_open_store_remote_names_backend(
    s3_server: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="xzaro"):
        store = open_store("s3://bucket/path/", s3_server["storage_options"])
        open_store("http://127.0.0.1:1/x")
        open_store("memory://x")
        open_store("simplecache::memory://x")
    assert store.url == "s3://bucket/path"
    assert "opened s3://bucket/path with s3 (s3fs)" in caplog.text
    assert "with http (aiohttp)" in caplog.text
    assert "with memory (fsspec)" in caplog.text
    assert "simplecache (fsspec) over memory (fsspec)" in caplog.text


def test_chained_url_reads(tmp_path: Path) -> None:
    (tmp_path / "zarr.json").write_bytes(b"{}")
    store = open_store(f"simplecache::file://{tmp_path}")
    assert store.get("zarr.json") == b"{}"
    assert store.get("missing") is None


def test_errors_pickle_with_context() -> None:
    err = StoreError("boom", url="s3://b/x", key="c/0")
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, ZaroError)
    assert (clone.url, clone.key) == ("s3://b/x", "c/0")


@pytest.mark.parametrize("threshold", [1, 2**62])
def test_local_parts_are_written_whole_in_parallel_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    """A shard given as parts lands byte for byte, whether its parts go out on several threads
    (pwritev at their offsets) or in one writev."""
    from xzaro.stores import fsspec_store
    from xzaro.stores.base import Parts

    monkeypatch.setattr(fsspec_store, "PARALLEL_WRITE_BYTES", threshold)
    parts = [os.urandom(n) for n in (7, 4096, 1, 65536, 333, 12)]
    store = open_store(str(tmp_path / "s"), mode="w")
    store.set("c/0", Parts(parts))
    assert (tmp_path / "s" / "c" / "0").read_bytes() == b"".join(parts)
    store.set("c/1", Parts([memoryview(parts[1])]))
    assert (tmp_path / "s" / "c" / "1").read_bytes() == parts[1]
