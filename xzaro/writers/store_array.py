"""Write an in-memory numpy array, or a group, as Zarr V2 or V3 objects in a store.

Each stored object (a chunk, or a whole shard) is encoded once and written whole; objects that
hold only the fill value are not written. Metadata is written after the data it describes, so
a store never promises chunks that are not there yet.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from xzaro.codecs import pipeline_for
from xzaro.codecs.sharding import is_fill
from xzaro.concurrency import concurrent_map
from xzaro.dtypes import fill_array
from xzaro.meta import V2_ARRAY, V2_ATTRS, V2_GROUP, V3_NODE, GroupMeta, ZaroMeta, dumps
from xzaro.stores.base import Store


def _key(path: str, name: str) -> str:
    return f"{path.strip('/')}/{name}" if path.strip("/") else name


def write_metadata(store: Store, path: str, meta: ZaroMeta | GroupMeta) -> None:
    """Write a node's metadata (``zarr.json``, or ``.zarray``/``.zgroup`` and ``.zattrs``)."""
    if meta.zarr_format == 3:
        store.set(_key(path, V3_NODE), dumps(meta.to_json()))
        return
    if isinstance(meta, ZaroMeta):
        store.set(_key(path, V2_ARRAY), dumps(meta.to_json()))
        attrs = meta.attributes_json()
    else:
        store.set(_key(path, V2_GROUP), dumps(meta.to_json()))
        attrs = dict(meta.attributes)
    if attrs:
        store.set(_key(path, V2_ATTRS), dumps(attrs))


def write_array(store: Store, path: str, meta: ZaroMeta, data: Any) -> int:
    """Encode ``data`` (of ``meta.shape``) object by object, then write the metadata.

    Returns the number of stored objects written.
    """
    data = np.asarray(data, dtype=meta.dtype)
    if data.shape != meta.shape:
        raise ValueError(f"data has shape {data.shape}, metadata says {meta.shape}")
    pipeline = pipeline_for(meta)
    unit = meta.storage_shape
    fill = meta.fill_value_or_default
    empty = fill_array(unit, meta.dtype, fill)
    prefix = path.strip("/")

    def encode(index: tuple[int, ...]) -> tuple[str, bytes] | None:
        region = tuple(
            slice(i * u, min((i + 1) * u, s)) for i, u, s in zip(index, unit, meta.shape)
        )
        block = data[region]
        if block.shape != unit:
            padded = empty.copy()
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        if is_fill(block, empty):
            return None
        return _key(prefix, meta.chunk_key(index)), pipeline.encode(np.ascontiguousarray(block))

    indices = list(itertools.product(*(range(g) for g in meta.grid_shape)))
    items = [item for item in concurrent_map(encode, indices) if item is not None]
    store.set_many(items)
    write_metadata(store, path, meta)
    return len(items)


def write_group(store: Store, path: str, meta: GroupMeta) -> None:
    """Write a group's metadata."""
    write_metadata(store, path, meta)
