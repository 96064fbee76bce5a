"""obstore's runtime in this process: the threads that make its requests (one pool per limit of
requests in flight), the clients opened so far, and whether the runtime survived a ``fork``.

obstore's runtime does not survive ``fork``: once it has run a request, every request of a
forked child hangs. A child made by ``fork`` therefore checks the runtime once
(:func:`runtime_alive`: a request to an in-memory store, with a deadline), and the stores read
and write through fsspec if it is dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from xzaro.concurrency import after_fork, settled

T = TypeVar("T")

#: How long a forked child waits for obstore's runtime to answer before it counts it as dead.
#: A live runtime answers the probe (an in-memory put and head) in milliseconds; a child that
#: gives up too early only reads through fsspec, which is correct too, and every child forked by
#: a process pool pays this once now that obstore is the default client.
FORK_PROBE_TIMEOUT = 1.0

#: The name of the threads that make obstore's requests.
THREAD_PREFIX = "obstore-requests"


def _settled(pool: ThreadPoolExecutor, jobs: Sequence[Callable[[], T]]) -> list[T]:
    """The results of ``jobs`` run on ``pool``, in order; on a failure, the first error once
    no job still runs (jobs not yet started are cancelled). Each job runs in a copy of the
    caller's context, so a verbose call's retries are logged from the pool's threads too."""
    return settled([pool.submit(contextvars.copy_context().run, job) for job in jobs])


_state_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}
_opened: dict[Hashable, Any] = {}
#: Whether obstore was loaded when this process was forked (its runtime may then be dead).
_forked_with_obstore = False
_runtime_alive: bool | None = None


@after_fork
def _forget_requests() -> None:
    global _state_lock, _forked_with_obstore, _runtime_alive
    _pools.clear()
    _opened.clear()
    _state_lock = threading.Lock()
    _forked_with_obstore = _forked_with_obstore or "obstore" in sys.modules
    _runtime_alive = None


def run_requests(jobs: Sequence[Callable[[], T]], limit: int) -> list[T]:
    """Run the blocking request functions ``jobs`` with at most ``limit`` in flight in the
    process (for every store with that limit), and return their results in order.

    obstore's blocking calls release the GIL while they wait, so one thread per request in
    flight costs little; its asyncio API costs several times more per request (measured).
    """
    if threading.current_thread().name.startswith(THREAD_PREFIX):
        return [job() for job in jobs]  # nested: never wait for the pool from inside it
    with _state_lock:
        pool = _pools.get(limit)
        if pool is None:
            pool = _pools[limit] = ThreadPoolExecutor(limit, thread_name_prefix=THREAD_PREFIX)
    return _settled(pool, jobs)


def runtime_alive() -> bool:
    """Whether obstore can make requests in this process (see the module notes on ``fork``)."""
    global _runtime_alive
    if not _forked_with_obstore:
        return True
    if _runtime_alive is None:
        _runtime_alive = _probe_runtime()
    return _runtime_alive


def _probe_runtime() -> bool:
    import obstore
    from obstore.store import MemoryStore

    async def probe() -> None:
        store = MemoryStore()
        await obstore.put_async(store, "probe", b"1")
        await obstore.head_async(store, "probe")

    done = threading.Event()

    def run() -> None:
        with contextlib.suppress(Exception):  # an error is an answer too: the runtime runs
            asyncio.run(probe())
        done.set()

    threading.Thread(target=run, name="obstore-probe", daemon=True).start()
    return done.wait(FORK_PROBE_TIMEOUT)


def opened_client(key: Hashable, open_client: Callable[[], Any]) -> Any:
    """The client opened for ``key`` in this process, opening it with ``open_client`` the
    first time (clients are dropped in a forked child)."""
    with _state_lock:
        client = _opened.get(key)
        if client is None:
            client = _opened[key] = open_client()
        return client
