"""``to_store``: write xarray datasets (Dask-backed or not) as Zarr V2 or V3 stores.

CF encoding is xarray's own. Every Dask task writes whole stored objects (chunks for V2,
shards for V3): blocks that do not line up with them are rechunked first, so no two tasks ever
write the same object. Array metadata, group metadata and consolidated metadata are written by a
final task that runs after every data task: a store never promises data that is not there.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from xzaro.concurrency import thread_pool
from xzaro.errors import MetadataError, NodeExistsError, NodeNotFoundError
from xzaro.hierarchy import NodeIndex
from xzaro.meta import (
    V2_ARRAY,
    V2_ATTRS,
    V2_CONSOLIDATED,
    V2_GROUP,
    V3_NODE,
    GroupMeta,
    ZaroMeta,
    dumps,
)
from xzaro.stores import Store, open_store
from xzaro.writers.layout import DEFAULT_COMPRESSOR, Compressor, Sizes, array_meta, per_dim
from xzaro.writers.layout import storage_chunks as _storage_chunks
from xzaro.writers.store_array import write_metadata
from xzaro.writers.writer import writer_for

MODES = ("w-", "w", "a", "r+")


@dataclass
class PlannedArray:
    """One variable to write: where, its metadata, its data and the offset of that data."""

    name: str
    path: str
    meta: ZaroMeta
    data: Any
    offset: tuple[int, ...]


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def encode_variables(dataset: Any, zarr_format: int) -> tuple[dict[Hashable, Any], dict]:
    """CF-encode a dataset's variables and attributes as xarray's zarr writer does."""
    from xarray import conventions
    from xarray.backends.zarr import encode_zarr_variable

    variables, attrs = conventions.encode_dataset_coordinates(dataset)
    encoded = {
        name: encode_zarr_variable(var, name=name, zarr_format=zarr_format)  # type: ignore[arg-type]
        for name, var in variables.items()
    }
    return encoded, dict(attrs)


def _fill_and_attrs(var: Any, zarr_format: int) -> tuple[Any, dict]:
    """The Zarr fill value and the attributes to store, following xarray's zarr writer."""
    attrs = dict(var.attrs)
    if zarr_format == 2:
        return attrs.pop("_FillValue", None), attrs
    if "_FillValue" in attrs:
        from xarray.backends.zarr import FillValueCoder

        attrs["_FillValue"] = FillValueCoder.encode(attrs["_FillValue"], var.dtype)
    return var.encoding.get("fill_value"), attrs


def _aligned_dask(data: Any, unit: tuple[int, ...], offset: tuple[int, ...]) -> Any:
    """Rechunk a Dask array so every block boundary falls on a stored-object boundary."""
    chunks = []
    changed = False
    for dim_chunks, u, o, n in zip(data.chunks, unit, offset, data.shape):
        bounds = np.cumsum((0, *dim_chunks))[1:-1] + o
        if not any(b % u for b in bounds) and o % u == 0:
            chunks.append(dim_chunks)
            continue
        changed = True
        first = (-o) % u
        size = max(u, round(max(dim_chunks) / u) * u)
        sizes = [first] if first else []
        rest = n - first
        sizes += [size] * (rest // size) + ([rest % size] if rest % size else [])
        chunks.append(tuple(s for s in sizes if s))
    return data.rechunk(tuple(chunks)) if changed else data


def _as_dask(data: Any, unit: tuple[int, ...], offset: tuple[int, ...]) -> Any:
    import dask.array as da

    if hasattr(data, "dask"):
        return _aligned_dask(data, unit, offset)
    arr = np.asarray(data)
    # ~64 MiB blocks of whole stored objects, split along the slowest dimensions
    target = 64 * 2**20
    block = list(unit)
    for dim in range(arr.ndim):
        nbytes = math.prod(block) * max(1, arr.dtype.itemsize)
        full = math.ceil(arr.shape[dim] / unit[dim]) if arr.shape[dim] else 1
        mult = max(1, min(full, target // max(1, nbytes)))
        block[dim] = unit[dim] * mult
        if mult < full:
            break
    return _aligned_dask(da.from_array(arr, chunks=tuple(block)), unit, offset)


def _store_block(
    block: np.ndarray, writer: Any, offset: tuple[int, ...], block_info: Any = None
) -> np.ndarray:
    location = block_info[0]["array-location"] if block_info else [(0, 0)] * block.ndim
    origin = tuple(start + o for (start, _), o in zip(location, offset))
    written = writer.write_block(block, origin)
    return np.full((1,) * block.ndim, written, dtype=np.int64)


def write_consolidated(store: Store, root: str, index: NodeIndex) -> None:
    """Write consolidated metadata of every node below ``root`` (V2 ``.zmetadata`` or the
    ``consolidated_metadata`` of the root ``zarr.json``)."""
    from xzaro.hierarchy import ZaroGroup

    root_meta = index.get(root)
    if not isinstance(root_meta, GroupMeta):
        return
    nodes: dict[str, ZaroMeta | GroupMeta] = {}
    for rel, node in ZaroGroup(index, root_meta, root).walk():
        nodes[rel] = node.meta
    if root_meta.zarr_format == 2:
        metadata: dict[str, Any] = {V2_GROUP: root_meta.to_json()}
        if root_meta.attributes:
            metadata[V2_ATTRS] = dict(root_meta.attributes)
        for rel, meta in nodes.items():
            doc_name = V2_ARRAY if isinstance(meta, ZaroMeta) else V2_GROUP
            metadata[f"{rel}/{doc_name}"] = meta.to_json()
            attrs = meta.attributes_json() if isinstance(meta, ZaroMeta) else meta.attributes
            if attrs:
                metadata[f"{rel}/{V2_ATTRS}"] = attrs
        store.set(
            _join(root, V2_CONSOLIDATED),
            dumps({"metadata": metadata, "zarr_consolidated_format": 1}),
        )
        return
    doc = root_meta.to_json()
    doc["consolidated_metadata"] = {
        "kind": "inline",
        "must_understand": False,
        "metadata": {rel: meta.to_json() for rel, meta in nodes.items()},
    }
    store.set(_join(root, V3_NODE), dumps(doc))


def _existing(store: Store, path: str, zarr_format: int | None) -> NodeIndex | None:
    try:
        index = NodeIndex(store, consolidated=False, zarr_format=zarr_format)
        index.get(path)
    except NodeNotFoundError:
        return None
    return index


def _delete_below(store: Store, path: str) -> None:
    from xzaro.concurrency import concurrent_map

    keys = store.list(path)
    concurrent_map(store.delete, keys)


def plan_dataset(
    dataset: Any,
    store: Store,
    group: str,
    *,
    zarr_format: int,
    mode: str,
    chunks: Sizes,
    shards: Sizes,
    compressor: Compressor,
    encoding: Mapping[Hashable, Mapping] | None,
    region: Mapping[str, slice] | None,
    append_dim: str | None,
    existing: NodeIndex | None,
) -> tuple[list[PlannedArray], GroupMeta]:
    """Decide every array's metadata, data and offset for one group."""
    encoding = dict(encoding or {})
    unknown = set(encoding) - set(dataset.variables)
    if unknown:
        raise ValueError(f"encoding names variables that are not in the dataset: {unknown}")
    if existing is not None and mode in ("a", "r+"):
        dataset = _with_stored_encoding(dataset, existing, group)
    variables, attrs = encode_variables(dataset, zarr_format)
    plans: list[PlannedArray] = []
    for name, var in variables.items():
        path = _join(group, str(name))
        dims = tuple(str(d) for d in var.dims)
        enc = {
            **{k: v for k, v in var.encoding.items() if k in ("chunks", "shards")},
            **dict(encoding.get(name, {})),
        }
        fill, var_attrs = _fill_and_attrs(var, zarr_format)
        if "fill_value" in enc:
            fill = enc["fill_value"]
        old = None
        if existing is not None and mode in ("a", "r+"):
            try:
                found = existing.get(path)
                old = found if isinstance(found, ZaroMeta) else None
            except NodeNotFoundError:
                old = None
        offset = (0,) * var.ndim
        if mode == "r+":
            if old is None:
                raise NodeNotFoundError(
                    "mode 'r+' writes into existing arrays only", url=store.url, key=path
                )
            meta, offset = _region_meta(old, dims, var.shape, region or {}, path, store)
        elif old is not None:
            if append_dim is None or append_dim not in dims:
                continue  # mode "a": variables without the append dimension stay as they are
            meta, offset = _appended_meta(old, dims, var.shape, append_dim, path, store)
        else:
            chunk_shape = _storage_chunks(var, dims, per_dim(chunks, dims, "chunks"), enc)
            shard_shape = None
            if zarr_format == 3:
                shard_sizes = per_dim(shards, dims, "shards")
                if enc.get("shards") is not None:
                    shard_shape = tuple(int(s) for s in enc["shards"])
                elif shard_sizes:
                    # Capped at the array's extent in whole chunks, so a small array (a coarse
                    # pyramid level) gets the shard that holds all of it.
                    shard_shape = tuple(
                        min(shard_sizes.get(d, c), -(-max(1, int(n)) // c) * c)
                        for d, c, n in zip(dims, chunk_shape, var.shape)
                    )
            meta = array_meta(
                shape=tuple(int(n) for n in var.shape),
                dtype=var.dtype,
                dims=dims,
                chunk_shape=chunk_shape,
                shard_shape=shard_shape,
                zarr_format=zarr_format,
                compressor=enc.get("compressor", compressor),
                fill_value=fill,
                attributes=var_attrs,
            )
        plans.append(PlannedArray(str(name), path, meta, var.data, offset))
    group_attrs = attrs
    if existing is not None and mode in ("a", "r+"):
        try:
            old_group = existing.get(group)
            if isinstance(old_group, GroupMeta):
                group_attrs = {**old_group.attributes, **attrs}
        except NodeNotFoundError:
            pass
    return plans, GroupMeta(zarr_format, group_attrs)


_CF_KEYS = ("units", "calendar", "scale_factor", "add_offset", "_FillValue", "missing_value")


def _with_stored_encoding(dataset: Any, existing: NodeIndex, group: str) -> Any:
    """New data for stored variables is CF-encoded exactly as the stored data was (same units,
    calendar, packing and dtype), as xarray's zarr writer does when appending."""
    dataset = dataset.copy()
    for name in list(dataset.variables):
        try:
            meta = existing.get(_join(group, str(name)))
        except NodeNotFoundError:
            continue
        if not isinstance(meta, ZaroMeta):
            continue
        enc = dict(dataset[name].encoding)
        for key in _CF_KEYS:
            if key in meta.attributes:
                value = meta.attributes[key]
                if key == "_FillValue" and meta.zarr_format == 3:
                    from xzaro.backends.xarray import _decode_fill_attribute

                    value = _decode_fill_attribute(value, meta.dtype)
                enc[key] = value
        if meta.zarr_format == 2 and meta.fill_value is not None and "_FillValue" not in enc:
            enc["_FillValue"] = meta.fill_value
        if meta.dtype.kind != "O":
            enc["dtype"] = meta.dtype
        dataset[name].encoding = enc
    return dataset


def _region_meta(
    old: ZaroMeta,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    region: Mapping[str, slice],
    path: str,
    store: Store,
) -> tuple[ZaroMeta, tuple[int, ...]]:
    unit = old.storage_shape
    offset = []
    for i, dim in enumerate(dims):
        sl = region.get(dim, slice(None))
        start, stop, step = sl.indices(old.shape[i])
        if step != 1 or stop - start != shape[i]:
            raise ValueError(
                f"region {dim}={sl} does not match the data's size {shape[i]} "
                f"along {dim!r} in {path!r}"
            )
        if start % unit[i] or (stop % unit[i] and stop != old.shape[i]):
            raise ValueError(
                f"region {dim}=[{start}:{stop}] does not align with the stored objects of "
                f"{unit[i]} along {dim!r} in {path!r}: a partial object would be rewritten"
            )
        offset.append(start)
    return old, tuple(offset)


def _appended_meta(
    old: ZaroMeta,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    append_dim: str,
    path: str,
    store: Store,
) -> tuple[ZaroMeta, tuple[int, ...]]:
    if old.dimension_names is not None and tuple(old.dimension_names) != dims:
        raise MetadataError(
            f"cannot append: dimensions {dims} differ from the stored {old.dimension_names}",
            url=store.url,
            key=path,
        )
    axis = dims.index(append_dim)
    for i, (a, b) in enumerate(zip(old.shape, shape)):
        if i != axis and a != b:
            raise MetadataError(
                f"cannot append along {append_dim!r}: {dims[i]!r} has size {b}, "
                f"the stored array {a}",
                url=store.url,
                key=path,
            )
    new_shape = tuple(n + (shape[i] if i == axis else 0) for i, n in enumerate(old.shape))
    offset = tuple(old.shape[i] if i == axis else 0 for i in range(len(shape)))
    return replace(old, shape=new_shape), offset


def _with_stored_tail(plan: PlannedArray, store: Store) -> PlannedArray:
    """Appending after a partly filled edge object: start the new data at that object's start
    with the values already stored, so the write still replaces whole objects only."""
    import dask.array as da

    from xzaro.array import ZaroArray

    unit = plan.meta.storage_shape
    starts = [o - o % u for o, u in zip(plan.offset, unit)]
    if tuple(starts) == plan.offset:
        return plan
    axis = next(i for i, (s, o) in enumerate(zip(starts, plan.offset)) if s != o)
    old_shape = tuple(
        o if i == axis else n for i, (o, n) in enumerate(zip(plan.offset, plan.meta.shape))
    )
    stored = ZaroArray(store, replace(plan.meta, shape=old_shape), plan.path)
    tail = stored.read_region(tuple(starts), None)
    data = plan.data if hasattr(plan.data, "dask") else da.from_array(np.asarray(plan.data))
    joined = da.concatenate([da.from_array(tail), data.astype(plan.meta.dtype)], axis=axis)
    return PlannedArray(plan.name, plan.path, plan.meta, joined, tuple(starts))


def prepare_store(
    dataset: Any,
    url: Any,
    *,
    group: str = "",
    zarr_format: int = 3,
    mode: str = "w-",
    chunks: Sizes = None,
    shards: Sizes = None,
    compressor: Compressor = DEFAULT_COMPRESSOR,
    encoding: Mapping[Hashable, Mapping] | None = None,
    storage_options: dict | None = None,
    consolidated: bool = True,
    region: Mapping[str, slice] | None = None,
    append_dim: str | None = None,
) -> tuple[list[Any], Any]:
    """Plan a write: the Dask arrays whose computation writes the data (each sums the objects
    it wrote) and the function that writes the metadata afterwards, given their results."""
    import dask
    import dask.array as da

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    if append_dim is not None and mode != "a":
        raise ValueError("append_dim needs mode='a'")
    if region is not None and mode != "r+":
        raise ValueError("region needs mode='r+'")
    store = open_store(url, storage_options, mode="w")
    group = group.strip("/")
    existing = _existing(store, group, None)
    if existing is not None:
        zarr_format = existing.get(group).zarr_format if mode in ("a", "r+") else zarr_format
        if mode == "w-":
            raise NodeExistsError(
                "mode 'w-' refuses to overwrite existing data (use mode='w')",
                url=store.url,
                key=group or "/",
            )
        if mode == "w":
            _delete_below(store, group)
            existing = None
    elif mode == "r+":
        raise NodeNotFoundError(
            "mode 'r+' needs an existing store", url=store.url, key=group or "/"
        )

    plans, group_meta = plan_dataset(
        dataset,
        store,
        group,
        zarr_format=zarr_format,
        mode=mode,
        chunks=chunks,
        shards=shards,
        compressor=compressor,
        encoding=encoding,
        region=region,
        append_dim=append_dim,
        existing=existing,
    )
    counts = []
    for plan in plans:
        if mode == "a":
            plan = _with_stored_tail(plan, store)
        writer = writer_for(store, plan.path, plan.meta)
        data = _as_dask(plan.data, plan.meta.storage_shape, plan.offset)
        if data.ndim == 0:
            counts.append(
                da.from_delayed(
                    dask.delayed(writer.write_block)(data, ()), shape=(), dtype=np.int64
                )
            )
            continue
        counts.append(
            data.map_blocks(
                _store_block,
                writer=writer,
                offset=plan.offset,
                dtype=np.int64,
                chunks=tuple((1,) * len(c) for c in data.chunks),
            ).sum()
        )

    parts = group.split("/") if group else []
    ancestors = ["/".join(parts[:i]) for i in range(len(parts))]
    missing_parents = [p for p in ancestors if _existing(store, p, None) is None]

    def finalize(*written: Any) -> int:
        for plan in plans:
            write_metadata(store, plan.path, plan.meta)
        write_metadata(store, group, group_meta)
        for parent in missing_parents:  # a group written into a new store gets its parents
            write_metadata(store, parent, GroupMeta(group_meta.zarr_format, {}))
        if consolidated:
            write_consolidated(store, "", NodeIndex(store, consolidated=False))
        return int(sum(int(w) for w in written))

    return counts, finalize


def compute_writes(*tasks: Any, **kwargs: Any) -> tuple:
    """``dask.compute(*tasks)``; under Dask's default threaded scheduler, on xzaro's own pool.

    Write tasks encode their chunks on that pool; from a pool thread they encode inline, so
    Dask's threads and the pool do not oversubscribe the cores while a coarsening task waits
    for a core (measured, best of 6 interleaved: pyramids 8% faster, plain writes level).
    Other schedulers (a distributed client, processes, synchronous) are used as configured.
    """
    import dask
    import dask.threaded
    from dask.base import get_scheduler

    if get_scheduler(collections=list(tasks)) is dask.threaded.get:
        kwargs = {"scheduler": "threads", "pool": thread_pool(), **kwargs}
    return dask.compute(*tasks, **kwargs)


def to_store(
    dataset: Any, url: Any, *, compute: bool = True, progress: bool = False, **kwargs: Any
) -> Any:
    """Write a dataset to a Zarr store; see :meth:`DatasetAccessor.to_store`."""
    import dask

    counts, finalize = prepare_store(dataset, url, **kwargs)
    task = dask.delayed(finalize)(*counts)
    if not compute:
        return task
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return compute_writes(task)[0]
    return compute_writes(task)[0]
