"""One message per read: what a read of an array (or a whole Dask computation) fetched.

A read that is logged (an array opened with ``verbose=True``, :func:`xzaro.enable_verbose`,
or logging configured to show xzaro's INFO records) is summed up in one INFO message:

* a direct read (``a[...]``, ``read_region``, a read of xarray outside Dask): one message per
  call;
* the reads of a Dask computation on a local scheduler (threads, synchronous): one message at
  the computation's end, naming every array it read;
* the reads of Dask tasks on a ``dask.distributed`` worker: one message per worker once it
  has read nothing for :data:`IDLE_SECONDS` (workers are other processes; each writes its
  own stderr).

While a local computation runs, every logged read of the process counts in it (a direct read
from another thread too); the tasks of Dask's ``processes`` scheduler log as direct reads, in
their processes.

A message gives the chunks read (inner chunks of a sharded array), their decoded bytes, how
many of them were missing (read as the fill value), the
network requests made and how many of them were retries (this process's requests during the
read, :func:`xzaro.stores.request_stats`; local files make none), and the seconds taken.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from xzaro.indexing import Box
from xzaro.log import info, on_verbose, reads_logged, verbose_scope
from xzaro.meta import ZaroMeta
from xzaro.stores.network import request_stats

#: A worker's reads are summed up once it has read nothing for this long.
IDLE_SECONDS = 1.0

R = TypeVar("R", bound=Callable[..., np.ndarray])

#: The chunks found missing (read as fill) by the logged read running in this context.
_missing: ContextVar[list[int] | None] = ContextVar("xzaro_missing_chunks", default=None)


def note_missing(count: int) -> None:
    """Count ``count`` chunks a read found missing (read as fill) in its message, if it is
    logged."""
    found = _missing.get()
    if found is not None:
        found[0] += count


class LoggedArray(Protocol):
    """What a logged read knows of its array (a :class:`~xzaro.array.ZaroArray`)."""

    meta: ZaroMeta
    verbose: Any

    @property
    def url(self) -> str:
        """The store URL and the array's path."""
        ...


@dataclass
class _Tally:
    """Reads summed up for one message."""

    started: float = field(default_factory=time.perf_counter)
    last: float = 0.0
    requests: tuple[int, int] = (0, 0)  # request_stats() when the tally started
    arrays: dict[str, list[int]] = field(default_factory=dict)  # url: [chunks, bytes, missing]
    verbose: bool = False

    def add(self, array: LoggedArray, chunks: int, nbytes: int, missing: int = 0) -> None:
        counts = self.arrays.setdefault(array.url, [0, 0, 0])
        counts[0] += chunks
        counts[1] += nbytes
        counts[2] += missing
        self.verbose = self.verbose or bool(array.verbose)
        self.last = time.perf_counter()

    def emit(self, what: str, end: float | None = None) -> None:
        if not self.arrays:
            return
        stats = request_stats()
        requests, retries = stats.requests - self.requests[0], stats.retries - self.requests[1]
        parts = [
            f"{_plural(c, 'chunk')} ({_size(b)}{f', {m} missing: fill' if m else ''}) of {url}"
            for url, (c, b, m) in self.arrays.items()
        ]
        seconds = (end if end is not None else time.perf_counter()) - self.started
        with verbose_scope(self.verbose):
            info(
                "%s %s in %.3f s: %s (%d retried)",
                what,
                " and ".join(parts),
                seconds,
                _plural(requests, "request"),
                retries,
            )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _new_tally() -> _Tally:
    stats = request_stats()
    return _Tally(requests=(stats.requests, stats.retries))


# --- Dask computations on local schedulers -------------------------------------------------------


class _Computations:
    """The reads of the local Dask computations running now (nested ones count in the outer)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.tally: _Tally | None = None

    def start(self) -> None:
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                self.tally = _new_tally()

    def finish(self) -> None:
        with self.lock:
            self.depth = max(0, self.depth - 1)
            if self.depth:
                return
            tally, self.tally = self.tally, None
        if tally is not None:
            tally.emit("a Dask computation read")

    def add(self, array: LoggedArray, chunks: int, nbytes: int, missing: int) -> bool:
        """Count a read in the running computation; ``False`` when none runs."""
        with self.lock:
            if self.tally is None:
                return False
            self.tally.add(array, chunks, nbytes, missing)
            return True


_computations = _Computations()
_watching = threading.Lock()
_watcher: Any = None


def watch_computations() -> None:
    """Have Dask's local schedulers tell when a computation starts and ends (once per process;
    nothing without Dask)."""
    global _watcher
    if _watcher is not None:
        return
    with _watching:
        if _watcher is not None:
            return
        try:
            from dask.callbacks import Callback
        except ImportError:
            return

        class ComputationReads(Callback):
            def _start(self, dsk: Any) -> None:
                _computations.start()

            def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
                _computations.finish()

        _watcher = ComputationReads()
        _watcher.register()


on_verbose(watch_computations)


# --- dask.distributed workers -------------------------------------------------------------------


class _WorkerReads:
    """The reads of each ``dask.distributed`` worker of this process, summed up when idle."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tallies: dict[str, _Tally] = {}
        self.timer: threading.Timer | None = None

    def add(self, worker: str, array: LoggedArray, chunks: int, nbytes: int, missing: int) -> None:
        with self.lock:
            tally = self.tallies.get(worker)
            if tally is None:
                tally = self.tallies[worker] = _new_tally()
            tally.add(array, chunks, nbytes, missing)
            if self.timer is None:
                self._schedule(IDLE_SECONDS)

    def _schedule(self, seconds: float) -> None:
        self.timer = threading.Timer(seconds, self._flush)
        self.timer.daemon = True
        self.timer.start()

    def _flush(self) -> None:
        now = time.perf_counter()
        with self.lock:
            idle = {w: t for w, t in self.tallies.items() if now - t.last >= IDLE_SECONDS}
            for worker in idle:
                del self.tallies[worker]
            self.timer = None
            if self.tallies:
                wait = min(t.last for t in self.tallies.values()) + IDLE_SECONDS - now
                self._schedule(max(0.05, wait))
        for worker, tally in idle.items():
            tally.emit(f"dask worker {worker} read", end=tally.last)


_workers = _WorkerReads()


def _distributed_worker() -> str | None:
    """The address of the ``dask.distributed`` worker running this thread's task, if any."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return str(get_worker().address)
    except ValueError:  # not in a worker's task
        return None


# --- the reads ------------------------------------------------------------------------------------


def summarized_read(read_box: R) -> R:
    """Decorate ``ZaroArray.read_box``: when the array's reads are logged, time the read, run
    it in the array's verbose scope and count it (see the module docstring)."""

    @functools.wraps(read_box)
    def read(array: LoggedArray, box: Box, out: np.ndarray | None = None) -> np.ndarray:
        if not reads_logged(array.verbose):
            return read_box(array, box, out)
        if "dask" in sys.modules:
            watch_computations()
        before = _new_tally()
        found = [0]
        token = _missing.set(found)
        try:
            with verbose_scope(array.verbose):
                result = read_box(array, box, out)
        finally:
            _missing.reset(token)
        chunks = 0 if result.size == 0 else sum(1 for _ in array.meta.chunk_grid.pieces(box))
        if _computations.add(array, chunks, result.nbytes, found[0]):
            return result
        worker = _distributed_worker()
        if worker is not None:
            _workers.add(worker, array, chunks, result.nbytes, found[0])
            return result
        before.add(array, chunks, result.nbytes, found[0])
        before.emit("read")
        return result

    return read  # type: ignore[return-value]
