"""Inner chunks out of the shards of one sharded array (the ``sharding_indexed`` codec).

A shard is fetched whole when a read needs all of its inner chunks, and from a store where every
request is a round trip also when it needs half of them (one request instead of the index and
then the ranges); then the shard's own index says where each inner chunk lies. Otherwise the
shard indexes come in one batch of range requests and the needed inner chunks in another, with
adjacent ranges coalesced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from xzaro.chunk_grid import ShardGrid
from xzaro.errors import DecodeError, ZaroError
from xzaro.stores.base import Store, SupportsLocalReads
from xzaro.stores.coalesce import coalesce

Index = tuple[int, ...]


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
        self._round_trips = not isinstance(store, SupportsLocalReads)

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
            for shard, key, data in zip(whole, keys, self.store.get_many(keys)):
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
