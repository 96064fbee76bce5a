"""Write metadata documents, in-memory arrays and groups into a store; find and remove nodes.

Metadata is written after the data it describes, so a store never promises chunks that are not
there yet; consolidated metadata is written after every node's own document.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from xzaro.errors import MetadataError, NodeNotFoundError
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


def write_consolidated(store: Store, root: str, index: NodeIndex) -> None:
    """Write consolidated metadata of every node below ``root`` (V2 ``.zmetadata`` or the
    ``consolidated_metadata`` of the root ``zarr.json``)."""
    from xzaro.hierarchy import ZaroGroup

    root_meta = index.get(root)
    if not isinstance(root_meta, GroupMeta):
        return
    nodes: dict[str, ZaroMeta | GroupMeta] = {}
    for rel, node in ZaroGroup(index, root_meta, root).walk():
        # a node of the other format (another program's mixed hierarchy) has no document of
        # this format to consolidate
        if node.meta.zarr_format == root_meta.zarr_format:
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
            join(root, V2_CONSOLIDATED),
            dumps({"metadata": metadata, "zarr_consolidated_format": 1}),
        )
        return
    doc = root_meta.to_json()
    doc["consolidated_metadata"] = {
        "kind": "inline",
        "must_understand": False,
        "metadata": {rel: meta.to_json() for rel, meta in nodes.items()},
    }
    store.set(join(root, V3_NODE), dumps(doc))


def existing_index(store: Store, path: str, zarr_format: int | None) -> NodeIndex | None:
    """The store's node index (documents, not consolidated metadata) when ``path`` holds a
    node, else ``None``."""
    try:
        index = NodeIndex(store, consolidated=False, zarr_format=zarr_format)
        index.get(path)
    except NodeNotFoundError:
        return None
    return index


#: The documents that describe nodes (and, consolidated, their children).
METADATA_DOCUMENTS = frozenset({V2_ARRAY, V2_GROUP, V2_ATTRS, V2_CONSOLIDATED, V3_NODE})


def _json_document(store: Store, key: str) -> Any:
    raw = store.get(key)
    if raw is None:
        return None
    try:
        return json.loads(bytes(raw))
    except ValueError as err:
        raise MetadataError(f"unreadable metadata: {err}", url=store.url, key=key) from err


def _describes(consolidated: Any, below: str) -> bool:
    """Whether consolidated metadata (its keys: relative paths) describes ``below`` or a node
    under it."""
    return isinstance(consolidated, dict) and any(
        key == below or str(key).startswith(below + "/") for key in consolidated
    )


def drop_consolidated_above(store: Store, path: str) -> None:
    """Remove the consolidated metadata of ``path``'s ancestors (V2 ``.zmetadata``, the
    ``consolidated_metadata`` of a V3 ``zarr.json``) where it describes nodes below ``path``,
    which are about to be replaced; a write consolidates again when it has finished."""
    parts = path.split("/") if path else []
    for depth in range(len(parts)):
        ancestor, below = "/".join(parts[:depth]), "/".join(parts[depth:])
        key = join(ancestor, V2_CONSOLIDATED)
        doc = _json_document(store, key)
        if isinstance(doc, dict) and _describes(doc.get("metadata"), below):
            store.delete(key)
        key = join(ancestor, V3_NODE)
        doc = _json_document(store, key)
        consolidated = doc.get("consolidated_metadata") if isinstance(doc, dict) else None
        if isinstance(consolidated, dict) and _describes(consolidated.get("metadata"), below):
            del doc["consolidated_metadata"]
            store.set(key, dumps(doc))


def delete_below(store: Store, path: str) -> None:
    """Remove every key below ``path`` (the whole store for ``""``): consolidated metadata
    above it and the metadata documents first, then the chunks, so that a removal interrupted
    halfway leaves no document describing an array whose chunks are already gone (they would
    read as fill values)."""
    from xzaro.concurrency import concurrent_map

    drop_consolidated_above(store, path)
    keys = store.list(path)
    documents = [key for key in keys if key.rsplit("/", 1)[-1] in METADATA_DOCUMENTS]
    concurrent_map(store.delete, documents)
    described = set(documents)
    concurrent_map(store.delete, [key for key in keys if key not in described])
