"""Where new data lands in stored arrays, and the stored values that complete what it covers.

A region is given by index (``{"x": slice(10, 20)}``) or found from the stored coordinates
(``"auto"``). A write that starts or ends inside a stored object (a chunk, or a shard) reads
that object's other values and writes the whole object again, from the one task that owns it:
the data is extended with the stored values up to object boundaries before the Dask blocks are
aligned with whole objects, so no two tasks ever write the same object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from xzaro.errors import MetadataError, MetadataTypeError, NameMismatchError, NodeNotFoundError
from xzaro.meta import ZaroMeta
from xzaro.paths import join
from xzaro.stores.base import Store


def _decoded_coordinate(store: Store, group: str, name: str, meta: ZaroMeta) -> np.ndarray:
    """A stored coordinate's values, CF-decoded (times as datetimes) as xarray reads them."""
    from xarray import Variable, conventions

    from xzaro.array import ZaroArray

    values = ZaroArray(store, meta, join(group, name))[...]
    attrs = {k: v for k, v in meta.attributes.items() if k != "_ARRAY_DIMENSIONS"}
    if meta.zarr_format == 2 and meta.fill_value is not None:
        attrs.setdefault("_FillValue", meta.fill_value)
    var = conventions.decode_cf_variable(name, Variable((name,), values, attrs))
    return np.asarray(var.values)


def resolve_region(
    region: Any,
    dataset: Any,
    stored: Mapping[str, ZaroMeta],
    store: Store,
    group: str,
) -> dict[str, slice]:
    """The region as slices by dimension: ``"auto"`` (every dimension), or a mapping whose
    values are slices or ``"auto"``; an ``"auto"`` dimension is located by its coordinate's
    values among the stored ones (they must be found, in order and contiguous)."""

    def error(cls: type[MetadataError], message: str) -> MetadataError:
        return cls(message, url=store.url, key=group or "/", field="region")

    if isinstance(region, str) and region == "auto":
        region = dict.fromkeys(dataset.dims, "auto")
    if not isinstance(region, Mapping):
        kind = MetadataError if isinstance(region, str) else MetadataTypeError
        raise error(
            kind, f"region must be a dict of dimension names to slices, or 'auto'; got {region!r}"
        )
    resolved: dict[str, slice] = {}
    for dim, value in region.items():
        if dim not in dataset.dims:
            raise error(
                MetadataError,
                f"all keys in ``region`` are not in Dataset dimensions: {dim!r} is not one of "
                f"{list(dataset.dims)}",
            )
        if isinstance(value, str) and value == "auto":
            resolved[str(dim)] = _auto_slice(str(dim), dataset, stored, store, group)
            continue
        if not isinstance(value, slice):
            raise error(
                MetadataTypeError,
                "all values in ``region`` must be slice objects (or 'auto'), got "
                f"region[{dim!r}] = {value!r}",
            )
        if value.step not in (None, 1):
            raise error(
                MetadataError,
                f"step on all slices in ``region`` must be 1 or None, got region[{dim!r}] = "
                f"{value}",
            )
        if any(
            b is not None and (isinstance(b, bool) or not isinstance(b, (int, np.integer)))
            for b in (value.start, value.stop)
        ):
            raise error(MetadataTypeError, f"region[{dim!r}] = {value}: bounds must be integers")
        resolved[str(dim)] = value
    return resolved


def _auto_slice(
    dim: str, dataset: Any, stored: Mapping[str, ZaroMeta], store: Store, group: str
) -> slice:
    if dim not in dataset.variables:
        return slice(0, dataset.sizes[dim])  # no coordinate: the whole stored extent
    meta = stored.get(dim)
    if meta is None:
        raise NodeNotFoundError(
            f"region {dim!r}='auto' needs the stored coordinate {dim!r} to locate the data",
            url=store.url,
            key=join(group, dim),
        )
    import pandas as pd

    index = pd.Index(_decoded_coordinate(store, group, dim, meta))
    positions = index.get_indexer(np.asarray(dataset[dim].values))
    where = {"url": store.url, "key": join(group, dim), "field": "region"}
    if (positions == -1).any():
        raise NameMismatchError(
            f"region {dim!r}='auto': not all values of the coordinate {dim!r} are in the "
            "stored coordinate; a region write cannot add coordinate values",
            **where,
        )
    if len(positions) and (np.diff(positions) != 1).any():
        raise MetadataError(
            f"region {dim!r}='auto': the coordinate's values are not a contiguous, ordered "
            "run of the stored ones",
            **where,
        )
    if not len(positions):
        return slice(0, 0)
    return slice(int(positions[0]), int(positions[-1]) + 1)


def region_offset(
    meta: ZaroMeta,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    region: Mapping[str, slice],
    *,
    url: str,
    path: str,
) -> tuple[int, ...]:
    """Where a variable's data starts in its stored array, checking it fits there."""
    offset = []
    for i, dim in enumerate(dims):
        sl = region.get(dim, slice(None))
        start, stop, _ = sl.indices(meta.shape[i])
        if sl.stop is not None and sl.stop > meta.shape[i]:
            raise MetadataError(
                f"region {dim}={sl} reaches beyond the stored size {meta.shape[i]} of {dim!r}",
                url=url,
                key=path,
                field="region",
            )
        if stop - start != shape[i]:
            raise MetadataError(
                f"variable {path.rsplit('/', 1)[-1]!r} already exists with different dimension "
                f"sizes: the region {dim}=[{start}:{stop}] has size {stop - start}, the data has "
                f"{shape[i]} along {dim!r}",
                url=url,
                key=path,
                field="region",
            )
        offset.append(start)
    return tuple(offset)


def object_hull(
    meta: ZaroMeta, offset: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The start and stop, per dimension, of the whole stored objects that data of ``shape``
    placed at ``offset`` touches (a stop is at most the array's end)."""
    starts, stops = [], []
    for d, o, n in zip(meta.storage_grid.dimensions, offset, shape):
        starts.append(d.locate(o)[1])
        end = o + n
        _, lo, size = d.locate(end)
        stops.append(end if end == d.extent or lo == end else min(lo + size, d.extent))
    return tuple(starts), tuple(stops)


def with_stored_edges(
    data: Any,
    store: Store,
    path: str,
    meta: ZaroMeta,
    stored_shape: tuple[int, ...],
    offset: tuple[int, ...],
) -> tuple[Any, tuple[int, ...]]:
    """Extend ``data`` (placed at ``offset`` in an array of ``meta``) with the stored values
    of the objects it covers only in part, so it starts and ends on object boundaries (or the
    array's end). ``stored_shape`` is the shape whose values are stored now (the old shape of an
    array being appended to). Returns the data and its new offset, unchanged when aligned."""
    import dask.array as da

    from xzaro.array import ZaroArray

    starts, stops = object_hull(meta, offset, data.shape)
    ends = tuple(o + n for o, n in zip(offset, data.shape))
    if starts == offset and stops == ends:
        return data, offset
    stored = ZaroArray(store, replace(meta, shape=stored_shape), path)
    objects = stored.meta.storage_grid.chunk_sizes()
    old = da.from_array(stored, chunks=objects, asarray=True, lock=False, fancy=False)
    cur = data if hasattr(data, "dask") else da.from_array(np.asarray(data), chunks=data.shape)
    cur = cur.astype(meta.dtype)
    for axis in range(meta.ndim):
        box = [
            slice(starts[j], stops[j]) if j < axis else slice(offset[j], ends[j])
            for j in range(meta.ndim)
        ]
        before = list(box)
        before[axis] = slice(starts[axis], offset[axis])
        after = list(box)
        after[axis] = slice(ends[axis], stops[axis])
        pieces = []
        if starts[axis] < offset[axis]:
            pieces.append(old[tuple(before)])
        pieces.append(cur)
        if ends[axis] < stops[axis]:
            pieces.append(old[tuple(after)])
        if len(pieces) > 1:
            cur = da.concatenate(pieces, axis=axis)
    return cur, tuple(starts)
