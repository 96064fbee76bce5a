"""The local store: objects that appear whole, the fast read paths, and files that fight back.

A directory in place of an object, a FIFO (which would block a reader forever) or a shard
truncated by another program while it is read must raise a store error, never hang, kill the
process or read as fill values. Tests whose input could hang or kill the reader run in a child
process through :func:`capped.run_capped`, so a regression fails one test instead of the run.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from capped import run_capped
from zarr_written import sharded_store, zarr_v2_store

import xzaro
from xzaro.errors import StoreError, UnsupportedError
from xzaro.stores import LocalStore, open_store


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


def test_local_store_refuses_options_it_cannot_use(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path), storage_options={"auto_mkdir": True}), LocalStore)
    with pytest.raises(UnsupportedError, match="anon") as info:
        open_store(str(tmp_path), storage_options={"anon": True})
    assert info.value.field == "storage_options" and info.value.url == str(tmp_path)
    with pytest.raises(UnsupportedError, match="anon"):
        xzaro.open_group(f"file://{tmp_path}", storage_options={"anon": True})


def test_local_set_is_atomic_and_tidy(tmp_path: Path) -> None:
    store = open_store(tmp_path / "new" / "store.zarr", mode="w")
    store.set_many((f"c/{i}", b"x" * i) for i in range(50))
    files = sorted(p.name for p in (tmp_path / "new" / "store.zarr" / "c").iterdir())
    assert files == sorted(str(i) for i in range(50))


def test_local_fast_path(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert isinstance(store, LocalStore)
    assert store.root == str(tmp_path)


@pytest.mark.parametrize("threshold", [1, 2**62])
def test_local_parts_are_written_whole_in_parallel_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    """A shard given as parts lands byte for byte, whether its parts go out on several threads
    (pwritev at their offsets) or in one writev."""
    from xzaro.stores import files
    from xzaro.stores.base import Parts

    monkeypatch.setattr(files, "PARALLEL_WRITE_BYTES", threshold)
    parts = [os.urandom(n) for n in (7, 4096, 1, 65536, 333, 12)]
    store = open_store(str(tmp_path / "s"), mode="w")
    store.set("c/0", Parts(parts))
    assert (tmp_path / "s" / "c" / "0").read_bytes() == b"".join(parts)
    store.set("c/1", Parts([memoryview(parts[1])]))
    assert (tmp_path / "s" / "c" / "1").read_bytes() == parts[1]


# --- FIFOs and shards truncated while they are read -------------------------------------------


def _read_all(url: str) -> Any:
    return xzaro.open_array(url, "v")[...]


def test_fifo_chunk_is_a_store_error(tmp_path: Path) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
    (root / "v" / "0").unlink()
    os.mkfifo(root / "v" / "0")
    outcome = run_capped(_read_all, str(root), timeout=30)
    assert outcome.raised("StoreError"), outcome
    assert "v/0" in outcome.message and "regular file" in outcome.message


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
        held = [store.get_pooled(key) for key in keys]  # all alive at once
        assert [bytes(h) for h in held] == expected
        first = memoryview(held[0])[:16]  # a view outlives the object it came from
        del held
        again = [store.get_pooled(key) for key in reversed(keys)]
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
