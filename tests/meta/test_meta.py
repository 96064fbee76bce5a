"""Metadata parsing: dtypes, fill values, lenient JSON, extensions, lookup order."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import v2_array_doc, v3_array_doc

import xzaro
from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.dtypes import fill_value_to_json, parse_fill_value, parse_v2_dtype, parse_v3_dtype
from xzaro.errors import MetadataError, NodeNotFoundError, UnsafeCodecError, UnsupportedError
from xzaro.meta import GroupMeta, ZaroMeta, loads


def v3_doc(**over):
    doc = v3_array_doc(
        [4, 6],
        [2, 3],
        "float32",
        chunk_key_encoding={"name": "default", "configuration": {"separator": "/"}},
        codecs=[{"name": "bytes", "configuration": {"endian": "little"}}],
        attributes={"a": 1},
    )
    doc.update(over)
    return doc


def v2_doc(**over):
    doc = v2_array_doc(
        [4, 6], [2, 3], "<f4", compressor={"id": "zlib", "level": 1}, fill_value="NaN"
    )
    doc.update(over)
    return doc


def test_lenient_json_parses_bare_constants_but_never_alters_strings():
    text = '{"fill_value": NaN, "a": Infinity, "b": -Infinity, "s": "NaN and -Infinity stay"}'
    doc = loads(text)
    assert math.isnan(doc["fill_value"])
    assert doc["a"] == math.inf and doc["b"] == -math.inf
    assert doc["s"] == "NaN and -Infinity stay"


def test_invalid_json_names_the_key():
    with pytest.raises(MetadataError, match="invalid JSON") as e:
        loads(b"{not json", url="mem://x", key="a/.zarray")
    assert e.value.key == "a/.zarray" and e.value.url == "mem://x"


@pytest.mark.parametrize(
    "text",
    ["<f4", ">i2", "|u1", "<i8", "<u8", "<f2", "<c16", "|b1", "<M8[ns]", "<m8[s]", "|S8", "<U4"],
)
def test_v2_dtype_strings_keep_byte_order(text):
    assert parse_v2_dtype(text) == np.dtype(text)
    assert parse_v2_dtype(text).str == np.dtype(text).str


def test_v2_structured_dtype():
    dt = parse_v2_dtype([["x", "<i4"], ["y", ">f8", [2]]])
    assert dt == np.dtype([("x", "<i4"), ("y", ">f8", (2,))])


@pytest.mark.parametrize(
    "name,expected",
    [
        ("bool", "bool"),
        ("int8", "int8"),
        ("uint64", "uint64"),
        ("float16", "float16"),
        ("complex128", "complex128"),
        ("r16", "V2"),
        (
            {"name": "numpy.datetime64", "configuration": {"unit": "ns", "scale_factor": 1}},
            "<M8[ns]",
        ),
    ],
)
def test_v3_dtypes(name, expected):
    assert parse_v3_dtype(name) == np.dtype(expected)


@pytest.mark.parametrize("bad", ["float128", "r7", {"name": "float8_e9m9"}, 3])
def test_unknown_v3_dtype_is_named(bad):
    with pytest.raises(MetadataError) as e:
        parse_v3_dtype(bad)
    assert e.value.field == "data_type"


@pytest.mark.parametrize(
    "dtype,value,bits",
    [
        ("float32", "0x7fc00001", 0x7FC00001),
        ("float32", "0xffc00000", 0xFFC00000),
        ("float16", "0x7e01", 0x7E01),
        ("float64", "0x7ff8000000000123", 0x7FF8000000000123),
    ],
)
def test_hex_fill_values_keep_exact_bits(dtype, value, bits):
    dt = np.dtype(dtype)
    fill = parse_fill_value(value, dt, zarr_format=3)
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dt.itemsize]
    assert int(np.array(fill, dtype=dt).view(uint)) == bits
    assert fill_value_to_json(fill, dt, zarr_format=3) == value


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", 1.5, -0.0])
def test_float_fill_values_round_trip(value):
    dt = np.dtype("float64")
    fill = parse_fill_value(value, dt, zarr_format=3)
    back = fill_value_to_json(fill, dt, zarr_format=3)
    assert back == value or (isinstance(value, float) and back == value)


def test_complex_and_bytes_fill_values():
    c = parse_fill_value(["NaN", 2.0], np.dtype("complex64"), zarr_format=3)
    assert np.isnan(c.real) and c.imag == 2.0
    b = parse_fill_value("AQI=", np.dtype("|S2"), zarr_format=2)
    assert b == b"\x01\x02"
    assert parse_fill_value(None, np.dtype("<f4"), zarr_format=2) is None


@pytest.mark.parametrize(
    "dtype,value",
    [("int8", 300), ("uint8", -1), ("int32", "x"), ("bool", 2), ("float32", [1])],
)
def test_invalid_fill_values_raise(dtype, value):
    with pytest.raises(MetadataError) as e:
        parse_fill_value(value, np.dtype(dtype), zarr_format=3, url="u", key="zarr.json")
    assert e.value.field == "fill_value" and e.value.key == "zarr.json"


def test_v3_round_trip_and_fields():
    doc = v3_doc(dimension_names=["y", None], fill_value="0x7fc00001")
    meta = ZaroMeta.from_json(doc)
    assert meta.shape == (4, 6) and meta.chunk_shape == (2, 3) and meta.shard_shape is None
    assert meta.dimension_names == ("y", None)
    assert meta.describe_codecs() == "bytes"
    again = ZaroMeta.from_json(meta.to_json())
    assert again.to_json() == meta.to_json()
    assert again.codecs == meta.codecs and again.attributes == {"a": 1}


def test_v2_maps_onto_the_codec_chain():
    meta = ZaroMeta.from_json(
        v2_doc(order="F", dtype=">i2", fill_value=3, dimension_separator="/"),
        {"_ARRAY_DIMENSIONS": ["a", "b"], "units": "m"},
    )
    assert [c.name for c in meta.codecs] == ["transpose", "bytes", "zlib"]
    assert meta.describe_codecs() == "transpose -> bytes(big) -> zlib"
    assert meta.dimension_names == ("a", "b") and meta.attributes == {"units": "m"}
    assert meta.chunk_key((1, 2)) == "1/2"
    again = ZaroMeta.from_json(meta.to_json(), meta.attributes_json())
    assert again == meta


def test_codecs_as_bare_names_and_sharding():
    doc = v3_doc(
        chunk_grid={"name": "regular", "configuration": {"chunk_shape": [4, 6]}},
        codecs=[
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": [2, 3],
                    "codecs": ["bytes", "gzip"],
                    "index_codecs": ["bytes", "crc32c"],
                    "index_location": "start",
                },
            }
        ],
    )
    meta = ZaroMeta.from_json(doc)
    assert meta.shard_shape == (4, 6) and meta.chunk_shape == (2, 3)
    assert meta.sharding.index_request((4, 6)) == (0, 4 * 16 + 4)


def test_sharding_chunk_shape_must_divide_shard():
    doc = v3_doc(
        codecs=[{"name": "sharding_indexed", "configuration": {"chunk_shape": [2, 2]}}],
    )
    with pytest.raises(MetadataError, match="evenly divide"):
        ZaroMeta.from_json(doc, url="u", key="zarr.json")


def test_extensions_must_understand():
    ZaroMeta.from_json(v3_doc(my_ext={"must_understand": False, "x": 1}))
    with pytest.raises(UnsupportedError) as e:
        ZaroMeta.from_json(v3_doc(my_ext={"x": 1}), url="u", key="zarr.json")
    assert e.value.field == "my_ext" and "my_ext" in str(e.value)


@pytest.mark.parametrize(
    "over,field,word",
    [
        ({"codecs": [{"name": "bytes"}, {"name": "lzfse"}]}, "codecs", "lzfse"),
        ({"chunk_grid": {"name": "rectangular", "configuration": {}}}, "chunk_grid", "rectangular"),
        (
            {"chunk_grid": {"name": "rectilinear", "configuration": {}}},
            "chunk_grid.kind",
            "rectilinear",
        ),
        ({"chunk_key_encoding": {"name": "hilbert"}}, "chunk_key_encoding", "hilbert"),
        ({"storage_transformers": [{"name": "foo"}]}, "storage_transformers", "foo"),
        ({"codecs": [{"name": "gzip"}]}, "codecs", "array->bytes"),
        ({"shape": [4]}, "chunk_grid", "dimensions"),
        ({"fill_value": None}, "fill_value", "null"),
    ],
)
def test_bad_v3_metadata_names_what_is_wrong(over, field, word):
    with pytest.raises(MetadataError) as e:
        ZaroMeta.from_json(v3_doc(**over), url="file:///s", key="zarr.json")
    assert e.value.field == field, e.value
    assert word in str(e.value) and "zarr.json" in str(e.value)


def test_unknown_codec_with_must_understand_false_is_ignored():
    meta = ZaroMeta.from_json(v3_doc(codecs=["bytes", {"name": "hint", "must_understand": False}]))
    assert [c.name for c in meta.codecs] == ["bytes"]


def test_pickle_is_refused_unless_allowed():
    doc = v2_doc(dtype="|O", filters=[{"id": "pickle"}], compressor=None)
    with pytest.raises(UnsafeCodecError, match="allow_unsafe_codecs"):
        ZaroMeta.from_json(doc, url="u", key=".zarray")
    meta = ZaroMeta.from_json(doc, allow_unsafe_codecs=True)
    assert meta.codecs[0].label() == "pickle"


def test_chunk_key_encodings():
    assert ChunkKeyEncoding("default", "/").chunk_key((1, 2)) == "c/1/2"
    assert ChunkKeyEncoding("default", ".").chunk_key((1, 2)) == "c.1.2"
    assert ChunkKeyEncoding("default", "/").chunk_key(()) == "c"
    assert ChunkKeyEncoding("v2", ".").chunk_key((1, 2)) == "1.2"
    assert ChunkKeyEncoding("v2", ".").chunk_key(()) == "0"
    assert ChunkKeyEncoding.from_json({"name": "v2"}).separator == "."


def _write(root, files):
    for key, value in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value if isinstance(value, bytes) else json.dumps(value).encode())


def test_lookup_order_and_consolidated_flag(tmp_path):
    real = v2_doc(shape=[4, 6])
    stale = v2_doc(shape=[2, 2], chunks=[1, 1])
    _write(
        tmp_path,
        {
            ".zgroup": {"zarr_format": 2},
            "a/.zarray": real,
            ".zmetadata": {
                "metadata": {".zgroup": {"zarr_format": 2}, "a/.zarray": stale},
                "zarr_consolidated_format": 1,
            },
        },
    )
    assert xzaro.open_array(str(tmp_path), "a").shape == (2, 2)  # consolidated first
    assert xzaro.open_array(str(tmp_path), "a", consolidated=False).shape == (4, 6)
    assert xzaro.open_group(str(tmp_path)).index.source == "V2 consolidated"
    (tmp_path / ".zmetadata").unlink()
    with pytest.raises(NodeNotFoundError, match="consolidated"):
        xzaro.open_array(str(tmp_path), "a", consolidated=True)
    assert xzaro.open_array(str(tmp_path), "a").shape == (4, 6)


def test_v3_consolidated_is_preferred_over_v2(tmp_path):
    arr = v3_doc(
        shape=[3, 3], chunk_grid={"name": "regular", "configuration": {"chunk_shape": [3, 3]}}
    )
    _write(
        tmp_path,
        {
            "zarr.json": {
                "zarr_format": 3,
                "node_type": "group",
                "attributes": {"root": True},
                "consolidated_metadata": {
                    "kind": "inline",
                    "must_understand": False,
                    "metadata": {"x": arr, "g": {"zarr_format": 3, "node_type": "group"}},
                },
            },
            ".zmetadata": {"metadata": {"x/.zarray": v2_doc()}, "zarr_consolidated_format": 1},
        },
    )
    g = xzaro.open_group(str(tmp_path))
    assert g.index.source == "V3 consolidated"
    assert set(g.members()) == {"x", "g"}
    assert g["x"].shape == (3, 3) and g.attrs == {"root": True}
    assert isinstance(g.meta, GroupMeta)


def test_missing_node_and_wrong_node_type(tmp_path):
    _write(tmp_path, {"zarr.json": {"zarr_format": 3, "node_type": "group"}})
    with pytest.raises(NodeNotFoundError, match="no Zarr array or group"):
        xzaro.open_array(str(tmp_path), "nope")
    with pytest.raises(NodeNotFoundError, match="group, not an array"):
        xzaro.open_array(str(tmp_path))
    with pytest.raises(NodeNotFoundError):
        xzaro.open_array(str(tmp_path / "does-not-exist"))


@pytest.mark.parametrize("as_bytes", [False, True])
def test_metadata_nesting_limit(as_bytes: bool) -> None:
    """Nesting is refused beyond MAX_JSON_DEPTH on every Python (3.13's parser takes 2,000
    levels that 3.11's refuses); text holding brackets in strings is not nesting."""
    from xzaro.meta.documents import MAX_JSON_DEPTH, loads

    def doc(depth: int) -> str | bytes:
        text = '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + ', "s": "' + "[" * 2000 + '"}'
        return text.encode() if as_bytes else text

    assert loads(doc(MAX_JSON_DEPTH))["s"] == "[" * 2000
    with pytest.raises(MetadataError, match=f"nested {MAX_JSON_DEPTH + 1} deep") as e:
        loads(doc(MAX_JSON_DEPTH + 1), url="u", key="k/zarr.json")
    assert e.value.url == "u" and e.value.key == "k/zarr.json"


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "default", "separator": "."},  # would read every chunk under c/..., as fill
        {"name": "v2", "configuration": {"separator": "/", "sep": "."}},
    ],
)
def test_chunk_key_encoding_with_unknown_members_is_refused(doc):
    with pytest.raises(MetadataError, match="unknown members"):
        ChunkKeyEncoding.from_json(doc)


def test_chunk_key_encoding_may_say_must_understand():
    doc = {"name": "default", "configuration": {"separator": "."}, "must_understand": True}
    assert ChunkKeyEncoding.from_json(doc).separator == "."
