"""Coalescing byte-range reads: nearby ranges of one object become one request."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

#: Ranges of the same object closer than this are fetched as one request (the gap is read
#: and discarded: cheaper than a second round trip to an object store).
MAX_GAP = 1 * 2**20
#: A coalesced request never grows beyond this.
MAX_REQUEST = 128 * 2**20


def plan(
    requests: Sequence[tuple[str, int, int]], max_gap: int = MAX_GAP, max_request: int = MAX_REQUEST
) -> list[tuple[str, int, int, list[int]]]:
    """Group absolute ranges ``(key, offset, length)`` into merged requests.

    Returns ``(key, offset, length, members)`` where ``members`` are indices into ``requests``.
    """
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, (key, _, _) in enumerate(requests):
        by_key[key].append(i)
    merged: list[tuple[str, int, int, list[int]]] = []
    for key, idxs in by_key.items():
        idxs.sort(key=lambda i: requests[i][1])
        _, start, n = requests[idxs[0]]
        end, members = start + n, [idxs[0]]
        for i in idxs[1:]:
            _, off, n = requests[i]
            if off - end <= max_gap and max(end, off + n) - start <= max_request:
                end = max(end, off + n)
                members.append(i)
                continue
            merged.append((key, start, end - start, members))
            start, end, members = off, off + n, [i]
        merged.append((key, start, end - start, members))
    return merged


def coalesce(
    store: Any, requests: Sequence[tuple[str, int, int]], max_gap: int = MAX_GAP
) -> list[Any]:
    """Fetch absolute byte ranges, merging nearby ones; results in request order.

    Each result is a memoryview into the merged response (no copy), or ``None`` if the object
    does not exist.
    """
    merged = plan(requests, max_gap)
    datas = store.get_ranges([(k, off, n) for k, off, n, _ in merged])
    results: list[Any] = [None] * len(requests)
    for (_, off, _, members), data in zip(merged, datas):
        if data is None:
            continue
        view = memoryview(data)
        for i in members:
            rel = requests[i][1] - off
            results[i] = view[rel : rel + requests[i][2]]
    return results
