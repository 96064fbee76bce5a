"""Read-ahead (``xzaro.read_ahead``): Dask tasks of one chunk each on a remote store make one
round of requests per group of neighbouring chunks, read exact values, never over-read a single
read, never read stale bytes after a write, and fetch less ahead when tasks run out of order.

Everything runs against real servers on 127.0.0.1: the static HTTP server behind the fault proxy
(which counts requests) and the moto S3 server.
"""

from __future__ import annotations

import multiprocessing
import pickle
import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr
from faults import start_fault_proxy

import xzaro
from xzaro import read_ahead
from xzaro.errors import StoreError
from xzaro.read_ahead import ReadAhead
from xzaro.stores import FsspecStore, MemoryStore, prefetched
from xzaro.stores.network import set_network_options

SHAPE = (64, 96)
CHUNKS = (8, 8)  # an 8 x 12 grid of 96 chunks
SHARDS = (32, 48)  # 2 x 2 shards of 4 x 6 inner chunks
SMALL_SHARDS = (16, 24)  # 4 x 4 shards of 2 x 3 inner chunks


def _dataset() -> xr.Dataset:
    values = np.arange(np.prod(SHAPE), dtype="float32").reshape(SHAPE)
    return xr.Dataset({"v": (("y", "x"), values)})


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    prefetched.clear()
    with set_network_options(retries=2, backoff=0.001, max_backoff=0.005):
        yield
    prefetched.clear()


@pytest.fixture(scope="module")
def stores(http_server: tuple[str, Path]) -> dict[str, str]:
    """A V2 store and a sharded V3 copy in the HTTP server's directory: name -> relative path."""
    _, directory = http_server
    name = f"read-ahead-{uuid.uuid4().hex[:8]}"
    ds = _dataset()
    ds.zaro.to_store(directory / f"{name}-v2.zarr", zarr_format=2, chunks=CHUNKS)
    ds.zaro.to_store(directory / f"{name}-v3.zarr", zarr_format=3, chunks=CHUNKS, shards=SHARDS)
    ds.zaro.to_store(directory / f"{name}-v3-16.zarr", chunks=CHUNKS, shards=SMALL_SHARDS)
    return {"v2": f"{name}-v2.zarr", "v3": f"{name}-v3.zarr", "v3-16": f"{name}-v3-16.zarr"}


@pytest.fixture
def proxy(http_server: tuple[str, Path]) -> Iterator[Any]:
    p = start_fault_proxy(http_server[0])
    try:
        yield p
    finally:
        p.stop()


def _count(proxy: Any, fn: Any) -> tuple[Any, int]:
    proxy.reset_stats()
    out = fn()
    return out, proxy.stats.requests


@pytest.mark.parametrize("kind", ["v2", "v3"])
def test_chunk_sized_dask_tasks_read_exactly_in_few_rounds(proxy, stores, kind):
    url = f"{proxy.base_url}/{stores[kind]}"
    ds = xr.open_dataset(url, engine="zaro", chunks={}, read_unit="chunk")
    assert ds.v.data.npartitions == 96  # one Dask task per (inner) chunk, as engine="zarr"
    values, requests = _count(proxy, lambda: ds.v.values)
    np.testing.assert_array_equal(values, _dataset().v.values)
    # the first reads, before read-ahead starts, may come again with their group
    if kind == "v2":  # every chunk is an object of its own
        assert requests <= 96 + 2
    else:  # four shards: a few requests each, not two per inner chunk (192)
        assert requests <= 4 * 4


@pytest.mark.parametrize("kind", ["v2", "v3"])
def test_read_ahead_off_reads_chunk_by_chunk(proxy, stores, kind):
    url = f"{proxy.base_url}/{stores[kind]}"
    ds = xr.open_dataset(url, engine="zaro", chunks={}, read_unit="chunk", read_ahead=False)
    values, requests = _count(proxy, lambda: ds.v.values)
    np.testing.assert_array_equal(values, _dataset().v.values)
    assert requests >= 96  # one (V2) or two (V3: index, then range) per task


def test_a_sharded_array_reads_a_shard_per_dask_task(proxy, stores):
    ds = xr.open_dataset(f"{proxy.base_url}/{stores['v3']}", engine="zaro", chunks={})
    assert ds.v.data.npartitions == 4  # the default read unit: one Dask task per shard
    values, requests = _count(proxy, lambda: ds.v.values)
    np.testing.assert_array_equal(values, _dataset().v.values)
    # each shard whole, in one request; the first task's shard may come again with its group
    assert 4 <= requests <= 5


@pytest.mark.parametrize("read_ahead", [None, False])
def test_shard_sized_dask_tasks_fetch_their_neighbours_together(http_server, stores, read_ahead):
    """16 Dask tasks of one shard each, run by two threads: read ahead, the shards are fetched
    many at once (one round, and the first tasks' own shards again at most); without it, two
    at a time, one per thread."""
    slow = start_fault_proxy(http_server[0], latency=0.02)
    try:
        url = f"{slow.base_url}/{stores['v3-16']}"
        ds = xr.open_dataset(url, engine="zaro", chunks={}, read_ahead=read_ahead)
        assert ds.v.data.npartitions == 16
        with dask.config.set(scheduler="threads", num_workers=2):
            values, requests = _count(slow, lambda: ds.v.values)
        np.testing.assert_array_equal(values, _dataset().v.values)
        if read_ahead is None:
            assert 16 <= requests <= 16 + 2
            assert slow.stats.max_in_flight >= 8
        else:
            assert requests == 16
            assert slow.stats.max_in_flight <= 2
    finally:
        slow.stop()


def test_a_single_small_read_fetches_only_what_it_needs(proxy, stores):
    ds = xr.open_dataset(f"{proxy.base_url}/{stores['v2']}", engine="zaro")
    values, requests = _count(proxy, lambda: ds.v[:8, :8].values)
    np.testing.assert_array_equal(values, _dataset().v.values[:8, :8])
    assert requests == 1


def _reads_ahead(target: Any, **options: Any) -> bool:
    data = xr.open_dataset(target, engine="zaro", **options).v.variable._data
    while not hasattr(data, "zaro_array"):  # xarray's lazy wrappers around the backend array
        data = data.array
    return bool(data.zaro_array.reads_ahead)


def test_the_read_ahead_follows_the_store_kind(tmp_path, proxy, stores):
    path = tmp_path / "local.zarr"
    _dataset().zaro.to_store(path, chunks=CHUNKS)
    assert not _reads_ahead(path)
    sharded = tmp_path / "sharded.zarr"
    _dataset().zaro.to_store(sharded, chunks=CHUNKS, shards=SHARDS)
    assert _reads_ahead(sharded)  # one read of a shard, not its index per inner chunk
    assert not _reads_ahead(sharded, read_ahead=False)
    assert _reads_ahead(f"{proxy.base_url}/{stores['v2']}")
    assert not _reads_ahead(f"{proxy.base_url}/{stores['v2']}", read_ahead=False)
    assert _reads_ahead(path, read_ahead=True)
    forced = xr.open_dataset(path, engine="zaro", chunks={}, read_ahead=True)
    np.testing.assert_array_equal(forced.v.values, _dataset().v.values)


@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_a_bad_read_ahead_option_is_named(proxy, stores, bad):
    with pytest.raises(ValueError, match="read_ahead must be True, False or None"):
        xr.open_dataset(f"{proxy.base_url}/{stores['v2']}", engine="zaro", read_ahead=bad)


def test_the_flag_survives_pickling(proxy, stores):
    array = xzaro.open_array(f"{proxy.base_url}/{stores['v3']}", path="v")
    array.enable_read_ahead()
    again = pickle.loads(pickle.dumps(array))
    assert again.reads_ahead
    np.testing.assert_array_equal(again[...], _dataset().v.values)


def _reader(url: str, **options: Any) -> Any:
    array = xzaro.open_array(url, path="v", storage_options=options or None)
    array.enable_read_ahead()
    return array


def _tasks(array: Any, order: list[tuple[int, int]]) -> np.ndarray:
    """Read chunk by chunk in ``order``, as Dask tasks of one chunk each would."""
    out = np.empty(array.shape, array.dtype)
    for i, j in order:
        box = (slice(8 * i, 8 * i + 8), slice(8 * j, 8 * j + 8))
        out[box] = array[box]
    return out


def _grid() -> list[tuple[int, int]]:
    return [(i, j) for i in range(SHAPE[0] // 8) for j in range(SHAPE[1] // 8)]


def test_a_new_computation_reads_the_store_again(proxy, stores):
    ds = xr.open_dataset(f"{proxy.base_url}/{stores['v2']}", engine="zaro", chunks={})
    ds.v[:16, :16].load()  # its neighbours are fetched ahead
    assert prefetched.held()[0] > 0
    again, requests = _count(proxy, lambda: ds.v[:16, 16:32].values)
    np.testing.assert_array_equal(again, _dataset().v.values[:16, 16:32])
    assert requests > 0  # what the first computation fetched ahead is not used by the next


@pytest.mark.parametrize("kind", ["v2", "v3"])
def test_tasks_in_grid_order_make_one_request_per_object(proxy, stores, kind):
    array = _reader(f"{proxy.base_url}/{stores[kind]}")
    values, requests = _count(proxy, lambda: _tasks(array, _grid()))
    np.testing.assert_array_equal(values, _dataset().v.values)
    # the first task reads alone (no read-ahead yet), then whole groups
    assert requests <= (96 + 1 if kind == "v2" else 4 + 2)


def test_tasks_in_random_order_fetch_less_ahead(proxy, stores, monkeypatch):
    monkeypatch.setattr(prefetched, "TTL", 0.0)  # nothing fetched ahead is ever used
    array = _reader(f"{proxy.base_url}/{stores['v2']}")
    order = _grid() * 3
    random.Random(0).shuffle(order)
    values, requests = _count(proxy, lambda: _tasks(array, order))
    np.testing.assert_array_equal(values, _dataset().v.values)
    assert array._read_ahead.group_chunks == 1  # the groups shrank to single chunks
    assert requests < 2 * len(order)  # bounded, not a group per task


def test_threads_share_a_group_instead_of_fetching_it_twice(proxy, stores):
    array = _reader(f"{proxy.base_url}/{stores['v2']}")
    array[:8, :8]  # the next read is "soon after": read-ahead on
    proxy.configure(latency=0.05)
    grid = _grid()[1:]
    out = np.empty(SHAPE, "float32")
    out[:8, :8] = _dataset().v.values[:8, :8]

    def run(part: list[tuple[int, int]]) -> None:
        for i, j in part:
            box = (slice(8 * i, 8 * i + 8), slice(8 * j, 8 * j + 8))
            out[box] = array[box]

    threads = [threading.Thread(target=run, args=(grid[k::4],)) for k in range(4)]
    proxy.reset_stats()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(out, _dataset().v.values)
    assert proxy.stats.requests <= 95 + 4


def test_a_failed_group_fetch_raises_and_the_waiting_reads_fetch_again(proxy, stores):
    array = _reader(f"{proxy.base_url}/{stores['v2']}")
    array[:8, :8]
    proxy.configure(faults={"503": 1.0})
    with pytest.raises(StoreError, match="503"):
        array[:8, 8:16]
    proxy.configure(faults={})
    np.testing.assert_array_equal(_tasks(array, _grid()), _dataset().v.values)


class _OneKeyRefused(MemoryStore):
    """A memory store that refuses one key, as a bucket policy denying one object would."""

    refused = "v/0.5"

    def get_many(self, keys: Any) -> list[bytes | None]:
        if self.refused in keys:
            raise StoreError("403 Forbidden", url=self.url, key=self.refused)
        return super().get_many(keys)


def test_a_neighbour_that_cannot_be_read_does_not_fail_the_read():
    store = _OneKeyRefused()
    _dataset().zaro.to_store(store, zarr_format=2, chunks=CHUNKS)
    array = xzaro.open_array(store, path="v")
    array.enable_read_ahead()
    array[:8, :8]
    np.testing.assert_array_equal(array[:8, 8:16], _dataset().v.values[:8, 8:16])
    with pytest.raises(StoreError, match="403"):
        array[:8, 40:48]


def test_a_group_fetched_by_a_failing_thread_is_fetched_by_the_waiting_one(proxy, stores):
    array = _reader(f"{proxy.base_url}/{stores['v2']}")
    array[:8, :8]
    ahead = array._read_ahead
    gid, _ = ahead._group((0, 1), ahead._tile_shape)
    event = threading.Event()
    ahead._pending[gid] = event  # another thread is "fetching" the group ...
    threading.Timer(0.2, lambda: (ahead._pending.pop(gid), event.set())).start()
    # ... and fails without leaving anything: this read waits, then fetches it itself
    np.testing.assert_array_equal(array[:8, 8:16], _dataset().v.values[:8, 8:16])


# --- writes: nothing fetched ahead is read after its chunk was written --------------------------


@pytest.fixture
def s3_url(s3_server: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    bucket = f"ra-{uuid.uuid4().hex[:10]}"
    s3_server["make_bucket"](bucket)
    return f"s3://{bucket}/data.zarr", s3_server["storage_options"]


@pytest.mark.parametrize("shards", [None, SHARDS])
def test_a_region_written_after_a_read_ahead_reads_new(s3_url, shards):
    url, options = s3_url
    ds = _dataset()
    ds.zaro.to_store(url, chunks=CHUNKS, shards=shards, storage_options=options)
    opened = xr.open_dataset(
        url, engine="zaro", chunks={}, read_unit="chunk", storage_options=options
    )
    np.testing.assert_array_equal(opened.v[:8, :16].values, ds.v.values[:8, :16])
    assert prefetched.held()[0] > 0  # neighbours of those two chunks wait to be taken
    new = ds.copy(deep=True)
    new["v"] = new.v + 1000
    new.zaro.to_store(url, mode="r+", storage_options=options)
    np.testing.assert_array_equal(opened.v.values, new.v.values)


def test_shards_written_after_they_were_read_ahead_read_new(s3_url):
    url, options = s3_url
    ds = _dataset()
    ds.zaro.to_store(url, chunks=CHUNKS, shards=SMALL_SHARDS, storage_options=options)
    opened = xr.open_dataset(url, engine="zaro", chunks={}, storage_options=options)
    np.testing.assert_array_equal(opened.v[:16, :24].values, ds.v.values[:16, :24])
    np.testing.assert_array_equal(opened.v[:16, 24:48].values, ds.v.values[:16, 24:48])
    assert prefetched.held()[0] > 0  # whole shards, waiting to be taken
    new = ds.copy(deep=True)
    new["v"] = new.v + 1000
    new.zaro.to_store(url, mode="r+", storage_options=options)
    np.testing.assert_array_equal(opened.v.values, new.v.values)


def test_a_chunk_written_after_its_group_was_fetched_reads_new(s3_url):
    url, options = s3_url
    _dataset().zaro.to_store(url, zarr_format=2, chunks=CHUNKS, storage_options=options)
    array = _reader(url, **options)
    array[:8, :8]
    array[:8, 8:16]  # read-ahead on: the rest of the row is fetched ahead
    assert prefetched.held()[0] > 0
    store = FsspecStore(url, options)  # another store object on the same URL
    store.set("v/0.5", store.get("v/0.4"))
    np.testing.assert_array_equal(array[:8, 40:48], _dataset().v.values[:8, 32:40])


def test_a_missing_chunk_is_never_kept_as_missing():
    store = MemoryStore()
    _dataset().zaro.to_store(store, zarr_format=2, chunks=CHUNKS)
    store.delete("v/0.5")
    array = xzaro.open_array(store, path="v")
    array.enable_read_ahead()
    array[:8, :8]
    array[:8, 8:16]  # the group is fetched; v/0.5 is missing and is not kept
    assert prefetched.held()[0] > 0
    assert prefetched.take(array.entry_of((0, 5))) is prefetched.ABSENT
    store.data["v/0.5"] = store.data["v/0.4"]  # written behind xzaro's back
    np.testing.assert_array_equal(array[:8, 40:48], _dataset().v.values[:8, 32:40])


def test_a_chunk_deleted_after_a_read_ahead_reads_as_fill(s3_url):
    url, options = s3_url
    _dataset().zaro.to_store(url, chunks=CHUNKS, zarr_format=3, storage_options=options)
    array = _reader(url, **options)
    array[:8, :8]
    array[:8, 8:16]
    assert prefetched.held()[0] > 0
    FsspecStore(url, options).delete("v/c/0/2")
    assert np.isnan(array[:8, 16:24]).all()  # the fill value of a float array written by xzaro


def test_entries_expire(proxy, stores, monkeypatch):
    array = _reader(f"{proxy.base_url}/{stores['v2']}")
    array[:8, :8]
    array[:8, 8:16]
    assert prefetched.held()[0] > 0
    monkeypatch.setattr(prefetched, "TTL", 0.0)
    _, requests = _count(proxy, lambda: array[:8, 16:24])
    assert requests >= 1  # fetched again, not taken from what expired


def test_distributed_style_pickled_copies_read_exactly(proxy, stores):
    ds = xr.open_dataset(f"{proxy.base_url}/{stores['v3']}", engine="zaro", chunks={})
    with dask.config.set(scheduler="processes", num_workers=2):
        values = ds.v.values
    np.testing.assert_array_equal(values, _dataset().v.values)


def _read_in_child(array: Any, queue: Any) -> None:
    queue.put(array[:8, 8:16])


def test_a_forked_child_does_not_wait_for_a_fetch_of_its_parent(proxy, stores):
    array = _reader(f"{proxy.base_url}/{stores['v2']}")
    array[:8, :8]
    ahead = array._read_ahead
    gid, _ = ahead._group((0, 1), ahead._tile_shape)
    ahead._pending[gid] = threading.Event()  # a parent thread is fetching it, and never ends
    ahead._last = float("inf")  # however long the child takes to start, it reads ahead
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_child, args=(array, queue))
    child.start()
    try:
        values = queue.get(timeout=60)
    finally:
        child.kill()
        child.join(30)
    np.testing.assert_array_equal(values, _dataset().v.values[:8, 8:16])


def test_group_tiles_stay_inside_shards_and_the_grid():
    assert read_ahead._tile(256, (64, 64)) == (4, 64)
    assert read_ahead._tile(256, (4, 6)) == (4, 6)
    assert read_ahead._tile(1, (4, 6)) == (1, 1)
    assert read_ahead._tile(10, (3, 2, 4)) == (1, 2, 4)


def test_read_ahead_groups_of_a_sharded_array_are_its_shards(proxy, stores):
    array = _reader(f"{proxy.base_url}/{stores['v3']}")
    ahead: ReadAhead = array._read_ahead
    assert ahead.group_chunks == 24
    _, members = ahead._group((5, 7), ahead._tile_shape)
    assert sorted(members) == [(i, j) for i in range(4, 8) for j in range(6, 12)]
