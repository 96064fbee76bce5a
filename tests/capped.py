"""Run a function in a child process with a memory and a time cap.

Tests of inputs that could hang the reader or allocate without bound call the code under test
through :func:`run_capped`, so a regression fails one test instead of taking the machine down.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GiB = 1024**3


@dataclass(frozen=True)
class Outcome:
    """What happened in the child: ``"ok"`` (with ``value``), ``"raised"`` (with the exception's
    type name, its MRO names and message), ``"killed"`` (a signal or the address-space cap) or
    ``"timeout"``."""

    kind: str
    value: Any = None
    error_type: str | None = None
    error_mro: tuple[str, ...] = ()
    message: str = ""

    def raised(self, name: str) -> bool:
        """Whether the child raised an exception that is (a subclass of) the class ``name``."""
        return self.kind == "raised" and name in self.error_mro


def _address_space() -> int:
    """The bytes of address space this process holds now (``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _fresh_dask_threads() -> None:
    """Drop the thread pools a forked child inherits from Dask's threaded scheduler without their
    threads (a pool the test process had used would take the child's tasks and never run them):
    the child's first compute makes its own."""
    threaded = sys.modules.get("dask.threaded")
    if threaded is not None:
        threaded.default_pool = None
        threaded.pools.clear()
        threaded.pools_lock = threading.Lock()


def _child(conn: Any, mem_bytes: int, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    _fresh_dask_threads()
    # The forked child starts with the test process's address space; the cap is on top of it.
    limit = _address_space() + mem_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        value = fn(*args, **kwargs)
    except BaseException as e:
        mro = tuple(c.__name__ for c in type(e).__mro__)
        text = f"{e}\n{traceback.format_exc(limit=8)}"
        conn.send(Outcome("raised", None, type(e).__name__, mro, text))
    else:
        try:
            conn.send(Outcome("ok", value))
        except Exception:
            conn.send(Outcome("ok", repr(value)))
    conn.close()


def run_capped(
    fn: Callable[..., Any],
    *args: Any,
    mem_bytes: int = 2 * GiB,
    timeout: float = 60.0,
    **kwargs: Any,
) -> Outcome:
    """Call ``fn(*args, **kwargs)`` in a forked child that may grow by at most ``mem_bytes`` of
    address space and answer within ``timeout`` seconds; the child is killed when the time is up."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, mem_bytes, fn, args, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            return Outcome("timeout", message=f"no answer within {timeout} s")
        try:
            return parent.recv()
        except EOFError:
            proc.join(5)
            return Outcome("killed", message=f"exit code {proc.exitcode}")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
