"""The cache of objects fetched ahead (``xzaro.stores.prefetched``): each entry given out once,
expired, bounded, and dropped when its key is written."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest

from xzaro.stores import MemoryStore, prefetched


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    prefetched.clear()
    yield
    prefetched.clear()


OWNER = object()


def test_an_entry_is_given_out_once():
    prefetched.put([(("u", "k", None), b"abc"), (("u", "gone", None), None)], OWNER)
    assert prefetched.take(("u", "k", None)) == b"abc"
    assert prefetched.take(("u", "k", None)) is prefetched.ABSENT
    assert prefetched.take(("u", "gone", None)) is None  # "does not exist" is remembered too
    assert prefetched.held() == (0, 0)
    assert prefetched.wasted(OWNER) == 0


def test_expired_entries_count_as_wasted(monkeypatch):
    prefetched.put([(("u", "k", 1), b"x" * 10)], OWNER)
    monkeypatch.setattr(prefetched, "TTL", 0.0)
    assert prefetched.take(("u", "k", 1)) is prefetched.ABSENT
    assert prefetched.wasted(OWNER) == 1
    assert prefetched.wasted(OWNER) == 0  # counted once


def test_a_new_generation_retires_what_is_held():
    prefetched.put([(("u", "k", None), b"abc")], OWNER)
    prefetched.next_generation()
    assert prefetched.take(("u", "k", None)) is prefetched.ABSENT
    assert prefetched.wasted(OWNER) == 1


def test_the_oldest_entries_go_when_the_bytes_run_out(monkeypatch):
    monkeypatch.setattr(prefetched, "MAX_BYTES", 25)
    prefetched.put([(("u", str(i), None), b"x" * 10) for i in range(4)], OWNER)
    assert prefetched.held() == (2, 20)
    assert prefetched.take(("u", "0", None)) is prefetched.ABSENT
    assert prefetched.take(("u", "3", None)) == b"x" * 10
    assert prefetched.wasted(OWNER) == 2


def test_fetched_again_before_it_was_taken_counts_as_wasted():
    prefetched.put([(("u", "k", None), b"old")], OWNER)
    prefetched.put([(("u", "k", None), b"new")], OWNER)
    assert prefetched.take(("u", "k", None)) == b"new"
    assert prefetched.wasted(OWNER) == 1


def test_forget_drops_every_part_of_a_key_of_that_store_only():
    prefetched.put([(("u", "s", 0), b"a"), (("u", "s", 1), b"b"), (("other", "s", 0), b"c")], OWNER)
    prefetched.forget("u", ["s"])
    assert prefetched.take(("u", "s", 0)) is prefetched.ABSENT
    assert prefetched.take(("u", "s", 1)) is prefetched.ABSENT
    assert prefetched.take(("other", "s", 0)) == b"c"


def test_forget_below_drops_a_whole_node():
    prefetched.put([(("u", "a/c/0", None), b"1"), (("u", "ab/c/0", None), b"2")], OWNER)
    prefetched.forget_below("u", "a")
    assert prefetched.take(("u", "a/c/0", None)) is prefetched.ABSENT
    assert prefetched.take(("u", "ab/c/0", None)) == b"2"


@pytest.mark.parametrize("write", ["set", "set_many", "delete"])
def test_a_store_write_forgets_what_was_fetched_ahead(write):
    store = MemoryStore()
    prefetched.put([((store.url, "c/0", None), b"old")], OWNER)
    if write == "set":
        store.set("c/0", b"new")
    elif write == "set_many":
        store.set_many([("c/0", b"new")])
    else:
        store.delete("c/0")
    assert prefetched.take((store.url, "c/0", None)) is prefetched.ABSENT


def _child(queue: multiprocessing.Queue) -> None:
    queue.put(prefetched.held())


def test_a_forked_child_starts_empty():
    prefetched.put([(("u", "k", None), b"abc")], OWNER)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(queue,))
    child.start()
    child.join(30)
    assert queue.get(timeout=5) == (0, 0)
