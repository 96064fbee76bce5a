"""Pyramid planning: what a multiscale write asks for, and each level's layout and count.

A pyramid's level 0 is the dataset at full resolution; each further level halves the
coarsened dimensions. Every level is stored with level 0's chunks (and shards), capped at its
size; the levels stop where a level fits in one stored chunk (or at the number asked for).
The coarsening itself is :mod:`xzaro.writers.coarsen`'s, the writing
:mod:`xzaro.writers.multiscale`'s.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from xzaro.writers.coarsen import METHODS
from xzaro.writers.encoding import call_sizes, parse_sizes
from xzaro.writers.layout import DEFAULT_CHUNK_BYTES, auto_chunks
from xzaro.writers.ome import SPATIAL_NAMES


@dataclass(frozen=True)
class Multiscale:
    """How to build a pyramid.

    Parameters
    ----------
    levels
        Number of levels including level 0; ``None`` continues until a level fits in one
        stored chunk. Every level is stored with level 0's chunks (and shards), capped at its
        size: ``chunks=``/``shards=`` (or per-variable ``encoding``), else those the data was
        read with, else about 4 MiB in square tiles along ``dims``, never the Dask chunks. A
        pyramid of one level by default, or of fewer levels than asked, warns.
    dims
        Dimensions to coarsen; default: the two fastest spatial dimensions by name
        (``x``/``y``/``lon``/``lat``/``longitude``/``latitude``), else the last two.
    method
        ``"mean"`` (NaN-aware for floats; integers averaged without overflow and rounded),
        ``"decimate"`` (every other cell), ``"min"`` or ``"max"``. Odd edges use the cells
        that exist.
    """

    levels: int | None = None
    dims: tuple[str, ...] | None = None
    method: str = "mean"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.levels is not None and self.levels < 1:
            raise ValueError(f"levels must be at least 1, got {self.levels}")
        if self.dims is not None:
            object.__setattr__(self, "dims", tuple(self.dims))


def default_dims(dataset: Any) -> tuple[str, ...]:
    """The two fastest spatial dimensions by name, else the last two of the largest variable."""
    variables = [v for v in dataset.data_vars.values() if v.ndim >= 2] or list(
        dataset.data_vars.values()
    )
    if not variables:
        raise ValueError("a multiscale pyramid needs at least one data variable")
    main = max(variables, key=lambda v: v.size)
    dims = [str(d) for d in main.dims]
    spatial = [d for d in dims if d.lower() in SPATIAL_NAMES]
    return tuple(spatial[-2:]) if len(spatial) >= 2 else tuple(dims[-2:])


#: Pyramid tiles are cut in multiples of this along the coarsened dimensions.
_TILE_STEP = 16
#: Encoding keys that describe how a source was stored, not how the pyramid is to be stored.
_LAYOUT_KEYS = ("chunks", "shards", "preferred_chunks")

Layout = tuple[tuple[int, ...], tuple[int, ...] | None]


def _tile_edge(budget: int, k: int) -> int:
    """The largest edge whose ``k``-th power fits ``budget``, in multiples of ``_TILE_STEP``."""
    edge = max(1, round(budget ** (1 / k)))
    while edge > 1 and edge**k > budget:
        edge -= 1
    while (edge + 1) ** k <= budget:
        edge += 1
    return edge - edge % _TILE_STEP if edge >= _TILE_STEP else edge


def pyramid_chunks(shape: tuple[int, ...], itemsize: int, axes: tuple[int, ...]) -> tuple[int, ...]:
    """Default stored chunks of a pyramid variable, about ``DEFAULT_CHUNK_BYTES`` each.

    The coarsened ``axes`` share one square (or cubic) tile edge, a multiple of 16, unless a
    dimension is smaller than it; dimensions after the first coarsened one stay whole (bands);
    the budget left over goes to the leading dimensions, fastest first, so that a small image
    of many time steps is not cut into tiny objects. Without ``axes``, the writer's default.
    """
    if not axes:
        return auto_chunks(shape, itemsize)
    chunks = [max(1, int(n)) for n in shape]
    budget = max(1, DEFAULT_CHUNK_BYTES // max(1, itemsize))
    first = min(axes)
    for i in range(first, len(shape)):
        if i not in axes:
            budget = max(1, budget // chunks[i])
    coarse = sorted(axes, key=lambda a: chunks[a])
    for j, a in enumerate(coarse):
        edge = _tile_edge(budget, len(coarse) - j)
        if chunks[a] <= edge:
            budget = max(1, budget // chunks[a])
            continue
        for b in coarse[j:]:  # all at least as long as ``a``, so longer than the edge
            chunks[b] = edge
        budget = max(1, budget // edge ** (len(coarse) - j))
        break
    for i in reversed(range(first)):
        chunks[i] = min(chunks[i], budget)
        budget = max(1, budget // chunks[i])
    return tuple(chunks)


def pyramid_layouts(
    dataset: Any,
    dims: tuple[str, ...],
    chunks: Any,
    shards: Any,
    encoding: Mapping[Any, Mapping],
    zarr_format: int,
) -> dict[Hashable, Layout]:
    """Level 0's stored chunks and shards of every variable; every level keeps them, capped.

    As a plain write decides them, except that Dask chunks never do (a Dask array in one
    block would be stored, and its pyramid stopped, as one chunk). Chunks: the variable's
    ``encoding`` entry; else the ``chunks`` argument for the dimensions it names, and for the
    others the chunks the variable was read with, else the main (largest) data variable's
    chunk along that dimension, else :func:`pyramid_chunks`. Shards (Zarr V3): the
    ``encoding`` entry, else the ``shards`` argument, else those the variable was read with
    when they hold whole chunks.
    """
    variables = dict(dataset.variables)
    main = max(
        (n for n in dataset.data_vars if variables[n].ndim),
        key=lambda n: variables[n].size,
        default=None,
    )
    by_dim: dict[str, int] = {}
    layouts: dict[Hashable, Layout] = {}
    for name in ([main] if main is not None else []) + [n for n in variables if n != main]:
        var = variables[name]
        vdims = tuple(str(d) for d in var.dims)
        shape = tuple(int(n) for n in var.shape)
        own = encoding.get(name) or {}
        chunk = parse_sizes(own.get("chunks"), shape, vdims, "chunks", strict=True)
        if chunk is None:
            axes = tuple(i for i, d in enumerate(vdims) if d in dims)
            base = dict(zip(vdims, pyramid_chunks(shape, var.dtype.itemsize, axes)))
            base.update((d, c) for d, c in by_dim.items() if d in base)
            read = parse_sizes(var.encoding.get("chunks"), shape, vdims, "chunks", strict=False)
            base.update(zip(vdims, read or ()))
            base.update(call_sizes(chunks, vdims, shape, "chunks"))
            chunk = tuple(base[d] for d in vdims)
        shard = None
        if zarr_format == 3 and shape:
            called = call_sizes(shards, vdims, shape, "shards")
            read = parse_sizes(var.encoding.get("shards"), shape, vdims, "shards", strict=False)
            if "shards" in own:
                shard = parse_sizes(own["shards"], shape, vdims, "shards", strict=True)
            elif called:
                shard = tuple(called.get(d, c) for d, c in zip(vdims, chunk))
            elif read is not None and all(s % c == 0 for s, c in zip(read, chunk)):
                shard = read
        layouts[name] = (chunk, shard)
        stored = level_encoding(layouts[name], shape)
        if shard is not None and any(s % c for s, c in zip(stored["shards"], stored["chunks"])):
            raise ValueError(
                f"shards {stored['shards']} of {name!r} must be whole multiples of its chunks "
                f"{stored['chunks']} (dimensions {list(vdims)})"
            )
        if name == main:
            by_dim = dict(zip(vdims, chunk))
    return layouts


def level_encoding(layout: Layout, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """``chunks`` (and ``shards``) of one level: chunks capped at its shape, shards at the
    whole chunks that cover it, so they stay whole multiples of the chunks."""
    if not shape:
        return {}
    chunk = tuple(max(1, min(c, n)) for c, n in zip(layout[0], shape))
    out = {"chunks": chunk}
    if layout[1] is not None:
        out["shards"] = tuple(
            min(s, -(-max(1, n) // c) * c) for s, c, n in zip(layout[1], chunk, shape)
        )
    return out


def with_layout(dataset: Any, layouts: dict[Hashable, Layout]) -> Any:
    """A shallow copy of one level whose variables carry its chunks and shards in their
    encoding, in place of those they were read with (their other encoding stays)."""
    out = dataset.copy(deep=False)
    for name, var in out.variables.items():
        enc = {k: v for k, v in var.encoding.items() if k not in _LAYOUT_KEYS}
        var.encoding = {**enc, **level_encoding(layouts[name], var.shape)}
    return out


def one_chunk_sizes(
    dataset: Any, dims: tuple[str, ...], layouts: dict[Hashable, Layout]
) -> dict[str, int]:
    """Per pyramid dimension, the stored chunk length of the largest variable along it."""
    out = {}
    for d in dims:
        holders = [n for n in dataset.data_vars if d in dataset.variables[n].dims] or [
            n for n, v in dataset.variables.items() if d in v.dims
        ]
        name = max(holders, key=lambda n: dataset.variables[n].size)
        out[d] = layouts[name][0][list(dataset.variables[name].dims).index(d)]
    return out


def level_count(spec: Multiscale, sizes: Mapping[str, int], stop: Mapping[str, int]) -> int:
    """How many levels a pyramid has: ``spec.levels``, or by default until a level fits in one
    stored chunk (``stop``: its length along each coarsened dimension); never beyond the level
    that is one cell along every coarsened dimension. ``sizes`` are level 0's."""
    count, extent = 1, dict(sizes)
    while spec.levels is None or count < spec.levels:
        if all(n <= 1 for n in extent.values()):
            break
        if spec.levels is None and all(extent[d] <= stop[d] for d in extent):
            break
        extent = {d: -(-n // 2) for d, n in extent.items()}
        count += 1
    return count


def _outside_xzaro() -> int:
    """The ``stacklevel`` of the first caller outside this package, for the caller's warning
    to point at the user's code, whichever accessor it came through."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def warn_if_short(
    spec: Multiscale, dims: tuple[str, ...], sizes: dict, chunk: dict, n_levels: int
) -> None:
    """A ``UserWarning`` when the pyramid has one level by default, or fewer than asked."""

    def show(sizes: dict) -> str:
        return ", ".join(f"{d}={n}" for d, n in sizes.items())

    if spec.levels is None and n_levels == 1:
        warnings.warn(
            f"multiscale: only level 0 is written: the image ({show(sizes)}) fits in one stored "
            f"chunk ({show(chunk)}); pass multiscale=Multiscale(levels=n) for n levels, or "
            "smaller chunks= for more levels by default",
            UserWarning,
            stacklevel=_outside_xzaro(),
        )
    elif spec.levels is not None and n_levels < spec.levels:
        warnings.warn(
            f"multiscale: {n_levels} levels are written, not {spec.levels}: level {n_levels - 1} "
            f"is one cell along {show(dict.fromkeys(dims, 1))}; ask for at most {n_levels}",
            UserWarning,
            stacklevel=_outside_xzaro(),
        )
