"""The shared pool's helpers: work handed over as it comes, failures raised once all settled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from xzaro.concurrency import POOL_THREADS, handed_to_pool, thread_pool


def _produce(items: list[int], delay: float = 0.0) -> Callable[[Callable[[int, int], None]], None]:
    """A producer that hands ``items`` over from a thread of its own, ``delay`` apart."""

    def produce(hand: Callable[[int, int], None]) -> None:
        def run() -> None:
            for i, item in enumerate(items):
                hand(i, item)
                time.sleep(delay)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

    return produce


def test_each_item_is_processed_on_the_pool_while_more_come() -> None:
    done: dict[int, tuple[int, str]] = {}
    first_done = threading.Event()
    waited: list[bool] = []

    def fn(i: int, item: int) -> None:
        done[i] = (item, threading.current_thread().name)
        if i == 0:
            first_done.set()

    def produce(hand: Callable[[int, int], None]) -> None:
        def run() -> None:
            hand(0, 10)
            waited.append(first_done.wait(10))  # the first is done before the rest come
            for i, item in enumerate([11, 12, 13], start=1):
                hand(i, item)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

    handed_to_pool(produce, fn)
    assert waited == [True]
    assert {i: v[0] for i, v in done.items()} == {0: 10, 1: 11, 2: 12, 3: 13}
    assert all(name.startswith(POOL_THREADS) for _, name in done.values())


def test_a_failing_item_is_raised_once_none_still_runs() -> None:
    finished: list[int] = []

    def fn(i: int, item: int) -> None:
        if i == 0:
            raise ValueError("item 0 is bad")
        time.sleep(0.1)
        finished.append(i)

    with pytest.raises(ValueError, match="item 0 is bad"):
        handed_to_pool(_produce([0, 1, 2]), fn)
    settled = list(finished)
    time.sleep(0.3)
    assert finished == settled


def test_a_failing_producer_is_raised_once_the_handed_items_are_done() -> None:
    finished: list[int] = []

    def fn(i: int, item: int) -> None:
        time.sleep(0.1)
        finished.append(i)

    def produce(hand: Callable[[int, int], None]) -> None:
        hand(0, 0)
        raise OSError("the store went away")

    with pytest.raises(OSError, match="went away"):
        handed_to_pool(produce, fn)
    settled = list(finished)  # [0] if it had started, [] if it was cancelled first
    time.sleep(0.2)
    assert finished == settled


def test_on_a_pool_thread_the_items_are_processed_inline() -> None:
    """A pool thread never waits for the pool (which may have no thread left to give)."""
    names: list[str] = []

    def nested() -> None:
        handed_to_pool(
            lambda hand: [hand(i, i) for i in range(3)],
            lambda i, item: names.append(threading.current_thread().name),
        )

    outer = thread_pool().submit(nested)
    outer.result(timeout=10)
    assert len(names) == 3 and len(set(names)) == 1
