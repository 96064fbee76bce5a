"""V3 data types other programs write read exactly (issue 11).

Structured arrays: ``structured`` as zarr-python 3.1 writes it, and ``struct`` as the
zarr-extensions registry (and zarr-python >= 3.4) defines it. The registry's machine-learning
types that ``ml_dtypes`` represents: tensorstore's ``bfloat16``, ``float8_*``,
``float4_e2m1fn``, ``int4``, ``int2``, compared bit for bit with tensorstore's own read.
"""

from __future__ import annotations

import base64
import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import VENV312, assert_same, run_venv312

import xzaro
from xzaro.dtypes import (
    fill_value_to_json,
    parse_fill_value,
    parse_v3_dtype,
    v2_dtype_to_json,
    v3_dtype_to_json,
)
from xzaro.errors import MetadataError, UnsupportedError
from xzaro.stores import open_store
from xzaro.writers import write_metadata, writer_for
from xzaro.writers.layout import array_meta

# zarr-python 3.1 warns that ``structured`` has no V3 specification yet.
pytestmark = pytest.mark.filterwarnings("ignore:.*does not have a Zarr V3 specification")

# ------------------------------------------------------------------ structured: zarr-python 3.1

ZARR31_CASES = {
    "flat": (
        np.dtype([("a", "<i4"), ("b", "<f8"), ("c", "u1")]),
        (7, 2.5, 3),
        [(1, 1.5, 1), (-2, np.nan, 2), (3, -np.inf, 255)],
    ),
    "nested": (
        np.dtype([("a", "<i2"), ("p", [("x", "<f4"), ("y", "<f4")])]),
        (-1, (np.nan, 4.0)),
        [(1, (1.5, 2.5)), (2, (-1.0, -2.0)), (3, (0.0, np.nan))],
    ),
    "time": (
        np.dtype([("t", "<M8[s]"), ("v", "<f4")]),
        (np.datetime64("NaT"), 0.5),
        [(np.datetime64("2001-01-01T00:00:01"), 1.0)] * 3,
    ),
}


@pytest.mark.parametrize("case", sorted(ZARR31_CASES))
def test_structured_written_by_zarr_python_31_reads_exactly(tmp_path: Path, case: str) -> None:
    dtype, fill, rows = ZARR31_CASES[case]
    path = tmp_path / "s.zarr"
    fill_value = np.array(fill, dtype=dtype)[()]
    arr = zarr.create_array(
        path, shape=(7,), chunks=(2,), dtype=dtype, zarr_format=3, fill_value=fill_value
    )
    arr[:3] = np.array(rows, dtype=dtype)  # chunk 1 half written, chunks 2 and 3 never
    doc = json.loads((path / "zarr.json").read_text())
    # zarr-python 3.1 names it "structured" with a base64 fill value; 3.4 the registered "struct"
    assert doc["data_type"]["name"] in ("structured", "struct")
    if doc["data_type"]["name"] == "structured":
        assert isinstance(doc["fill_value"], str)  # base64 of the packed bytes
    expected = zarr.open_array(path, mode="r")[...]
    got = xzaro.open_array(path)
    assert_same(got[...], expected)
    assert_same(got[1:6], expected[1:6])
    assert got.meta.fill_value.tobytes() == fill_value.tobytes()


def test_structured_next_to_plain_arrays_walks_and_opens_in_xarray(tmp_path: Path) -> None:
    """One structured array once made ``walk()`` and ``open_dataset`` fail for the whole store."""
    path = tmp_path / "mixed.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=3)
    dtype = np.dtype([("a", "<i4"), ("b", "<f8")])
    rec = group.create_array("rec", shape=(4,), chunks=(2,), dtype=dtype, dimension_names=["x"])
    rec[:2] = np.array([(1, 1.5), (2, 2.5)], dtype=dtype)
    values = group.create_array("v", shape=(4,), chunks=(2,), dtype="f4", dimension_names=["x"])
    values[:] = np.arange(4, dtype="f4")

    walked = dict(xzaro.open_group(path).walk())
    assert sorted(walked) == ["rec", "v"]
    assert walked["rec"].dtype == dtype

    with (
        xr.open_dataset(path, engine="zarr", consolidated=False) as theirs,
        xr.open_dataset(path, engine="zaro", consolidated=False) as ours,
    ):
        assert ours.rec.dtype == theirs.rec.dtype == dtype
        assert ours.rec.dims == ("x",)
        assert_same(ours.rec.values, theirs.rec.values)
        np.testing.assert_array_equal(ours.v.values, theirs.v.values)


def test_structured_layouts_of_one_size_read_in_turn(tmp_path: Path) -> None:
    """Two 12-byte layouts (numpy names both ``|V12``) read partly, one after the other, in one
    thread: each decodes as itself."""
    arrays = []
    for i, fields in enumerate([[("a", "<i4"), ("b", "<f8")], [("b", "<f8"), ("a", "<i4")]]):
        dtype = np.dtype(fields)
        path = tmp_path / f"s{i}.zarr"
        arr = zarr.create_array(path, shape=(6,), chunks=(4,), dtype=dtype, zarr_format=3)
        arr[:] = np.array([(k, k + 0.5) if i == 0 else (k + 0.5, k) for k in range(6)], dtype)
        arrays.append((path, arr[...]))
    for path, expected in arrays * 2:
        assert_same(xzaro.open_array(path)[1:3], expected[1:3])


# ------------------------------------------------------------------ struct: the registry's form

CORE_NAMES = {np.dtype(n): n for n in ["int8", "uint8", "int16", "int32", "float32", "float64"]}


def _struct_json(dtype: np.dtype, name: str = "struct") -> dict:
    """The ``data_type`` of a structured dtype as the registry writes it."""
    fields = []
    for field_name in dtype.names or ():
        field_dtype = dtype.fields[field_name][0]  # type: ignore[index]
        if field_dtype.fields is not None:
            field_type: Any = _struct_json(field_dtype, name)
        elif field_dtype.kind == "M":
            unit, scale = np.datetime_data(field_dtype)
            field_type = {
                "name": "numpy.datetime64",
                "configuration": {"unit": unit, "scale_factor": scale},
            }
        else:
            field_type = CORE_NAMES[field_dtype.newbyteorder("=")]
        if name == "struct":
            fields.append({"name": field_name, "data_type": field_type})
        else:
            fields.append([field_name, field_type])
    return {"name": name, "configuration": {"fields": fields}}


def _write_by_spec(
    path: Path,
    data: np.ndarray,
    *,
    data_type: Any,
    fill_value: Any,
    chunk: int,
    endian: str | None,
    written: tuple[int, ...],
) -> None:
    """A 1-d V3 array written from the spec: the JSON, and chunks of numpy's bytes."""
    bytes_codec: dict[str, Any] = {"name": "bytes"}
    if endian is not None:
        bytes_codec["configuration"] = {"endian": endian}
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [len(data)],
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [chunk]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill_value,
        "codecs": [bytes_codec],
        "attributes": {},
    }
    path.mkdir(parents=True)
    (path / "zarr.json").write_text(json.dumps(doc))
    stored = data.dtype.newbyteorder(">" if endian == "big" else "<")
    (path / "c").mkdir()
    for i in written:
        piece = np.zeros(chunk, dtype=stored)
        part = data[i * chunk : (i + 1) * chunk]
        piece[: len(part)] = part
        (path / "c" / str(i)).write_bytes(piece.tobytes())


def _with_bits(dtype: np.dtype, values: dict[str, Any], nan_payload: tuple[str, int]) -> Any:
    out = np.zeros((), dtype=dtype)
    for name, value in values.items():
        out[name] = value
    name, bits = nan_payload
    out[name] = np.array(bits, dtype="u8").view("f8")
    return out[()]


STRUCT_DTYPE = np.dtype(
    [
        ("id", "<i4"),
        ("flags", "u1"),
        ("point", [("x", "<f4"), ("y", "<f4")]),
        ("when", "<M8[s]"),
        ("value", "<f8"),
    ]
)
STRUCT_FILL_JSON = {
    "id": -7,
    "flags": 3,
    "point": {"x": "-Infinity", "y": 1.5},
    "when": "NaT",
    "value": "0x7ff8000000000001",
}
STRUCT_FILL = _with_bits(
    STRUCT_DTYPE,
    {"id": -7, "flags": 3, "point": (-np.inf, 1.5), "when": np.datetime64("NaT")},
    ("value", 0x7FF8000000000001),
)


@pytest.mark.parametrize("endian", ["little", "big"])
@pytest.mark.parametrize("name", ["struct", "structured"])
def test_struct_as_the_registry_defines_it(tmp_path: Path, endian: str, name: str) -> None:
    """Packed fields in declaration order, each in the ``bytes`` codec's byte order, and the
    fill value as an object of field values (``structured`` in the registry's new form too)."""
    data = np.array(
        [
            (i, i % 256, (i / 2, -i), np.datetime64(1_000_000_000 + i, "s"), i * 1.25)
            for i in range(9)
        ],
        dtype=STRUCT_DTYPE,
    )
    path = tmp_path / "s.zarr"
    _write_by_spec(
        path,
        data,
        data_type=_struct_json(STRUCT_DTYPE, name),
        fill_value=STRUCT_FILL_JSON,
        chunk=4,
        endian=endian,
        written=(0, 2),  # chunk 1 never written; chunk 2 is the partial last one
    )
    expected = data.copy()
    expected[4:8] = STRUCT_FILL
    got = xzaro.open_array(path)
    assert got.dtype == STRUCT_DTYPE
    assert_same(got[...], expected)
    assert_same(got[3:9], expected[3:9])


def test_struct_fill_as_legacy_base64_and_bytes_without_endian(tmp_path: Path) -> None:
    """The registry's legacy forms: base64 of the packed bytes, ``bytes`` without ``endian``
    (read little-endian)."""
    dtype = np.dtype([("a", "<i4"), ("b", "<f8")])
    data = np.array([(1, 1.5), (2, -2.5), (3, 0.0)], dtype=dtype)
    fill = np.array((9, -1.0), dtype=dtype)
    path = tmp_path / "s.zarr"
    _write_by_spec(
        path,
        data,
        data_type=_struct_json(dtype),
        fill_value=base64.standard_b64encode(fill.tobytes()).decode(),
        chunk=2,
        endian=None,
        written=(0,),
    )
    expected = data.copy()
    expected[2] = fill
    assert_same(xzaro.open_array(path)[...], expected)


ZARR34_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import zarr

    root = sys.argv[1]
    dtype = np.dtype(
        [("id", "<i4"), ("flags", "u1"), ("point", [("x", "<f4"), ("y", "<f4")]),
         ("value", "<f8")]
    )
    fill = np.array((-7, 3, (-np.inf, 1.5), np.nan), dtype=dtype)[()]
    a = zarr.create_array(root + "/s.zarr", shape=(9,), chunks=(4,), dtype=dtype,
                          zarr_format=3, fill_value=fill)
    a[:3] = np.array([(i, i, (i / 2, -i), i * 1.25) for i in range(3)], dtype=dtype)
    np.save(root + "/expected.npy", a[...])
    print(zarr.__version__)
    """
)


def test_struct_written_by_zarr_python_34(tmp_path: Path) -> None:
    """zarr-python >= 3.4 (Python >= 3.12) writes ``struct``; run only where a 3.12 venv with it
    exists (the main suite runs Python 3.11): xzaro reads its store as it does, and its JSON is
    the registry's form the tests above write by hand."""
    result = run_venv312(ZARR34_SCRIPT, str(tmp_path))
    if result.returncode or tuple(int(p) for p in result.stdout.split(".")[:2]) < (3, 4):
        pytest.skip(f"zarr >= 3.4 unusable in {VENV312}: {result.stderr[-300:]}")
    expected = np.load(tmp_path / "expected.npy")
    path = tmp_path / "s.zarr"
    doc = json.loads((path / "zarr.json").read_text())
    assert doc["data_type"] == _struct_json(expected.dtype)
    assert doc["fill_value"] == {
        "id": -7,
        "flags": 3,
        "point": {"x": "-Infinity", "y": 1.5},
        "value": "NaN",
    }
    assert doc["codecs"][0] == {"name": "bytes", "configuration": {"endian": "little"}}
    assert_same(xzaro.open_array(path)[...], expected)


def _zarr34_read(path: Path, tmp_path: Path) -> np.ndarray:
    """What zarr-python >= 3.4 (in the 3.12 venv, when present) reads at ``path``."""
    script = "import sys, numpy, zarr; numpy.save(sys.argv[2], zarr.open_array(sys.argv[1])[...])"
    out = tmp_path / "theirs.npy"
    result = run_venv312(script, str(path), str(out))
    if result.returncode:
        pytest.fail(f"zarr-python 3.4 cannot read {path}: {result.stderr[-500:]}")
    return np.load(out)


@pytest.mark.parametrize("shards", [None, (4,)])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_structured_written_by_xzaro_reads_in_zarr_python_31(
    tmp_path: Path, byteorder: str, shards: tuple[int, ...] | None
) -> None:
    """xzaro writes ``structured`` with a base64 fill, the form zarr-python 3.1 reads; fields
    given big-endian are stored in the ``bytes`` codec's order (zarr-python 3.1 itself writes
    them big-endian under a codec without ``endian``). Sharded too, compared with zarr-python
    3.4 where it is at hand (3.1 can neither write nor read a sharded structured array)."""
    dtype = np.dtype([("a", "i4"), ("p", [("x", "f4"), ("y", "u1")])]).newbyteorder(byteorder)
    data = np.array([(1, (1.5, 2)), (-2, (np.nan, 3)), (3, (-0.0, 4)), (4, (1e30, 5))], dtype=dtype)
    fill = np.array((5, (np.inf, 7)), dtype=dtype)[()]
    meta = array_meta(
        shape=(5,),
        dtype=dtype,
        dims=("x",),
        chunk_shape=(2,),
        shard_shape=shards,
        zarr_format=3,
        compressor=None,
        fill_value=fill,
        attributes={},
    )
    path = tmp_path / "s.zarr"
    store = open_store(str(path), mode="w")
    writer_for(store, "", meta).write_block(data, (0,))
    write_metadata(store, "", meta)
    doc = json.loads((path / "zarr.json").read_text())
    assert doc["data_type"] == {
        "name": "structured",
        "configuration": {
            "fields": [
                ["a", "int32"],
                [
                    "p",
                    {
                        "name": "structured",
                        "configuration": {"fields": [["x", "float32"], ["y", "uint8"]]},
                    },
                ],
            ]
        },
    }
    assert isinstance(doc["fill_value"], str)
    expected = np.concatenate([data, np.array([fill], dtype=dtype)])
    assert_same(xzaro.open_array(path)[...], expected.astype(dtype.newbyteorder("=")))
    theirs = _zarr34_read(path, tmp_path) if shards else zarr.open_array(path, mode="r")[...]
    assert theirs.tobytes() == expected.astype(theirs.dtype).tobytes()


def test_structured_dtypes_v3_cannot_hold_are_refused() -> None:
    with pytest.raises(UnsupportedError, match="subarray") as err:
        v3_dtype_to_json(np.dtype([("a", "<i4"), ("b", "<f8", (2,))]))
    assert err.value.field == "data_type"
    with pytest.raises(UnsupportedError, match="packed"):
        v3_dtype_to_json(np.dtype([("a", "u1"), ("b", "<f8")], align=True))
    with pytest.raises(UnsupportedError, match="object"):
        v3_dtype_to_json(np.dtype([("a", "O")]))


@pytest.mark.parametrize(
    ("data_type", "match"),
    [
        ({"name": "struct", "configuration": {"fields": []}}, "non-empty 'fields'"),
        ({"name": "struct", "configuration": {}}, "non-empty 'fields'"),
        (
            {"name": "struct", "configuration": {"fields": [["a", "int8"], ["a", "int16"]]}},
            "appears twice",
        ),
        (
            {"name": "struct", "configuration": {"fields": [{"name": "s", "data_type": "string"}]}},
            "variable-length",
        ),
        (
            {"name": "structured", "configuration": {"fields": [["a"]]}},
            "must be",
        ),
        (
            {"name": "struct", "configuration": {"fields": [{"name": "", "data_type": "int8"}]}},
            "non-empty string",
        ),
    ],
)
def test_bad_struct_data_types_are_metadata_errors(data_type: dict, match: str) -> None:
    with pytest.raises(MetadataError, match=match) as err:
        parse_v3_dtype(data_type, url="mem://", key="zarr.json")
    assert err.value.field == "data_type"
    assert err.value.key == "zarr.json"


def test_deeply_nested_struct_is_a_metadata_error() -> None:
    data_type: Any = "int8"
    for _ in range(5000):
        data_type = {"name": "struct", "configuration": {"fields": [["f", data_type]]}}
    with pytest.raises(MetadataError, match="nest more than") as err:
        parse_v3_dtype(data_type)
    assert err.value.field == "data_type"


@pytest.mark.parametrize(
    ("fill", "match"),
    [
        ({"a": 1}, "missing \\['b'\\]"),
        ({"a": 1, "b": 2.0, "c": 3}, "unknown \\['c'\\]"),
        ({"a": "x", "b": 2.0}, "field 'a'"),
        ({"a": 1, "b": None}, "field 'b'"),
        ("AAAA", "12 bytes"),
        ("not base64!", "base64"),
        ([1, 2.0], "object of field values"),
    ],
)
def test_bad_struct_fill_values_are_metadata_errors(fill: Any, match: str) -> None:
    dtype = np.dtype([("a", "<i4"), ("b", "<f8")])
    with pytest.raises(MetadataError, match=match) as err:
        parse_fill_value(fill, dtype, zarr_format=3)
    assert err.value.field == "fill_value"


# ------------------------------------------------------------------ ml_dtypes: tensorstore

#: tensorstore's data types with the fill value used, and the bit patterns written.
TS_CASES: dict[str, tuple[Any, list[int] | None]] = {
    "bfloat16": (
        "0x7fc1",
        [0x3FC0, 0x8000, 0x7FC0, 0x7FC1, 0xFF81, 0x7F80, 0xFF80, 0x0001, 0x7F7F],
    ),
    "float8_e4m3fn": (1.5, None),
    "float8_e5m2": ("-Infinity", None),
    "float8_e4m3fnuz": ("NaN", None),
    "float8_e5m2fnuz": (-0.25, None),
    "float8_e4m3b11fnuz": (0.125, None),
    "float8_e3m4": ("Infinity", None),
    "float8_e8m0fnu": (0.0, None),  # no zero: tensorstore's default, the pattern 0x00
    "float4_e2m1fn": (-6.0, None),
    "int4": (-3, None),
    "int2": (-2, None),
}
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32}


def _ts_write(path: Path, name: str, fill: Any, endian: str | None, patterns: Any) -> Any:
    ts = pytest.importorskip("tensorstore")
    bytes_codec: dict[str, Any] = {"name": "bytes"}
    if endian is not None:
        bytes_codec["configuration"] = {"endian": endian}
    store = ts.open(
        {
            "driver": "zarr3",
            "kvstore": {"driver": "file", "path": str(path)},
            "metadata": {
                "data_type": name,
                "shape": [len(patterns) + 40],
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [32]}},
                "fill_value": fill,
                "codecs": [bytes_codec, {"name": "zstd", "configuration": {"level": 1}}],
            },
        },
        create=True,
    ).result()
    dtype = store.dtype.numpy_dtype
    store[: len(patterns)] = np.asarray(patterns, dtype=_UINT[dtype.itemsize]).view(dtype)
    return store


@pytest.mark.parametrize("name", sorted(TS_CASES))
def test_tensorstore_ml_dtypes_read_bit_exactly(tmp_path: Path, name: str) -> None:
    pytest.importorskip("ml_dtypes")
    fill, patterns = TS_CASES[name]
    bits = {"int2": 2, "int4": 4, "float4_e2m1fn": 4}.get(name, 8)
    if patterns is None:
        patterns = list(range(1 << bits))  # every value of the type
    path = tmp_path / "a.zarr"
    store = _ts_write(path, name, fill, "little" if name == "bfloat16" else None, patterns)
    expected = store.read().result()
    got = xzaro.open_array(path)
    assert got.dtype == expected.dtype
    # Bit for bit, but for the unused upper bits of sub-byte integers (tensorstore's are the
    # sign, ml_dtypes' zero: both right).
    view: Any = int if name.startswith("int") else _UINT[expected.dtype.itemsize]

    def bits(a: np.ndarray) -> np.ndarray:
        return a.astype(int) if view is int else a.view(view)

    # The last 40 elements (never written chunks) read as the fill value.
    np.testing.assert_array_equal(bits(got[...]), bits(expected))
    np.testing.assert_array_equal(bits(got[5:-3]), bits(expected[5:-3]))
    # The fill value survives a round trip through JSON, bit for bit.
    doc = json.loads((path / "zarr.json").read_text())
    assert doc["data_type"] == name
    again = parse_fill_value(
        fill_value_to_json(got.meta.fill_value, got.dtype, zarr_format=3), got.dtype, zarr_format=3
    )
    assert np.array(again).tobytes() == np.array(got.meta.fill_value).tobytes()


def test_tensorstore_big_endian_bfloat16(tmp_path: Path) -> None:
    pytest.importorskip("ml_dtypes")
    patterns = [0x3FC0, 0x7FC1, 0xFF81, 0x0001, 0x8000]
    store = _ts_write(tmp_path / "a.zarr", "bfloat16", -2.5, "big", patterns)
    expected = store.read().result()
    got = xzaro.open_array(tmp_path / "a.zarr")[...]
    np.testing.assert_array_equal(got.view(np.uint16), expected.view(np.uint16))


def test_tensorstore_int4_with_arbitrary_upper_bits(tmp_path: Path) -> None:
    """The registry leaves the upper bits of a sub-byte element arbitrary; xzaro reads such
    bytes as tensorstore does."""
    pytest.importorskip("ml_dtypes")
    store = _ts_write(tmp_path / "a.zarr", "int4", 0, None, list(range(16)))
    chunk = tmp_path / "a.zarr" / "c" / "0"
    zstd = numcodecs.Zstd()
    raw = np.frombuffer(zstd.decode(chunk.read_bytes()), dtype=np.uint8) | 0xA0
    chunk.write_bytes(zstd.encode(raw.tobytes()))
    expected = store.read().result()
    got = xzaro.open_array(tmp_path / "a.zarr")[...]
    np.testing.assert_array_equal(got.astype(int), expected.astype(int))


@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn", "int4"])
def test_xzaro_writes_ml_dtypes_tensorstore_reads(tmp_path: Path, name: str) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    ts = pytest.importorskip("tensorstore")
    dtype = np.dtype(getattr(ml_dtypes, name))
    values = np.arange(-5, 5) if name == "int4" else np.linspace(-3, 3, 10)
    data = values.astype(dtype)
    fill = np.array(5 if name == "int4" else np.nan, dtype=dtype)[()]
    path = tmp_path / "w.zarr"
    xr.Dataset({"v": ("x", data)}).zaro.to_store(path, zarr_format=3)
    doc = json.loads((path / "v" / "zarr.json").read_text())
    assert doc["data_type"] == name
    read = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "v")}})
    got = read.result().read().result()
    np.testing.assert_array_equal(got.view(_UINT[dtype.itemsize]), data.view(_UINT[dtype.itemsize]))

    # and a fill value through the Writer: never-written elements read as it in tensorstore
    meta = array_meta(
        shape=(12,),
        dtype=dtype,
        dims=("x",),
        chunk_shape=(4,),
        shard_shape=None,
        zarr_format=3,
        compressor=None,
        fill_value=fill,
        attributes={},
    )
    store = open_store(str(tmp_path / "f.zarr"), mode="w")
    writer_for(store, "", meta).write_block(data[:4], (0,))
    write_metadata(store, "", meta)
    got = ts.open(
        {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "f.zarr")}}
    )
    theirs = got.result().read().result()
    expected = np.concatenate([data[:4], np.full(8, fill, dtype=dtype)])
    view = _UINT[dtype.itemsize]
    np.testing.assert_array_equal(theirs.view(view), expected.view(view))
    np.testing.assert_array_equal(
        xzaro.open_array(tmp_path / "f.zarr")[...].view(view), expected.view(view)
    )


def test_v2_refuses_ml_dtypes() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    with pytest.raises(UnsupportedError, match=r"bfloat16.*Zarr V3") as err:
        v2_dtype_to_json(np.dtype(ml_dtypes.bfloat16))
    assert err.value.field == "dtype"
    with pytest.raises(UnsupportedError, match="int4"):
        v2_dtype_to_json(np.dtype([("a", "<i4"), ("b", ml_dtypes.int4)]))


def test_ml_dtypes_missing_is_a_clear_metadata_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # makes ``import ml_dtypes`` fail
    with pytest.raises(MetadataError, match="pip install ml_dtypes") as err:
        parse_v3_dtype("bfloat16", url="file:///x", key="a/zarr.json")
    assert err.value.field == "data_type"
    assert "'bfloat16'" in str(err.value)
    assert parse_v3_dtype("float32") == np.dtype("float32")  # the core types need nothing


# ------------------------------------------------------------------ fill values, both ways

ROUND_TRIPS = [
    (
        "bfloat16",
        [1.5, -0.0, "NaN", "0x7fc1", "0xffc0", "Infinity", "-Infinity", 3.3895313892515355e38],
    ),
    ("float8_e4m3fn", [448.0, -0.001953125, "NaN", 0.0]),
    ("float8_e5m2", ["Infinity", "NaN", "0x7d", 57344.0]),
    ("float8_e4m3fnuz", ["NaN", 240.0, 0.0]),
    ("float8_e5m2fnuz", ["NaN", -57344.0]),
    ("float8_e4m3b11fnuz", ["NaN", 30.0]),
    ("float8_e3m4", ["NaN", "Infinity", 15.5]),
    ("float8_e4m3", ["NaN", 240.0]),
    ("float8_e8m0fnu", ["NaN", 1.0, 2.0**127, 2.0**-127]),
    ("float6_e2m3fn", [7.5, -0.125]),
    ("float6_e3m2fn", [28.0, -0.0625]),
    ("float4_e2m1fn", [6.0, -0.5, 0.0]),
    ("int2", [-2, 1]),
    ("int4", [-8, 7]),
    ("uint2", [0, 3]),
    ("uint4", [15]),
    ("complex_bfloat16", [[1.5, "NaN"], ["0x7fc1", "-Infinity"]]),
    ("complex_float16", [[1.5, -2.0], ["NaN", "0x7e01"]]),
    ("complex_float32", [[1.5, "NaN"]]),
    ("complex_float64", [["Infinity", -0.5]]),
]


@pytest.mark.parametrize(("name", "values"), ROUND_TRIPS, ids=[n for n, _ in ROUND_TRIPS])
def test_fill_values_round_trip(name: str, values: list) -> None:
    pytest.importorskip("ml_dtypes")
    dtype = parse_v3_dtype(name)
    aliases = {"complex_float32": "complex64", "complex_float64": "complex128"}
    assert v3_dtype_to_json(dtype) == aliases.get(name, name)
    for value in values:
        fill = parse_fill_value(value, dtype, zarr_format=3)
        assert np.array(fill).dtype == dtype
        emitted = fill_value_to_json(fill, dtype, zarr_format=3)
        assert emitted == value or (
            isinstance(value, float) and isinstance(emitted, float) and emitted == value
        ), (value, emitted)
        again = parse_fill_value(json.loads(json.dumps(emitted)), dtype, zarr_format=3)
        assert np.array(again).tobytes() == np.array(fill).tobytes()


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("float8_e4m3fnuz", "Infinity", "no infinity"),
        ("float8_e4m3fn", "-Infinity", "no infinity"),
        ("float4_e2m1fn", "NaN", "no NaN"),
        ("float6_e2m3fn", "NaN", "no NaN"),
        ("float8_e4m3fn", 1000.0, "out of range"),
        ("float4_e2m1fn", 100.0, "out of range"),
        ("bfloat16", 1e39, "out of range"),
        ("bfloat16", 10**400, "out of range"),
        ("float8_e8m0fnu", -1.0, "out of range"),
        ("bfloat16", "0x1ffff", "16 bits"),
        ("float4_e2m1fn", "0x1f", "4 bits"),
        ("bfloat16", "0xzz", "invalid fill value"),
        ("bfloat16", "nan", "invalid fill value"),
        ("bfloat16", True, "invalid fill value"),
        ("bfloat16", [1.0], "invalid fill value"),
        ("int4", 8, "from -8 to 7"),
        ("int2", -3, "from -2 to 1"),
        ("uint4", -1, "from 0 to 15"),
        ("int4", 1.5, "from -8 to 7"),
        ("int4", "1", "from -8 to 7"),
        ("complex_bfloat16", 1.0, "\\[re, im\\]"),
        ("complex_bfloat16", [1.0, "x"], "invalid fill value"),
    ],
)
def test_bad_fill_values_are_metadata_errors(name: str, value: Any, match: str) -> None:
    pytest.importorskip("ml_dtypes")
    dtype = parse_v3_dtype(name)
    with pytest.raises(MetadataError, match=match) as err:
        parse_fill_value(value, dtype, zarr_format=3, url="mem://", key="zarr.json")
    assert err.value.field == "fill_value"
    assert err.value.url == "mem://"


def test_complex_extension_types_read_from_spec_written_chunks(tmp_path: Path) -> None:
    """``complex_bfloat16`` / ``complex_float16``: real then imaginary part, each little-endian
    (no peer writes them yet; the chunk is numpy's bytes)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    for name, part in [("complex_bfloat16", ml_dtypes.bfloat16), ("complex_float16", np.float16)]:
        dtype = parse_v3_dtype(name)
        parts = np.array([1.5, -2.0, np.nan, 0.25, 3.0, math.inf], dtype=part)
        data = parts.view(dtype)
        path = tmp_path / name
        _write_by_spec(
            path,
            data,
            data_type=name,
            fill_value=[-1.0, 0.5],
            chunk=2,
            endian="little",
            written=(0,),
        )
        got = xzaro.open_array(path)[...]
        expected = np.concatenate([data[:2], np.array([-1.0, 0.5], dtype=part).view(dtype)])
        assert_same(got, expected)
        path_big = tmp_path / f"{name}-big"
        _write_by_spec(
            path_big,
            data,
            data_type=name,
            fill_value=[0.0, 0.0],
            chunk=2,
            endian="big",
            written=(0,),
        )
        with pytest.raises(UnsupportedError, match="big-endian") as err:
            xzaro.open_array(path_big)
        assert err.value.field == "codecs"
