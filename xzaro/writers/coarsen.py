"""Coarsening kernels: reduce a numpy block 2x along some axes, one kernel per pyramid method.

A method is one kernel (``kernel(data, axes) -> coarse``: the cells of each 2x2(x2) group reduced
to one, odd edges reducing the cells that exist, the result in ``data``'s type) and one line of
:data:`COARSENINGS`, which also says how the coordinates of a level follow the method. Nothing
here knows about datasets, stores or metadata; :func:`coarsen_tiles` is the chunk-major form the
streaming device uses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xzaro.concurrency import concurrent_map
from xzaro.writers.tiles import copy_into_tiles, from_tiles

Kernel = Callable[[np.ndarray, tuple[int, ...]], np.ndarray]


def _cells(data: np.ndarray, axes: tuple[int, ...]) -> list[np.ndarray]:
    """The 2**len(axes) strided views whose elementwise reduction is the 2x reduction.

    ``data`` has even sizes along ``axes``; no copies are made.
    """
    views = []
    for offsets in itertools.product((0, 1), repeat=len(axes)):
        where = dict(zip(axes, offsets))
        views.append(
            data[
                tuple(
                    slice(where[i], None, 2) if i in where else slice(None)
                    for i in range(data.ndim)
                )
            ]
        )
    return views


def _padded(data: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``data``, or, when it is odd along an axis of ``axes``, a float64 copy padded there with
    NaN, which every reduction ignores."""
    pad = [(0, n % 2 if i in axes else 0) for i, n in enumerate(data.shape)]
    if not any(p[1] for p in pad):
        return data
    return np.pad(data.astype(np.float64), pad, constant_values=np.nan)


def _to_dtype(out: np.ndarray, dtype: np.dtype, majority: bool) -> np.ndarray:
    """Back to the stored type: integers rounded (ties to even) and clipped, never truncated;
    booleans by majority (``majority``) or as they are."""
    if dtype.kind in "iu":
        info_ = np.iinfo(dtype)
        return np.clip(np.rint(out), info_.min, info_.max).astype(dtype)
    if dtype.kind == "b":
        return out >= 0.5 if majority else out.astype(bool)
    return out.astype(dtype)


def _accumulator(dtype: np.dtype) -> np.dtype | None:
    """Exact sum type for the 2**k cells of a mean (``None``: no fast path for this type)."""
    if dtype.kind == "f":
        return np.dtype(np.float64)
    if dtype.kind in "iu" and dtype.itemsize <= 4:
        wide = 4 if dtype.itemsize <= 2 else 8
        return np.dtype(f"{'u' if dtype.kind == 'u' else 'i'}{wide}")
    return None


def even_mean(
    data: np.ndarray, axes: tuple[int, ...], out: np.ndarray | None = None
) -> np.ndarray | None:
    """The mean of a block whose sizes along ``axes`` are even, or ``None`` when the general
    path is needed (odd sizes, other types, NaN present). ``out`` (any strides) may receive it.

    Works one sub-block of the leading non-reduced axes at a time with reused scratch arrays,
    adding neighbours pairwise from the fastest axis (contiguous adds after the first), in an
    exact accumulator: float64 for floats, a wider integer for integers, which are rounded
    half to even with shifts.
    """
    acc = _accumulator(data.dtype)
    if acc is None or not axes or any(data.shape[a] % 2 for a in axes):
        return None
    lead = min(axes)
    inner_axes = sorted((a - lead for a in axes), reverse=True)
    sub_shape = data.shape[lead:]
    scratch = []
    shape = list(sub_shape)
    for a in inner_axes:
        shape[a] //= 2
        scratch.append(np.empty(shape, acc))
    if out is None:
        out = np.empty((*data.shape[:lead], *shape), data.dtype)
    k = len(axes)
    bit = np.empty(shape, acc) if acc.kind in "iu" else None
    for idx in np.ndindex(*data.shape[:lead]):
        cur = data[idx]
        for a, buf in zip(inner_axes, scratch):
            lo = tuple(slice(0, None, 2) if i == a else slice(None) for i in range(cur.ndim))
            hi = tuple(slice(1, None, 2) if i == a else slice(None) for i in range(cur.ndim))
            np.add(cur[lo], cur[hi], out=buf, dtype=acc)
            cur = buf
        total = scratch[-1]
        if bit is None:
            np.multiply(total, 0.5**k, out=out[idx], casting="same_kind")
        else:  # round(total / 2**k), ties to even: (total + 2**(k-1) - 1 + odd(quotient)) >> k
            np.right_shift(total, k, out=bit)
            np.bitwise_and(bit, 1, out=bit)
            total += (1 << (k - 1)) - 1
            total += bit
            total >>= k
            out[idx] = total
    if out.dtype.kind == "f" and np.isnan(out).any():
        return None
    return out


def mean(data: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The 2x mean along ``axes``: NaN-aware for floats, integers averaged without overflow and
    rounded (ties to even), booleans by majority.

    Means are accumulated in float64 (exact for every integer up to 2**53, no float16/32
    round-off) and rounded once to the stored type.
    """
    fast = even_mean(data, axes)
    if fast is not None:
        return fast
    work = _padded(data, axes)
    floats = work.dtype.kind in "fc"
    if not (floats and np.isnan(work).any()):
        # No missing values: add neighbours pairwise, one axis at a time, in float64.
        out = work
        for axis in axes:
            lo = tuple(slice(0, None, 2) if i == axis else slice(None) for i in range(work.ndim))
            hi = tuple(slice(1, None, 2) if i == axis else slice(None) for i in range(work.ndim))
            out = np.add(out[lo], out[hi], dtype=np.float64)
        out /= 2 ** len(axes)
        return _to_dtype(out, data.dtype, majority=True)
    cells = _cells(work, axes)
    total = np.zeros(cells[0].shape, dtype=np.float64)
    count = np.zeros(cells[0].shape, dtype=np.float64)
    for cell in cells:
        present = ~np.isnan(cell)
        total += np.where(present, cell, 0)
        count += present
    with np.errstate(invalid="ignore", divide="ignore"):
        return _to_dtype(total / count, data.dtype, majority=True)


def decimate(data: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Every other cell along ``axes``, starting with the first (a view, no copy)."""
    return data[tuple(slice(None, None, 2) if i in axes else slice(None) for i in range(data.ndim))]


def _extreme(data: np.ndarray, axes: tuple[int, ...], pick: np.ufunc) -> np.ndarray:
    """The NaN-ignoring ``pick`` (``np.fmin`` or ``np.fmax``) of each group of cells."""
    work = _padded(data, axes)
    cells = _cells(work, axes)
    out = cells[0].astype(np.float64) if work.dtype.kind not in "fc" else cells[0].copy()
    for cell in cells[1:]:
        pick(out, cell, out=out)
    return _to_dtype(out, data.dtype, majority=False)


def minimum(data: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The 2x minimum along ``axes`` (NaN ignored)."""
    return _extreme(data, axes, np.fmin)


def maximum(data: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The 2x maximum along ``axes`` (NaN ignored)."""
    return _extreme(data, axes, np.fmax)


@dataclass(frozen=True)
class Coarsening:
    """A pyramid method.

    Attributes
    ----------
    kernel
        Reduces a block 2x along the given axes, in the block's type.
    coordinates
        The method that coarsens a level's coordinate variables.
    half_cell_shift
        Whether OME-NGFF metadata moves each level by half a cell (a ``translation``): a coarse
        cell then sits at the centre of the cells it averages.
    """

    kernel: Kernel
    coordinates: str
    half_cell_shift: bool


#: Every pyramid method by name: a new method is a kernel above and one line here.
COARSENINGS: dict[str, Coarsening] = {
    "mean": Coarsening(mean, coordinates="mean", half_cell_shift=True),
    "decimate": Coarsening(decimate, coordinates="decimate", half_cell_shift=False),
    "min": Coarsening(minimum, coordinates="mean", half_cell_shift=False),
    "max": Coarsening(maximum, coordinates="mean", half_cell_shift=False),
}
METHODS = tuple(COARSENINGS)


def coarsen_array(data: np.ndarray, axes: tuple[int, ...], method: str) -> np.ndarray:
    """Reduce ``data`` 2x along ``axes`` with the kernel of ``method`` (see :data:`COARSENINGS`);
    odd edges reduce the cells that exist."""
    return COARSENINGS[method].kernel(data, axes)


def coarsen_tiles(
    src: np.ndarray,
    src_shape: tuple[int, ...],
    axes: tuple[int, ...],
    dst: np.ndarray,
    dst_shape: tuple[int, ...],
) -> None:
    """The 2x mean along ``axes`` of a chunk-major block, into a chunk-major block.

    ``src`` holds a block of ``src_shape`` as tiles (see :mod:`xzaro.writers.tiles`); ``dst``
    receives its mean, of ``dst_shape`` (halved, rounded up, along ``axes``), as tiles of its own
    chunk shape, which is the source's except where a level is smaller than one chunk. ``dst``
    must hold the fill value (zero) wherever no source tile lands. When the source chunks are
    even along ``axes``, every source tile is reduced on its own (in parallel, no copy of the
    block); an odd edge replicates its last cell, which makes the mean that of the cells that
    exist. Odd chunk sizes go through the natural layout.
    """
    ndim = len(src_shape)
    chunk, dst_chunk = src.shape[ndim:], dst.shape[ndim:]
    if any(chunk[a] % 2 for a in axes):
        natural = from_tiles(src, src_shape)
        lead = min(axes)
        coarse = np.empty(dst_shape, src.dtype)
        for idx in np.ndindex(*src_shape[:lead]):
            coarse[idx] = mean(natural[idx], tuple(a - lead for a in axes))
        copy_into_tiles(coarse, dst)
        return

    def reduce(index: tuple[int, ...]) -> None:
        tile = _with_odd_edge_filled(src, index, src_shape, axes)
        half = tuple(c // 2 if a in axes else c for a, c in enumerate(chunk))
        target, region = [], []
        for a in range(ndim):
            start = index[a] * half[a]
            length = min(half[a], dst_shape[a] - start)
            target.append(start // dst_chunk[a])
            offset = start % dst_chunk[a]
            region.append((slice(offset, offset + length), slice(0, length)))
        view = dst[tuple(target)][tuple(r[0] for r in region)]
        # Straight into the destination when none of it is clipped (no temporary array).
        if (
            view.shape == half
            and tile.dtype == dst.dtype
            and even_mean(tile, axes, view) is not None
        ):
            return
        coarse = mean(tile, axes)
        view[...] = coarse[tuple(r[1] for r in region)]

    concurrent_map(reduce, list(np.ndindex(*src.shape[:ndim])))


def _with_odd_edge_filled(
    src: np.ndarray, index: tuple[int, ...], src_shape: tuple[int, ...], axes: tuple[int, ...]
) -> np.ndarray:
    """Tile ``index`` of ``src``; where it ends the array after an odd number of cells along
    an axis of ``axes``, a copy whose next cell repeats the last one."""
    ndim = len(src_shape)
    chunk = src.shape[ndim:]
    tile, copied = src[index], False
    for a in axes:
        real = src_shape[a] - index[a] * chunk[a]
        if real < chunk[a] and real % 2:
            if not copied:  # never write into the source: its padding is stored as it is
                tile, copied = tile.copy(), True
            edge = [slice(None)] * ndim
            edge[a] = slice(real - 1, real)
            fill = list(edge)
            fill[a] = slice(real, real + 1)
            tile[tuple(fill)] = tile[tuple(edge)]
    return tile
