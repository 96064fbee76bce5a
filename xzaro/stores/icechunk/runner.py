"""Icechunk's asynchronous store calls, run from synchronous code.

Icechunk's Rust store answers with Python awaitables that need a running ``asyncio`` loop. Each
process runs one loop in a daemon thread (dropped after ``fork``, started again on first use);
a call from any thread submits its coroutine there and waits for the answer, so a caller in a
thread that already runs a loop (a notebook) is served as well as a Dask worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from xzaro.concurrency import ProcessLocal

T = TypeVar("T")

_loop: ProcessLocal[asyncio.AbstractEventLoop] = ProcessLocal()
_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    """This process's loop for Icechunk calls, started on first use."""
    loop = _loop.value
    if loop is not None:
        return loop
    with _lock:
        if _loop.value is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="xzaro-icechunk", daemon=True)
            thread.start()
            _loop.value = loop
        return _loop.value


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``make()`` on the process's Icechunk loop and return its result.

    Raises
    ------
    RuntimeError
        When called from the loop's own thread (it would wait for itself).
    """
    loop = _event_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("Icechunk calls cannot be made from the Icechunk loop itself")

    async def call() -> T:
        return await make()

    return asyncio.run_coroutine_threadsafe(call(), loop).result()
