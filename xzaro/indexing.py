"""Basic (numpy) selections turned into boxes over the chunk grid.

A selection becomes a *box*: per dimension a start, stop and positive step, plus the numpy index
that turns the box into what numpy would return (dropping integer dimensions, reversing
negative steps). The box is then split into the pieces that each chunk contributes.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


@dataclass(frozen=True)
class Box:
    """A strided box of an array: ``range(start[d], stop[d], step[d])`` in every dimension.

    ``points[d]``, when given, replaces that range by sorted, unique indices (an orthogonal
    selection along ``d``).
    """

    start: tuple[int, ...]
    stop: tuple[int, ...]
    step: tuple[int, ...]
    points: tuple[np.ndarray | None, ...] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        points = self.points or (None,) * len(self.start)
        return tuple(
            len(p) if p is not None else max(0, math.ceil((b - a) / s))
            for a, b, s, p in zip(self.start, self.stop, self.step, points)
        )


def normalize_selection(selection: Any, shape: tuple[int, ...]) -> tuple[Box, tuple]:
    """Turn a basic numpy selection into a :class:`Box` and the index applied to its result.

    Raises
    ------
    IndexError
        For out-of-range integers, too many indices or non-basic selections; the message names
        the array's shape.
    """
    if not isinstance(selection, tuple):
        selection = (selection,)
    n_ellipsis = sum(1 for s in selection if s is Ellipsis)
    if n_ellipsis > 1:
        raise IndexError(f"an index can only have a single ellipsis; array shape is {shape}")
    n_given = len(selection) - n_ellipsis
    if n_given > len(shape):
        raise IndexError(
            f"too many indices: array of shape {shape} is {len(shape)}-dimensional, "
            f"but {n_given} were indexed"
        )
    expanded: list[Any] = []
    for s in selection:
        if s is Ellipsis:
            expanded.extend([slice(None)] * (len(shape) - n_given))
        else:
            expanded.append(s)
    expanded.extend([slice(None)] * (len(shape) - len(expanded)))

    start: list[int] = []
    stop: list[int] = []
    step: list[int] = []
    post: list[Any] = []
    for dim, (sel, n) in enumerate(zip(expanded, shape)):
        if isinstance(sel, slice):
            a, b, s = sel.indices(n)
            if s > 0:
                start.append(a)
                stop.append(max(a, b))
                step.append(s)
                post.append(slice(None))
            else:
                count = len(range(a, b, s))
                lo = a + (count - 1) * s if count else 0
                start.append(lo)
                stop.append(a + 1 if count else 0)
                step.append(-s)
                post.append(slice(None, None, -1))
            continue
        try:
            i = operator.index(sel)
        except TypeError:
            raise IndexError(
                f"only integers, slices and Ellipsis are valid basic indices, got "
                f"{type(sel).__name__} for dimension {dim}; array shape is {shape}"
            ) from None
        if not -n <= i < n:
            raise IndexError(
                f"index {i} is out of bounds for axis {dim} with size {n}; array shape is {shape}"
            )
        i %= n
        start.append(i)
        stop.append(i + 1)
        step.append(1)
        post.append(0)
    if n_ellipsis and all(isinstance(p, int) for p in post):
        post.append(Ellipsis)  # numpy returns a 0-d array, not a scalar, when ... is given
    return Box(tuple(start), tuple(stop), tuple(step)), tuple(post)


def normalize_orthogonal(
    selection: Any, shape: tuple[int, ...]
) -> tuple[Box, tuple, dict[int, np.ndarray]]:
    """Like :func:`normalize_selection`, but integer arrays select orthogonally per dimension.

    Returns the box (array dimensions become sorted unique ``points``), ``takes``: for each
    dimension whose indices were not already sorted and unique, the positions to take from the
    box's result along that axis, and the basic index applied last (integers, reversals).
    """
    if not isinstance(selection, tuple):
        selection = (selection,)
    plain: list[Any] = []
    arrays: dict[int, np.ndarray] = {}
    for dim, sel in enumerate(selection):
        if isinstance(sel, (list, np.ndarray)) and np.ndim(sel) == 1:
            arr = np.asarray(sel)
            if arr.dtype == bool:
                if dim >= len(shape) or len(arr) != shape[dim]:
                    raise IndexError(
                        f"boolean index of length {len(arr)} does not match axis {dim}; "
                        f"array shape is {shape}"
                    )
                arr = np.flatnonzero(arr)
            if arr.size and arr.dtype.kind not in "iu":
                raise IndexError(f"index arrays must hold integers; array shape is {shape}")
            arrays[dim] = arr.astype(np.int64)
            plain.append(slice(None))
        else:
            plain.append(sel)
    box, post = normalize_selection(tuple(plain), shape)
    if not arrays:
        return box, post, {}
    points: list[np.ndarray | None] = [None] * len(shape)
    takes: dict[int, np.ndarray] = {}
    for dim, arr in arrays.items():
        n = shape[dim]
        if arr.size and (arr.min() < -n or arr.max() >= n):
            bad = arr[(arr < -n) | (arr >= n)][0]
            raise IndexError(
                f"index {bad} is out of bounds for axis {dim} with size {n}; array shape is {shape}"
            )
        wrapped = np.where(arr < 0, arr + n, arr)
        unique, inverse = np.unique(wrapped, return_inverse=True)
        points[dim] = unique
        if len(unique) != len(wrapped) or not np.array_equal(unique, wrapped):
            takes[dim] = inverse.reshape(-1)
    return Box(box.start, box.stop, box.step, tuple(points)), post, takes


def region_box(start: Any, count: Any, shape: tuple[int, ...]) -> Box:
    """The box of a hyperslab given as 0-based ``start`` and ``count`` (``None`` = to the end)."""
    ndim = len(shape)
    start = tuple([0] * ndim if start is None else start)
    count = tuple([None] * ndim if count is None else count)
    if len(start) != ndim or len(count) != ndim:
        raise IndexError(
            f"start and count need {ndim} entries for an array of shape {shape}, got "
            f"{len(start)} and {len(count)}"
        )
    lo, hi = [], []
    for dim, (a, c, n) in enumerate(zip(start, count, shape)):
        a = operator.index(a)
        c = n - a if c is None else operator.index(c)
        if a < 0 or c < 0 or a + c > n:
            raise IndexError(
                f"region start={a} count={c} is out of bounds for axis {dim} with size {n}; "
                f"array shape is {shape}"
            )
        lo.append(a)
        hi.append(a + c)
    return Box(tuple(lo), tuple(hi), (1,) * ndim)


class ChunkPiece(NamedTuple):
    """What one chunk contributes to a box read.

    ``chunk_index`` is the chunk's grid index, ``local`` the selection inside the chunk (slices, or
    integer arrays for orthogonal selections), ``out`` the destination inside the result, and
    ``full`` whether the whole chunk (clipped to the array) is selected with step 1.
    """

    chunk_index: tuple[int, ...]
    local: tuple[Any, ...]
    out: tuple[slice, ...]
    full: bool

    def take(self, chunk: np.ndarray) -> np.ndarray:
        """The part of a decoded chunk this piece selects (outer indexing for arrays)."""
        if not any(isinstance(s, np.ndarray) for s in self.local):
            return chunk[self.local]
        index = [
            s if isinstance(s, np.ndarray) else np.arange(*s.indices(n))
            for s, n in zip(self.local, chunk.shape)
        ]
        return chunk[np.ix_(*index)]


def _dim_pieces(
    start: int, stop: int, step: int, chunk: int, size: int
) -> list[tuple[int, slice, slice, bool]]:
    pieces: list[tuple[int, slice, slice, bool]] = []
    if stop <= start:
        return pieces
    for k in range(start // chunk, (stop - 1) // chunk + 1):
        lo, hi = k * chunk, min((k + 1) * chunk, stop)
        first = start if start >= lo else start + math.ceil((lo - start) / step) * step
        if first >= hi:
            continue
        count = math.ceil((hi - first) / step)
        o = (first - start) // step
        full = step == 1 and first == lo and hi == min((k + 1) * chunk, size)
        local = slice(first - lo, first - lo + (count - 1) * step + 1, step)
        pieces.append((k, local, slice(o, o + count), full))
    return pieces


def _point_pieces(points: np.ndarray, chunk: int) -> list[tuple[int, Any, slice, bool]]:
    """Sorted unique indices grouped by chunk: each group lands in a contiguous output range."""
    if points.size == 0:
        return []
    chunk_of = points // chunk
    bounds = np.flatnonzero(np.diff(chunk_of)) + 1
    starts = np.concatenate(([0], bounds))
    stops = np.concatenate((bounds, [len(points)]))
    return [
        (int(chunk_of[a]), points[a:b] - int(chunk_of[a]) * chunk, slice(int(a), int(b)), False)
        for a, b in zip(starts, stops)
    ]


def chunk_pieces(
    box: Box, chunk_shape: tuple[int, ...], shape: tuple[int, ...]
) -> Iterator[ChunkPiece]:
    """Every chunk of a regular grid that the box touches, with its local and output slices."""
    points = box.points or (None,) * len(shape)
    per_dim = [
        _point_pieces(p, c) if p is not None else _dim_pieces(a, b, s, c, n)
        for a, b, s, c, n, p in zip(box.start, box.stop, box.step, chunk_shape, shape, points)
    ]
    if not per_dim:
        yield ChunkPiece((), (), (), True)
        return
    for combo in itertools.product(*per_dim):
        index, local, out, full = zip(*combo)
        yield ChunkPiece(index, local, out, all(full))
