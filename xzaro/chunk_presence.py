"""Chunks a read of local files can skip, because their directory's listing lacks them.

A chunk that was never written reads as the fill value, and finding that out costs a failed
``open`` per chunk (about 4 us). In an array that is mostly unwritten (a time series filled up to
last month, a sparse mosaic) those failures are most of a large read. With chunk keys whose
indices are ``/``-separated path components (V3's default ``c/i/j``, V2's ``i/j``), the
directory of one level of the key answers for every index of that level at once: a read lists
the directories it needs where each answers for many of its chunks and it needs at least a
quarter of the entries such a directory can hold (a listing costs about as much as ten lookups,
so it never costs much more than the lookups it saves), and looks up only the chunks the
listings do not rule out. Before any listing a read looks up a few chunks spread over it, and
lists only if enough of them are missing: a read of stored chunks alone lists nothing. A
listing only ever rules chunks out; whatever it shows is opened and read as usual, so a chunk
deleted since reads as fill as it did, and one written since the listing reads as fill as if
the read had come first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from xzaro.errors import ZaroError
from xzaro.indexing import Box
from xzaro.meta import ZaroMeta

#: Reads of fewer chunks look up every chunk's file.
LISTED_READ_CHUNKS = 1000
#: A directory is listed when the read needs at least 1/LISTED_SHARE of the entries it can hold
LISTED_SHARE = 4
#: ... and at least this many of the read's chunks lie below it.
LISTED_DIRECTORY_CHUNKS = 100
#: Chunks looked up before a read lists any directory: at least 1/LISTED_SHARE of them must
#: be missing (a read of stored chunks only would list for nothing).
SAMPLED_CHUNKS = 8

_UNLISTED = object()


class AbsentChunks:
    """``absent(index)``: whether chunk ``index`` is known not to be stored.

    Parameters
    ----------
    store
        The local store (its ``list_dir``).
    base
        The key of the directory holding the first index level (``"a/c"`` for a V3 array
        ``a``; ``""`` for a V2 array at the store's root).
    listed
        Per dimension, whether its level's directories are listed.
    """

    def __init__(self, store: Any, base: str, listed: Sequence[bool]) -> None:
        self._store = store
        self._base = base
        self._levels = [d for d, on in enumerate(listed) if on]
        self._listings: dict[tuple[int, ...], frozenset[int] | None] = {}

    def __call__(self, index: tuple[int, ...]) -> bool:
        listings = self._listings
        for d in self._levels:
            above = index[:d]
            names = listings.get(above, _UNLISTED)
            if names is _UNLISTED:
                names = listings[above] = self._list(above)
            if names is not None and index[d] not in names:  # type: ignore[operator]
                return True
        return False

    def _list(self, above: tuple[int, ...]) -> frozenset[int] | None:
        """The indices named in the directory below ``above`` (none if it is missing); ``None``
        when it cannot be listed (then nothing is ruled out)."""
        key = "/".join([self._base, *map(str, above)] if self._base else map(str, above))
        try:
            names = self._store.list_dir(key)
        except ZaroError:
            return None
        # only the names a chunk key can have: "7", never "07" or "+7"
        return frozenset(int(n) for n in names if n.isascii() and n.isdigit() and n == str(int(n)))


def _sampled_missing(
    store: Any, meta: ZaroMeta, prefix: str, touched: list[list[int]], total: int
) -> int:
    """How many of :data:`SAMPLED_CHUNKS` chunks spread over the read are not stored."""
    missing = 0
    for s in range(SAMPLED_CHUNKS):
        flat = (2 * s + 1) * total // (2 * SAMPLED_CHUNKS)
        index = []
        for ks in reversed(touched):
            flat, at = divmod(flat, len(ks))
            index.append(ks[at])
        try:
            missing += not store.exists(prefix + meta.chunk_key(tuple(reversed(index))))
        except ZaroError:
            return 0  # the read names the error when it comes to the chunk
    return missing


def absent_chunks(store: Any, meta: ZaroMeta, box: Box, prefix: str = "") -> AbsentChunks | None:
    """The :class:`AbsentChunks` of reading ``box`` of the array ``meta`` describes from the
    local ``store`` (its chunk keys below ``prefix``, the array's path and ``/``), or ``None``
    where listings would not pay: fewer than :data:`LISTED_READ_CHUNKS` chunks, keys that are
    not ``/``-separated indices, a read that needs too few of each directory's entries or has
    too few chunks below each directory, or one whose sampled chunks are mostly stored."""
    grid = meta.storage_grid
    touched = grid.touched(box)
    counts = [len(t) for t in touched]
    total = math.prod(counts)
    if not counts or total < LISTED_READ_CHUNKS:
        return None
    probe = tuple(range(1, len(counts) + 1))
    parts = (prefix + meta.chunk_key(probe)).split("/")
    if parts[-len(counts) :] != [str(i) for i in probe]:
        return None
    if _sampled_missing(store, meta, prefix, touched, total) * LISTED_SHARE < SAMPLED_CHUNKS:
        return None  # mostly stored: listings would cost more than the lookups they save
    base = "/".join(parts[: -len(counts)])
    listed = []
    directories = 1  # at the level of dimension d: one per index of the levels above
    for n, extent in zip(counts, grid.grid_shape):
        listed.append(n * LISTED_SHARE >= extent and directories * LISTED_DIRECTORY_CHUNKS <= total)
        directories *= n
    return AbsentChunks(store, base, listed) if any(listed) else None
