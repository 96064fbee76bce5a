"""Numpy selections turned into boxes, and the piece of a box one chunk contributes.

A selection becomes a *box*: per dimension a start, stop and positive step (or sorted indices),
plus the numpy index that turns the box into what numpy would return (dropping integer
dimensions, reversing negative steps). The chunk grid (:mod:`xzaro.chunk_grid`) splits a box
into :class:`ChunkPiece` values, one per chunk it touches.
"""

from __future__ import annotations

import operator
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
        """The shape of what the box selects."""
        points = self.points or (None,) * len(self.start)
        return tuple(
            len(p) if p is not None else max(0, -((a - b) // s))
            for a, b, s, p in zip(self.start, self.stop, self.step, points)
        )


def _expand(selection: tuple[Any, ...], shape: tuple[int, ...]) -> tuple[list[Any], int]:
    """One entry per dimension (``...`` and missing trailing entries become full slices), and
    how many ellipses were given."""
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
    return expanded, n_ellipsis


def normalize_selection(selection: Any, shape: tuple[int, ...]) -> tuple[Box, tuple[Any, ...]]:
    """Turn a basic numpy selection into a :class:`Box` and the index applied to its result.

    Raises
    ------
    IndexError
        For out-of-range integers, too many indices or non-basic selections; the message names
        the array's shape.
    """
    if not isinstance(selection, tuple):
        selection = (selection,)
    expanded, n_ellipsis = _expand(selection, shape)

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
            if isinstance(sel, bool | np.bool_):  # numpy reads a[True] as a new axis
                raise TypeError
            i = operator.index(sel)
        except TypeError:
            raise IndexError(
                f"only integers, slices, Ellipsis and integer or boolean arrays are valid "
                f"indices, got {type(sel).__name__} for dimension {dim}; array shape is {shape}"
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


def _is_index_array(sel: Any) -> bool:
    return isinstance(sel, list | tuple | np.ndarray) and np.ndim(sel) >= 1


def _index_array(sel: Any, dim: int, shape: tuple[int, ...]) -> np.ndarray:
    """An integer or boolean index array for dimension ``dim`` as non-negative int64 indices
    (same shape for integers; the positions of the true values for a 1-D boolean mask)."""
    n = shape[dim]
    arr = np.asarray(sel)
    if arr.dtype == bool:
        if arr.ndim != 1 or len(arr) != n:
            raise IndexError(
                f"a boolean index must be 1-D with one value per element of its dimension; "
                f"got shape {arr.shape} for axis {dim} with size {n}; array shape is {shape}"
            )
        return np.flatnonzero(arr)
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise IndexError(
            f"index arrays must hold integers or booleans, got {arr.dtype} for axis {dim}; "
            f"array shape is {shape}"
        )
    out_of_range = (arr < -n) | (arr >= n)
    if out_of_range.any():
        raise IndexError(
            f"index {arr[out_of_range].flat[0]} is out of bounds for axis {dim} with size {n}; "
            f"array shape is {shape}"
        )
    arr = arr.astype(np.int64)
    return np.where(arr < 0, arr + n, arr)


@dataclass(frozen=True)
class Selection:
    """A numpy-style selection planned for a chunked read.

    ``box`` is what is read (each index array becomes the sorted unique ``points`` of its
    dimension, so every chunk is fetched once); :meth:`finish` turns the box's values into the
    result: ``takes`` restores the order and repetitions asked for along each such dimension,
    ``post`` is the basic index applied last (integers drop their dimension, negative steps
    reverse), and for a single integer array, ``array_axis``/``array_shape``/``to_front`` give
    it numpy's shape and place.
    """

    box: Box
    post: tuple[Any, ...]
    takes: dict[int, np.ndarray]
    array_axis: int | None = None
    array_shape: tuple[int, ...] = ()
    to_front: bool = False

    def finish(self, values: np.ndarray) -> np.ndarray:
        """The result of the selection, from the values read for :attr:`box`."""
        for axis, positions in self.takes.items():
            values = np.take(values, positions, axis=axis)
        values = values[self.post]
        if self.array_axis is None:
            return values
        axis, k = self.array_axis, len(self.array_shape)
        if k != 1:
            values = values.reshape(
                values.shape[:axis] + self.array_shape + values.shape[axis + 1 :]
            )
        if self.to_front and axis:
            values = np.moveaxis(values, list(range(axis, axis + k)), list(range(k)))
        return values


def plan_selection(selection: Any, shape: tuple[int, ...], *, orthogonal: bool) -> Selection:
    """Plan a selection of integers, slices, ``...`` and integer or boolean arrays.

    With one index array the result is numpy's (the array may have any number of dimensions;
    a boolean array must be 1-D). With several, or with ``orthogonal=True``, each 1-D array
    selects along its own dimension independently (orthogonal, or outer, indexing, as
    zarr-python's ``oindex``): ``a[[0, 2], [1, 3]]`` is a 2 x 2 block, not numpy's two points.
    Indices may be negative, unsorted and repeated.

    Raises
    ------
    IndexError
        For out-of-range indices, too many indices, masks of the wrong length, non-integer
        arrays and index types that are not supported; the message names the array's shape.
    """
    entries = selection if isinstance(selection, tuple) else (selection,)
    if not any(_is_index_array(s) for s in entries):
        box, post = normalize_selection(selection, shape)
        return Selection(box, post, {})
    expanded, _ = _expand(entries, shape)
    arrays = {
        dim: _index_array(s, dim, shape) for dim, s in enumerate(expanded) if _is_index_array(s)
    }
    plain = tuple(slice(None) if dim in arrays else s for dim, s in enumerate(expanded))
    box, post = normalize_selection(plain, shape)
    single = not orthogonal and len(arrays) == 1
    if not single:
        for dim, arr in arrays.items():
            if arr.ndim != 1:
                raise IndexError(
                    f"orthogonal indexing takes 1-D index arrays, got shape {arr.shape} for "
                    f"axis {dim}; array shape is {shape}"
                )
    points: list[np.ndarray | None] = [None] * len(shape)
    takes: dict[int, np.ndarray] = {}
    for dim, arr in arrays.items():
        flat = arr.reshape(-1)
        unique, inverse = np.unique(flat, return_inverse=True)
        points[dim] = unique
        if len(unique) != len(flat) or not np.array_equal(unique, flat):
            takes[dim] = inverse.reshape(-1)
    box = Box(box.start, box.stop, box.step, tuple(points))
    if not single:
        return Selection(box, post, takes)
    ((dim, arr),) = arrays.items()
    # numpy: integers count as advanced indices next to an array; when a slice separates
    # them, the array's dimensions move to the front of the result
    advanced = [d for d, p in enumerate(post) if d in arrays or isinstance(p, int)]
    separated = advanced[-1] - advanced[0] + 1 != len(advanced)
    axis = sum(1 for p in post[:dim] if not isinstance(p, int))
    return Selection(box, post, takes, axis, arr.shape, separated)


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
            part: np.ndarray = chunk[self.local]
            return part
        index = [
            s if isinstance(s, np.ndarray) else np.arange(*s.indices(n))
            for s, n in zip(self.local, chunk.shape)
        ]
        part = chunk[np.ix_(*index)]
        return part
