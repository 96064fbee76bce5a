"""The ``xzaro`` logger, and ``verbose``: xzaro's messages on stderr for what asked for them.

xzaro logs on the standard ``logging.getLogger("xzaro")`` and configures nothing on it but a
``NullHandler``: a program that configures logging (``basicConfig``, a level or handlers on
``"xzaro"``) gets xzaro's records as it configured them, and xzaro never changes a level.

``verbose`` shows the INFO messages as ``[zaro] ...`` lines on stderr without any
configuration:

* ``verbose=True`` on an open (:func:`xzaro.open_array`, ``xr.open_dataset(...,
  engine="zaro", verbose=True)``) covers that call and the objects it returns (their reads,
  also in Dask's threads or on a worker, where the flag travels with the pickled array), not
  other opens of the process;
* :func:`enable_verbose` turns it on for everything in this process, ``enable_verbose(False)``
  turns every verbose output off (objects opened with ``verbose=True`` before included) and
  removes xzaro's stderr handler.

The stderr handler is added to ``"xzaro"`` when a verbose message is first written; a filter
lets through it only messages in a verbose scope. A verbose message reaches stderr even where the
configured levels would drop INFO records (the root logger's default WARNING), unless a level
was set on ``"xzaro"`` itself: that level is then obeyed by the verbose output too, so
``logging.getLogger("xzaro").setLevel(logging.WARNING)`` silences xzaro whatever an open asks.
Where logging is configured to show xzaro's INFO records, ``verbose`` adds its stderr lines
to them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

logger = logging.getLogger("xzaro")
logger.addHandler(logging.NullHandler())

F = TypeVar("F", bound=Callable[..., Any])

_scope: ContextVar[bool] = ContextVar("xzaro_verbose", default=False)
_lock = threading.Lock()


class _State:
    on = False  # enable_verbose(True)
    epoch = 0  # bumped by enable_verbose(False): flags of earlier opens turn quiet
    handler: logging.Handler | None = None
    #: called when verbose is asked for (the read summaries start watching Dask)
    hooks: list[Callable[[], None]] = []


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes ``[zaro] message`` to whatever ``sys.stderr`` is when a record comes (a test's
    capture or a notebook's stream), for records in a verbose scope only."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("[zaro] %(message)s"))
        self.addFilter(lambda record: in_verbose_scope())

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """The stream is always the current ``sys.stderr``."""


class VerboseFlag:
    """Whether an object opened with ``verbose=True`` logs: true until
    ``enable_verbose(False)``. Unpickled in another process, it is as it was when pickled."""

    __slots__ = ("_epoch",)

    def __init__(self, on: bool = False) -> None:
        self._epoch = _State.epoch if on else -1
        if on:
            _run_hooks()

    @classmethod
    def of(cls, verbose: bool | VerboseFlag) -> VerboseFlag:
        """``verbose`` itself if it is a flag, else a new flag."""
        return verbose if isinstance(verbose, VerboseFlag) else cls(bool(verbose))

    def __bool__(self) -> bool:
        return self._epoch == _State.epoch

    def __reduce__(self) -> tuple[Any, ...]:
        return (VerboseFlag, (bool(self),))

    def __repr__(self) -> str:
        return f"VerboseFlag({bool(self)})"


def in_verbose_scope() -> bool:
    """Whether a message logged here and now goes to stderr (:func:`enable_verbose`, or inside
    a call or a read that asked for ``verbose``)."""
    return _State.on or _scope.get()


@contextlib.contextmanager
def verbose_scope(verbose: bool | VerboseFlag) -> Iterator[None]:
    """Within the block, messages of this thread (and of the tasks it starts) are verbose if
    ``verbose`` is true."""
    if not verbose:
        yield
        return
    token = _scope.set(True)
    try:
        yield
    finally:
        _scope.reset(token)


def verbose_call(func: F) -> F:
    """Decorate an open function: its ``verbose=`` keyword scopes its messages to the call."""

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        with verbose_scope(kwargs.get("verbose", False)):
            return func(*args, **kwargs)

    return call  # type: ignore[return-value]


def enable_verbose(verbose: bool = True) -> None:
    """Write xzaro's INFO messages to stderr as ``[zaro] ...`` lines for everything in this
    process (``True``), or stop every verbose output and remove xzaro's stderr handler
    (``False``; objects opened with ``verbose=True`` turn quiet too).

    Neither changes the level of the ``"xzaro"`` logger; configured handlers and levels keep
    working as configured.
    """
    if verbose:
        _State.on = True
        _handler()
        _run_hooks()
        return
    with _lock:
        _State.on = False
        _State.epoch += 1
        if _State.handler is not None:
            logger.removeHandler(_State.handler)
            _State.handler = None


def reads_logged(verbose: VerboseFlag) -> bool:
    """Whether the reads of an object opened with ``verbose`` are logged at all (asked on
    every read: the cheap checks first)."""
    return _State.on or verbose._epoch == _State.epoch or logger.isEnabledFor(logging.INFO)


def _handler() -> logging.Handler:
    with _lock:
        if _State.handler is None:
            _State.handler = _StderrHandler()
            logger.addHandler(_State.handler)
        return _State.handler


def _log(level: int, msg: str, args: tuple[Any, ...]) -> None:
    verbose = in_verbose_scope()
    if logger.isEnabledFor(level):
        if verbose:
            _handler()
        logger.log(level, msg, *args, stacklevel=3)
    elif verbose and logger.level == logging.NOTSET and logging.root.manager.disable < level:
        # the configured levels drop the record; only xzaro's own handler gets it
        record = logger.makeRecord(logger.name, level, "xzaro", 0, msg, args, None)
        _handler().handle(record)


def info(msg: str, *args: object) -> None:
    """Log ``msg % args`` at INFO level on the xzaro logger (see the module docstring for where
    it goes)."""
    _log(logging.INFO, msg, args)


def on_verbose(hook: Callable[[], None]) -> None:
    """Call ``hook()`` whenever verbose output is asked for (an open with ``verbose=True``,
    :func:`enable_verbose`); a hook must be cheap once it has run."""
    _State.hooks.append(hook)


def _run_hooks() -> None:
    for hook in _State.hooks:
        hook()
