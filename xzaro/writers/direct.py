"""Uncompressed chunks and shards written to local files frame by frame, with no row buffer.

Without compression every chunk has a fixed size, so the place of every frame's piece of every
chunk is known in advance: within a shard, the inner chunks inside the array are packed in C
order and the index follows the last one; within a chunk, a frame's plane sits at its C-order
position. :class:`FrameFileWriter` therefore ``pwrite``\\s each frame's tiles straight
into the stored objects of the current row (temporary files, renamed into place when the row is
complete), so a frame is copied once, into the page cache. Positions never written read as
zeros (the fill value) in the sparse file. Chunks that only ever received the fill value are
marked absent in a shard's index (their bytes stay in the file, unreferenced), and a chunk or
shard file holding only the fill value is not kept.
"""

from __future__ import annotations

import math
import os

import numpy as np

from xzaro.codecs import ShardIndex
from xzaro.meta import ZaroMeta
from xzaro.stores.files import TempFile


class FrameFileWriter:
    """Writes rows of an uncompressed array (fill value zero) to a local directory, one frame at
    a time.

    Parameters
    ----------
    directory
        The array's directory on the local file system.
    meta
        The array's metadata (append dimension first, frames along the last two dimensions).
        It must be uncompressed with fill value zero: ``bytes`` only, or ``sharding_indexed``
        over ``bytes``.
    """

    def __init__(self, directory: str, meta: ZaroMeta) -> None:
        self.directory = directory
        self.meta = meta
        self.chunk = meta.chunk_shape
        self.unit = meta.storage_shape
        self.per = tuple(u // c for u, c in zip(self.unit, self.chunk))  # chunks per object
        self.chunk_bytes = math.prod(self.chunk) * meta.dtype.itemsize
        self.plane_bytes = self.chunk[-2] * self.chunk[-1] * meta.dtype.itemsize
        self.grid = meta.chunk_grid.grid_shape
        self._open: dict[tuple[int, ...], tuple[TempFile, np.ndarray]] = {}
        self._slot_cache: dict[tuple[int, ...], np.ndarray] = {}

    def write_frame(self, tiles: np.ndarray, position: tuple[int, ...]) -> None:
        """Write one frame given as tiles ``(chunks along y, chunks along x, chunk y, chunk x)``
        (C-contiguous), at array ``position`` (append index and middle indices)."""
        base = tuple(p // c for p, c in zip(position, self.chunk))
        plane = tuple(p % c for p, c in zip(position, self.chunk))
        plane_offset = int(np.ravel_multi_index(plane, self.chunk[:-2])) * self.plane_bytes
        for iy in range(tiles.shape[0]):
            for ix in range(tiles.shape[1]):
                chunk = (*base, iy, ix)
                obj = tuple(c // p for c, p in zip(chunk, self.per))
                inner = int(
                    np.ravel_multi_index(tuple(c % p for c, p in zip(chunk, self.per)), self.per)
                )
                temp, stored = self._object(obj)
                tile = tiles[iy, ix]
                if not stored[inner] and tile.any():
                    stored[inner] = True
                offset = int(self._slots(obj)[inner]) * self.chunk_bytes + plane_offset
                _pwrite(temp.fd, memoryview(tile).cast("B"), offset)

    def finish(self, row_first: int) -> int:
        """Close the objects whose append index starts at ``row_first`` (in objects) and move
        them into place; returns the number of objects kept."""
        kept = 0
        for obj in [o for o in self._open if o[0] == row_first]:
            temp, stored = self._open.pop(obj)
            if not stored.any():
                temp.discard()
                continue
            try:
                self._seal(temp.fd, obj, stored)
            except BaseException:
                temp.discard()
                raise
            temp.commit()
            kept += 1
        return kept

    def abort(self) -> None:
        """Close and remove every unfinished object."""
        for temp, _ in self._open.values():
            temp.discard()
        self._open.clear()

    # ---------------------------------------------------------------------------------------
    def _seal(self, fd: int, obj: tuple[int, ...], stored: np.ndarray) -> None:
        sharding = self.meta.sharding
        if sharding is None:
            os.ftruncate(fd, self.chunk_bytes)  # frames never written read as zeros
            return
        slots = self._slots(obj)
        index = ShardIndex.create_empty(stored.size)
        for k in np.flatnonzero(stored):
            start = int(slots[k]) * self.chunk_bytes
            index.set_chunk_slice(int(k), slice(start, start + self.chunk_bytes))
        encoded = sharding.encode_index(index, self.unit)
        _pwrite(fd, memoryview(encoded).cast("B"), int(slots.max() + 1) * self.chunk_bytes)

    def _slots(self, obj: tuple[int, ...]) -> np.ndarray:
        """Where each inner chunk of shard ``obj`` goes, in chunks from the start: inner chunks
        inside the array are packed in C order; those beyond its end have no place (-1)."""
        edge = tuple(g - o * p for g, o, p in zip(self.grid, obj, self.per))
        key = tuple(min(e, p) for e, p in zip(edge, self.per))
        slots = self._slot_cache.get(key)
        if slots is None:
            inside = np.zeros(self.per, dtype=bool)
            inside[tuple(slice(0, k) for k in key)] = True
            flat = inside.reshape(-1)
            slots = np.where(flat, np.cumsum(flat) - 1, -1)
            self._slot_cache[key] = slots
        return slots

    def _object(self, obj: tuple[int, ...]) -> tuple[TempFile, np.ndarray]:
        entry = self._open.get(obj)
        if entry is None:
            temp = TempFile(self._path(obj))
            entry = self._open[obj] = (temp, np.zeros(math.prod(self.per), dtype=bool))
        return entry

    def _path(self, obj: tuple[int, ...]) -> str:
        return os.path.join(self.directory, *self.meta.chunk_key(obj).split("/"))


def _pwrite(fd: int, data: memoryview, offset: int) -> None:
    done = 0
    while done < data.nbytes:
        done += os.pwrite(fd, data[done:], offset + done)
