"""Whole shards read over the network are decoded as each comes in, not once the batch is all
there: the decoding of a large read overlaps its transfers and each shard's body can be freed
once decoded. Stores written by zarr-python, read over the tests' HTTP server through both
clients, with a missing shard and a missing inner chunk (fill), values against numpy."""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from servers import spy_requests

import xzaro
from xzaro.array import ZaroArray
from xzaro.concurrency import POOL_THREADS
from xzaro.stores import MemoryStore
from xzaro.stores.network import set_network_options
from xzaro.whole_shards import WholeShards

SHAPE = (64, 96)
SHARDS = (32, 32)  # 2 x 3 shards, all inside the array
LAYOUTS = {
    "small inner chunks": (8, 8),  # decoded a shard at a time (WholeShards)
    "large inner chunks": (16, 32),  # decoded inner chunk by inner chunk
}


def _values() -> np.ndarray:
    values = np.arange(np.prod(SHAPE), dtype="float32").reshape(SHAPE)
    values[32:, 32:64] = -1  # a whole shard of fill: never written
    values[:16, 64:] = -1  # inner chunks of fill inside a shard: not stored
    return values


def _client(name: str) -> dict[str, Any]:
    if name == "obstore":
        pytest.importorskip("obstore")
        return {}
    return {"client": "fsspec"}


@pytest.mark.parametrize("client", ["obstore", "fsspec"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_shard_is_decoded_as_it_comes_in(
    http_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, layout: str, client: str
) -> None:
    base_url, directory = http_server
    name = f"streamed-{uuid.uuid4().hex}.zarr"
    array = zarr.create_array(
        str(directory / name),
        shape=SHAPE,
        chunks=LAYOUTS[layout],
        shards=SHARDS,
        dtype="float32",
        fill_value=-1,
    )
    array[...] = _values()
    events: list[tuple[str, str]] = []
    spy_requests(monkeypatch, lambda h: events.append(("request", h.path)))

    def spied(method: Any) -> Any:
        def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
            events.append(("decode", method.__name__))
            return method(self, *args, **kwargs)

        return spy

    monkeypatch.setattr(WholeShards, "place", spied(WholeShards.place))
    monkeypatch.setattr(ZaroArray, "_place", spied(ZaroArray._place))
    try:
        opened = xzaro.open_array(f"{base_url}/{name}", storage_options=_client(client))
        events.clear()
        with set_network_options(requests_in_flight=1, retries=0):
            values = opened[...]
    finally:
        shutil.rmtree(directory / name)
    np.testing.assert_array_equal(values, _values())
    shard_requests = [i for i, (kind, path) in enumerate(events) if kind == "request"]
    decodes = [i for i, (kind, _) in enumerate(events) if kind == "decode"]
    assert len(shard_requests) == 6, events  # one request per shard, the missing one's too
    assert decodes and decodes[0] < shard_requests[-1], events


def test_a_read_of_fewer_shards_than_threads_decodes_their_chunks_on_the_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One shard of 16 inner chunks of 128 KiB: its chunks are decoded by the pool's threads, not
    one after the other by the thread that fetched the shard."""
    path = tmp_path / "one.zarr"
    array = zarr.create_array(
        str(path), shape=(256, 2048), chunks=(64, 512), shards=(256, 2048), dtype="int32"
    )
    values = np.arange(256 * 2048, dtype="int32").reshape(256, 2048)
    array[...] = values
    store = MemoryStore()  # not local files: the shard is fetched whole, then decoded
    for file in path.rglob("*"):
        if file.is_file():
            store.set(file.relative_to(path).as_posix(), file.read_bytes())
    threads: list[str] = []
    place = ZaroArray._place

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return place(self, *args, **kwargs)

    monkeypatch.setattr(ZaroArray, "_place", spy)
    np.testing.assert_array_equal(xzaro.open_array(store)[...], values)
    assert len(threads) == 16
    assert all(name.startswith(POOL_THREADS) for name in threads), threads
