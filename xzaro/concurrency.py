"""The process's shared thread pool, and the one place where per-process state is reset after fork.

Numcodecs, zlib and file reads release the GIL, so threads give real parallelism. The pool is
created on first use. A child made by ``fork`` inherits the parent's memory but none of its
threads: a pool whose threads do not exist, a lock another thread held, an open connection. One
hook, registered with :func:`os.register_at_fork`, drops all of them in the child: the pool, the
values of every :class:`ProcessLocal`, and whatever a module registered with :func:`after_fork`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Hook = TypeVar("Hook", bound=Callable[[], object])

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_fork_hooks: list[Callable[[], object]] = []
_process_locals: weakref.WeakSet[ProcessLocal[Any]] = weakref.WeakSet()


def after_fork(hook: Hook) -> Hook:
    """Run ``hook`` in every child process right after ``fork``; returns ``hook`` (a decorator).

    For module-level state that must not cross a fork: caches of open file systems, pools,
    locks. The hook runs in the child only, before any other code of the child.
    """
    _fork_hooks.append(hook)
    return hook


def _reset_after_fork() -> None:
    for local in list(_process_locals):
        local.value = None
    for hook in _fork_hooks:
        hook()


os.register_at_fork(after_in_child=_reset_after_fork)


class ProcessLocal(Generic[T]):
    """One value per process: a child made by ``fork`` starts with ``value`` set to ``None``.

    For what an object opens lazily and must reopen in a child (an fsspec file system and its
    event loop, references read in this process), as :class:`threading.local` is per thread.
    """

    __slots__ = ("__weakref__", "value")

    def __init__(self) -> None:
        self.value: T | None = None
        _process_locals.add(self)


@after_fork
def _forget_pool() -> None:
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()


def default_workers() -> int:
    """Threads used for decoding and local I/O: one per core (``XZARO_THREADS`` overrides).

    Decoding is CPU-bound and local reads come mostly from the page cache, so more threads than
    cores only thrash the caches. Remote stores get their concurrency from async requests, not
    from this pool.
    """
    env = os.environ.get("XZARO_THREADS")
    if env:
        return max(1, int(env))
    return max(2, min(32, _cores()))


@functools.cache
def _cores() -> int:
    return os.cpu_count() or 2  # asked once: about 20 us a call, and every read asks


# whether this Python has a GIL (free-threaded builds can run without one)
_GIL = getattr(sys, "_is_gil_enabled", lambda: True)()
#: Held by a thread decoding a run of tiny chunks (a whole shard of 1 KiB inner chunks): each
#: decode lets go of Python's GIL for a few microseconds, and two threads doing that at once hand
#: the GIL back and forth at every call, slower than one thread alone (16 shards of 256 inner
#: chunks of 1 KiB: 62 ms on two threads, 43 ms on one). Other threads wait here instead, and
#: what they do meanwhile that needs no such run (network requests, large chunks) goes on.
#: Without a GIL (a free-threaded Python) there is nothing to trade, and the lock is none.
TINY_DECODES: contextlib.AbstractContextManager[Any] = (
    threading.RLock() if _GIL else contextlib.nullcontext()
)
#: Inner chunks that decode to at most this many bytes are decoded under :data:`TINY_DECODES`.
TINY_DECODE_BYTES = 16 * 2**10


#: The name prefix of the shared pool's threads. :func:`concurrent_map` runs inline on any
#: thread whose name starts with it, so a caller's own threads named so keep their work.
POOL_THREADS = "xzaro"


def thread_pool() -> ThreadPoolExecutor:
    """Return this process's shared pool, creating it on first use."""
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(default_workers(), thread_name_prefix=POOL_THREADS)
            pool = _pool
    return pool


def on_pool_thread() -> bool:
    """Whether the calling thread is one of the shared pool's (or named as one)."""
    return threading.current_thread().name.startswith(POOL_THREADS)


def concurrent_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Apply ``fn`` to every item on the shared pool and return the results in order.

    Runs inline for zero or one item (no hand-off cost), and inline when already on a pool
    thread, so nested use can never deadlock the pool.
    """
    seq: Sequence[T] = items if isinstance(items, Sequence) else list(items)
    if len(seq) <= 1 or on_pool_thread():
        return [fn(x) for x in seq]
    # Many small tasks go in batches: a pool hand-off costs more than reading a tiny chunk.
    batches = 4 * default_workers()
    if len(seq) <= batches:
        return _settled(fn, seq)
    size = -(-len(seq) // batches)
    parts = [seq[i : i + size] for i in range(0, len(seq), size)]
    return [r for part in _settled(lambda part: [fn(x) for x in part], parts) for r in part]


def _settled(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``fn`` over ``items`` on the pool (see :func:`settled`)."""
    return settled([thread_pool().submit(fn, x) for x in items])


def settled(futures: Sequence[Future[R]]) -> list[R]:
    """The results of ``futures`` in order; on a failure, the first error once none still runs.

    Futures not yet started are cancelled and running ones are waited for, so a caller that
    cleans up after the error (or a process that exits on it) never races a write still in
    flight.
    """
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        wait(futures)
        raise


def handed_to_pool(
    produce: Callable[[Callable[[int, T], None]], object], fn: Callable[[int, T], None]
) -> None:
    """Run ``produce(hand)``, which calls ``hand(i, item)`` from any of its threads as items
    come, and ``fn(i, item)`` on the shared pool for each: the work on the first item starts
    as it comes, not once all have. Returns once every ``fn`` has run; on a failure of
    ``produce`` or of an ``fn``, raises the first once none still runs. On a pool thread
    ``fn`` runs in ``produce``'s thread instead (the pool never waits for itself)."""
    if on_pool_thread():
        produce(fn)
        return
    pool = thread_pool()
    futures: list[Future[None]] = []

    def hand(i: int, item: T) -> None:
        futures.append(pool.submit(fn, i, item))

    try:
        produce(hand)
    except BaseException:
        for f in futures:
            f.cancel()
        wait(futures)
        raise
    settled(futures)


async def bounded_gather(jobs: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run the coroutine functions ``jobs`` with at most ``limit`` at once, results in order.

    On the first failure the other jobs are cancelled and the failure is raised.
    """
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    tasks = [asyncio.ensure_future(one(job)) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
