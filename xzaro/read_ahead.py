"""Read-ahead: many small reads of one array on a store where every request is a round trip.

With ``chunks={}``, xarray gives Dask one task per stored chunk, and Dask runs as many at a time
as it has threads (two on a two-core machine): read one by one, 4,096 chunks at 20 ms a request
take 40 s however many requests the store could have in flight. :class:`ReadAhead` turns those
reads into one round of requests per *group* of neighbouring chunks: the first small read that
needs a chunk of a group fetches the whole group in one batch and leaves the chunks it was not
asked for in :mod:`xzaro.stores.prefetched`, where the next tasks find them.

A group is a tile of the chunk grid grown from the fastest dimension (Dask runs the tasks of a
row of chunks together), up to :data:`GROUP_BYTES` decoded bytes. A group of an unsharded array
is one round of requests (the requests in flight, see :mod:`xzaro.stores.network`); a group of
a sharded array never crosses a shard, so a whole shard comes in one request.

Dask tasks of one shard each (the default read unit of a sharded array) are read ahead the same
way, a level up (``objects=True``): a task that reads whole shards fetches a group of
neighbouring shards, up to :data:`OBJECT_GROUP_BYTES` and one round of requests, so 16 shards
read by two Dask threads cost one round of requests rather than eight.

Chunks that do not exist are not kept: one may be written before a read asks for it, and a
missing chunk must read as fill only if it is missing when read.

Read-ahead starts only when a small read follows another within :data:`WINDOW` seconds, so a
single read never fetches more than it needs; a read that finds a group being fetched by another
thread waits for it instead of asking again. Groups shrink to a quarter when as much of what was
fetched ahead went unused as was used (the tasks run in an order the groups do not follow), and
grow back when it is used.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from xzaro.errors import ZaroError
from xzaro.meta import ZaroMeta
from xzaro.stores import prefetched
from xzaro.stores.base import Store, SupportsLocalReads
from xzaro.stores.memory import MemoryStore
from xzaro.stores.network import network_options

#: Most decoded bytes in one group.
GROUP_BYTES = 8 * 2**20
#: Most decoded bytes in one group of whole stored objects (shards).
OBJECT_GROUP_BYTES = 64 * 2**20
#: A small read this many seconds after the previous one turns read-ahead on.
WINDOW = 1.0
#: Longest wait for a group another thread is fetching (its own timeouts bound it first).
WAIT_SECONDS = 300.0

Chunk = tuple[int, ...]


class ChunkSource(Protocol):
    """What a read-ahead reads through (a :class:`~xzaro.array.ZaroArray`)."""

    meta: ZaroMeta

    def shard_of(self, chunk: Chunk) -> Chunk:
        """The shard holding inner chunk ``chunk`` of a sharded array."""
        ...

    def entry_of(self, chunk: Chunk) -> prefetched.EntryKey:
        """Where the stored bytes of ``chunk`` live."""
        ...

    def fetch_encoded(self, chunks: Sequence[Chunk]) -> list[Any]:
        """The stored bytes of each of ``chunks`` (``None``: never written), in one batch."""
        ...

    def object_entry(self, index: Chunk) -> prefetched.EntryKey:
        """Where the stored object at ``index`` of the storage grid lives (``part`` None)."""
        ...

    def fetch_objects(self, indices: Sequence[Chunk]) -> list[Any]:
        """The stored objects at ``indices`` of the storage grid, whole, in one batch."""
        ...


def pays_off(store: Store, meta: ZaroMeta) -> bool:
    """Whether reading ahead pays off for an array of ``store``: where every request is a
    round trip (not local files, not memory of this process), and for a sharded array in local
    files (one read of a shard instead of reading and decoding its index for every inner
    chunk)."""
    if isinstance(store, MemoryStore):
        return False
    return meta.sharding is not None or not isinstance(store, SupportsLocalReads)


def check_read_ahead(read_ahead: Any) -> None:
    """Refuse a ``read_ahead`` option that is not ``True``, ``False`` or ``None`` (auto)."""
    if read_ahead is not None and not isinstance(read_ahead, bool):
        raise ValueError(
            f"read_ahead must be True, False or None (on where it pays off), got {read_ahead!r}"
        )


_watching = threading.Lock()
_watcher: Any = None


def _watch_computations() -> None:
    """Have Dask's local schedulers tell :mod:`~xzaro.stores.prefetched` when a computation
    starts (once per process; ``dask.distributed`` does not call these callbacks)."""
    global _watcher
    with _watching:
        if _watcher is None:
            from dask.callbacks import Callback

            class ComputationStarts(Callback):
                def _start(self, dsk: Any) -> None:
                    prefetched.next_generation()

            _watcher = ComputationStarts()
            _watcher.register()


def _tile(limit: int, bounds: Sequence[int]) -> tuple[int, ...]:
    """A tile of at most ``limit`` chunks grown from the last dimension within ``bounds``."""
    tile = [1] * len(bounds)
    room = max(1, limit)
    for d in reversed(range(len(bounds))):
        tile[d] = max(1, min(bounds[d], room))
        room //= tile[d]
        if room <= 1:
            break
    return tuple(tile)


class ReadAhead:
    """The read-ahead of one array (see the module docstring): of its chunks (inner chunks of
    a sharded array), or with ``objects`` of its whole stored objects (the regular grid of its
    shards)."""

    def __init__(self, array: ChunkSource, objects: bool = False) -> None:
        self._array = array
        meta = array.meta
        grid = meta.storage_grid if objects else meta.chunk_grid
        self._grid_shape = grid.grid_shape
        self._chunk_shape = grid.chunk_shape
        self._sharded = meta.sharding is not None and not objects
        self._entry_of = array.object_entry if objects else array.entry_of
        self._fetch = array.fetch_objects if objects else array.fetch_encoded
        chunk_bytes = max(1, math.prod(self._chunk_shape) * max(1, meta.dtype.itemsize))
        self._max_limit = max(1, (OBJECT_GROUP_BYTES if objects else GROUP_BYTES) // chunk_bytes)
        if not self._sharded:  # one request per object: a group is one round of requests
            self._max_limit = min(self._max_limit, network_options().requests_in_flight)
        if self._sharded:
            sizes = zip(self._grid_shape, meta.storage_grid.chunk_shape, meta.chunk_shape)
            self._bounds: tuple[int, ...] = tuple(min(g, -(-s // c)) for g, s, c in sizes)
        else:
            self._bounds = self._grid_shape
        self._limit = self._max_limit
        self._tile_shape = _tile(self._limit, self._bounds)
        self._owner = object()
        _watch_computations()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pending: dict[Any, threading.Event] = {}
        self._last = -math.inf
        # since the group size was last reviewed: entries fetched ahead and taken by a read,
        # and entries fetched ahead that expired, were evicted or were fetched again unused
        self._used = 0
        self._wasted = 0

    @property
    def group_chunks(self) -> int:
        """How many chunks a group holds now (1: read-ahead is off)."""
        return math.prod(self._tile_shape)

    # ------------------------------------------------------------------ groups
    def _container(self, chunk: Chunk) -> tuple[Chunk, Chunk, Chunk]:
        """``(id, first chunk, end chunk)`` of what a group may not cross: the shard holding
        ``chunk``, or the whole grid."""
        if not self._sharded:
            return (), (0,) * len(chunk), self._grid_shape
        shards = self._array.meta.storage_grid
        shard = self._array.shard_of(chunk)
        region = shards.chunk_region(shard)
        lo = tuple(r.start // c for r, c in zip(region, self._chunk_shape))
        hi = tuple(
            min(g, -(-r.stop // c)) for r, c, g in zip(region, self._chunk_shape, self._grid_shape)
        )
        return shard, lo, hi

    def _group(self, chunk: Chunk, tile: tuple[int, ...]) -> tuple[Any, list[Chunk]]:
        cid, lo, hi = self._container(chunk)
        t = tuple((i - a) // n for i, a, n in zip(chunk, lo, tile))
        ranges = [range(a + k * n, min(b, a + (k + 1) * n)) for a, b, k, n in zip(lo, hi, t, tile)]
        return (tile, cid, t), [tuple(c) for c in itertools.product(*ranges)]

    def _review(self) -> None:
        """Quarter the groups when as much of what was fetched ahead went unused (expired,
        evicted or fetched again) as was used; double them back (up to the limit) when nearly
        all of it was used. Entries still waiting to be taken do not count yet."""
        wasted = prefetched.wasted(self._owner)
        with self._lock:
            self._wasted += wasted
            used, wasted = self._used, self._wasted
            if 2 * (used + wasted) < self.group_chunks:
                return
            limit = self._limit
            if wasted >= used:
                limit = max(1, limit // 4)
            elif 8 * wasted <= used:
                limit = min(self._max_limit, limit * 2)
            self._used = self._wasted = 0
            if limit != self._limit:
                self._limit = limit
                self._tile_shape = _tile(limit, self._bounds)

    # ------------------------------------------------------------------ reads
    def encoded(self, chunks: Sequence[Chunk], entries: Sequence[prefetched.EntryKey]) -> list[Any]:
        """The stored bytes of each of ``chunks`` (``None``: never written), as
        :meth:`ZaroArray.fetch_encoded` (or ``fetch_objects``) gives them, taking what an
        earlier read fetched ahead and fetching the groups of the others; ``entries`` are the
        chunks' ``entry_of`` (or ``object_entry``)."""
        if os.getpid() != self._pid:  # a forked child: the fetching threads stayed behind
            self._pid, self._lock, self._pending = os.getpid(), threading.Lock(), {}
        now = time.monotonic()
        ahead = now - self._last < WINDOW
        self._last = now
        out = [prefetched.take(e) for e in entries]
        need = [i for i, d in enumerate(out) if d is prefetched.ABSENT]
        with self._lock:
            self._used += len(chunks) - len(need)
        if not need:
            return out
        if ahead:
            self._review()
        tile = self._tile_shape
        if not ahead or math.prod(tile) <= 1:
            self._fill(out, need, [chunks[i] for i in need])
            return out

        groups: dict[Any, list[Chunk]] = {}
        for i in need:
            gid, members = self._group(chunks[i], tile)
            groups.setdefault(gid, members)
        mine: list[Any] = []
        theirs: list[threading.Event] = []
        with self._lock:
            for gid in groups:
                event = self._pending.get(gid)
                if event is None:
                    self._pending[gid] = threading.Event()
                    mine.append(gid)
                else:
                    theirs.append(event)
        try:
            if mine:
                self._fetch_groups(out, chunks, [groups[g] for g in mine])
        except ZaroError:
            # a neighbour may fail where the chunks asked for would not: they are fetched
            # alone below, and only their own failure is raised
            pass
        finally:
            with self._lock:
                for gid in mine:
                    self._pending.pop(gid).set()
        for event in theirs:
            event.wait(WAIT_SECONDS)
        still = [i for i in need if out[i] is prefetched.ABSENT]
        for i in still:
            out[i] = prefetched.take(entries[i])
        still = [i for i in still if out[i] is prefetched.ABSENT]
        if still:  # a group fetch failed, or what it fetched was taken or dropped
            self._fill(out, still, [chunks[i] for i in still])
        return out

    def _fill(self, out: list[Any], where: list[int], chunks: list[Chunk]) -> None:
        for i, data in zip(where, self._fetch(chunks)):
            out[i] = data

    def _fetch_groups(
        self,
        out: list[Any],
        chunks: Sequence[Chunk],
        groups: list[list[Chunk]],
    ) -> None:
        wanted = {c: i for i, c in enumerate(chunks) if out[i] is prefetched.ABSENT}
        fetch = [c for members in groups for c in members]
        datas = self._fetch(fetch)
        keep = []
        for chunk, data in zip(fetch, datas):
            i = wanted.get(chunk)
            if i is not None:
                out[i] = data
            elif data is not None:  # a missing chunk may be written before it is asked for
                keep.append((self._entry_of(chunk), data))
        prefetched.put(keep, self._owner)
