"""Reads and writes of real stores through the fault proxy: exact values or a clear error.

Arrays written by zarr-python are served by the static HTTP server and by the moto S3 server,
each behind a :class:`~faults.FaultProxy` that fails a fraction of requests with 5xx answers,
429, reset connections, truncated bodies or stalls. Each is read through fsspec
(:class:`~xzaro.stores.FsspecStore`, the ``http`` and ``s3`` cases) and through obstore
(:class:`~xzaro.stores.obstore_store.ObstoreStore`, ``obstore-http`` and ``obstore-s3``), under
the same retry rules. Every read must equal a clean read; an outage
must end in a :class:`~xzaro.errors.StoreError` that names the URL, the key and the attempts
within a bounded time; a refusal (403) must raise at once; a missing chunk stays a fill value.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from faults import FaultProxy, start_fault_proxy

import xzaro
from xzaro.errors import NodeNotFoundError, StoreError
from xzaro.stores import FsspecStore
from xzaro.stores.network import request_stats, reset_request_stats, set_network_options
from xzaro.stores.obstore_options import ACCESS_HINTS
from xzaro.stores.obstore_store import ObstoreStore
from xzaro.stores.retry import AUTH_HINT

zarr = pytest.importorskip("zarr")

pytestmark = pytest.mark.timeout(120)

FAULT_KINDS = ["503", "500", "429", "reset", "truncate"]


@pytest.fixture(autouse=True)
def patient_retries() -> Iterator[None]:
    """Enough quick retries that 30% faults never exhaust them."""
    with set_network_options(retries=12, backoff=0.001, max_backoff=0.01, read_timeout=5):
        yield


def _build(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    group = zarr.open_group(str(root / "ds.zarr"), mode="w", zarr_format=3)
    temp = rng.normal(280, 5, (40, 30)).astype("<f4")
    temp[30:, 20:] = np.nan  # a chunk of fill values: not stored, read as a missing key
    a = group.create_array(
        "temp",
        shape=temp.shape,
        chunks=(10, 10),
        dtype="<f4",
        fill_value=np.nan,
        compressors=zarr.codecs.ZstdCodec(level=1),
        dimension_names=["y", "x"],
    )
    a[:] = temp
    img = rng.integers(0, 60000, (64, 48), dtype="uint16")
    b = group.create_array(
        "img",
        shape=img.shape,
        chunks=(8, 8),
        shards=(32, 24),
        dtype="uint16",
        fill_value=0,
        dimension_names=["v", "w"],
    )
    b[:] = img
    v2 = zarr.open_group(str(root / "v2.zarr"), mode="w", zarr_format=2)
    mask = rng.integers(-1000, 1000, (90,), dtype="i2")
    c = v2.create_array("mask", shape=mask.shape, chunks=(7,), dtype="<i2")
    c[:] = mask
    return {"ds.zarr/temp": temp, "ds.zarr/img": img, "v2.zarr/mask": mask}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("faults-src")
    return root, _build(root)


@pytest.fixture(scope="module", params=["http", "s3", "obstore-http", "obstore-s3"])
def upstream(request: Any, source: tuple[Path, dict]) -> dict[str, Any]:
    """Where the stores live: the upstream URL, the store root path, the storage options
    (without an endpoint, which the proxy gives) and the client (fsspec or obstore)."""
    root, _ = source
    client, _, kind = request.param.rpartition("-")
    client = client or "fsspec"
    if client == "obstore":
        pytest.importorskip("obstore")
    if kind == "http":
        handle = request.getfixturevalue("http_server_handle")
        sub = uuid.uuid4().hex
        shutil.copytree(root, Path(handle.directory) / sub)
        return {
            "kind": "http",
            "client": client,
            "upstream": handle.base_url,
            "path": sub,
            "options": {},
        }
    server = request.getfixturevalue("s3_server")
    bucket = server["make_bucket"]("xzaro-faults")
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **server["storage_options"])
    for path in sorted(root.rglob("*")):
        if path.is_file():
            fs.pipe_file(f"{bucket}/{path.relative_to(root).as_posix()}", path.read_bytes())
    return {
        "kind": "s3",
        "client": client,
        "upstream": server["endpoint_url"],
        "path": bucket,
        "options": server["storage_options"],
    }


@pytest.fixture
def proxied(upstream: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``proxy``, ``base`` (the stores' base URL through the proxy), ``options`` (those of a
    store), ``open_options`` (those that open it with its client), ``client`` and ``hint``
    (what an error of refused credentials advises)."""
    with start_fault_proxy(upstream["upstream"], seed=11, stall_seconds=30) as proxy:
        if upstream["kind"] == "http":
            base, options = f"{proxy.base_url}/{upstream['path']}", None
        else:
            base = f"s3://{upstream['path']}"
            options = dict(upstream["options"], endpoint_url=proxy.base_url)
        client = upstream["client"]
        yield {
            "proxy": proxy,
            "base": base,
            "options": options,
            "open_options": dict(options or {}, client=client),
            "client": client,
            "hint": AUTH_HINT if client == "fsspec" else ACCESS_HINTS[upstream["kind"]],
        }


def _open(proxied: dict[str, Any], name: str) -> Any:
    url = f"{proxied['base']}/{name}"
    array = xzaro.open_array(url, storage_options=proxied["open_options"])
    assert isinstance(array.store, ObstoreStore) == (proxied["client"] == "obstore")
    return array


def _store(proxied: dict[str, Any], path: str) -> FsspecStore | ObstoreStore:
    """The store at ``path`` below the base, through the case's client."""
    kind = ObstoreStore if proxied["client"] == "obstore" else FsspecStore
    store = kind(f"{proxied['base']}/{path}", proxied["options"])
    assert xzaro.open_store(store) is store
    return store


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_reads_under_faults_equal_a_clean_read(
    proxied: dict[str, Any], source: tuple[Path, dict], kind: str
) -> None:
    _, expected = source
    proxy: FaultProxy = proxied["proxy"]
    proxy.configure(faults={kind: 0.3})
    for name, values in expected.items():
        array = _open(proxied, name)
        np.testing.assert_array_equal(array[...], values)
        if values.ndim == 2:
            np.testing.assert_array_equal(array[3:37, 5:27], values[3:37, 5:27])
            assert array[13, 7] == values[13, 7] or np.isnan(values[13, 7])
    assert proxy.stats.faults[kind] >= 5, proxy.stats


def test_xarray_reads_under_mixed_faults(
    proxied: dict[str, Any], source: tuple[Path, dict]
) -> None:
    xr = pytest.importorskip("xarray")
    pytest.importorskip("dask")
    _, expected = source
    proxy: FaultProxy = proxied["proxy"]
    proxy.configure(faults={"503": 0.1, "reset": 0.1, "truncate": 0.1})
    reset_request_stats()
    ds = xr.open_dataset(
        f"{proxied['base']}/ds.zarr",
        engine="zaro",
        chunks={},
        storage_options=proxied["open_options"],
    )
    np.testing.assert_array_equal(ds["temp"].values, expected["ds.zarr/temp"])
    np.testing.assert_array_equal(ds["img"].values, expected["ds.zarr/img"])
    stats = request_stats()
    # aiohttp itself repeats a request once when a reused connection turns out closed, so
    # not every reset the proxy made reaches xzaro's counters
    assert stats.retries > 0 and sum(proxy.stats.faults.values()) > 0
    assert stats.failures.get("transient", 0) == stats.retries


def test_an_outage_raises_naming_url_key_and_attempts(proxied: dict[str, Any]) -> None:
    proxy: FaultProxy = proxied["proxy"]
    array = _open(proxied, "ds.zarr/temp")
    proxy.reset_stats()
    proxy.configure(fail_after=0)
    started = time.monotonic()
    with set_network_options(retries=3), pytest.raises(StoreError) as info:
        array[...]
    assert time.monotonic() - started < 30
    error = info.value
    assert error.url == f"{proxied['base']}/ds.zarr/temp"
    assert error.key is not None and error.key.startswith("c/")
    assert "after 4 attempt(s)" in str(error) and "503" in str(error)
    assert proxy.stats.requests <= 4 * 12  # no attempt beyond the fourth of each chunk


def test_refused_credentials_raise_at_once_with_a_hint(proxied: dict[str, Any]) -> None:
    proxy: FaultProxy = proxied["proxy"]
    array = _open(proxied, "v2.zarr/mask")
    proxy.reset_stats()
    proxy.configure(faults={"403": 1.0})
    with pytest.raises(StoreError) as info:
        array[...]
    assert proxied["hint"] in str(info.value) and "403" in str(info.value)
    assert info.value.url == f"{proxied['base']}/v2.zarr/mask"
    assert info.value.key in {str(i) for i in range(13)}
    assert proxy.stats.requests == proxy.stats.faults["403"] <= 13  # never retried
    with pytest.raises(StoreError) as info:
        _open(proxied, "v2.zarr/mask")
    assert proxied["hint"] in str(info.value)


def test_missing_chunks_and_metadata_under_faults(
    proxied: dict[str, Any], source: tuple[Path, dict]
) -> None:
    _, expected = source
    proxy: FaultProxy = proxied["proxy"]
    proxy.configure(faults={"503": 0.3, "reset": 0.2})
    array = _open(proxied, "ds.zarr/temp")
    assert np.isnan(array[35, 25])  # its chunk is missing: the fill value
    np.testing.assert_array_equal(array[30:, 20:], expected["ds.zarr/temp"][30:, 20:])
    with pytest.raises(NodeNotFoundError):
        _open(proxied, "ds.zarr/no-such-array")
    assert proxy.stats.faults["503"] + proxy.stats.faults["reset"] > 0


def test_a_stall_times_out_and_is_retried(
    proxied: dict[str, Any], source: tuple[Path, dict]
) -> None:
    _, expected = source
    proxy: FaultProxy = proxied["proxy"]
    with set_network_options(read_timeout=1):
        array = _open(proxied, "v2.zarr/mask")
        keys = ["mask/0", "mask/1"]
        store = _store(proxied, "v2.zarr")
        clean = store.get_many(keys)
        proxy.reset_stats()
        proxy.configure(faults={"stall": 1.0}, first_failures=1, methods={"GET"})
        started = time.monotonic()
        assert store.get_many(keys) == clean
        assert time.monotonic() - started < 20
        assert proxy.stats.faults["stall"] == 2
        np.testing.assert_array_equal(array[0:14], expected["v2.zarr/mask"][:14])
        proxy.configure(first_failures=0)
        with set_network_options(retries=1), pytest.raises(StoreError) as info:
            array[0:7]
        assert "after 2 attempt(s)" in str(info.value) and "imeout" in str(info.value)


def test_truncated_bodies_never_make_short_chunks(
    proxied: dict[str, Any], source: tuple[Path, dict]
) -> None:
    _, expected = source
    proxy: FaultProxy = proxied["proxy"]
    store = _store(proxied, "ds.zarr")
    whole = store.get("img/c/0/0")
    assert whole is not None
    proxy.configure(faults={"truncate": 1.0}, first_failures=2, methods={"GET"})
    proxy.reset_stats()
    ranges = [("img/c/0/0", 0, 100), ("img/c/0/0", -40, None), ("img/c/0/0", 7, None)]
    assert store.get_ranges(ranges) == [whole[:100], whole[-40:], whole[7:]]
    assert store.get("img/c/0/0") == whole
    assert proxy.stats.faults["truncate"] == 2  # the first two GETs of the object
    proxy.configure(first_failures=0)
    with set_network_options(retries=2), pytest.raises(StoreError, match="3 attempt"):
        store.get("img/c/0/0")
    np.testing.assert_array_equal(
        _open_clean(store, proxy), expected["ds.zarr/img"]
    )  # nothing short was cached on the way


def _open_clean(store: FsspecStore | ObstoreStore, proxy: FaultProxy) -> np.ndarray:
    proxy.configure(faults={})
    return xzaro.open_array(store, "img")[...]


def test_requests_in_flight_are_limited_across_threads(proxied: dict[str, Any]) -> None:
    proxy: FaultProxy = proxied["proxy"]
    store = _store(proxied, "v2.zarr")
    keys = [f"mask/{i}" for i in range(13)]
    clean = store.get_many(keys)
    proxy.configure(latency=0.01)
    proxy.reset_stats()
    results: list[Any] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(store.get_many(keys))
        except BaseException as exc:
            errors.append(exc)

    with set_network_options(requests_in_flight=4):
        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not errors and results == [clean] * 8
    assert 2 <= proxy.stats.max_in_flight <= 4, proxy.stats
    assert proxy.stats.requests == 8 * 13


def test_one_limit_for_both_clients(proxied: dict[str, Any]) -> None:
    if proxied["client"] != "obstore":
        pytest.skip("once per upstream: both clients together")
    proxy: FaultProxy = proxied["proxy"]
    stores = [
        FsspecStore(f"{proxied['base']}/v2.zarr", proxied["options"]),
        _store(proxied, "v2.zarr"),
    ]
    keys = [f"mask/{i}" for i in range(13)]
    clean = stores[0].get_many(keys)
    proxy.configure(latency=0.02)
    proxy.reset_stats()
    reset_request_stats()
    results: list[Any] = []

    def read(store: Any) -> None:
        results.append(store.get_many(keys))

    with set_network_options(requests_in_flight=3):
        threads = [threading.Thread(target=read, args=(s,)) for s in stores * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert results == [clean] * 6
    # each client alone would have 3 requests in flight: together they still have 3
    assert 2 <= proxy.stats.max_in_flight <= 3, proxy.stats
    stats = request_stats()
    assert stats.max_in_flight == 3 and proxy.stats.requests == 6 * 13
    assert stats.requests == 6 * 13 + stats.retries  # see the next test on retries unseen


def test_attempts_are_counted_as_the_server_sees_them(proxied: dict[str, Any]) -> None:
    proxy: FaultProxy = proxied["proxy"]
    store = _store(proxied, "v2.zarr")
    keys = [f"mask/{i}" for i in range(13)]
    clean = store.get_many(keys)
    proxy.configure(faults={"503": 1.0}, first_failures=2)
    proxy.reset_stats()
    reset_request_stats()
    assert store.get_many(keys) == clean
    stats = request_stats()
    assert proxy.stats.faults["503"] == 2 * 13
    # every attempt the server saw was counted: no client retried underneath. (The proxy does
    # not pass on moto's "Connection: close", so a client may also meet a closed connection
    # the server never saw a request on: a counted transient failure too.)
    assert 3 * 13 <= proxy.stats.requests <= stats.requests == 13 + stats.retries
    assert stats.retries == stats.failures["transient"] >= 2 * 13


def test_writes_through_503s_complete_identically(
    proxied: dict[str, Any], upstream: dict[str, Any]
) -> None:
    if upstream["kind"] != "s3":
        pytest.skip("the HTTP store is read-only")
    xr = pytest.importorskip("xarray")
    proxy: FaultProxy = proxied["proxy"]
    proxy.configure(faults={"503": 0.3, "reset": 0.1})
    sub = uuid.uuid4().hex
    store = _store(proxied, f"{sub}/raw")
    items = [(f"k/{i}", bytes([i % 256]) * (i + 1)) for i in range(60)]
    store.set_many(items)
    data = np.arange(600.0).reshape(20, 30)
    ds = xr.Dataset({"v": (("y", "x"), data)})
    url = f"{proxied['base']}/{sub}/ds.zarr"
    options = proxied["open_options"]
    ds.zaro.to_store(url, storage_options=options, encoding={"v": {"chunks": (5, 5)}})
    assert proxy.stats.faults["503"] > 0
    direct = FsspecStore(f"{proxied['base']}/{sub}/raw", upstream["options"] | {})
    proxy.configure(faults={})
    assert direct.get_many([k for k, _ in items]) == [v for _, v in items]
    back = xr.open_dataset(url, engine="zaro", storage_options=options)
    np.testing.assert_array_equal(back["v"].values, data)


def test_every_store_method_retries(proxied: dict[str, Any], upstream: dict[str, Any]) -> None:
    proxy: FaultProxy = proxied["proxy"]
    store = _store(proxied, "v2.zarr")
    size = store.get_size("mask/0")
    names = store.list_dir("")
    proxy.configure(faults={"503": 0.5, "reset": 0.5}, first_failures=1)
    proxy.reset_stats()
    assert store.get_size("mask/0") == size and size
    assert store.exists("mask/1") and not store.exists("mask/no-such-chunk")
    assert store.list_dir("") == names and "mask" in names
    if upstream["kind"] == "s3":
        store.set("extra/k", b"v")
        assert store.list("extra") == ["extra/k"]
        store.delete("extra/k")
        assert store.get("extra/k") is None
    assert proxy.stats.faults["503"] + proxy.stats.faults["reset"] >= 4


def test_chained_urls_retry_on_the_blocking_path(proxied: dict[str, Any]) -> None:
    proxy: FaultProxy = proxied["proxy"]
    if proxied["options"] is not None or proxied["client"] != "fsspec":
        pytest.skip("the chained URL is tried over HTTP with fsspec")
    store = FsspecStore(f"simplecache::{proxied['base']}/v2.zarr")
    clean = FsspecStore(f"{proxied['base']}/v2.zarr").get("mask/2")
    proxy.configure(faults={"503": 1.0}, first_failures=2)
    proxy.reset_stats()
    assert store.get("mask/2") == clean
    assert proxy.stats.faults["503"] == 2
    proxy.configure(first_failures=0)
    with set_network_options(retries=1), pytest.raises(StoreError, match="2 attempt"):
        store.get("mask/3")
