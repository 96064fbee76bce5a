"""``ShardIndex``: where each inner chunk of a shard lies, as a small value.

The index is one ``(offset, nbytes)`` uint64 pair per inner chunk, in C order of the shard's
chunk grid; an inner chunk that is not stored (it reads as the fill value) is
``(2**64-1, 2**64-1)``. Callers ask :meth:`ShardIndex.get_chunk_slice` and
:meth:`ShardIndex.is_all_empty` and never compare entries with that marker themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xzaro.errors import DecodeError
from xzaro.log import info

#: The offset and length of an inner chunk that is not stored.
_EMPTY = 2**64 - 1
_EMPTY_U64 = np.uint64(_EMPTY)
#: No shard is larger than this: an index entry reaching beyond it is corrupt whatever the
#: shard's size (used when a partial read has not fetched the whole shard).
_MAX_SHARD_SIZE = 2**63


@dataclass(frozen=True, eq=False)
class ShardIndex:
    """The index of one shard: where each inner chunk lies, in C order of the shard's chunk
    grid.

    ``entries`` is an ``(n_inner, 2)`` uint64 array of ``(offset, nbytes)`` pairs, the form the
    ``index_codecs`` encode (reshaped to the chunk grid).
    """

    entries: np.ndarray

    @classmethod
    def create_empty(cls, n_inner: int) -> ShardIndex:
        """An index of ``n_inner`` inner chunks, none of them stored."""
        return cls(np.full((n_inner, 2), _EMPTY_U64, dtype=np.uint64))

    @classmethod
    def from_pairs(
        cls, pairs: np.ndarray, *, url: str | None = None, key: str | None = None
    ) -> ShardIndex:
        """The index from its decoded ``(offset, nbytes)`` pairs.

        An entry ``(offset, 2**64-1)`` (zarrita's empty inner chunk) becomes the standard
        marker, with one log line for the shard; ``(2**64-1, nbytes)`` is corrupt.
        """
        entries = np.ascontiguousarray(pairs, dtype=np.uint64).reshape(-1, 2)
        offsets, nbytes = entries[:, 0], entries[:, 1]
        broken = np.flatnonzero((offsets == _EMPTY_U64) & (nbytes != _EMPTY_U64))
        if broken.size:
            i = int(broken[0])
            raise DecodeError(
                f"shard index is corrupt: inner chunk {i} has no offset but a length of "
                f"{int(nbytes[i])} bytes"
            )
        loose = np.flatnonzero((nbytes == _EMPTY_U64) & (offsets != _EMPTY_U64))
        if loose.size:
            entries = entries.copy()
            entries[loose, 0] = _EMPTY_U64
            info(
                "shard%s: the index marks %d inner chunk(s) %s empty with a non-standard "
                "offset (offset, 2**64-1) instead of (2**64-1, 2**64-1); read as fill",
                "" if key is None else f" {key!r} of {url}",
                loose.size,
                loose.tolist()[:8],
            )
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def is_empty(self, i: int) -> bool:
        """Whether inner chunk ``i`` is not stored (it reads as the fill value)."""
        return bool(self.entries[i, 1] == _EMPTY_U64)

    def stored(self) -> np.ndarray:
        """Whether each inner chunk is stored (a boolean array, in index order)."""
        stored: np.ndarray = self.entries[:, 1] != _EMPTY_U64
        return stored

    def is_all_empty(self) -> bool:
        """Whether no inner chunk is stored."""
        return bool(np.all(self.entries[:, 1] == _EMPTY_U64))

    def get_chunk_slice(self, i: int) -> slice | None:
        """The byte range of inner chunk ``i`` in the shard, ``None`` if it is not stored."""
        offset, nbytes = self.entries[i].tolist()
        if nbytes == _EMPTY:
            return None
        return slice(offset, offset + nbytes)

    def chunk_slices(self) -> list[slice | None]:
        """:meth:`get_chunk_slice` of every inner chunk, in index order."""
        return [
            None if nbytes == _EMPTY else slice(offset, offset + nbytes)
            for offset, nbytes in self.entries.tolist()
        ]

    def set_chunk_slice(self, i: int, where: slice | None) -> None:
        """Record that inner chunk ``i`` lies at ``where`` (``None``: it is not stored)."""
        if where is None:
            self.entries[i] = (_EMPTY_U64, _EMPTY_U64)
        else:
            self.entries[i] = (where.start, where.stop - where.start)

    def check(self, size: int | None) -> None:
        """Fail if a stored inner chunk's byte range lies outside a shard of ``size`` bytes
        (``None``: a size not known, so only ranges no shard can hold fail)."""
        limit = _MAX_SHARD_SIZE if size is None else size
        offsets, nbytes = self.entries[:, 0], self.entries[:, 1]
        stored = nbytes != _EMPTY_U64
        outside = stored & ((offsets > limit) | (nbytes > limit - np.minimum(offsets, limit)))
        if np.any(outside):
            i = int(np.flatnonzero(outside)[0])
            where = f"inner chunk {i} at {int(offsets[i])}+{int(nbytes[i])}"
            if size is None:
                raise DecodeError(f"shard index is corrupt: {where} is beyond any shard's end")
            raise DecodeError(f"shard index points outside the {size}-byte shard ({where})")
