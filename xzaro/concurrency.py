"""One shared, lazily created thread pool per process for I/O and decoding.

Numcodecs, zlib and file reads release the GIL, so threads give real parallelism. The pool is
created on first use and re-created after ``fork`` so that Dask worker processes never inherit a
pool whose threads do not exist in the child.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


def default_workers() -> int:
    """Threads used for decoding and local I/O: one per core (``XZARO_THREADS`` overrides).

    Decoding is CPU-bound and local reads come mostly from the page cache, so more threads than
    cores only thrash the caches (measured: 2 threads beat 4 by 25% on a 2-core machine).
    Remote stores get their concurrency from async requests, not from this pool.
    """
    env = os.environ.get("XZARO_THREADS")
    if env:
        return max(1, int(env))
    return max(2, min(32, os.cpu_count() or 2))


def thread_pool() -> ThreadPoolExecutor:
    """Return this process's shared pool, creating it on first use."""
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_pid != pid:
        with _lock:
            if _pool is None or _pool_pid != pid:
                _pool = ThreadPoolExecutor(default_workers(), thread_name_prefix="xzaro")
                _pool_pid = pid
    return _pool


def concurrent_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Apply ``fn`` to every item on the shared pool and return the results in order.

    Runs inline for zero or one item (no hand-off cost), and inline when already on a pool
    thread, so nested use can never deadlock the pool.
    """
    seq: Sequence[T] = items if isinstance(items, Sequence) else list(items)
    if len(seq) <= 1 or threading.current_thread().name.startswith("xzaro"):
        return [fn(x) for x in seq]
    pool = thread_pool()
    # Many small tasks go in batches: a pool hand-off costs more than reading a tiny chunk.
    batches = 4 * default_workers()
    if len(seq) <= batches:
        return list(pool.map(fn, seq))
    size = -(-len(seq) // batches)
    parts = [seq[i : i + size] for i in range(0, len(seq), size)]
    return [r for part in pool.map(lambda part: [fn(x) for x in part], parts) for r in part]


#: Largest array kept as a reusable per-thread buffer.
_BUFFER_LIMIT = 32 * 2**20
_buffers = threading.local()


def thread_buffer(shape: tuple[int, ...], dtype: Any, purpose: str = "") -> Any:
    """A per-thread scratch array of ``shape`` and ``dtype``, reused across calls.

    Fresh memory costs a page fault per page, more than decoding or copying a chunk into it;
    hot loops borrow this instead. The contents are valid until the same thread asks again for
    the same ``(shape, dtype, purpose)``; arrays larger than 32 MiB are not kept.
    """
    import numpy as np

    dtype = np.dtype(dtype)
    key = (tuple(shape), dtype, purpose)  # not dtype.str: "|V12" names every 12-byte struct
    cache = getattr(_buffers, "cache", None)
    if cache is None:
        cache = _buffers.cache = {}
    buf = cache.get(key)
    if buf is None:
        buf = np.empty(shape, dtype=dtype)
        if buf.nbytes <= _BUFFER_LIMIT:
            if len(cache) > 8:
                cache.clear()
            cache[key] = buf
    return buf


#: Arrays at least this large get their own mapping in :func:`zeroed_buffer`.
_MAPPED_BYTES = 4 * 2**20


def zeroed_buffer(shape: tuple[int, ...], dtype: Any) -> Any:
    """A new zero-filled array in ordinary (4 KiB) pages, for large long-lived buffers.

    numpy advises transparent huge pages for large arrays; where the kernel compacts memory to
    serve such faults (``defrag=madvise``), a streaming buffer cost twice the system time of
    the whole stream (measured). Large arrays therefore get an anonymous mapping advised
    against huge pages; small ones come from ``np.zeros``.
    """
    import mmap

    import numpy as np

    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if nbytes < _MAPPED_BYTES or advice is None:
        return np.zeros(shape, dtype=dtype)
    mapping = mmap.mmap(-1, nbytes)  # anonymous mappings are zero-filled
    mapping.madvise(advice)
    return np.frombuffer(mapping, dtype=dtype).reshape(shape)
