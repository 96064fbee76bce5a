"""Objects fetched before a read asks for them: small, short-lived, each given out once.

A reader that fetches the neighbourhood of the chunks one Dask task needs (``xzaro.read_ahead``)
leaves the neighbours here for the tasks that ask next, so a graph of thousands of chunk-sized
tasks makes one round of requests per neighbourhood instead of one per task. An entry is the
stored bytes of an object (``part=None``) or of one inner chunk of a shard (``part`` = its
position in the shard index); ``None`` records that the object does not exist.

What keeps an entry from ever being read stale:

* it is given out once (:func:`take` removes it), so it stands for one read that happened a
  moment earlier, never for a second read of the same chunk;
* it belongs to the computation that fetched it: :func:`next_generation` (called when Dask's
  local schedulers start a computation) retires every entry held, so a second computation of
  the same graph reads the store again;
* it expires :data:`TTL` seconds after it was fetched (the only bound under schedulers that
  do not say when a computation starts, such as ``dask.distributed``);
* every write or delete through an xzaro store drops the entries of that store URL and key
  (:func:`forget`), so a read that follows a write in this process never sees the old bytes.

Memory is bounded by :data:`MAX_BYTES`: the oldest entries go first. An entry that expires or is
evicted before anyone takes it is counted as wasted for its owner (:func:`wasted`), so a reader
whose neighbourhoods do not match the order tasks run in can fetch less ahead.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from typing import Any

from xzaro.concurrency import after_fork

#: Seconds an entry stays valid after it was fetched.
TTL = 10.0
#: Bytes held at most (stored bytes, so usually less than the decoded chunks).
MAX_BYTES = 128 * 2**20

#: ``(store URL, key, part)``
EntryKey = tuple[str, str, int | None]
#: Returned by :func:`take` when nothing is held for the key.
ABSENT: Any = object()

_lock = threading.Lock()
#: entry key -> (bytes or None, fetched at, size, owner, generation); oldest first
_entries: OrderedDict[EntryKey, tuple[Any, float, int, object, int]] = OrderedDict()
#: (store URL, key) -> the parts held for that object
_parts: dict[tuple[str, str], set[int | None]] = {}
_wasted: defaultdict[object, int] = defaultdict(int)
_held = 0
_generation = 0


def _drop(entry: EntryKey, *, waste: bool) -> None:
    global _held
    value = _entries.pop(entry)
    _held -= value[2]
    parts = _parts[entry[:2]]
    parts.discard(entry[2])
    if not parts:
        del _parts[entry[:2]]
    if waste:
        _wasted[value[3]] += 1


def _expire(now: float) -> None:
    while _entries:
        entry, value = next(iter(_entries.items()))
        if now - value[1] < TTL and _held <= MAX_BYTES and value[4] == _generation:
            return
        _drop(entry, waste=True)


def put(entries: Iterable[tuple[EntryKey, Any]], owner: object) -> None:
    """Hold each ``(entry key, bytes or None)`` until taken, expired, evicted or forgotten."""
    global _held
    now = time.monotonic()
    with _lock:
        for entry, data in entries:
            if entry in _entries:  # fetched again before anyone took it
                _drop(entry, waste=True)
            size = 0 if data is None else memoryview(data).nbytes
            _entries[entry] = (data, now, size, owner, _generation)
            _parts.setdefault(entry[:2], set()).add(entry[2])
            _held += size
        _expire(now)


def take(entry: EntryKey) -> Any:
    """The bytes held for ``entry`` (``None``: the object does not exist), removed from the
    cache; :data:`ABSENT` when nothing valid is held."""
    if not _entries:  # the common case, without the lock
        return ABSENT
    with _lock:
        _expire(time.monotonic())
        value = _entries.get(entry)
        if value is None:
            return ABSENT
        _drop(entry, waste=value[4] != _generation)
        return value[0] if value[4] == _generation else ABSENT


def next_generation() -> None:
    """Retire everything held: a new computation starts, and reads the store afresh."""
    global _generation
    with _lock:
        _generation += 1


def forget(url: str, keys: Iterable[str]) -> None:
    """Drop what is held for ``keys`` of the store at ``url`` (they are being written)."""
    if not _entries:
        return
    with _lock:
        for key in keys:
            for part in list(_parts.get((url, key), ())):
                _drop((url, key, part), waste=False)


def forget_below(url: str, prefix: str) -> None:
    """Drop what is held for every key at or below the path ``prefix`` of the store at ``url``
    (a node removed with everything below it)."""
    if not _entries:
        return
    below = prefix.strip("/") + "/" if prefix.strip("/") else ""
    with _lock:
        for entry in [e for e in _entries if e[0] == url and e[1].startswith(below)]:
            _drop(entry, waste=False)


def wasted(owner: object) -> int:
    """How many of ``owner``'s entries expired or were evicted unused since the last call."""
    with _lock:
        return _wasted.pop(owner, 0)


def clear() -> None:
    """Drop everything held (tests; after the process forked)."""
    global _held
    with _lock:
        _entries.clear()
        _parts.clear()
        _wasted.clear()
        _held = 0


@after_fork
def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it
    clear()


def held() -> tuple[int, int]:
    """``(entries, bytes)`` held now."""
    with _lock:
        return len(_entries), _held
