"""Fuzzing the metadata parsers: any document parses or raises a ZaroError, nothing else.

Each example starts from a valid V2 or V3 array document and replaces one member (top level or
nested) by a hostile value: the wrong type, huge or negative numbers, fractions, deep nesting.
``XZARO_FUZZ_EXAMPLES`` raises the number of examples for a longer run, e.g.
``XZARO_FUZZ_EXAMPLES=20000 pytest tests/meta/test_fuzz_metadata.py``.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import numpy as np
from helpers import v2_array_doc, v3_array_doc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xzaro.codecs import pipeline_for
from xzaro.errors import ZaroError
from xzaro.meta import ZaroMeta, node_from_json

EXAMPLES = int(os.environ.get("XZARO_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

V2_ARRAY = v2_array_doc(
    [10, 7],
    [4, 3],
    "<f4",
    compressor={"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0},
    fill_value=0.5,
    filters=[{"id": "delta", "dtype": "<f4"}],
    dimension_separator=".",
)

V3_ARRAY = v3_array_doc(
    [10, 7],
    [5, 7],
    "int16",
    chunk_key_encoding={"name": "default", "configuration": {"separator": "/"}},
    fill_value=-1,
    codecs=[
        {
            "name": "sharding_indexed",
            "configuration": {
                "chunk_shape": [5, 1],
                "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                "index_codecs": [
                    {"name": "bytes", "configuration": {"endian": "little"}},
                    {"name": "crc32c"},
                ],
                "index_location": "end",
            },
        },
        {"name": "zstd", "configuration": {"level": 0, "checksum": False}},
    ],
    dimension_names=["y", "x"],
    attributes={"units": "m"},
)

V3_PLAIN = {
    **V3_ARRAY,
    "codecs": [
        {"name": "transpose", "configuration": {"order": [1, 0]}},
        {"name": "bytes", "configuration": {"endian": "big"}},
        {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 3, "shuffle": "shuffle"}},
        {"name": "crc32c"},
    ],
}

#: Rectilinear shards (zarr-extensions), each a whole number of the sharding codec's chunks.
V3_RECTILINEAR = {
    **V3_ARRAY,
    "chunk_grid": {
        "name": "rectilinear",
        "configuration": {"kind": "inline", "chunk_shapes": [[[5, 1], 5], [1, [3, 2]]]},
    },
}


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63, 2**64 - 1, 2**64, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.5, -0.0, 1e300]),
    st.text(max_size=12),
    st.sampled_from(["", "..", "/", "little", "big", "C", "F", "regular", "v2", "default"]),
)
hostile = st.one_of(
    scalars,
    st.builds(_nested, st.sampled_from([50, 2000])),
    st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=8,
    ),
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every member path (dict keys and list indices) of ``doc``."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _paths(v, (*prefix, i))
    return found


def _replace(doc: Any, path: tuple, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def _parse_and_use(doc: Any) -> None:
    """Parse, then build the pipeline and decode one missing and one garbage chunk."""
    try:
        meta = node_from_json(doc, url="memory://fuzz", key="a/zarr.json")
    except ZaroError:
        return
    if not isinstance(meta, ZaroMeta):
        return
    try:
        if meta.nbytes > 2**26 or int(np.prod(meta.shard_shape or meta.chunk_shape)) > 2**22:
            return
        meta.chunk_key((0,) * meta.ndim)
        meta.to_json()
        pipeline = pipeline_for(meta)
        pipeline.decode(b"\x00" * 64)
    except ZaroError:
        return


@st.composite
def mutated(draw: st.DrawFn, base: dict) -> Any:
    path = draw(st.sampled_from(_paths(base)))
    return _replace(base, path, draw(hostile))


@FUZZ
@given(
    doc=st.one_of(mutated(V2_ARRAY), mutated(V3_ARRAY), mutated(V3_PLAIN), mutated(V3_RECTILINEAR))
)
def test_mutated_documents_parse_or_raise_zaro_error(doc: Any) -> None:
    _parse_and_use(doc)


@FUZZ
@given(
    base=st.sampled_from([V2_ARRAY, V3_ARRAY, V3_PLAIN, V3_RECTILINEAR]),
    key=st.text(max_size=10),
    value=hostile,
)
def test_unknown_members_parse_or_raise_zaro_error(base: dict, key: str, value: Any) -> None:
    _parse_and_use({**base, key: value})


@FUZZ
@given(doc=hostile)
def test_any_json_value_as_a_document(doc: Any) -> None:
    _parse_and_use(doc)


# ------------------------------------------------------------------------- chunk decoding
CHAINS: dict[str, list[dict]] = {
    "blosc-lz4": [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"}},
    ],
    "zstd-crc32c": [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "zstd", "configuration": {"level": 1, "checksum": False}},
        {"name": "crc32c"},
    ],
    "gzip": [
        {"name": "bytes", "configuration": {"endian": "big"}},
        {"name": "gzip", "configuration": {"level": 1}},
    ],
    "bz2": [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "numcodecs.bz2", "configuration": {"level": 1}},
    ],
    "lzma": [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "numcodecs.lzma", "configuration": {}},
    ],
    "lz4": [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "numcodecs.lz4", "configuration": {"acceleration": 1}},
    ],
    "shard": V3_ARRAY["codecs"][:1],
}


def _chain_meta(codecs: list[dict]) -> ZaroMeta:
    doc = {**V3_ARRAY, "codecs": codecs}
    meta = node_from_json(doc, url="memory://fuzz", key="a/zarr.json")
    assert isinstance(meta, ZaroMeta)
    return meta


@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    how = draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    raw = bytearray(data)
    if how == "flip" and raw:
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "truncate":
        del raw[draw(st.integers(0, max(len(raw) - 1, 0))) :]
    elif how == "extend":
        raw += draw(st.binary(min_size=1, max_size=64))
    else:
        i = draw(st.integers(0, len(raw)))
        raw[i:i] = draw(st.binary(min_size=1, max_size=16))
    return bytes(raw)


@FUZZ
@given(name=st.sampled_from(sorted(CHAINS)), data=st.data())
def test_damaged_chunks_decode_or_raise_zaro_error(name: str, data: st.DataObject) -> None:
    """A damaged chunk decodes (to an array of the chunk's shape) or raises a ZaroError."""
    meta = _chain_meta(CHAINS[name])
    pipeline = pipeline_for(meta)
    shape = meta.shard_shape or meta.chunk_shape
    good = np.arange(int(np.prod(shape)), dtype=meta.dtype).reshape(shape)
    encoded = bytes(pipeline.encode(good))
    bad = data.draw(damaged(encoded))
    try:
        out = pipeline.decode(bad)
    except ZaroError:
        return
    assert out.shape == shape and out.dtype == meta.dtype


# --------------------------------------------------------------- consolidated metadata
ZMETADATA = {
    "zarr_consolidated_format": 1,
    "metadata": {
        ".zgroup": {"zarr_format": 2},
        ".zattrs": {"title": "t"},
        "a/.zarray": V2_ARRAY,
        "a/.zattrs": {"_ARRAY_DIMENSIONS": ["y", "x"]},
        "g/.zgroup": {"zarr_format": 2},
        "g/b/.zarray": {**V2_ARRAY, "compressor": None, "filters": None},
    },
}
V3_CONSOLIDATED = {
    "zarr_format": 3,
    "node_type": "group",
    "attributes": {},
    "consolidated_metadata": {
        "kind": "inline",
        "must_understand": False,
        "metadata": {
            "a": V3_PLAIN,
            "g": {"zarr_format": 3, "node_type": "group", "attributes": {}},
            "g/b": V3_ARRAY,
        },
    },
}


def _walk_consolidated(store_data: dict[str, bytes]) -> None:
    """Open a store through its consolidated metadata and read every array's first chunk."""
    from xzaro.hierarchy import ZaroGroup, open_group
    from xzaro.stores.memory import MemoryStore

    try:
        root = open_group(MemoryStore(store_data), consolidated=True)
        for _, node in root.walk():
            meta = None if isinstance(node, ZaroGroup) else node.meta
            chunk = meta.shard_shape or meta.chunk_shape if meta is not None else None
            if chunk is not None and int(np.prod(chunk, dtype=object)) <= 2**22:
                node[tuple(slice(0, 1) for _ in range(node.ndim))]
    except ZaroError:
        return


@FUZZ
@given(
    keyed=st.one_of(
        st.tuples(st.just(".zmetadata"), mutated(ZMETADATA)),
        st.tuples(st.just("zarr.json"), mutated(V3_CONSOLIDATED)),
    ),
    name=st.sampled_from(["a", "g", "../x", "a/../..", "", "/", "g/b", "x\\y"]),
)
def test_mutated_consolidated_metadata_opens_or_raises_zaro_error(
    keyed: tuple[str, Any], name: str
) -> None:
    """Hostile consolidated documents (V2 ``.zmetadata``, V3 ``consolidated_metadata``), with an
    extra node of a hostile name, open or raise a ZaroError."""
    key, doc = keyed
    if key == ".zmetadata" and isinstance(doc.get("metadata"), dict):
        doc = {**doc, "metadata": {**doc["metadata"], f"{name}/.zarray": V2_ARRAY}}
    try:
        text = json.dumps(doc).encode()
    except (ValueError, RecursionError):
        return  # no JSON text holds this value
    data = {key: text}
    if key == ".zmetadata":
        data[".zgroup"] = b'{"zarr_format": 2}'
    _walk_consolidated(data)
