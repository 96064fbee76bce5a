"""The store layer and the hierarchy under attack: no escape from the store's root, no hang on a
FIFO or a stalled server, no crash when a shard is truncated while it is read, no silently wrong
HTTP range, and metadata that cannot vanish or turn into fill values.

Stores are written by zarr-python in the test, then damaged as an attacker (or another program)
would. Tests whose input could hang or kill the reader run in a child process through
:func:`capped.run_capped`, so a regression fails one test instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from capped import run_capped
from servers import HOST, RangeRequestHandler, StaticRangeServer, wait_for_port

import xzaro
from xzaro.errors import MetadataError, StoreError, ZaroError
from xzaro.stores import FsspecStore, MemoryStore, open_store

zarr = pytest.importorskip("zarr")
xr = pytest.importorskip("xarray")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: What the file placed outside a store holds; it must never show up in a read.
SECRET = b"SECRET!!"
VALUES = np.arange(8, dtype="u1")


# --- stores written by zarr-python ------------------------------------------------------------


def zarr_v2_store(root: Path, *, consolidated: bool = True) -> Path:
    """A V2 group with one uncompressed uint8 array ``v`` of 8 values (one chunk)."""
    group = zarr.open_group(root, mode="w", zarr_format=2)
    array = group.create_array(
        "v", shape=(8,), chunks=(8,), dtype="u1", compressors=None, fill_value=0
    )
    array[:] = VALUES
    array.attrs["_ARRAY_DIMENSIONS"] = ["x"]
    if consolidated:
        zarr.consolidate_metadata(root)
    return root


def zarr_v3_store(root: Path, *, consolidated: bool = True) -> Path:
    """A V3 group with one uncompressed uint8 array ``v`` of 8 values (one chunk)."""
    group = zarr.open_group(root, mode="w", zarr_format=3)
    array = group.create_array(
        "v",
        shape=(8,),
        chunks=(8,),
        dtype="u1",
        compressors=None,
        fill_value=0,
        dimension_names=["x"],
    )
    array[:] = VALUES
    if consolidated:
        zarr.consolidate_metadata(root)
    return root


def edit_json(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def open_both(url: str) -> None:
    """Open a store with both entry points; each must raise."""
    for opener in (
        lambda: xr.open_dataset(url, engine="zaro").load(),
        lambda: list(xzaro.open_group(url).walk()),
    ):
        opener()


# --- 1. node names from consolidated metadata ---------------------------------------------------

#: Node paths that would leave the store, or are not node paths at all.
ESCAPES = ["..", "../x", "a/../../b", "/etc", "a//b", "a\\b", "a\x00b", ".", "./v"]


def _plant_secrets(tmp_path: Path) -> None:
    """Write SECRET at every place outside the store a bad node path could reach."""
    for name in ("0", "x/0", "b/0", "c/0", "x/c/0", "b/c/0"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(SECRET)


def _assert_names_bad_node(error: ZaroError, url: str, key: str, bad: str) -> None:
    assert isinstance(error, MetadataError)
    assert error.url == url
    assert error.key == key
    assert error.field is not None and repr(bad)[1:-1] in error.field
    assert SECRET.decode() not in str(error)


@pytest.mark.parametrize("bad", ESCAPES)
def test_v2_consolidated_node_outside_the_store_is_refused(tmp_path: Path, bad: str) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr")
    _plant_secrets(tmp_path)

    def rename(doc: dict) -> None:
        meta = doc["metadata"]
        meta[f"{bad}/.zarray"] = meta.pop("v/.zarray")
        meta[f"{bad}/.zattrs"] = meta.pop("v/.zattrs")

    edit_json(root / ".zmetadata", rename)
    url = str(root)
    with pytest.raises(MetadataError) as info:
        xr.open_dataset(url, engine="zaro").load()
    _assert_names_bad_node(info.value, url, ".zmetadata", f"{bad}/.zarray")
    with pytest.raises(MetadataError) as info:
        list(xzaro.open_group(url).walk())
    _assert_names_bad_node(info.value, url, ".zmetadata", f"{bad}/.zarray")


@pytest.mark.parametrize("bad", ESCAPES)
def test_v3_consolidated_node_outside_the_store_is_refused(tmp_path: Path, bad: str) -> None:
    root = zarr_v3_store(tmp_path / "store.zarr")
    _plant_secrets(tmp_path)

    def rename(doc: dict) -> None:
        nodes = doc["consolidated_metadata"]["metadata"]
        nodes[bad] = nodes.pop("v")

    edit_json(root / "zarr.json", rename)
    url = str(root)
    with pytest.raises(MetadataError) as info:
        xr.open_dataset(url, engine="zaro").load()
    _assert_names_bad_node(info.value, url, "zarr.json", bad)
    with pytest.raises(MetadataError) as info:
        list(xzaro.open_group(url).walk())
    _assert_names_bad_node(info.value, url, "zarr.json", bad)


def test_consolidated_escape_never_opens_the_outside_file(tmp_path: Path) -> None:
    """The place a ``..`` node points at is a FIFO: opening it would block (or, once FIFOs are
    refused, raise a store error), so only the metadata error shows that it was never opened."""
    root = zarr_v2_store(tmp_path / "store.zarr")
    os.mkfifo(tmp_path / "0")

    def rename(doc: dict) -> None:
        meta = doc["metadata"]
        meta["../.zarray"] = meta.pop("v/.zarray")

    edit_json(root / ".zmetadata", rename)
    outcome = run_capped(open_both, str(root), timeout=30)
    assert outcome.raised("MetadataError"), outcome


@pytest.mark.parametrize("path", ["..", "../x", "a/../..", "a\\b", "a\x00b"])
def test_user_node_path_outside_the_store_is_refused(tmp_path: Path, path: str) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
    with pytest.raises(ZaroError):
        xzaro.open_group(str(root), path)
    with pytest.raises(ZaroError):
        xzaro.open_array(str(root), path)
    with pytest.raises(ZaroError):
        xr.open_dataset(str(root), engine="zaro", group=path)


BAD_KEYS = ["..", "../x", "a/../../x", "./x", "a/./b", "%2e%2e/x", "a/%2E%2e/%2e%2e/x"]


@pytest.fixture(params=["local", "memory-fsspec", "memory-dict"])
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
    if isinstance(bare_store, FsspecStore) and bare_store.is_local:
        assert (Path(bare_store.url).parent / "x").read_bytes() == SECRET


# --- 2. FIFOs and shards truncated while they are read -------------------------------------------


def _read_all(url: str) -> Any:
    return xzaro.open_array(url, "v")[...]


def test_fifo_chunk_is_a_store_error(tmp_path: Path) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
    (root / "v" / "0").unlink()
    os.mkfifo(root / "v" / "0")
    outcome = run_capped(_read_all, str(root), timeout=30)
    assert outcome.raised("StoreError"), outcome
    assert "v/0" in outcome.message and "regular file" in outcome.message


def sharded_store(root: Path, columns: int = 64) -> tuple[Path, np.ndarray]:
    """A V3 array ``v`` of 4 uncompressed shards (4 inner chunks each), written by zarr; each
    shard holds ``columns`` KiB of values."""
    data = np.arange(4 * 1024 * columns, dtype="<i4").reshape(4 * 1024, columns)
    group = zarr.open_group(root, mode="w", zarr_format=3)
    array = group.create_array(
        "v",
        shape=data.shape,
        chunks=(256, columns),
        shards=(1024, columns),
        dtype="<i4",
        compressors=None,
    )
    array[:] = data
    return root, data


def test_fifo_shard_is_a_store_error(tmp_path: Path) -> None:
    root, _ = sharded_store(tmp_path / "store.zarr")
    shard = root / "v" / "c" / "1" / "0"
    shard.unlink()
    os.mkfifo(shard)
    outcome = run_capped(_read_all, str(root), timeout=30)
    assert outcome.raised("StoreError"), outcome
    assert "v/c/1/0" in outcome.message


@pytest.mark.parametrize("call", ["get", "get_ranges", "get_size"])
def test_fifo_key_store_calls(tmp_path: Path, call: str) -> None:
    os.mkfifo(tmp_path / "fifo")
    store = open_store(tmp_path)
    fn = {
        "get": partial(store.get, "fifo"),
        "get_ranges": partial(store.get_ranges, [("fifo", 0, 4), ("fifo", -4, None)]),
        "get_size": partial(store.get_size, "fifo"),
    }[call]
    outcome = run_capped(fn, timeout=30)
    assert outcome.raised("StoreError"), outcome
    assert "fifo" in outcome.message
    assert not store.exists("fifo")


def _truncate_while_reading(url: str, shards: list[str]) -> Any:
    """Read ``v`` whole; the first time a shard index is located, every shard is truncated
    (the one whose bytes are in hand among them)."""
    from xzaro.codecs.sharding import ShardingCodec

    original = ShardingCodec.locate_index
    done = []

    def truncating(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        if not done:
            done.append(True)
            for shard in shards:
                os.truncate(shard, 0)
        return original(self, data, *args, **kwargs)

    ShardingCodec.locate_index = truncating  # type: ignore[method-assign]
    array = xzaro.open_array(url, "v")
    out = array[...]
    return bool(done), out


@pytest.mark.parametrize("columns", [64, 320])  # shards of 256 KiB and of 1.25 MiB
def test_shard_truncated_while_read_does_not_kill_the_process(tmp_path: Path, columns: int) -> None:
    root, data = sharded_store(tmp_path / "store.zarr", columns)
    shards = [str(root / "v" / "c" / str(i) / "0") for i in range(4)]
    outcome = run_capped(_truncate_while_reading, str(root), shards, timeout=60)
    assert outcome.kind in ("ok", "raised"), outcome
    if outcome.kind == "raised":
        assert "ZaroError" in outcome.error_mro, outcome
    else:
        truncated, out = outcome.value
        assert truncated
        # every shard was read before it was cut: what was read is what was stored
        np.testing.assert_array_equal(out, data)


def test_whole_shard_reads_keep_their_bytes(tmp_path: Path) -> None:
    """Whole shards read into reused buffers: a buffer still held is never handed out again."""
    root, data = sharded_store(tmp_path / "store.zarr", columns=320)
    store = open_store(root)
    keys = [f"v/c/{i}/0" for i in range(4)]
    expected = [(root / key).read_bytes() for key in keys]
    assert len(expected[0]) >= 2**20  # large enough to be read into a pooled buffer
    for _ in range(3):
        held = [store.get_mapped(key) for key in keys]  # all alive at once
        assert [bytes(h) for h in held] == expected
        first = memoryview(held[0])[:16]  # a view outlives the object it came from
        del held
        again = [store.get_mapped(key) for key in reversed(keys)]
        assert bytes(first) == expected[0][:16]
        assert [bytes(h) for h in again] == expected[::-1]
        del again, first
    np.testing.assert_array_equal(xzaro.open_array(str(root), "v")[...], data)


def _truncate_after_open(url: str, shard: str, size: int) -> Any:
    array = xzaro.open_array(url, "v")
    os.truncate(shard, size)
    return array[...]


@pytest.mark.parametrize("size", [0, 100, 200_000])
def test_shard_truncated_between_open_and_read(tmp_path: Path, size: int) -> None:
    root, _ = sharded_store(tmp_path / "store.zarr")
    shard = str(root / "v" / "c" / "2" / "0")
    outcome = run_capped(_truncate_after_open, str(root), shard, size, timeout=60)
    assert outcome.raised("ZaroError"), outcome
    assert "v/c/2/0" in outcome.message


# --- 3. HTTP: Content-Range and timeouts ----------------------------------------------------------


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


# --- 4. metadata that vanishes or reads as fill ------------------------------------------------


def test_zarray_without_shape_is_an_error(tmp_path: Path) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
    edit_json(root / "v" / ".zarray", lambda doc: doc.pop("shape"))
    url = str(root)
    for call in (
        lambda: xr.open_dataset(url, engine="zaro"),
        lambda: xzaro.open_group(url).members(),
        lambda: xzaro.open_group(url)["v"],
    ):
        with pytest.raises(MetadataError) as info:
            call()
        assert info.value.key == "v/.zarray"
        assert info.value.field == "shape"
        assert info.value.url == url


def test_consolidated_zarray_without_shape_is_an_error(tmp_path: Path) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr")
    edit_json(root / ".zmetadata", lambda doc: doc["metadata"]["v/.zarray"].pop("shape"))
    url = str(root)
    for call in (
        lambda: xr.open_dataset(url, engine="zaro"),
        lambda: xzaro.open_group(url).members(),
    ):
        with pytest.raises(MetadataError) as info:
            call()
        assert ".zmetadata" in info.value.key and "v/.zarray" in info.value.key
        assert info.value.field == "shape"


@pytest.mark.parametrize("where", ["zarray", "zgroup"])
def test_v2_document_with_the_wrong_format_is_an_error(tmp_path: Path, where: str) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
    doc = root / "v" / ".zarray" if where == "zarray" else root / ".zgroup"
    edit_json(doc, lambda d: d.update(zarr_format=3))
    with pytest.raises(MetadataError) as info:
        xr.open_dataset(str(root), engine="zaro").load()
    assert info.value.field == "zarr_format"


def test_v3_consolidated_holding_a_v2_document_is_an_error(tmp_path: Path) -> None:
    root = zarr_v3_store(tmp_path / "store.zarr")
    v2 = {
        "zarr_format": 2,
        "shape": [8],
        "chunks": [8],
        "dtype": "|u1",
        "compressor": None,
        "fill_value": 0,
        "order": "C",
        "filters": None,
    }
    edit_json(root / "zarr.json", lambda d: d["consolidated_metadata"]["metadata"].update(v=v2))
    url = str(root)
    for call in (
        lambda: xr.open_dataset(url, engine="zaro").load(),
        lambda: xzaro.open_group(url)["v"][...],
    ):
        with pytest.raises(MetadataError) as info:
            call()
        assert info.value.key.startswith("zarr.json")
        assert info.value.field == "zarr_format"


def test_v3_node_document_holding_v2_is_an_error(tmp_path: Path) -> None:
    root = zarr_v3_store(tmp_path / "store.zarr", consolidated=False)
    doc = json.loads((root / "v" / "zarr.json").read_text())
    doc = {"zarr_format": 2, "shape": doc["shape"], "chunks": [8], "dtype": "|u1"}
    (root / "v" / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(MetadataError) as info:
        xzaro.open_group(str(root))["v"]
    assert info.value.key == "v/zarr.json"
    assert info.value.field == "zarr_format"


# --- 5. deep nesting and attributes that are not objects ---------------------------------------

DEEP = "[" * 2000 + "]" * 2000


@pytest.mark.parametrize("where", [".zattrs", "zarr.json", ".zmetadata"])
def test_metadata_nested_too_deep_is_an_error(tmp_path: Path, where: str) -> None:
    if where == "zarr.json":
        root = zarr_v3_store(tmp_path / "store.zarr", consolidated=False)
        target = root / "v" / "zarr.json"
        edit_json(target, lambda d: d["attributes"].update(deep="DEEP"))
        key = "v/zarr.json"
    elif where == ".zattrs":
        root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
        target = root / "v" / ".zattrs"
        edit_json(target, lambda d: d.update(deep="DEEP"))
        key = "v/.zattrs"
    else:
        root = zarr_v2_store(tmp_path / "store.zarr")
        target = root / ".zmetadata"
        edit_json(target, lambda d: d["metadata"]["v/.zattrs"].update(deep="DEEP"))
        key = ".zmetadata"
    target.write_text(target.read_text().replace('"DEEP"', DEEP))
    url = str(root)
    for call in (
        lambda: xr.open_dataset(url, engine="zaro"),
        lambda: xzaro.open_group(url).members(),
    ):
        with pytest.raises(MetadataError) as info:
            call()
        assert info.value.key == key
        assert info.value.url == url


@pytest.mark.parametrize("attrs", [[1, 2], "text", 5, True])
def test_consolidated_zattrs_that_is_not_an_object_is_an_error(tmp_path: Path, attrs: Any) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr")
    edit_json(root / ".zmetadata", lambda d: d["metadata"].update({"v/.zattrs": attrs}))
    url = str(root)
    for call in (
        lambda: xr.open_dataset(url, engine="zaro"),
        lambda: xzaro.open_group(url).members(),
    ):
        with pytest.raises(MetadataError) as info:
            call()
        assert info.value.key == ".zmetadata"
        assert "v/.zattrs" in info.value.field
