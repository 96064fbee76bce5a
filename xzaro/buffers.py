"""Reusable memory: per-thread scratch buffers, pooled large buffers, zero-filled buffers.

Fresh memory costs a page fault per page, often more than decoding or copying into it, so hot
loops borrow memory from here instead of allocating it anew.
"""

from __future__ import annotations

import errno
import math
import threading
import weakref
from typing import Any

from xzaro.concurrency import after_fork

#: Largest array kept as a reusable per-thread buffer by :func:`thread_buffer`.
_BUFFER_LIMIT = 32 * 2**20
#: Largest byte buffer a thread keeps for reuse (:func:`thread_bytes`).
_BYTES_LIMIT = 128 * 2**20
#: Arrays at least this large get their own mapping in :func:`zeroed_buffer`.
_MAPPED_BYTES = 4 * 2**20
_threads = threading.local()


def thread_buffer(shape: tuple[int, ...], dtype: Any, purpose: str = "") -> Any:
    """A per-thread scratch array of ``shape`` and ``dtype``, reused across calls.

    The contents are valid until the same thread asks again for the same
    ``(shape, dtype, purpose)``; arrays larger than 32 MiB are not kept.
    """
    import numpy as np

    dtype = np.dtype(dtype)
    key = (tuple(shape), dtype, purpose)  # not dtype.str: "|V12" names every 12-byte struct
    cache = getattr(_threads, "arrays", None)
    if cache is None:
        cache = _threads.arrays = {}
    buf = cache.get(key)
    if buf is None:
        buf = np.empty(shape, dtype=dtype)
        if buf.nbytes <= _BUFFER_LIMIT:
            if len(cache) > 8:
                cache.clear()
            cache[key] = buf
    return buf


def thread_bytes(size: int) -> memoryview:
    """``size`` bytes of this thread's reusable byte buffer (contents undefined).

    The buffer is allocated once per thread and grown when needed (at least 1 MiB; a buffer
    larger than 128 MiB is not kept). The view is valid until the thread's next call.
    """
    buf = getattr(_threads, "bytes", None)
    if buf is None or len(buf) < size:
        import numpy as np

        buf = np.empty(max(size, 1 << 20), dtype=np.uint8)
        if len(buf) <= _BYTES_LIMIT:  # larger objects get a buffer of their own
            _threads.bytes = buf
    return buf.data[:size]


class BufferPool:
    """Large byte buffers, reused once nothing refers to them any more.

    Each buffer is handed out as an array with a finalizer: it returns to the pool only when the
    last view into it is gone, so a reader never sees it overwritten. At most ``limit`` bytes of
    idle buffers are kept. A forked child starts with an empty pool.

    Parameters
    ----------
    limit
        The most bytes of idle buffers kept.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free: list[Any] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every idle buffer (buffers handed out before are not taken back)."""
        self._free = []
        self._lock = threading.Lock()

    def take(self, size: int) -> Any:
        """A ``uint8`` array of ``size`` bytes (contents undefined), owned by the caller."""
        import numpy as np

        with self._lock:
            free = self._free
            best = None  # the smallest idle buffer that fits without wasting half of it
            for i, idle in enumerate(free):
                if size <= len(idle) <= 2 * size and (best is None or len(idle) < len(free[best])):
                    best = i
            buf = None if best is None else free.pop(best)
        if buf is None:
            buf = np.empty(size, dtype=np.uint8)
        out = buf[:size]
        weakref.finalize(out, self._give, buf, free)
        return out

    def _give(self, buf: Any, free: list[Any]) -> None:
        with self._lock:
            # ``free`` is another list once the pool was reset: the buffer is not taken back
            if free is self._free and sum(len(b) for b in free) + len(buf) <= self.limit:
                free.append(buf)


#: The pool of :func:`pooled_bytes`.
_pool = BufferPool(256 * 2**20)
after_fork(_pool.reset)


def pooled_bytes(size: int) -> Any:
    """A ``uint8`` array of ``size`` bytes from the process's :class:`BufferPool`."""
    return _pool.take(size)


def zeroed_buffer(shape: tuple[int, ...], dtype: Any) -> Any:
    """A new zero-filled array in ordinary (4 KiB) pages, for large long-lived buffers.

    numpy advises transparent huge pages for large arrays; where the kernel compacts memory to
    serve such faults (``defrag=madvise``), that costs more system time than the work done in
    the buffer. Large arrays therefore get an anonymous mapping advised against huge pages;
    small ones come from ``np.zeros``.
    """
    import mmap

    return _mapped_array(shape, dtype, getattr(mmap, "MADV_NOHUGEPAGE", None), zeroed=True)


def fresh_array(shape: tuple[int, ...], dtype: Any) -> Any:
    """A new array for a read to fill, in the pages the system's transparent huge page policy
    gives (its contents are undefined, as ``np.empty``'s).

    numpy advises huge pages for every array of 4 MiB or more, whatever the system's policy.
    On a virtual machine that hands freed memory back to its host, the first touch of such
    pages cost about five times that of 4 KiB pages (2 GiB: 2.7-3.4 s against 0.5 s), more
    than decoding the data into them. Large outputs therefore get an anonymous mapping of
    their own, without advice (``enabled=always`` still gives huge pages).
    """
    return _mapped_array(shape, dtype, None, zeroed=False)


def _mapped_array(shape: tuple[int, ...], dtype: Any, advice: int | None, zeroed: bool) -> Any:
    """An array of its own anonymous mapping (zero-filled), advised ``advice``; small arrays,
    arrays of Python objects (and, where ``MADV_NOHUGEPAGE`` is asked for but unknown, large
    ones) come from numpy."""
    import mmap

    import numpy as np

    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _MAPPED_BYTES or dtype.hasobject or (zeroed and advice is None):
        return np.zeros(shape, dtype=dtype) if zeroed else np.empty(shape, dtype=dtype)
    # anonymous mappings are zero-filled; private ones fault and free faster than the shared
    # memory mmap's default (MAP_SHARED) gives
    try:
        mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except OSError as exc:
        if exc.errno == errno.ENOMEM:  # numpy's allocations say MemoryError
            raise MemoryError(f"cannot map {nbytes} bytes: {exc.strerror}") from None
        raise
    if advice is not None:
        mapping.madvise(advice)
    return np.frombuffer(mapping, dtype=dtype).reshape(shape)
