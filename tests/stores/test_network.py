"""Network options, the classification of failed requests, retries, the in-flight limit and the
request counters, each on real exceptions from real servers on 127.0.0.1.

Every failure kind is produced by a real library (aiohttp through fsspec's HTTP file system,
s3fs/botocore against moto, gcsfs against the GCS emulator), through the fault proxy where the
server itself cannot fail that way.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faults import start_fault_proxy
from servers import StaticRangeServer, free_port

from xzaro.errors import IncompleteAnswerError, NodeNotFoundError, StoreError
from xzaro.stores import FsspecStore
from xzaro.stores.network import (
    NetworkOptions,
    library_options,
    library_retries_off,
    network_options,
    options_from_environment,
    request_stats,
    reset_request_stats,
    set_network_options,
)
from xzaro.stores.retry import (
    AUTH_HINT,
    MISSING,
    InFlight,
    Request,
    attempt_async,
    attempt_sync,
    classify,
    permanent_error,
)


@pytest.fixture(autouse=True)
def quick_retries() -> Iterator[None]:
    with set_network_options(retries=3, backoff=0.001, max_backoff=0.005):
        yield


def _failure(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raises (the test fails if it raises none)."""
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError(f"{call} raised nothing")


# --- options ---------------------------------------------------------------------------------


def test_delay_is_full_jitter_below_the_doubled_backoff() -> None:
    options = NetworkOptions(backoff=0.5, max_backoff=3.0)
    rng = random.Random(1)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (10, 3.0)]:
        delays = [options.delay(retry, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # spread over the whole interval, not fixed
        assert min(delays) < 0.2 * ceiling


def test_options_from_the_environment_and_their_errors() -> None:
    options = options_from_environment({"XZARO_RETRIES": "2", "XZARO_READ_TIMEOUT": "1.5"})
    assert (options.retries, options.read_timeout, options.attempts) == (2, 1.5, 3)
    with pytest.raises(ValueError, match="XZARO_RETRIES"):
        options_from_environment({"XZARO_RETRIES": "many"})
    with pytest.raises(ValueError, match="requests_in_flight"):
        options_from_environment({"XZARO_REQUESTS_IN_FLIGHT": "0"})
    with pytest.raises(ValueError, match="colour"):
        NetworkOptions().replace(colour=1)


def test_set_network_options_as_a_context_manager() -> None:
    before = network_options()
    with set_network_options(retries=0, read_timeout=2) as inside:
        assert inside.retries == 0 and network_options().read_timeout == 2
    assert network_options() == before


# --- the libraries' options --------------------------------------------------------------------


def test_library_options_set_timeouts_and_turn_retries_off() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    options = NetworkOptions(connect_timeout=3, read_timeout=4)
    given: dict[str, Any] = {"client_kwargs": {"headers": {"a": "b"}}}
    http = library_options("https://example.invalid/x", given, options)
    timeout = http["client_kwargs"]["timeout"]
    assert isinstance(timeout, aiohttp.ClientTimeout)
    assert (timeout.sock_connect, timeout.sock_read, timeout.total) == (3, 4, None)
    assert given == {"client_kwargs": {"headers": {"a": "b"}}}  # the caller's are unchanged
    s3 = library_options("s3://bucket/x", {}, options)["config_kwargs"]
    assert (s3["connect_timeout"], s3["read_timeout"]) == (3, 4)
    assert s3["retries"]["total_max_attempts"] == 1
    assert s3["max_pool_connections"] == options.requests_in_flight  # not botocore's 10
    gcs = library_options("gs://bucket/x", {}, options)
    assert gcs["requests_timeout"].sock_read == 4
    chained = library_options("simplecache::https://example.invalid/x", {}, options)
    assert chained["https"]["client_kwargs"]["timeout"].sock_read == 4


def test_library_options_keep_what_the_user_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    aiohttp = pytest.importorskip("aiohttp")
    mine = aiohttp.ClientTimeout(total=7)
    http = library_options("http://h/x", {"client_kwargs": {"timeout": mine}}, NetworkOptions())
    assert http["client_kwargs"]["timeout"] is mine
    config = {"retries": {"max_attempts": 9}, "read_timeout": 99}
    s3 = library_options("s3://b/x", {"config_kwargs": config}, NetworkOptions())
    assert s3["config_kwargs"]["retries"] == {"max_attempts": 9}
    assert s3["config_kwargs"]["read_timeout"] == 99
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    assert "retries" not in library_options("s3://b/x", {}, NetworkOptions())["config_kwargs"]


def test_s3fs_and_botocore_retries_are_off(s3_server: dict[str, Any]) -> None:
    bucket = s3_server["make_bucket"]("xzaro-retries-off")
    store = FsspecStore(f"s3://{bucket}/r", s3_server["storage_options"])
    store.set("k", b"v")
    fs = store.fs
    assert fs.retries == 1
    assert fs.s3.meta.config.retries["total_max_attempts"] == 1
    assert fs.s3.meta.config.max_pool_connections == network_options().requests_in_flight
    assert type(fs).retries == 5  # the class, and other instances, are untouched


def test_gcsfs_retries_are_off(gcs_server: dict[str, Any]) -> None:
    store = FsspecStore(f"gs://{gcs_server['bucket']}/r", gcs_server["storage_options"])
    fs = store.fs
    assert fs._request.__func__ is type(fs)._request.__wrapped__
    fresh = type(fs)(**gcs_server["storage_options"], skip_instance_cache=True)
    library_retries_off(object())  # anything else is left alone
    assert fresh._request.__func__ is type(fs)._request


# --- classification of real failures ------------------------------------------------------------


def _http_fs(**client: Any) -> Any:
    import fsspec

    return fsspec.filesystem("http", skip_instance_cache=True, client_kwargs=client)


def _http_get(fs: Any, url: str) -> Callable[[], Any]:
    from fsspec.asyn import sync

    from xzaro.stores.http import get_whole

    return lambda: sync(fs.loop, get_whole, fs, url)


def test_classify_http_failures(http_server_handle: StaticRangeServer) -> None:
    aiohttp = pytest.importorskip("aiohttp")
    (http_server_handle.directory / "obj").write_bytes(b"x" * 100)
    base = http_server_handle.base_url
    fs = _http_fs(timeout=aiohttp.ClientTimeout(sock_read=0.5))
    missing = classify(_failure(_http_get(fs, f"{base}/no-such-object")))
    assert missing.kind == "missing"
    assert classify(_failure(lambda: fs.info(f"{base}/no-such-object"))).kind == "missing"
    server = classify(_failure(_http_get(fs, f"{base}/__error500__")))
    assert (server.kind, server.reason) == ("transient", "HTTP 500")
    info = classify(_failure(lambda: fs.info(f"{base}/__error500__")))  # wrapped by fsspec
    assert info.kind == "transient"
    refused = classify(_failure(lambda: fs.cat_file(f"http://127.0.0.1:{free_port()}/x")))
    assert refused.kind == "transient"
    denied = classify(_failure(_http_get(fs, f"{base}/__error403__")))
    assert (denied.kind, denied.auth) == ("permanent", True)
    with start_fault_proxy(base, stall_seconds=5) as proxy:
        for kind in ("503", "429", "reset", "truncate", "stall"):
            proxy.configure(faults={kind: 1.0})
            failure = classify(_failure(_http_get(fs, f"{proxy.base_url}/obj")))
            assert failure.kind == "transient", (kind, failure)
        proxy.configure(faults={"truncate": 1.0})
        assert isinstance(_failure(_http_get(fs, f"{proxy.base_url}/obj")), IncompleteAnswerError)


def test_classify_s3_failures(s3_server: dict[str, Any]) -> None:
    import s3fs

    bucket = s3_server["make_bucket"]("xzaro-classify")
    options = library_options("s3://x", s3_server["storage_options"], NetworkOptions())
    fs = s3fs.S3FileSystem(**options)
    library_retries_off(fs)
    fs.pipe_file(f"{bucket}/obj", b"y" * 100)
    assert classify(_failure(lambda: fs.cat_file(f"{bucket}/nope"))).kind == "missing"
    assert classify(_failure(lambda: fs.info(f"{bucket}/nope"))).kind == "missing"
    no_bucket = classify(_failure(lambda: fs.cat_file("xzaro-no-such-bucket/k")))
    assert (no_bucket.kind, no_bucket.bucket_missing) == ("permanent", True)
    proxied = dict(options, endpoint_url="")
    with start_fault_proxy(s3_server["endpoint_url"], stall_seconds=5) as proxy:
        proxied["endpoint_url"] = proxy.base_url
        proxied["config_kwargs"] = dict(options["config_kwargs"], read_timeout=0.5)
        pfs = s3fs.S3FileSystem(**proxied)
        library_retries_off(pfs)
        expected = {"503": "S3 SlowDown (HTTP 503)", "500": "S3 InternalError (HTTP 500)"}
        for kind in ("503", "500", "429", "reset", "truncate", "stall"):
            proxy.configure(faults={kind: 1.0})
            # one GET (s3fs asks for the size first when it may split the read)
            failure = classify(_failure(lambda: pfs.cat_file(f"{bucket}/obj", max_concurrency=1)))
            assert failure.kind == "transient", (kind, failure)
            assert failure.reason == expected.get(kind, failure.reason)
        proxy.configure(faults={"403": 1.0})
        denied = classify(_failure(lambda: pfs.cat_file(f"{bucket}/obj")))
        assert (denied.kind, denied.auth) == ("permanent", True)
    wrong = dict(options, key="wrong", secret="wrong")
    wfs = s3fs.S3FileSystem(**wrong)
    with s3_server["server"].iam_checks():
        refused = classify(_failure(lambda: wfs.cat_file(f"{bucket}/obj")))
    assert (refused.kind, refused.auth) == ("permanent", True)


def test_classify_gcs_failures(gcs_server: dict[str, Any]) -> None:
    store = FsspecStore(f"gs://{gcs_server['bucket']}/c", gcs_server["storage_options"])
    fs = store.fs
    fs.pipe_file(f"{gcs_server['bucket']}/c/obj", b"z" * 10)
    assert classify(_failure(lambda: fs.cat_file(f"{gcs_server['bucket']}/c/nope"))).kind == (
        "missing"
    )
    with start_fault_proxy(gcs_server["endpoint_url"]) as proxy:
        options = dict(gcs_server["storage_options"], endpoint_url=proxy.base_url)
        proxied = FsspecStore(f"gs://{gcs_server['bucket']}/c", options).fs
        for kind, reason in (("503", "HTTP 503"), ("429", "HTTP 429"), ("reset", None)):
            proxy.configure(faults={kind: 1.0})
            failure = classify(_failure(lambda: proxied.cat_file(f"{gcs_server['bucket']}/c/obj")))
            assert failure.kind == "transient", (kind, failure)
            assert failure.reason == (reason or failure.reason)
        proxy.configure(faults={"403": 1.0})
        denied = classify(_failure(lambda: proxied.cat_file(f"{gcs_server['bucket']}/c/obj")))
        assert (denied.kind, denied.auth) == ("permanent", True)


def test_classify_plain_exceptions() -> None:
    assert classify(ValueError("bad")).kind == "permanent"
    assert classify(TimeoutError()).kind == "transient"
    assert classify(ConnectionResetError()).kind == "transient"
    assert classify(IncompleteAnswerError("short")).kind == "transient"
    assert classify(StoreError("Content-Range is wrong")).kind == "permanent"
    wrapped = FileNotFoundError("url")
    wrapped.__cause__ = ConnectionRefusedError()
    assert classify(wrapped).kind == "transient"  # fsspec's HTTP info wraps every failure
    assert classify(FileNotFoundError("x")).kind == "missing"
    assert classify(PermissionError("no")).auth
    error = permanent_error("s3://b", "k", "read", PermissionError("no"))
    assert isinstance(error, StoreError) and AUTH_HINT in str(error) and error.key == "k"
    gone = permanent_error("s3://b", "k", "read", FileNotFoundError("The bucket does not exist"))
    assert isinstance(gone, NodeNotFoundError)


# --- attempts, counters, the in-flight limit -------------------------------------------------


def _flaky(failures: list[BaseException], value: Any = b"ok") -> Callable[[], Any]:
    def call() -> Any:
        if failures:
            raise failures.pop(0)
        return value

    return call


def test_a_transient_failure_is_retried_counted_and_logged(caplog: Any) -> None:
    reset_request_stats()
    request = Request("GET", "http://h/store", "c/0", "read")
    options = NetworkOptions(retries=3, backoff=0.001)
    with caplog.at_level(logging.INFO, logger="xzaro"):
        result = attempt_sync(request, _flaky([ConnectionResetError(), TimeoutError()]), options)
    assert result == b"ok"
    stats = request_stats()
    assert (stats.requests, stats.retries, stats.failures) == (3, 2, {"transient": 2})
    lines = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].startswith("retrying GET http://h/store/c/0 after ConnectionResetError")
    assert "(attempt 2 of 4) in " in lines[0] and lines[0].endswith(" s")
    reset_request_stats()
    assert request_stats().requests == 0


def test_retries_exhausted_name_url_key_attempts_and_last_failure() -> None:
    request = Request("GET", "http://h/store", "c/0", "read")
    failures: list[BaseException] = [ConnectionResetError()] * 3 + [TimeoutError("slow")]
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        attempt_sync(request, _flaky(failures), NetworkOptions(retries=3, backoff=0.001))
    assert time.monotonic() - started < 5
    assert (info.value.url, info.value.key) == ("http://h/store", "c/0")
    assert "after 4 attempt(s)" in str(info.value) and "TimeoutError: slow" in str(info.value)


def test_permanent_and_missing_are_not_retried() -> None:
    request = Request("GET", "http://h/store", "k", "read")
    calls: list[BaseException] = [ValueError("nope"), ConnectionResetError()]
    with pytest.raises(StoreError, match="nope"):
        attempt_sync(request, _flaky(calls), NetworkOptions(retries=5))
    assert len(calls) == 1  # the second failure was never reached
    assert attempt_sync(request, _flaky([FileNotFoundError("k")]), NetworkOptions()) is MISSING
    outcome = asyncio.run(
        attempt_async(request, _async(_flaky([ConnectionResetError()])), NetworkOptions())
    )
    assert outcome == b"ok"


def _async(call: Callable[[], Any]) -> Callable[[], Any]:
    async def run() -> Any:
        await asyncio.sleep(0)
        return call()

    return run


def test_in_flight_limit_holds_across_threads_and_event_loops() -> None:
    limiter = InFlight()
    active = 0
    most = 0
    lock = threading.Lock()

    def enter() -> None:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)

    def leave() -> None:
        nonlocal active
        with lock:
            active -= 1

    def blocking() -> None:
        for _ in range(10):
            limiter.acquire_sync(3)
            enter()
            time.sleep(0.002)
            leave()
            limiter.release()

    async def one() -> None:
        await limiter.acquire_async(3)
        enter()
        await asyncio.sleep(0.002)
        leave()
        limiter.release()

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(30)))

    threads = [threading.Thread(target=blocking) for _ in range(4)]
    threads += [threading.Thread(target=asyncio.run, args=(many(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads)
    assert 2 <= most <= 3


def test_a_cancelled_waiter_gives_its_turn_on() -> None:
    limiter = InFlight()

    async def run() -> None:
        await limiter.acquire_async(1)
        waiter = asyncio.ensure_future(limiter.acquire_async(1))
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        limiter.release()
        await asyncio.wait_for(limiter.acquire_async(1), 5)  # the slot is free again
        limiter.release()

    asyncio.run(run())


# --- the store's own options ------------------------------------------------------------------


def test_store_network_options_pickle_and_take_precedence(
    http_server_handle: StaticRangeServer,
) -> None:
    sub = uuid.uuid4().hex
    (http_server_handle.directory / sub).mkdir()
    (http_server_handle.directory / sub / "k").write_bytes(b"v")
    mine = NetworkOptions(retries=0, read_timeout=7)
    with start_fault_proxy(http_server_handle.base_url, faults={"503": 1.0}) as proxy:
        store = FsspecStore(f"{proxy.base_url}/{sub}", network=mine)
        copy = pickle.loads(pickle.dumps(store))
        assert copy.network == mine and copy.network_options() == mine
        assert store.fs.client_kwargs["timeout"].sock_read == 7
        with pytest.raises(StoreError, match=r"after 1 attempt\(s\)"):
            copy.get("k")
        assert proxy.stats.requests == 1
        shared = FsspecStore(f"{proxy.base_url}/{sub}")
        with (
            set_network_options(retries=2),
            pytest.raises(StoreError, match=r"after 3 attempt\(s\)"),
        ):
            shared.get("k")
        assert proxy.stats.requests == 4
    with pytest.raises(TypeError, match="NetworkOptions"):
        FsspecStore("http://h/x", network={"retries": 1})  # type: ignore[arg-type]


def test_changed_timeouts_reopen_the_file_system(tmp_path: Path) -> None:
    store = FsspecStore("http://127.0.0.1:9/t")
    with set_network_options(read_timeout=3):
        assert store.fs.client_kwargs["timeout"].sock_read == 3
    assert store.fs.client_kwargs["timeout"].sock_read == network_options().read_timeout
