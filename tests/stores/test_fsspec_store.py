"""The fsspec store: errors that must not look like missing keys, the concurrency bound, HTTP
ranges checked against Content-Range, and timeouts.

A server error, refused credentials or a missing bucket raise an xzaro error naming the URL and
the key; an HTTP ``206`` answer whose Content-Range or length does not match the range asked
for is an error, never wrong bytes; a stalled server times out.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from capped import run_capped
from servers import (
    HOST,
    RangeRequestHandler,
    StaticRangeServer,
    free_port,
    spy_requests,
    wait_for_port,
)
from zarr_written import sharded_store

import xzaro
from xzaro.errors import NodeNotFoundError, StoreError
from xzaro.stores import FsspecStore, open_store
from xzaro.stores.network import set_network_options


@pytest.fixture(autouse=True)
def quick_retries() -> Iterator[None]:
    """Few, fast retries: the failures these tests provoke are retried before they raise."""
    with set_network_options(retries=2, backoff=0.01, max_backoff=0.05):
        yield


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


def test_http_each_body_is_handed_over_as_it_comes(
    http_server_handle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one request in flight, each body is taken before the next request is made (a
    read decodes each chunk while the others are in transfer, and frees its body at once)."""
    sub = uuid.uuid4().hex
    root = http_server_handle.directory / sub
    root.mkdir()
    for i in range(3):
        (root / f"k{i}").write_bytes(b"x" * (i + 1))
    events: list[tuple[str, Any]] = []
    spy_requests(monkeypatch, lambda h: events.append(("request", h.path.rpartition("/")[2])))
    store = FsspecStore(f"{http_server_handle.base_url}/{sub}", max_concurrency=1)
    store.each_buffer(
        ["k0", "missing", "k2"],
        lambda i, data: events.append(("take", (i, None if data is None else bytes(data)))),
    )
    assert [e for e in events if e != ("request", "missing")] == [
        ("request", "k0"),
        ("take", (0, b"x")),
        ("take", (1, None)),
        ("request", "k2"),
        ("take", (2, b"xxx")),
    ]


def test_chained_url_reads(tmp_path: Path) -> None:
    (tmp_path / "zarr.json").write_bytes(b"{}")
    store = open_store(f"simplecache::file://{tmp_path}")
    assert store.get("zarr.json") == b"{}"
    assert store.get("missing") is None


# --- HTTP: Content-Range and timeouts ------------------------------------------------------------


class WrongRangeHandler(RangeRequestHandler):
    """Answers range requests with 206 but the wrong bytes, per ``server.mode``:
    ``shift`` (same length, another offset), ``short`` and ``long`` (another length), each with
    a Content-Range that says what was sent, and ``no-header`` (206 without Content-Range).
    ``honest`` serves the right bytes; ``<mode>-bounded`` answers suffix requests right."""

    def handle(self) -> None:
        # the reader hangs up on a wrong answer, as it should
        with contextlib.suppress(ConnectionError):
            super().handle()

    def _respond(self) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = super()._respond()
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode.endswith("-bounded"):  # suffix requests (shard indexes) are answered right
            if self.headers.get("Range", "").startswith("bytes=-"):
                return status, headers, body
            mode = mode[: -len("-bounded")]
        if status != 206 or mode == "honest":
            return status, headers, body
        first, rest = headers["Content-Range"].split(" ", 1)[1].split("-")
        last, size = rest.split("/")
        start, stop = int(first), int(last) + 1
        data = Path(self.translate_path(self.path)).read_bytes()
        if mode == "shift":
            start, stop = start + 8, stop + 8
        elif mode == "short":
            stop -= 4
        elif mode == "long":
            start = max(0, start - 4)
        stop = min(stop, len(data))
        body = data[start:stop]
        headers = self._headers(len(body))
        if mode != "no-header":
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        return 206, headers, body


@pytest.fixture(scope="module")
def _wrong_range_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StaticRangeServer, Path]]:
    directory = tmp_path_factory.mktemp("wrong-range")
    server = StaticRangeServer(directory)
    server.RequestHandlerClass = partial(WrongRangeHandler, directory=str(directory))
    server.start()
    try:
        yield server, directory
    finally:
        server.stop()


@pytest.fixture
def wrong_range_server(
    _wrong_range_server: tuple[StaticRangeServer, Path],
) -> tuple[StaticRangeServer, Path]:
    """The server, answering right, and a fresh directory it serves."""
    server, directory = _wrong_range_server
    server.mode = "honest"  # type: ignore[attr-defined]
    sub = directory / os.urandom(6).hex()
    sub.mkdir()
    return server, sub


@pytest.mark.parametrize("mode", ["shift", "short", "long", "no-header"])
@pytest.mark.parametrize("request_", [(100, 50), (1000, 16), (-16, None), (16, None)])
def test_http_wrong_content_range_is_an_error(
    wrong_range_server: tuple[StaticRangeServer, Path], mode: str, request_: tuple
) -> None:
    server, directory = wrong_range_server
    blob = bytes(range(256)) * 4
    (directory / "obj").write_bytes(blob)
    store = open_store(f"{server.base_url}/{directory.name}/")
    offset, length = request_
    expected = blob[offset:] if length is None else blob[offset : offset + length]
    assert store.get_ranges([("obj", offset, length)]) == [expected]
    server.mode = mode  # type: ignore[attr-defined]
    with pytest.raises(StoreError) as info:
        store.get_ranges([("obj", offset, length)])
    assert info.value.key == "obj"
    assert info.value.url == store.url


def test_http_range_at_the_end_of_the_object_is_short_not_wrong(
    wrong_range_server: tuple[StaticRangeServer, Path],
) -> None:
    server, directory = wrong_range_server
    (directory / "obj").write_bytes(bytes(range(100)))
    store = open_store(f"{server.base_url}/{directory.name}")
    got = store.get_ranges([("obj", 90, 50), ("obj", -500, None), ("obj", 200, 5)])
    assert got == [bytes(range(90, 100)), bytes(range(100)), b""]


def test_http_sharded_array_with_wrong_ranges_never_reads_wrong_values(
    wrong_range_server: tuple[StaticRangeServer, Path],
) -> None:
    server, directory = wrong_range_server
    _, data = sharded_store(directory / "store.zarr")
    url = f"{server.base_url}/{directory.name}/store.zarr"
    array = xzaro.open_array(url, "v")
    np.testing.assert_array_equal(array[100:200], data[100:200])
    # the shard index (a suffix request, crc32c-checked) is right; the inner chunks are not
    server.mode = "shift-bounded"  # type: ignore[attr-defined]
    with pytest.raises(StoreError):
        xzaro.open_array(url, "v")[100:200]


class StallingServer:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def _get(url: str, options: dict, key: str) -> Any:
    return open_store(url, options).get(key)


def test_http_stalled_server_times_out() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    server = StallingServer()
    try:
        wait_for_port(int(server.base_url.rsplit(":", 1)[1]))
        options = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=2)}}
        started = time.monotonic()
        outcome = run_capped(_get, f"{server.base_url}/data", options, "zarr.json", timeout=40)
        assert outcome.raised("StoreError"), outcome
        assert "zarr.json" in outcome.message
        assert time.monotonic() - started < 30
    finally:
        server.stop()


def test_http_default_timeout_and_user_timeout() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    store = FsspecStore("http://127.0.0.1:9/data")
    default = store.fs.client_kwargs["timeout"]
    assert isinstance(default, aiohttp.ClientTimeout)
    assert default.sock_read == 60 and default.sock_connect is not None
    mine = aiohttp.ClientTimeout(total=7)
    options = {"client_kwargs": {"timeout": mine}}
    store = FsspecStore("http://127.0.0.1:9/other", options)
    assert store.fs.client_kwargs["timeout"] is mine
    assert options == {"client_kwargs": {"timeout": mine}}  # the caller's options are unchanged
    chained = FsspecStore("simplecache::http://127.0.0.1:9/third")
    assert chained.fs.fs.client_kwargs["timeout"].sock_read == 60
