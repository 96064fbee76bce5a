"""Multiscale pyramids: level 0 at full resolution, each further level coarsened by 2.

Levels are groups ``0``, ``1``, … of one store, each a dataset whose coordinates are coarsened
consistently with its data. The root carries OME-NGFF ``multiscales`` metadata (0.4 for V2; 0.5
under ``ome`` for V3) with one entry per image variable, whose datasets point at that variable in
each level, with ``scale`` (and, for averages, the half-pixel ``translation``) transformations.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.log import info

METHODS = ("mean", "decimate", "min", "max")
SPATIAL_NAMES = ("x", "y", "z", "lon", "lat", "longitude", "latitude")
_TIME_NAMES = ("t", "time")
_CHANNEL_NAMES = ("c", "channel", "band")


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


def coarsen_array(data: np.ndarray, axes: tuple[int, ...], method: str) -> np.ndarray:
    """Reduce 2x along ``axes``; odd edges reduce the cells that exist.

    Means are accumulated in float64 (exact for every integer up to 2**53, no float16/32
    round-off) and rounded once to the stored type; integer means round to the nearest integer
    (ties to even), never truncated; float means ignore NaN.
    """
    if method == "decimate":
        return data[
            tuple(slice(None, None, 2) if i in axes else slice(None) for i in range(data.ndim))
        ]
    dtype = data.dtype
    if method == "mean":
        fast = _even_mean(data, axes)
        if fast is not None:
            return fast
    pad = [(0, n % 2 if i in axes else 0) for i, n in enumerate(data.shape)]
    work = data
    if any(p[1] for p in pad):  # odd edges: pad with NaN, which every reduction ignores
        work = np.pad(data.astype(np.float64), pad, constant_values=np.nan)
    if method == "mean" and not (work.dtype.kind in "fc" and np.isnan(work).any()):
        # No missing values: add neighbours pairwise, one axis at a time, in float64.
        out = work
        for axis in axes:
            lo = tuple(slice(0, None, 2) if i == axis else slice(None) for i in range(work.ndim))
            hi = tuple(slice(1, None, 2) if i == axis else slice(None) for i in range(work.ndim))
            out = np.add(out[lo], out[hi], dtype=np.float64)
        out /= 2 ** len(axes)
        return _to_dtype(out, dtype, method)
    cells = _cells(work, axes)
    if method == "mean":
        total = np.zeros(cells[0].shape, dtype=np.float64)
        count = np.zeros(cells[0].shape, dtype=np.float64)
        floats = work.dtype.kind in "fc"
        for cell in cells:
            if floats:
                present = ~np.isnan(cell)
                total += np.where(present, cell, 0)
                count += present
            else:
                total += cell
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / (count if floats else len(cells))
    else:
        pick = np.fmin if method == "min" else np.fmax  # NaN-ignoring
        out = cells[0].astype(np.float64) if work.dtype.kind not in "fc" else cells[0].copy()
        for cell in cells[1:]:
            pick(out, cell, out=out)
    return _to_dtype(out, dtype, method)


def _accumulator(dtype: np.dtype) -> np.dtype | None:
    """Exact sum type for the 2**k cells of a mean (``None``: no fast path for this type)."""
    if dtype.kind == "f":
        return np.dtype(np.float64)
    if dtype.kind in "iu" and dtype.itemsize <= 4:
        wide = 4 if dtype.itemsize <= 2 else 8
        return np.dtype(f"{'u' if dtype.kind == 'u' else 'i'}{wide}")
    return None


def _even_mean(
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


def _to_dtype(out: np.ndarray, dtype: np.dtype, method: str) -> np.ndarray:
    """Back to the stored type: integers rounded (ties to even) and clipped, never truncated."""
    if dtype.kind in "iu":
        info_ = np.iinfo(dtype)
        return np.clip(np.rint(out), info_.min, info_.max).astype(dtype)
    if dtype.kind == "b":
        return out >= 0.5 if method == "mean" else out.astype(bool)
    return out.astype(dtype)


def coarsen_dataset(dataset: Any, dims: tuple[str, ...], method: str) -> Any:
    """One pyramid step of a dataset: every variable along ``dims`` reduced 2x."""
    import dask.array as da
    import xarray as xr

    out = {}
    for name, var in dataset.variables.items():
        axes = tuple(i for i, d in enumerate(var.dims) if d in dims)
        if not axes:
            out[name] = var
            continue
        coord_method = "decimate" if method == "decimate" else "mean"
        how = coord_method if name in dataset.coords else method
        if var.dtype.kind in "mM" or var.dtype.kind in "OSU":
            how = "decimate"
        data = var.data
        if hasattr(data, "dask"):
            # Blocks of even size along the reduced axes pair cells within blocks; only the
            # array's last block may be odd, and its edge reduces the cells that exist.
            even = data.rechunk(
                tuple(
                    _even_chunks(chunks, data.shape[i]) if i in axes else chunks
                    for i, chunks in enumerate(data.chunks)
                )
            )
            new_chunks = tuple(
                tuple(math.ceil(c / 2) for c in chunks) if i in axes else chunks
                for i, chunks in enumerate(even.chunks)
            )
            reduced = da.map_blocks(
                coarsen_array, even, axes=axes, method=how, chunks=new_chunks, dtype=var.dtype
            )
        else:
            reduced = coarsen_array(np.asarray(data), axes, how)
        out[name] = xr.Variable(var.dims, reduced, var.attrs, var.encoding)
    coords = [n for n in dataset.coords if n in out]
    result = xr.Dataset(
        {n: v for n, v in out.items() if n not in coords},
        coords={n: out[n] for n in coords},
        attrs=dataset.attrs,
    )
    return result


def _even_chunks(chunks: tuple[int, ...], size: int) -> tuple[int, ...]:
    step = max(2, max(chunks) + max(chunks) % 2)
    return tuple(min(step, size - i) for i in range(0, size, step))


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
    from xzaro.writers.layout import DEFAULT_CHUNK_BYTES, auto_chunks

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
    encoding: Mapping[Hashable, Mapping],
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
    from xzaro.writers.encoding import call_sizes, parse_sizes

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


def _with_layout(dataset: Any, layouts: dict[Hashable, Layout]) -> Any:
    """A shallow copy of one level whose variables carry its chunks and shards in their
    encoding, in place of those they were read with (their other encoding stays)."""
    out = dataset.copy(deep=False)
    for name, var in out.variables.items():
        enc = {k: v for k, v in var.encoding.items() if k not in _LAYOUT_KEYS}
        var.encoding = {**enc, **level_encoding(layouts[name], var.shape)}
    return out


def _one_chunk_sizes(
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


def _outside_xzaro() -> int:
    """The ``stacklevel`` of the first caller outside this package, for the caller's warning
    to point at the user's code, whichever accessor it came through."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _warn_if_short(
    spec: Multiscale, dims: tuple[str, ...], sizes: dict, chunk: dict, n_levels: int
) -> None:
    """A ``UserWarning`` when the pyramid has one level by default, or fewer than asked."""
    import warnings

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


def _axis_type(name: str) -> str | None:
    low = name.lower()
    if low in SPATIAL_NAMES:
        return "space"
    if low in _TIME_NAMES:
        return "time"
    if low in _CHANNEL_NAMES:
        return "channel"
    return None


def _spacing(dataset: Any, dim: str) -> float:
    if dim in dataset.coords and dataset[dim].ndim == 1 and dataset.sizes[dim] > 1:
        values = np.asarray(dataset[dim].values)
        if values.dtype.kind in "iuf":
            step = np.diff(values.astype(np.float64))
            if np.allclose(step, step[0]) and step[0] != 0:
                return float(step[0])
    return 1.0


def ome_multiscales(
    dataset: Any, dims: tuple[str, ...], method: str, n_levels: int, version: str
) -> list[dict]:
    """OME-NGFF ``multiscales`` entries, one per variable whose axes OME can describe."""
    entries = []
    for name, var in dataset.data_vars.items():
        names = [str(d) for d in var.dims]
        types = [_axis_type(d) for d in names]
        if not 2 <= len(names) <= 5 or None in types or types.count("space") not in (2, 3):
            info("multiscale: variable %r has axes %s that OME-NGFF cannot describe", name, names)
            continue
        order = {"time": 0, "channel": 1, "space": 2}
        if [order[t] for t in types] != sorted(order[t] for t in types):  # type: ignore[index]
            info("multiscale: variable %r axes %s are not in OME-NGFF order", name, names)
            continue
        axes = []
        for d, t in zip(names, types):
            axis: dict[str, Any] = {"name": d, "type": t}
            unit = dataset[d].attrs.get("units") if d in dataset.coords else None
            if isinstance(unit, str) and t in ("space", "time") and unit in _OME_UNITS:
                axis["unit"] = unit
            axes.append(axis)
        base = [_spacing(dataset, d) if d in dims else 1.0 for d in names]
        datasets = []
        for level in range(n_levels):
            factor = [2.0**level if d in dims else 1.0 for d in names]
            transforms: list[dict] = [
                {"type": "scale", "scale": [b * f for b, f in zip(base, factor)]}
            ]
            if method == "mean" and level:
                transforms.append(
                    {
                        "type": "translation",
                        "translation": [b * (f - 1) / 2 for b, f in zip(base, factor)],
                    }
                )
            datasets.append({"path": f"{level}/{name}", "coordinateTransformations": transforms})
        entry: dict[str, Any] = {
            "name": str(name),
            "axes": axes,
            "datasets": datasets,
            "type": method,
        }
        if version == "0.4":
            entry["version"] = "0.4"
        entries.append(entry)
    return entries


_OME_UNITS = frozenset(
    {
        "angstrom",
        "centimeter",
        "decimeter",
        "foot",
        "inch",
        "kilometer",
        "meter",
        "micrometer",
        "mile",
        "millimeter",
        "nanometer",
        "picometer",
        "yard",
        "day",
        "hour",
        "microsecond",
        "millisecond",
        "minute",
        "nanosecond",
        "second",
    }
)


def to_multiscale_store(dataset: Any, url: Any, multiscale: Any, **kwargs: Any) -> Any:
    """Write a pyramid; ``kwargs`` are :func:`xzaro.writers.dataset.to_store`'s."""
    from xzaro.errors import NodeExistsError
    from xzaro.hierarchy import NodeIndex
    from xzaro.paths import check_group_path, join
    from xzaro.stores import open_store
    from xzaro.writers.compute import compute_writes, delayed_after
    from xzaro.writers.dataset import prepare_store
    from xzaro.writers.encoding import check_call_sizes, check_user_encoding
    from xzaro.writers.store_array import (
        delete_below,
        existing_index,
        write_consolidated,
        write_metadata,
    )

    spec = Multiscale() if multiscale is True else multiscale
    if not isinstance(spec, Multiscale):
        raise TypeError(f"multiscale must be True or a Multiscale, got {multiscale!r}")
    dims = spec.dims or default_dims(dataset)
    missing = [d for d in dims if d not in dataset.dims]
    if missing:
        raise ValueError(f"multiscale dims {missing} are not dimensions of the dataset")
    mode = kwargs.pop("mode", None) or "w-"
    group = kwargs.pop("group", "")
    compute = kwargs.pop("compute", True)
    consolidated = kwargs.pop("consolidated", True)
    progress = kwargs.pop("progress", False)
    for unsupported in ("region", "append_dim"):
        if kwargs.pop(unsupported, None) is not None:
            raise ValueError(f"{unsupported} cannot be combined with multiscale")
    if mode not in ("w-", "w"):
        raise ValueError("a multiscale pyramid is written with mode 'w-' or 'w'")
    zarr_format = kwargs.get("zarr_format") or 3
    chunks, shards = kwargs.pop("chunks", None), kwargs.pop("shards", None)
    store = open_store(url, kwargs.get("storage_options"), mode="w")
    group = check_group_path(group, url=store.url)
    encoding = check_user_encoding(
        kwargs.pop("encoding", None), list(dataset.variables), url=store.url
    )
    check_call_sizes(chunks, dataset.sizes, "chunks")
    check_call_sizes(shards, dataset.sizes, "shards")
    layouts = pyramid_layouts(dataset, dims, chunks, shards, encoding, zarr_format)
    if mode == "w-" and existing_index(store, group, None) is not None:
        raise NodeExistsError(
            "mode 'w-' refuses to overwrite existing data (use mode='w')",
            url=store.url,
            key=group or "/",
        )

    levels = [dataset]
    stop = _one_chunk_sizes(dataset, dims, layouts)
    while spec.levels is None or len(levels) < spec.levels:
        extent = {d: levels[-1].sizes[d] for d in dims}
        if all(n <= 1 for n in extent.values()):
            break
        if spec.levels is None and all(extent[d] <= stop[d] for d in dims):
            break
        levels.append(coarsen_dataset(levels[-1], dims, spec.method))
    _warn_if_short(spec, dims, {d: dataset.sizes[d] for d in dims}, stop, len(levels))
    info("multiscale: %d levels along %s (%s)", len(levels), dims, spec.method)

    # One graph for all levels, so each coarsening step is computed once and shared by the
    # level that stores it and the level built from it.
    plans = []
    for i, level in enumerate(levels):
        level = _with_layout(level, layouts)
        # An encoding= entry replaces what its variable carries, so it gets the layout too.
        level_enc = {
            name: {**enc, **level_encoding(layouts[name], level.variables[name].shape)}
            for name, enc in encoding.items()
        }
        plans.append(
            prepare_store(
                level,
                store,
                group=join(group, str(i)),
                mode="w" if i == 0 else "w-",
                consolidated=False,
                encoding=level_enc,
                **kwargs,
            )
        )
        if i == 0 and mode == "w":  # level 0 has checked every name and encoding
            delete_below(store, group)
    sizes = [len(counts) for counts, _ in plans]
    tasks = [count for counts, _ in plans for count in counts]

    def finalize(*written: Any) -> int:
        from xzaro.meta import GroupMeta

        start = 0
        for (_, level_finalize), n in zip(plans, sizes):
            level_finalize(*written[start : start + n])
            start += n
        entries = ome_multiscales(
            dataset, dims, spec.method, len(levels), "0.4" if zarr_format == 2 else "0.5"
        )
        attrs = dict(dataset.attrs)
        if entries:
            if zarr_format == 2:
                attrs["multiscales"] = entries
            else:
                attrs["ome"] = {"version": "0.5", "multiscales": entries}
        write_metadata(store, group, GroupMeta(zarr_format, attrs))
        if consolidated:
            write_consolidated(store, group, NodeIndex(store, consolidated=False))
        return int(sum(written))

    if not compute:
        return delayed_after(finalize, tasks)
    # Unoptimized, in one call: blockwise fusion would copy a coarsening step into every level
    # built on it and compute it again there.
    return finalize(*compute_writes(*tasks, progress=progress, optimize_graph=False))


def open_multiscale(url: Any, **kwargs: Any) -> list[Any]:
    """The levels of a multiscale image as datasets, level 0 first.

    The image group (the store's root, or ``group=``) is read through its OME-NGFF
    ``multiscales`` metadata (0.4 or 0.5), whatever the layout: an array per level (ome-zarr-py,
    acquire-zarr, xzaro's streams) or a group per level (ngff-zarr, :func:`to_multiscale_store`).
    Each level is the dataset ``xr.open_dataset(url, engine="zaro", group=<level>)`` gives (see
    :mod:`xzaro.backends.ome`: the OME axes as dimensions, physical coordinates). A pyramid
    xzaro wrote without OME metadata (no variable had axes OME can describe) is read from its
    groups ``0``, ``1``, … ``n-1``. Other keywords go to ``xr.open_dataset``.

    Raises
    ------
    MetadataError
        If the group has neither OME metadata nor xzaro's level groups, or its metadata is wrong.
    """
    import xarray as xr

    from xzaro.backends.ome import image_level_paths, metadata_key, read_multiscales
    from xzaro.errors import MetadataError
    from xzaro.hierarchy import open_group
    from xzaro.paths import join

    base = (kwargs.pop("group", "") or "").strip("/")
    image = open_group(
        url,
        base,
        storage_options=kwargs.get("storage_options"),
        zarr_format=kwargs.get("zarr_format"),
        consolidated=kwargs.get("consolidated"),
    )
    if read_multiscales(image.index, base, image.meta):
        paths = image_level_paths(image.index, base)
    else:
        groups = image.groups()
        count = next(i for i in range(len(groups) + 1) if str(i) not in groups)
        if not count:
            raise MetadataError(
                "the group has no OME-NGFF multiscales metadata and no pyramid level groups "
                "(0, 1, ...)",
                url=image.store.url,
                key=metadata_key(base, image.meta),
                field="multiscales",
            )
        paths = [join(base, str(i)) for i in range(count)]
    return [xr.open_dataset(url, engine="zaro", group=path, **kwargs) for path in paths]


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
    from xzaro.concurrency import concurrent_map
    from xzaro.writers.tiles import copy_into_tiles, from_tiles

    ndim = len(src_shape)
    chunk, dst_chunk = src.shape[ndim:], dst.shape[ndim:]
    if any(chunk[a] % 2 for a in axes):
        natural = from_tiles(src, src_shape)
        lead = min(axes)
        coarse = np.empty(dst_shape, src.dtype)
        for idx in np.ndindex(*src_shape[:lead]):
            coarse[idx] = coarsen_array(natural[idx], tuple(a - lead for a in axes), "mean")
        copy_into_tiles(coarse, dst)
        return

    def reduce(index: tuple[int, ...]) -> None:
        tile = src[index]
        for a in axes:
            real = src_shape[a] - index[a] * chunk[a]
            if real < chunk[a] and real % 2:
                if tile is src[index]:
                    tile = tile.copy()
                edge = [slice(None)] * ndim
                edge[a] = slice(real - 1, real)
                fill = list(edge)
                fill[a] = slice(real, real + 1)
                tile[tuple(fill)] = tile[tuple(edge)]
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
            and _even_mean(tile, axes, view) is not None
        ):
            return
        coarse = coarsen_array(tile, axes, "mean")
        view[...] = coarse[tuple(r[1] for r in region)]

    concurrent_map(reduce, list(np.ndindex(*src.shape[:ndim])))
