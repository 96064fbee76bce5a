"""``ObstoreStore`` against real servers on 127.0.0.1: moto for S3, the static range server for
HTTP. (The conformance suite runs over both too: ``test_store_suite.py``.)

GCS is not tested here: the gcp-storage-emulator serves only Google's JSON API, and obstore's
``GCSStore`` reads and writes objects with the XML API (``GET /bucket/key`` is answered 501).
"""

from __future__ import annotations

import multiprocessing
import operator
import os
import pickle
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from faults import start_fault_proxy
from servers import free_port, spy_requests

from xzaro.errors import DecodeError, NodeNotFoundError, StoreError
from xzaro.stores import FsspecStore, open_store
from xzaro.stores.network import (
    NetworkOptions,
    request_stats,
    reset_request_stats,
    set_network_options,
)
from xzaro.stores.obstore_options import (
    client_options,
    is_obstore_object,
    obstore_config,
    retry_config,
    translate_options,
)
from xzaro.stores.obstore_store import ObstoreStore, from_obstore
from xzaro.stores.retry import classify

obstore = pytest.importorskip("obstore")
from obstore.store import HTTPStore, MemoryStore, S3Store  # noqa: E402

NO_RETRIES = NetworkOptions(retries=0, backoff=0.0)


@pytest.fixture
def s3(s3_server: dict[str, Any]) -> dict[str, Any]:
    """A fresh prefix in a bucket of the moto server: ``url``, ``options``, ``server``."""
    bucket = s3_server["make_bucket"]("xzaro-obstore")
    url = f"s3://{bucket}/{uuid.uuid4().hex}"
    return {"url": url, "options": s3_server["storage_options"], "server": s3_server["server"]}


@pytest.fixture
def http_root(http_server: tuple[str, Path]) -> tuple[str, Path]:
    """A fresh directory served over HTTP: ``(url, directory)``."""
    base_url, directory = http_server
    sub = uuid.uuid4().hex
    (Path(directory) / sub).mkdir()
    return f"{base_url}/{sub}", Path(directory) / sub


# --- options ---------------------------------------------------------------------------------


def test_s3_options_translated() -> None:
    options = {
        "key": "k",
        "secret": "s",
        "token": "t",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-1"},
    }
    assert obstore_config("s3://b/x", options) == {
        "config": {
            "access_key_id": "k",
            "secret_access_key": "s",
            "session_token": "t",
            "endpoint": "http://127.0.0.1:9",
            "region": "eu-west-1",
        },
        "client_options": {"allow_http": True},
    }
    anon = obstore_config("s3://b", {"anon": True, "endpoint_url": "https://e", "region": "r"})
    assert anon == {
        "config": {"skip_signature": True, "endpoint": "https://e", "region": "r"},
        "client_options": {},
    }


@pytest.mark.parametrize(
    ("url", "options", "reason"),
    [
        ("s3://b", {"key": "k", "secret": "s", "use_ssl": False}, "use_ssl"),
        ("s3://b", {"key": "k", "client_kwargs": {"verify": False}}, "verify"),
        ("gs://b", {"token": "/path/to/key.json"}, "token"),
        ("https://h/x", {"block_size": 0}, "block_size"),
        ("memory://x", {}, "memory"),
        ("/tmp/x", {}, "local"),
    ],
)
def test_options_obstore_cannot_honour(url: str, options: dict[str, Any], reason: str) -> None:
    translation = translate_options(url, options)
    assert translation.config is None
    assert reason in translation.reason
    assert obstore_config(url, options) is None
    with pytest.raises(StoreError, match=reason):
        ObstoreStore(url, options)


def test_the_environments_endpoint_is_given_to_obstore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    translated = obstore_config("s3://b", {"anon": True})
    assert translated is not None and translated["config"]["endpoint"] == "http://127.0.0.1:9"
    assert translated["client_options"] == {"allow_http": True}
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.example")
    own = obstore_config("s3://b", {"anon": True, "endpoint_url": "https://mine"})
    assert own is not None and own["config"]["endpoint"] == "https://mine"
    env = obstore_config("s3://b", {"anon": True})
    assert env is not None and env["config"]["endpoint"] == "https://s3.example"


def test_aws_profile_is_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_PROFILE", "work")
    assert "profile" in translate_options("s3://b", {}).reason
    assert obstore_config("s3://b", {"key": "k", "secret": "s"}) is not None
    assert obstore_config("s3://b", {"anon": True}) is not None


def test_gcs_azure_http_options() -> None:
    gcs = obstore_config(
        "gs://b/x", {"token": "anon", "endpoint_url": "http://h:1", "project": "p"}
    )
    assert gcs == {
        "config": {"skip_signature": True, "base_url": "http://h:1"},
        "client_options": {"allow_http": True},
    }
    azure = obstore_config("az://c/x", {"account_name": "a", "sas_token": "s"})
    assert azure == {"config": {"account_name": "a", "sas_token": "s"}, "client_options": {}}
    http = obstore_config("http://h/x", {"client_kwargs": {"headers": {"A": "1"}}})
    assert http == {
        "config": {},
        "client_options": {"default_headers": {"A": "1"}, "allow_http": True},
    }


def test_network_options_become_obstore_configuration() -> None:
    network = NetworkOptions(
        retries=3, backoff=0.5, max_backoff=1.0, connect_timeout=2, read_timeout=7
    )
    client = client_options(network)
    assert client["connect_timeout"] == timedelta(seconds=2)
    assert client["read_timeout"] == timedelta(seconds=7)
    retry = retry_config(network)
    assert retry["max_retries"] == 0  # xzaro's runner makes (and counts) every attempt
    assert retry["retry_timeout"] == timedelta(seconds=2 + 7)
    # obstore 0.12.1 takes every key as given
    store = HTTPStore("http://127.0.0.1:9/x", client_options=client, retry_config=retry)
    assert store.retry_config is not None


# --- S3 ---------------------------------------------------------------------------------------


def _dataset() -> xr.Dataset:
    rng = np.random.default_rng(3)
    temp = rng.normal(size=(6, 7, 5)).astype("f4")
    temp[0, 0, 0] = np.nan
    return xr.Dataset(
        {
            "temp": (("t", "y", "x"), temp, {"units": "K"}),
            "count": (("y",), np.arange(7, dtype="i2")),
        },
        coords={"t": np.arange(6), "x": np.linspace(0, 1, 5)},
        attrs={"title": "obstore"},
    )


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_arrays_written_by_fsspec_read_through_obstore(
    s3: dict[str, Any], zarr_format: int
) -> None:
    ds = _dataset()
    shards = {"t": 4, "y": 4} if zarr_format == 3 else None
    writer = FsspecStore(s3["url"], s3["options"])
    chunks = {"t": 2, "y": 2}
    ds.zaro.to_store(writer, zarr_format=zarr_format, chunks=chunks, shards=shards)
    store = ObstoreStore(s3["url"], s3["options"])
    read = xr.open_dataset(store, engine="zaro", chunks=None)
    xr.testing.assert_identical(read.load(), ds)


@pytest.mark.parametrize(
    ("zarr_format", "codecs"),
    [(2, None), (2, "zstd"), (3, None), (3, "blosc"), (3, "sharded")],
)
def test_chunks_reach_the_decoders_in_obstores_own_buffers(
    s3: dict[str, Any], zarr_format: int, codecs: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk reads take each body in obstore's ``Bytes``, not a copy in ``bytes``; the values
    are zarr-python's, and missing chunks read as the fill value."""
    import numcodecs
    import zarr

    import xzaro

    values = np.arange(30 * 20, dtype="<f8").reshape(30, 20)
    fs_store = zarr.storage.FsspecStore.from_url(s3["url"], storage_options=s3["options"])
    kwargs: dict[str, Any] = {"chunks": (8, 8), "fill_value": -1.0, "zarr_format": zarr_format}
    kwargs["compressors"] = {
        None: None,
        "zstd": numcodecs.Zstd(level=1),
        "blosc": zarr.codecs.BloscCodec(cname="lz4", clevel=5),
        "sharded": "auto",
    }[codecs]
    if codecs == "sharded":
        kwargs["shards"] = (16, 16)
    z = zarr.create_array(fs_store, name="v", shape=values.shape, dtype="<f8", **kwargs)
    z[:24] = values[:24]  # the last row of chunks is never written
    expected = np.asarray(z[...])
    store = ObstoreStore(s3["url"], s3["options"])
    handed: list[type] = []
    real, real_each = ObstoreStore.get_many_buffers, ObstoreStore.each_buffer

    def spying(self: ObstoreStore, keys: Any) -> list[Any]:
        got = real(self, keys)
        handed.extend(type(d) for d in got if d is not None)
        return got

    def spying_each(self: ObstoreStore, keys: Any, take: Any) -> None:
        def seen(i: int, data: Any) -> None:
            handed.extend([type(data)] if data is not None else [])
            take(i, data)

        real_each(self, keys, seen)

    monkeypatch.setattr(ObstoreStore, "get_many_buffers", spying)
    monkeypatch.setattr(ObstoreStore, "each_buffer", spying_each)
    got = xzaro.open_array(store, path="v")[...]
    assert np.array_equal(got, expected) and (got[24:] == -1).all()
    assert handed and set(handed) == {obstore.Bytes}
    direct = store.get_many_buffers(["v/zarr.json" if zarr_format == 3 else "v/.zarray", "nope"])
    assert bytes(direct[0]) == store.get("v/zarr.json" if zarr_format == 3 else "v/.zarray")
    assert direct[1] is None


def test_arrays_written_through_obstore_read_by_fsspec(s3: dict[str, Any]) -> None:
    ds = _dataset()
    ds.chunk({"t": 2}).zaro.to_store(ObstoreStore(s3["url"], s3["options"]), zarr_format=3)
    read = xr.open_dataset(FsspecStore(s3["url"], s3["options"]), engine="zaro", chunks=None)
    xr.testing.assert_identical(read.load(), ds)


def test_open_dataset_over_a_users_obstore_store(s3: dict[str, Any]) -> None:
    ds = _dataset()
    ds.zaro.to_store(FsspecStore(s3["url"], s3["options"]), zarr_format=3)
    bucket, prefix = s3["url"][len("s3://") :].split("/", 1)
    options = s3["options"]
    own = S3Store(
        bucket,
        prefix=prefix,
        endpoint=options["endpoint_url"],
        access_key_id=options["key"],
        secret_access_key=options["secret"],
        region="us-east-1",
        client_options={"allow_http": True},
    )
    assert is_obstore_object(own)
    store = from_obstore(own)
    assert store.url == s3["url"]
    xr.testing.assert_identical(xr.open_dataset(store, engine="zaro", chunks=None).load(), ds)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get("zarr.json") == store.get("zarr.json") is not None


def test_not_an_obstore_store() -> None:
    assert not is_obstore_object(FsspecStore("memory://x"))
    assert not is_obstore_object("s3://b")
    assert is_obstore_object(MemoryStore())
    with pytest.raises(TypeError, match="obstore store"):
        from_obstore(FsspecStore("memory://x"))


def test_missing_key_and_missing_bucket(s3: dict[str, Any]) -> None:
    store = ObstoreStore(s3["url"], s3["options"])
    assert store.get("nope") is None
    assert store.get_ranges([("nope", 4, 4), ("nope", -3, None)]) == [None, None]
    assert store.get_size("nope") is None
    missing = ObstoreStore("s3://no-such-bucket-here/x", s3["options"], network=NO_RETRIES)
    for call in (lambda: missing.get("k"), lambda: missing.get_many(["a", "b"]), missing.list):
        with pytest.raises(NodeNotFoundError, match="bucket does not exist") as info:
            call()
        assert info.value.url == "s3://no-such-bucket-here/x"


def test_refused_credentials_name_the_fix(s3: dict[str, Any]) -> None:
    options = {**s3["options"], "key": "not-a-key", "secret": "nope"}
    store = ObstoreStore(s3["url"], options, network=NO_RETRIES)
    with s3["server"].iam_checks():
        with pytest.raises(StoreError, match="access refused") as info:
            store.get("zarr.json")
        with pytest.raises(StoreError, match="access refused"):
            store.set("zarr.json", b"{}")
    assert info.value.key == "zarr.json"
    assert '"anon": True' in str(info.value)
    assert "region" in str(info.value)
    assert not isinstance(info.value, NodeNotFoundError)


def test_parts_are_written_whole(s3: dict[str, Any]) -> None:
    from xzaro.stores.base import Parts

    store = ObstoreStore(s3["url"], s3["options"])
    store.set_many([("shard", Parts((b"abc", memoryview(b"def"), b"")))])
    assert store.get("shard") == b"abcdef"


# --- HTTP -------------------------------------------------------------------------------------


def test_http_reads_and_errors(http_root: tuple[str, Path]) -> None:
    url, directory = http_root
    (directory / "a").mkdir()
    (directory / "a" / "b").write_bytes(b"0123456789")
    store = ObstoreStore(url, network=NO_RETRIES)
    assert store.get("a/b") == b"0123456789"
    assert store.get_ranges([("a/b", 2, 3), ("a/b", -2, None), ("a/b", 8, 10)]) == [
        b"234",
        b"89",
        b"89",
    ]
    assert store.get("a/missing") is None
    with pytest.raises(StoreError, match="500") as info:
        store.get("x/__error500__")
    assert info.value.key == "x/__error500__"
    with pytest.raises(StoreError, match=r"access refused.*headers"):
        store.get("__error403__")
    assert store.list() == ["a/b"]  # the links of the index pages
    assert store.list_dir("a") == ["b"]
    with pytest.raises(StoreError, match="PROPFIND"):  # a user's HTTPStore lists with WebDAV
        from_obstore(HTTPStore(url, client_options={"allow_http": True})).list()
    with pytest.raises(StoreError, match="could not write"):
        store.set("new", b"x")


def test_http_headers_are_sent(
    http_root: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, directory = http_root
    (directory / "k").write_bytes(b"v")
    seen: list[str | None] = []
    spy_requests(monkeypatch, lambda handler: seen.append(handler.headers.get("X-Xzaro")))
    store = ObstoreStore(url, {"headers": {"X-Xzaro": "yes"}})
    assert store.get("k") == b"v"
    assert seen == ["yes"]


def test_requests_in_flight_are_bounded(http_server_handle: Any, http_root: Any) -> None:
    url, directory = http_root
    for i in range(24):
        (directory / str(i)).write_bytes(b"x" * i)
    store = ObstoreStore(url, network=NetworkOptions(requests_in_flight=3))
    http_server_handle.delay = 0.05
    http_server_handle.reset_stats()
    try:
        assert store.get_many([str(i) for i in range(24)]) == [b"x" * i for i in range(24)]
    finally:
        http_server_handle.delay = 0.0
    assert http_server_handle.requests == 24
    assert 1 <= http_server_handle.max_in_flight <= 3


def test_each_body_is_handed_over_as_it_comes(
    http_server_handle: Any, http_root: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one request in flight, each body is taken before the next request is made (the
    decoding of a read overlaps its transfers, and each body can be freed once decoded)."""
    url, directory = http_root
    for i in range(4):
        (directory / f"k{i}").write_bytes(b"x" * (i + 1))
    events: list[tuple[str, Any]] = []
    spy_requests(monkeypatch, lambda h: events.append(("request", h.path.rpartition("/")[2])))
    store = ObstoreStore(url, network=NetworkOptions(requests_in_flight=1, retries=0))
    threads: set[str] = set()

    def take(i: int, data: Any) -> None:
        threads.add(threading.current_thread().name)
        events.append(("take", (i, None if data is None else bytes(data))))

    store.each_buffer(["k0", "k1", "missing", "k3"], take)
    assert events == [
        ("request", "k0"),
        ("take", (0, b"x")),
        ("request", "k1"),
        ("take", (1, b"xx")),
        ("request", "missing"),
        ("take", (2, None)),
        ("request", "k3"),
        ("take", (3, b"xxxx")),
    ]
    assert threads == {t for t in threads if t.startswith("obstore-requests")}


def test_each_buffer_raises_the_first_failure_once_all_settled(
    http_server_handle: Any, http_root: Any
) -> None:
    url, directory = http_root
    for i in range(6):
        (directory / f"k{i}").write_bytes(b"x")
    store = ObstoreStore(url, network=NetworkOptions(retries=0))
    taken: list[int] = []

    def take(i: int, data: Any) -> None:
        time.sleep(0.05)
        taken.append(i)

    keys = ["k0", "k1", "__error500__", "k3", "k4", "k5"]
    with pytest.raises(StoreError, match="500") as info:
        store.each_buffer(keys, take)
    assert info.value.key == "__error500__"
    settled = list(taken)
    time.sleep(0.2)
    assert taken == settled  # no take still ran once the error was raised

    def refuse(i: int, data: Any) -> None:
        if i == 1:
            raise DecodeError("bad chunk")

    with pytest.raises(DecodeError, match="bad chunk"):
        store.each_buffer(["k0", "k1", "k3"], refuse)


@pytest.mark.timeout(60)
def test_server_errors_are_retried_as_configured(http_server_handle: Any, http_root: Any) -> None:
    url, _ = http_root
    store = ObstoreStore(url, network=NetworkOptions(retries=2, backoff=0.01, max_backoff=0.02))
    http_server_handle.reset_stats()
    with pytest.raises(StoreError, match="500"):
        store.get("__error500__")
    assert http_server_handle.requests == 3
    with set_network_options(retries=1, backoff=0.01):
        process_wide = ObstoreStore(url)
        http_server_handle.reset_stats()
        with pytest.raises(StoreError, match="500"):
            process_wide.get("__error500__")
        assert http_server_handle.requests == 2
    with set_network_options(retries=0):
        http_server_handle.reset_stats()  # the same store follows the process's options
        with pytest.raises(StoreError, match="500"):
            process_wide.get("__error500__")
        assert http_server_handle.requests == 1


@pytest.mark.timeout(60)
def test_read_timeout_is_an_error_not_a_hang(http_server_handle: Any, http_root: Any) -> None:
    url, directory = http_root
    (directory / "slow").write_bytes(b"x")
    network = NetworkOptions(retries=0, read_timeout=0.2, connect_timeout=1)
    store = ObstoreStore(url, network=network)
    http_server_handle.delay = 1.5
    try:
        with pytest.raises(StoreError, match="could not read") as info:
            store.get("slow")
    finally:
        http_server_handle.delay = 0.0
    assert info.value.key == "slow"


# --- failures, as the retry runner judges them ----------------------------------------------


def _failure(call: Any) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("no failure")


@pytest.mark.timeout(120)
def test_classify_obstore_failures(s3: dict[str, Any], http_root: tuple[str, Path]) -> None:
    network = NetworkOptions(read_timeout=0.5, connect_timeout=1)
    url, directory = http_root
    (directory / "obj").write_bytes(b"x" * 5000)
    upstream = url.rsplit("/", 1)[0]
    http = ObstoreStore(url, network=network).obstore()
    assert http.retry_config["max_retries"] == 0

    def get(store: Any, path: str) -> Any:
        return lambda: bytes(obstore.get(store, path).bytes())

    assert classify(_failure(get(http, "nope"))).kind == "missing"
    assert classify(_failure(get(http, "__error500__"))).reason == "HTTP 500"
    denied = classify(_failure(get(http, "__error403__")))
    assert (denied.kind, denied.auth, denied.reason) == (
        "permanent",
        True,
        "access refused (HTTP 403)",
    )
    refused = ObstoreStore(f"http://127.0.0.1:{free_port()}/x", network=network).obstore()
    assert classify(_failure(get(refused, "k"))).kind == "transient"
    s3_store = ObstoreStore(s3["url"], s3["options"], network=network)
    s3_store.set("obj", b"y" * 5000)
    assert classify(_failure(get(s3_store.obstore(), "nope"))).kind == "missing"
    missing = ObstoreStore("s3://no-such-bucket-here/x", s3["options"], network=network)
    assert classify(_failure(get(missing.obstore(), "k"))).bucket_missing
    reasons = {"503": "SlowDown (HTTP 503)", "500": "InternalError (HTTP 500)", "stall": "timeout"}
    reasons |= {"429": "HTTP 429", "reset": "request failed", "truncate": "answer cut short"}
    with start_fault_proxy(upstream, stall_seconds=5) as proxy:
        store = HTTPStore(
            f"{proxy.base_url}/{url.rsplit('/', 1)[1]}",
            client_options={**client_options(network), "allow_http": True},
            retry_config=retry_config(network),
        )
        for kind, reason in reasons.items():
            proxy.configure(faults={kind: 1.0})
            failure = classify(_failure(get(store, "obj")))
            assert failure.kind == "transient" and reason in failure.reason, (kind, failure)
            if kind != "truncate":
                assert classify(_failure(lambda: obstore.head(store, "obj"))).kind == "transient"
        proxy.configure(faults={"403": 1.0})
        assert classify(_failure(lambda: obstore.list(store).collect())).auth
        # a GET and a HEAD of each fault (a truncated HEAD is a reset), one LIST: no more
        assert proxy.stats.requests == 6 + 5 + 1


def test_a_users_store_is_tried_once(http_server_handle: Any, http_root: Any) -> None:
    url, _ = http_root
    own = HTTPStore(url, client_options={"allow_http": True}, retry_config={"max_retries": 0})
    store = from_obstore(own, network=NetworkOptions(retries=5, backoff=0.0))
    http_server_handle.reset_stats()
    reset_request_stats()
    with pytest.raises(StoreError, match="after 1 attempt"):
        store.get("__error500__")
    assert http_server_handle.requests == request_stats().requests == 1


# --- other processes --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spawned() -> Iterator[ProcessPoolExecutor]:
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def test_pickles_small_and_reopens_in_a_spawned_process(
    s3: dict[str, Any], spawned: ProcessPoolExecutor
) -> None:
    store = ObstoreStore(s3["url"], s3["options"])
    store.set("zarr.json", b"{}")
    payload = pickle.dumps(store)
    assert len(payload) < 1024
    read = operator.methodcaller("get_many", ["zarr.json", "missing"])
    assert spawned.submit(read, store).result(timeout=60) == [b"{}", None]


def _read_in_child(store: ObstoreStore) -> Any:
    try:
        return store.get_many(["zarr.json", "missing"])
    except StoreError as exc:
        return str(exc)


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_forked_child_never_hangs(s3: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from xzaro.stores import obstore_runtime

    monkeypatch.setattr(obstore_runtime, "FORK_PROBE_TIMEOUT", 2.0)
    store = ObstoreStore(s3["url"], s3["options"])
    store.set("zarr.json", b"{}")  # obstore's runtime now runs in this process
    bucket = s3["url"][len("s3://") :].split("/", 1)[0]
    wrapped = from_obstore(store.obstore())
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        # the child reads through fsspec with the same options
        assert pool.submit(_read_in_child, store).result(timeout=60) == [b"{}", None]
        # a user's own obstore store has no fsspec options: an error, not a hang
        message = pool.submit(_read_in_child, wrapped).result(timeout=60)
    assert "spawn" in message and bucket in message
    assert store.get("zarr.json") == b"{}"  # the parent is unaffected


def test_open_store_keeps_an_obstore_store(s3: dict[str, Any]) -> None:
    store = ObstoreStore(s3["url"], s3["options"])
    assert open_store(store) is store
    assert os.fspath(store.url) == s3["url"]
