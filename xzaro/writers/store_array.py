"""Write an in-memory numpy array, or a group, as Zarr V2 or V3 objects in a store.

Metadata is written after the data it describes, so a store never promises chunks that are not
there yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xzaro.meta import V2_ARRAY, V2_ATTRS, V2_GROUP, V3_NODE, GroupMeta, ZaroMeta, dumps
from xzaro.paths import join
from xzaro.stores.base import Store
from xzaro.writers.writer import writer_for


def write_metadata(store: Store, path: str, meta: ZaroMeta | GroupMeta) -> None:
    """Write a node's metadata (``zarr.json``, or ``.zarray``/``.zgroup`` and ``.zattrs``)."""
    if meta.zarr_format == 3:
        store.set(join(path, V3_NODE), dumps(meta.to_json()))
        return
    if isinstance(meta, ZaroMeta):
        store.set(join(path, V2_ARRAY), dumps(meta.to_json()))
        attrs = meta.attributes_json()
    else:
        store.set(join(path, V2_GROUP), dumps(meta.to_json()))
        attrs = dict(meta.attributes)
    if attrs:
        store.set(join(path, V2_ATTRS), dumps(attrs))


def write_array(store: Store, path: str, meta: ZaroMeta, data: Any) -> int:
    """Write an in-memory array (of ``meta.shape``), then its metadata.

    Returns the number of stored objects written.
    """
    data = np.asarray(data, dtype=meta.dtype)
    if data.shape != meta.shape:
        raise ValueError(f"data has shape {data.shape}, metadata says {meta.shape}")
    written = writer_for(store, path, meta).write_block(data)
    write_metadata(store, path, meta)
    return written


def write_group(store: Store, path: str, meta: GroupMeta) -> None:
    """Write a group's metadata."""
    write_metadata(store, path, meta)
