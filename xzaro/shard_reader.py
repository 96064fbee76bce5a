"""Inner chunks out of the shards of one sharded array (the ``sharding_indexed`` codec).

A shard is fetched whole when a read needs all of its inner chunks, and from a store where every
request is a round trip also when it needs half of them (one request instead of the index and
then the ranges); then the shard's own index says where each inner chunk lies. Otherwise the
shard indexes come in one batch of range requests and the needed inner chunks in another, with
adjacent ranges coalesced. From local files, each shard is opened once for its index and its
inner chunks; an index is decoded again only when its stored bytes (or the shard's size)
changed since the last read, so reading a shard inner chunk by inner chunk decodes its index
once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from xzaro.chunk_grid import ShardGrid
from xzaro.codecs.shard_index import ShardIndex
from xzaro.concurrency import concurrent_map
from xzaro.errors import DecodeError, ZaroError
from xzaro.stores.base import OpenObject, Store, SupportsLocalReads, object_reads
from xzaro.stores.coalesce import coalesce

Index = tuple[int, ...]
#: The shard indexes kept for local files, in bytes of index entries per array.
INDEX_CACHE_BYTES = 16 * 2**20


class ShardReader:
    """Reads the inner chunks of one sharded array from ``store``.

    Parameters
    ----------
    store
        Where the shards are.
    sharding
        The array's sharding codec (it decodes and locates shard indexes).
    shards
        The array's grid of shards and inner chunks.
    key_of
        The store key of a shard, from its grid index.
    """

    def __init__(
        self, store: Store, sharding: Any, shards: ShardGrid, key_of: Callable[[Index], str]
    ) -> None:
        self.store = store
        self._sharding = sharding
        self._shards = shards
        self._key_of = key_of
        self._local = store if isinstance(store, SupportsLocalReads) else None
        self._get_objects = object_reads(store)
        self._round_trips = self._local is None
        self._indexes: OrderedDict[str, tuple[tuple[int, bytes], ShardIndex]] = OrderedDict()
        self._indexes_bytes = 0
        self._lock = threading.Lock()
        # (offset, length) of the index in a shard of each shape: asked on every read
        self._index_requests: dict[tuple[int, ...], tuple[int, int]] = {}

    def _named(self, e: ZaroError, key: str) -> ZaroError:
        return type(e)(e.message, url=self.store.url, key=key, field=e.field)

    def fetches_whole(self, shard: Index, needed: int) -> bool:
        """Whether a read that needs ``needed`` inner chunks of ``shard`` fetches it whole."""
        present = self._shards.chunks_inside(shard)
        return needed >= present or (self._round_trips and 2 * needed >= present)

    def fetch(self, chunks: Sequence[Index]) -> list[Any]:
        """The stored bytes of each inner chunk of ``chunks`` (``None`` where never written),
        fetched in one batch per kind of request."""
        by_shard: dict[Index, list[int]] = defaultdict(list)
        for i, chunk in enumerate(chunks):
            by_shard[self._shards.shard_of(chunk)].append(i)
        whole = [s for s, where in by_shard.items() if self.fetches_whole(s, len(where))]
        partial = [s for s in by_shard if s not in set(whole)]
        out: list[Any] = [None] * len(chunks)
        if whole:
            keys = [self._key_of(s) for s in whole]
            for shard, key, data in zip(whole, keys, self._get_objects(keys)):
                where = by_shard[shard]
                inner = self.inner_of_whole(shard, key, data, [chunks[i] for i in where])
                for i, d in zip(where, inner):
                    out[i] = d
        if partial:
            fetched = self.inner_of_partial(
                partial, {s: [chunks[i] for i in by_shard[s]] for s in partial}
            )
            for shard, datas in fetched.items():
                for i, d in zip(by_shard[shard], datas):
                    out[i] = d
        return out

    def inner_of_whole(
        self, shard: tuple[int, ...], key: str, data: Any, chunks: Sequence[tuple[int, ...]]
    ) -> list[Any]:
        """The bytes of each inner chunk of ``chunks`` inside the whole ``shard`` (None: fill)."""
        if data is None:
            return [None] * len(chunks)
        try:
            index = self._sharding.locate_index(
                data, self._shards.shard_shape(shard), url=self.store.url, key=key
            )
        except DecodeError as e:
            raise self._named(e, key) from e
        view = memoryview(data)
        out: list[Any] = []
        for chunk in chunks:
            where = index.get_chunk_slice(self._shards.position(chunk, shard))
            out.append(None if where is None else view[where])
        return out

    def inner_of_partial(
        self,
        shards: list[tuple[int, ...]],
        chunks_of: dict[tuple[int, ...], list[tuple[int, ...]]],
    ) -> dict[tuple[int, ...], list[Any]]:
        """The bytes of the inner chunks ``chunks_of[shard]`` of each of ``shards`` (None:
        fill): the shard indexes in one batch, then only the needed byte ranges in another."""
        if self._local is not None:
            found = concurrent_map(lambda s: self.inner_of_local(s, chunks_of[s]), shards)
            return dict(zip(shards, found))
        keys = [self._key_of(s) for s in shards]
        index_request = self._sharding.index_request
        raw_indexes = self.store.get_ranges(
            [(k, *index_request(self._shards.shard_shape(s))) for k, s in zip(keys, shards)]
        )
        requests: list[tuple[str, int, int]] = []
        targets: list[tuple[tuple[int, ...], int]] = []
        out: dict[tuple[int, ...], list[Any]] = {}
        for shard, key, raw in zip(shards, keys, raw_indexes):
            out[shard] = [None] * len(chunks_of[shard])
            if raw is None:
                continue
            try:
                index = self._sharding.decode_index(
                    raw, self._shards.shard_shape(shard), url=self.store.url, key=key
                )
                index.check(None)  # the shard's size is not known here
            except DecodeError as e:
                raise self._named(e, key) from e
            for i, chunk in enumerate(chunks_of[shard]):
                where = index.get_chunk_slice(self._shards.position(chunk, shard))
                if where is not None:
                    requests.append((key, where.start, where.stop - where.start))
                    targets.append((shard, i))
        datas = coalesce(self.store, requests)
        for req, (shard, i), data in zip(requests, targets, datas):
            if data is None or memoryview(data).nbytes != req[2]:
                stored = self.store.get(req[0])  # only to name the shard's real size
                where = f"inner chunk at {req[1]}+{req[2]}"
                raise DecodeError(
                    f"shard disappeared while being read ({where})"
                    if stored is None
                    else f"shard index points outside the {memoryview(stored).nbytes}-byte "
                    f"shard ({where})",
                    url=self.store.url,
                    key=req[0],
                )
            out[shard][i] = data
        return out

    def inner_of_local(self, shard: Index, chunks: Sequence[Index]) -> list[Any]:
        """The bytes of ``chunks`` (inner chunks of ``shard``) read from its local file, opened
        once for the index and the chunks (None: fill)."""
        assert self._local is not None
        key = self._key_of(shard)
        with self._local.open_object(key) as opened:
            if opened is None:
                return [None] * len(chunks)
            index = self._local_index(shard, key, opened)
            out: list[Any] = []
            for chunk in chunks:
                where = index.get_chunk_slice(self._shards.position(chunk, shard))
                if where is None:
                    out.append(None)
                    continue
                data = opened.read(where.start, where.stop - where.start)
                if len(data) != where.stop - where.start:
                    raise DecodeError(
                        f"shard was cut short while being read (inner chunk at {where.start}"
                        f"+{where.stop - where.start})",
                        url=self.store.url,
                        key=key,
                    )
                out.append(data)
            return out

    def _local_index(self, shard: Index, key: str, opened: OpenObject) -> ShardIndex:
        """The index of the open shard file, decoded and checked against the file's size; an
        index whose stored bytes are those of the last read is not decoded again."""
        shape = self._shards.shard_shape(shard)
        request = self._index_requests.get(shape)
        if request is None:
            request = self._index_requests[shape] = self._sharding.index_request(shape)
        offset, length = request
        if opened.size < length:
            raise DecodeError(
                f"shard of {opened.size} bytes is shorter than its {length}-byte index",
                url=self.store.url,
                key=key,
            )
        raw = opened.read(opened.size - length if offset < 0 else 0, length)
        with self._lock:
            kept = self._indexes.get(key)
            if kept is not None and kept[0] == (opened.size, raw):
                self._indexes.move_to_end(key)
                return kept[1]
        try:
            index = self._sharding.decode_index(raw, shape, url=self.store.url, key=key)
            index.check(opened.size)
        except DecodeError as e:
            raise self._named(e, key) from e
        self._keep(key, (opened.size, raw), index)
        return index

    def _keep(self, key: str, stored: tuple[int, bytes], index: ShardIndex) -> None:
        nbytes = len(stored[1]) + index.entries.nbytes
        if nbytes > INDEX_CACHE_BYTES // 4:
            return
        with self._lock:
            old = self._indexes.pop(key, None)
            if old is not None:
                self._indexes_bytes -= len(old[0][1]) + old[1].entries.nbytes
            self._indexes[key] = (stored, index)
            self._indexes_bytes += nbytes
            while self._indexes_bytes > INDEX_CACHE_BYTES:
                _, (dropped_raw, dropped) = self._indexes.popitem(last=False)
                self._indexes_bytes -= len(dropped_raw[1]) + dropped.entries.nbytes
