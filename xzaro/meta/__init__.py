"""Zarr metadata: ``ZaroMeta`` and ``GroupMeta`` parse and emit V2 and V3 documents.

V2 (``.zarray``/``.zattrs``/``.zgroup``, consolidated ``.zmetadata``) and V3 (``zarr.json``,
consolidated metadata inside the root ``zarr.json``) both parse into the same frozen objects,
so the rest of xzaro never branches on the format. The modules: :mod:`~xzaro.meta.documents`
(JSON in and out, document names), :mod:`~xzaro.meta.array` (``ZaroMeta``),
:mod:`~xzaro.meta.group` (``GroupMeta``, any node), :mod:`~xzaro.meta.v2_codecs` (a V2
array's filters and compressor as a codec chain), :mod:`~xzaro.meta.fields` (shared checks).
"""

from __future__ import annotations

from xzaro.meta.array import ChunkInfo, ZaroMeta
from xzaro.meta.documents import (
    V2_ARRAY,
    V2_ATTRS,
    V2_CONSOLIDATED,
    V2_DIMENSIONS_ATTR,
    V2_GROUP,
    V3_NODE,
    dumps,
    loads,
)
from xzaro.meta.group import GroupMeta, node_from_json

__all__ = [
    "V2_ARRAY",
    "V2_ATTRS",
    "V2_CONSOLIDATED",
    "V2_DIMENSIONS_ATTR",
    "V2_GROUP",
    "V3_NODE",
    "ChunkInfo",
    "GroupMeta",
    "ZaroMeta",
    "dumps",
    "loads",
    "node_from_json",
]
