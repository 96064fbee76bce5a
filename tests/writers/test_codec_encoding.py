"""Codecs through xarray encoding: ``compressors``, ``filters``, ``serializer``, every spelling.

Stores are written by ``ds.zaro.to_store`` and read back by zarr-python (the codecs it sees and
the values it reads); ``engine="zaro"`` exposes the codecs as ``engine="zarr"`` does, so a
dataset read with zaro and written again, by ``to_zarr`` or by ``to_store``, keeps them. Bad
values raise :class:`~xzaro.errors.MetadataError` naming the variable and the encoding key.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.codecs as zc

from xzaro.backends.xarray import CodecJSON, codec_encoding_of
from xzaro.codecs import (
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    NumcodecsCodec,
    ShardingCodec,
    TransposeCodec,
    VLenUTF8Codec,
    ZstdCodec,
)
from xzaro.errors import MetadataError
from xzaro.meta import ZaroMeta
from xzaro.writers import BloscCompressionParams
from xzaro.writers.codec_spec import codec_encoding
from xzaro.writers.layout import array_meta

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

#: the three layouts: keyword arguments of to_store / to_zarr beyond the encoding
LAYOUTS: dict[str, dict[str, Any]] = {
    "v2": {"zarr_format": 2},
    "v3": {"zarr_format": 3},
    "v3_sharded": {"zarr_format": 3},
}
DATA = np.arange(100.0) ** 1.5


def _dataset() -> xr.Dataset:
    return xr.Dataset({"v": ("x", DATA.copy())})


def _layout_encoding(layout: str, **enc: Any) -> dict[str, Any]:
    out = {"chunks": (10,), **enc}
    if layout == "v3_sharded":
        out["shards"] = (50,)
    return out


def _to_store(path: Path, layout: str, ds: xr.Dataset | None = None, **enc: Any) -> zarr.Array:
    ds = _dataset() if ds is None else ds
    ds.zaro.to_store(path, **LAYOUTS[layout], encoding={"v": _layout_encoding(layout, **enc)})
    return zarr.open_array(path / "v", mode="r")


def _json(codec: Any) -> dict[str, Any]:
    """A codec as zarr-python gives it, as plain JSON: V3 ``{"name", "configuration"}`` (without
    an empty configuration) or V2 ``{"id", ...}``."""
    doc = codec.get_config() if isinstance(codec, numcodecs.abc.Codec) else codec.to_dict()
    doc = json.loads(json.dumps(doc))
    if "name" in doc and not doc.get("configuration"):
        doc.pop("configuration", None)
    return doc


def _level(codec: Any) -> int:
    doc = _json(codec)
    return doc["level"] if "id" in doc else doc["configuration"]["level"]


def _zstd_name(codec: Any) -> str:
    doc = _json(codec)
    return doc.get("id") or doc["name"].removeprefix("numcodecs.")


def _stored_shards(arr: zarr.Array) -> tuple[int, ...] | None:
    return None if arr.metadata.zarr_format == 2 else arr.shards


# ------------------------------------------------------------------------------ spellings
ZSTD9_SPELLINGS: dict[str, Any] = {
    "numcodecs": lambda: numcodecs.Zstd(level=9),
    "v2_json": lambda: {"id": "zstd", "level": 9},
    "v3_json": lambda: {"name": "zstd", "configuration": {"level": 9}},
    "v3_json_numcodecs": lambda: {"name": "numcodecs.zstd", "configuration": {"level": 9}},
    "zarr_python": lambda: zc.ZstdCodec(level=9),
    "xzaro": lambda: ZstdCodec(level=9),
}
CONTAINERS: dict[str, Any] = {
    "compressors_tuple": lambda c: {"compressors": (c,)},
    "compressors_list": lambda c: {"compressors": [c]},
    "compressors_single": lambda c: {"compressors": c},
    "compressor": lambda c: {"compressor": c},
}


#: every spelling in a tuple, and a few in every other container
SPELLING_CASES = [(s, "compressors_tuple") for s in ZSTD9_SPELLINGS] + [
    (s, c)
    for c in CONTAINERS
    if c != "compressors_tuple"
    for s in ("numcodecs", "v3_json", "zarr_python")
]


@pytest.mark.parametrize(("spelling", "container"), SPELLING_CASES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_zstd9_every_spelling(tmp_path: Path, layout: str, spelling: str, container: str) -> None:
    """Each spelling of zstd level 9 is written as zstd level 9, as zarr-python reads it."""
    enc = CONTAINERS[container](ZSTD9_SPELLINGS[spelling]())
    arr = _to_store(tmp_path / "s.zarr", layout, **enc)
    assert len(arr.compressors) == 1
    (codec,) = arr.compressors
    assert _zstd_name(codec) == "zstd"
    assert _level(codec) == 9
    assert arr.filters == ()
    np.testing.assert_array_equal(arr[:], DATA)
    if layout == "v2":
        assert arr.metadata.to_dict()["compressor"]["id"] == "zstd"
        assert arr.metadata.to_dict()["compressor"]["level"] == 9
    else:
        assert _stored_shards(arr) == ((50,) if layout == "v3_sharded" else None)
        assert arr.serializer.to_dict() == {
            "name": "bytes",
            "configuration": {"endian": "little"},
        }


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("none", [None, (), []])
def test_no_compression(tmp_path: Path, layout: str, none: Any) -> None:
    arr = _to_store(tmp_path / "s.zarr", layout, compressors=none)
    assert arr.compressors == ()
    np.testing.assert_array_equal(arr[:], DATA)


@pytest.mark.parametrize("layout", ["v3", "v3_sharded"])
def test_v3_compressor_chain_bare_names(tmp_path: Path, layout: str) -> None:
    """Bare V3 names where the configuration is optional, several compressors in order."""
    arr = _to_store(tmp_path / "s.zarr", layout, compressors=("zstd", "crc32c"))
    assert [_json(c) for c in arr.compressors] == [
        {"name": "zstd", "configuration": {"level": 0, "checksum": False}},
        {"name": "crc32c"},
    ]
    np.testing.assert_array_equal(arr[:], DATA)


@pytest.mark.parametrize("key", ["compressor", "compressors"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_blosc_params(tmp_path: Path, layout: str, key: str) -> None:
    params = BloscCompressionParams("lz4", 7, "bitshuffle")
    arr = _to_store(tmp_path / "s.zarr", layout, **{key: params})
    (codec,) = arr.compressors
    doc = _json(codec)
    if layout == "v2":
        assert doc == {"id": "blosc", "cname": "lz4", "clevel": 7, "shuffle": 2, "blocksize": 0}
    else:
        assert doc["configuration"] == {
            "cname": "lz4",
            "clevel": 7,
            "shuffle": "bitshuffle",
            "blocksize": 0,
            "typesize": 8,
        }
    np.testing.assert_array_equal(arr[:], DATA)


# ------------------------------------------------------------------------------ filters, serializer
def test_v2_filters(tmp_path: Path) -> None:
    """V2 filters in the numcodecs and V2 JSON spellings go to ``.zarray``'s ``filters``."""
    data = np.arange(100) / 10
    ds = xr.Dataset({"v": ("x", data)})
    fso = {"id": "fixedscaleoffset", "offset": 0, "scale": 10, "dtype": "<f8", "astype": "<i4"}
    arr = _to_store(
        tmp_path / "s.zarr",
        "v2",
        ds,
        filters=[numcodecs.Delta("<f8"), fso],
        compressors=numcodecs.Zstd(level=9),
    )
    assert arr.filters == (numcodecs.Delta("<f8"), numcodecs.get_codec(fso))
    assert arr.compressors == (numcodecs.Zstd(level=9),)
    assert [f["id"] for f in arr.metadata.to_dict()["filters"]] == ["delta", "fixedscaleoffset"]
    np.testing.assert_allclose(arr[:], data, rtol=1e-12)  # the scale/offset rounds
    got = xr.open_dataset(tmp_path / "s.zarr", engine="zaro")
    np.testing.assert_array_equal(got["v"].values, arr[:])


@pytest.mark.parametrize("layout", ["v3", "v3_sharded"])
@pytest.mark.parametrize("spelling", ["v3_json", "zarr_python"])
def test_v3_filters_and_serializer(tmp_path: Path, layout: str, spelling: str) -> None:
    data = np.arange(200.0).reshape(10, 20) ** 1.5
    ds = xr.Dataset({"v": (("y", "x"), data)})
    if spelling == "v3_json":
        enc = {
            "filters": [{"name": "transpose", "configuration": {"order": [1, 0]}}],
            "serializer": {"name": "bytes", "configuration": {"endian": "big"}},
            "compressors": [{"name": "gzip", "configuration": {"level": 7}}, "crc32c"],
        }
    else:
        enc = {
            "filters": [zc.TransposeCodec(order=(1, 0))],
            "serializer": zc.BytesCodec(endian="big"),
            "compressors": [zc.GzipCodec(level=7), zc.Crc32cCodec()],
        }
    enc["chunks"] = (5, 10)
    if layout == "v3_sharded":
        enc["shards"] = (10, 20)
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=3, encoding={"v": enc})
    arr = zarr.open_array(tmp_path / "s.zarr" / "v", mode="r")
    assert [_json(f) for f in arr.filters] == [
        {"name": "transpose", "configuration": {"order": [1, 0]}}
    ]
    assert _json(arr.serializer) == {"name": "bytes", "configuration": {"endian": "big"}}
    assert [_json(c) for c in arr.compressors] == [
        {"name": "gzip", "configuration": {"level": 7}},
        {"name": "crc32c"},
    ]
    assert _stored_shards(arr) == ((10, 20) if layout == "v3_sharded" else None)
    np.testing.assert_array_equal(arr[:], data)


@pytest.mark.parametrize("layout", ["v3", "v3_sharded"])
def test_v3_numcodecs_filter_from_v2_spelling(tmp_path: Path, layout: str) -> None:
    """A numcodecs filter object becomes the V3 ``numcodecs.*`` codec."""
    arr = _to_store(tmp_path / "s.zarr", layout, filters=[numcodecs.Delta("<f8")])
    assert [_json(f) for f in arr.filters] == [
        {"name": "numcodecs.delta", "configuration": {"dtype": "<f8", "astype": "<f8"}}
    ]
    np.testing.assert_array_equal(arr[:], DATA)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_string_object_codec(tmp_path: Path, layout: str) -> None:
    """A string variable's ``vlen-utf8``: zarr-python's V2 spelling (a filter) and the V3
    serializer both write it."""
    ds = xr.Dataset({"v": ("x", np.array(["a", "bbb", ""] * 20, dtype=object))})
    for i, enc in enumerate(
        [{"filters": (numcodecs.VLenUTF8(),)}, {"serializer": {"name": "vlen-utf8"}}]
    ):
        path = tmp_path / f"s{i}.zarr"
        arr = _to_store(path, layout, ds, **enc, compressors=numcodecs.Zstd(level=9))
        if layout == "v2":
            assert arr.filters == (numcodecs.VLenUTF8(),)
        else:
            assert arr.serializer.to_dict()["name"] == "vlen-utf8"
            assert arr.metadata.to_dict()["data_type"] == "string"
        assert _level(arr.compressors[0]) == 9
        assert list(arr[:]) == list(ds["v"].values)


# ------------------------------------------------------------------------------ StringDType
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_string_dtype(tmp_path: Path, zarr_format: int) -> None:
    """numpy 2 StringDType variables: V3 as zarr-python 3 writes them (``string`` data type,
    ``vlen-utf8``)."""
    values = ["a", "bbb", "", "ünï"]
    ds = xr.Dataset({"s": ("x", np.array(values, dtype=np.dtypes.StringDType()))})
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=zarr_format)
    arr = zarr.open_array(tmp_path / "s.zarr" / "s", mode="r")
    assert [str(v) for v in arr[:]] == values
    if zarr_format == 3:
        meta = arr.metadata.to_dict()
        assert meta["data_type"] == "string"
        assert meta["fill_value"] == ""
        assert arr.serializer.to_dict()["name"] == "vlen-utf8"
    got = xr.open_dataset(tmp_path / "s.zarr", engine="zaro")
    assert [str(v) for v in got["s"].values] == values


# ------------------------------------------------------------------------ the engine's encoding
def _zarr_store(path: Path, layout: str, **enc: Any) -> Path:
    """A store written by xarray's zarr engine (zarr-python), the oracle's own codecs."""
    ds = xr.Dataset(
        {
            "v": ("x", DATA.copy()),
            "s": ("x", np.array(["a", "bb"] * 50, dtype=object)),
        }
    )
    encoding = {"v": _layout_encoding(layout, **enc)}
    ds.to_zarr(path, zarr_format=LAYOUTS[layout]["zarr_format"], encoding=encoding, mode="w")
    return path


def _canonical(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, dict):
        value = json.loads(json.dumps(value))
        if not value.get("configuration"):
            value.pop("configuration", None)
        return value
    return _json(value)


ENGINE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "v2_default": ("v2", {}),
    "v2_zstd9_delta": (
        "v2",
        {"compressors": numcodecs.Zstd(level=9), "filters": [numcodecs.Delta("<f8")]},
    ),
    "v2_none": ("v2", {"compressors": None}),
    "v3_default": ("v3", {}),
    "v3_zstd9_crc": ("v3", {"compressors": [zc.ZstdCodec(level=9), zc.Crc32cCodec()]}),
    "v3_big_endian": ("v3", {"serializer": zc.BytesCodec(endian="big")}),
    "v3_none": ("v3", {"compressors": None}),
    "v3_sharded_zstd9": ("v3_sharded", {"compressors": zc.ZstdCodec(level=9)}),
    "v3_sharded_none": ("v3_sharded", {"compressors": None}),
}


@pytest.mark.parametrize("case", list(ENGINE_CASES))
def test_engine_encoding_matches_engine_zarr(tmp_path: Path, case: str) -> None:
    """``compressors``/``filters``/``serializer`` hold what ``engine="zarr"`` gives: tuples of
    the same numcodecs objects for V2 (and no ``serializer``); for V3 the JSON of zarr-python's
    codec objects, as dicts that compare equal to those objects."""
    layout, enc = ENGINE_CASES[case]
    path = _zarr_store(tmp_path / "s.zarr", layout, **enc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = xr.open_dataset(path, engine="zarr")
    got = xr.open_dataset(path, engine="zaro")
    for name in ("v", "s"):
        mine, theirs = got[name].encoding, ref[name].encoding
        keys = {"compressors", "filters", "serializer"}
        assert keys & set(mine) == keys & set(theirs), name
        for key in keys & set(theirs):
            assert isinstance(mine[key], tuple) == isinstance(theirs[key], tuple), (name, key)
            assert mine[key] == theirs[key], (name, key)
            assert theirs[key] == mine[key], (name, key)
            if layout != "v2":
                assert _canonical(mine[key]) == _canonical(theirs[key]), (name, key)
                items = mine[key] if isinstance(mine[key], tuple) else (mine[key],)
                assert all(type(i) is CodecJSON and isinstance(i, dict) for i in items)
        assert mine["shards"] == theirs["shards"]
        assert tuple(mine["chunks"]) == tuple(theirs["chunks"])


def test_codec_json_equality() -> None:
    """As in xarray's own ``test_compressor_encoding``: the encoding read back equals the
    zarr-python codecs written; inequality where the JSON differs."""
    blosc = zc.BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=8, blocksize=0)
    mine = CodecJSON(blosc.to_dict())
    assert mine == blosc and blosc == mine
    assert (mine != blosc) is False
    assert mine != zc.BloscCodec(cname="zstd", clevel=4, shuffle="shuffle", typesize=8)
    assert CodecJSON({"name": "crc32c"}) == {"name": "crc32c", "configuration": {}}
    assert CodecJSON({"name": "crc32c"}) != "crc32c"
    assert CodecJSON({"name": "transpose", "configuration": {"order": [1, 0]}}) == (
        zc.TransposeCodec(order=(1, 0))
    )


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("source", ["to_zarr", "to_store"])
def test_zaro_then_to_zarr_keeps_codecs(tmp_path: Path, layout: str, source: str) -> None:
    """Read with engine="zaro", write with xarray's ``to_zarr``: zstd level 9 (and the
    filters, the chunks and the shards) survive."""
    fmt = LAYOUTS[layout]["zarr_format"]
    if fmt == 2:
        enc = {"compressors": numcodecs.Zstd(level=9), "filters": [numcodecs.Delta("<f8")]}
    else:
        enc = {"compressors": zc.ZstdCodec(level=9), "filters": [zc.TransposeCodec(order=(0,))]}
    if source == "to_zarr":
        src = _zarr_store(tmp_path / "src.zarr", layout, **enc)
    else:
        src = tmp_path / "src.zarr"
        _to_store(src, layout, **enc)
    ds = xr.open_dataset(src, engine="zaro")
    ds.to_zarr(tmp_path / "out.zarr", zarr_format=fmt)
    arr = zarr.open_array(tmp_path / "out.zarr" / "v", mode="r")
    (codec,) = arr.compressors
    assert (_zstd_name(codec), _level(codec)) == ("zstd", 9)
    assert [_json(f) for f in arr.filters] == [_json(f) for f in enc["filters"]]
    assert arr.chunks == (10,)
    assert _stored_shards(arr) == ((50,) if layout == "v3_sharded" else None)
    np.testing.assert_array_equal(arr[:], DATA)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_zaro_then_to_store_keeps_codecs(tmp_path: Path, layout: str) -> None:
    """Read with engine="zaro", write with ``.zaro.to_store`` and no encoding: the codecs the
    variable carries are written again."""
    fmt = LAYOUTS[layout]["zarr_format"]
    if fmt == 2:
        enc = {"compressors": numcodecs.Zstd(level=9), "filters": [numcodecs.Delta("<f8")]}
    else:
        enc = {"compressors": zc.ZstdCodec(level=9), "filters": [zc.TransposeCodec(order=(0,))]}
    src = _zarr_store(tmp_path / "src.zarr", layout, **enc)
    ds = xr.open_dataset(src, engine="zaro")
    ds.zaro.to_store(tmp_path / "out.zarr", zarr_format=fmt)
    arr = zarr.open_array(tmp_path / "out.zarr" / "v", mode="r")
    (codec,) = arr.compressors
    assert (_zstd_name(codec), _level(codec)) == ("zstd", 9)
    assert [_json(f) for f in arr.filters] == [_json(f) for f in enc["filters"]]
    assert _stored_shards(arr) == ((50,) if layout == "v3_sharded" else None)
    np.testing.assert_array_equal(arr[:], DATA)
    strings = zarr.open_array(tmp_path / "out.zarr" / "s", mode="r")
    assert list(strings[:]) == ["a", "bb"] * 50


@pytest.mark.parametrize(("source", "target"), [("v2", "v3"), ("v3", "v2"), ("v3_sharded", "v2")])
def test_zaro_then_to_store_other_format(tmp_path: Path, source: str, target: str) -> None:
    """Carried codecs are converted to the other format; what it cannot hold (V3's transpose,
    V3's serializer in V2) is dropped, never an error."""
    if source == "v2":
        enc = {"compressors": numcodecs.Zstd(level=9), "filters": [numcodecs.Delta("<f8")]}
        filters = [{"name": "numcodecs.delta", "configuration": {"dtype": "<f8", "astype": "<f8"}}]
    else:
        enc = {"compressors": zc.ZstdCodec(level=9), "filters": [zc.TransposeCodec(order=(0,))]}
        filters = []
    src = _zarr_store(tmp_path / "src.zarr", source, **enc)
    ds = xr.open_dataset(src, engine="zaro")
    ds.zaro.to_store(tmp_path / "out.zarr", zarr_format=LAYOUTS[target]["zarr_format"])
    arr = zarr.open_array(tmp_path / "out.zarr" / "v", mode="r")
    (codec,) = arr.compressors
    assert (_zstd_name(codec), _level(codec)) == ("zstd", 9)
    assert [_json(f) for f in arr.filters] == filters
    np.testing.assert_array_equal(arr[:], DATA)
    strings = zarr.open_array(tmp_path / "out.zarr" / "s", mode="r")
    assert list(strings[:]) == ["a", "bb"] * 50


def test_v2_several_compressors(tmp_path: Path) -> None:
    """V2 holds one compressor: the codecs before the last are written as V2 filters, applied
    in the same order (xzaro's V2 mapping of a chain)."""
    arr = _to_store(tmp_path / "s.zarr", "v2", compressors=(numcodecs.Shuffle(8), "zstd"))
    assert arr.filters == (numcodecs.Shuffle(8),)
    assert _json(arr.compressors[0])["id"] == "zstd"
    np.testing.assert_array_equal(arr[:], DATA)


# ------------------------------------------------------------------------------ bad values
BAD: dict[str, tuple[int, dict[str, Any], str]] = {
    "unknown_codec": (3, {"compressors": "no-such-codec"}, "compressors"),
    "unknown_v2_id": (2, {"compressors": {"id": "no-such-codec"}}, "compressors"),
    "not_a_codec": (3, {"compressors": 42}, "compressors"),
    "not_a_codec_filter": (2, {"filters": [object()]}, "filters"),
    "serializer_as_compressor": (3, {"compressors": "bytes"}, "compressors"),
    "filter_as_compressor": (2, {"compressor": numcodecs.Delta("<f8")}, "compressor"),
    "compressor_as_filter": (3, {"filters": ["zstd"]}, "filters"),
    "compressor_as_serializer": (3, {"serializer": zc.ZstdCodec()}, "serializer"),
    "both_compressor_keys": (3, {"compressor": None, "compressors": None}, "compressors"),
    "bad_level": (
        3,
        {"compressors": {"name": "gzip", "configuration": {"level": 42}}},
        "compressors",
    ),
    "bad_config_type": (
        3,
        {"compressors": {"name": "zstd", "configuration": {"level": "x"}}},
        "compressors",
    ),
    "transpose_in_v2": (2, {"filters": [zc.TransposeCodec(order=(0,))]}, "filters"),
    "v2_big_endian_serializer": (
        2,
        {"serializer": {"name": "bytes", "configuration": {"endian": "big"}}},
        "serializer",
    ),
    "v2_bytes_filter_in_v3": (3, {"filters": [numcodecs.Shuffle()]}, "filters"),
    "vlen_for_floats": (3, {"serializer": "vlen-utf8"}, "serializer"),
    "filter_dtype_mismatch": (3, {"filters": [numcodecs.Delta("<f4")]}, "filters"),
    "sharding_as_serializer": (3, {"serializer": zc.ShardingCodec(chunk_shape=(5,))}, "serializer"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_values_raise(tmp_path: Path, case: str) -> None:
    """Through to_store: a MetadataError naming the variable and the encoding key; nothing of
    the array is written."""
    fmt, enc, field = BAD[case]
    ds = xr.Dataset({"temperature": ("x", DATA.copy())})
    path = tmp_path / "s.zarr"
    with pytest.raises(MetadataError) as info:
        ds.zaro.to_store(path, zarr_format=fmt, encoding={"temperature": enc})
    assert info.value.key == "temperature"
    assert info.value.field == field
    assert "'temperature'" in str(info.value) and repr(field) in str(info.value)
    assert not (path / "temperature").exists() or not any((path / "temperature").iterdir())


@pytest.mark.parametrize("case", list(BAD))
def test_bad_values_raise_direct(case: str) -> None:
    fmt, enc, field = BAD[case]
    with pytest.raises(MetadataError) as info:
        codec_encoding(enc, zarr_format=fmt, dtype=np.dtype("f8"), name="t", strict=True)
    assert (info.value.key, info.value.field) == ("t", field)


#: encoding carried from a read that cannot apply to the target: dropped with strict=False
DROPPED: dict[str, tuple[int, Any, dict[str, Any], dict[str, Any]]] = {
    "v2_transpose": (
        2,
        "f8",
        {"filters": ({"name": "transpose", "configuration": {"order": [0]}},)},
        {"filters": ()},
    ),
    "v2_serializer_big": (
        2,
        "<f8",
        {"serializer": {"name": "bytes", "configuration": {"endian": "big"}}},
        {},
    ),
    "v3_v2_bytes_filter": (3, "f8", {"filters": (numcodecs.Shuffle(),)}, {"filters": ()}),
    "stale_filter_dtype": (3, "f4", {"filters": (numcodecs.Delta("<f8"),)}, {"filters": ()}),
    "stale_string_serializer": (3, "f8", {"serializer": {"name": "vlen-utf8"}}, {}),
    "stale_bytes_serializer": (3, object, {"serializer": {"name": "bytes"}}, {}),
    "stale_object_filter": (2, "i4", {"filters": (numcodecs.VLenUTF8(),)}, {"filters": ()}),
    "sharding_serializer": (
        3,
        "f8",
        {"serializer": zc.ShardingCodec(chunk_shape=(5,)).to_dict()},
        {},
    ),
}


@pytest.mark.parametrize("case", list(DROPPED))
def test_not_strict_drops(case: str) -> None:
    fmt, dtype, enc, expected = DROPPED[case]
    got = codec_encoding(enc, zarr_format=fmt, dtype=np.dtype(dtype), name="v", strict=False)
    assert got == expected
    with pytest.raises(MetadataError):
        codec_encoding(enc, zarr_format=fmt, dtype=np.dtype(dtype), name="v", strict=True)


def test_v2_implied_serializer_accepted() -> None:
    """V2's own serializer (``bytes`` in the dtype's byte order) is accepted and implied."""
    for strict in (True, False):
        for endian in ("little", None):
            enc = {"serializer": {"name": "bytes", "configuration": {"endian": endian}}}
            got = codec_encoding(enc, zarr_format=2, dtype=np.dtype("<f8"), name="v", strict=strict)
            assert got == {}


def test_not_strict_still_refuses_invalid_values() -> None:
    """strict=False drops what cannot apply to the target, not what is wrong."""
    for enc in ({"compressors": "no-such-codec"}, {"compressors": "bytes"}, {"filters": [3]}):
        with pytest.raises(MetadataError):
            codec_encoding(enc, zarr_format=3, dtype=np.dtype("f8"), name="v", strict=False)


def test_codec_encoding_returns_only_given_keys() -> None:
    f8 = np.dtype("f8")
    assert codec_encoding({}, zarr_format=3, dtype=f8, name="v", strict=True) == {}
    assert codec_encoding({"chunks": (3,)}, zarr_format=3, dtype=f8, name="v", strict=True) == {}
    got = codec_encoding(
        {"compressors": None, "filters": (), "serializer": None},
        zarr_format=3,
        dtype=f8,
        name="v",
        strict=True,
    )
    assert got == {"compressor": None, "filters": ()}
    got = codec_encoding(
        {"filters": [numcodecs.VLenUTF8()]},
        zarr_format=3,
        dtype=np.dtype(object),
        name="v",
        strict=True,
    )
    assert got == {"filters": (), "serializer": VLenUTF8Codec()}


# ------------------------------------------------------------------------------ array_meta
def _meta(zarr_format: int, shard_shape: tuple[int, ...] | None = None, **codecs: Any) -> ZaroMeta:
    return array_meta(
        shape=(8, 6),
        dtype=np.dtype("<f8"),
        dims=("y", "x"),
        chunk_shape=(4, 3),
        shard_shape=shard_shape,
        zarr_format=zarr_format,
        compressor=codecs.pop("compressor", None),
        fill_value=0.0,
        attributes={},
        **codecs,
    )


def test_array_meta_defaults_unchanged() -> None:
    assert _meta(3).codecs == (BytesCodec("little"),)
    assert _meta(2).codecs == (BytesCodec(None),)  # native order, as the dtype says


def test_array_meta_v2_filters_json() -> None:
    delta = NumcodecsCodec("delta", {"dtype": "<f8"}, v2_filter=True)
    meta = _meta(2, filters=(delta,), compressor=(ZstdCodec(9),))
    doc = meta.to_json()
    assert doc["filters"] == [{"id": "delta", "dtype": "<f8"}]
    assert doc["compressor"] == {"id": "zstd", "level": 9}
    parsed = ZaroMeta.from_json(json.loads(json.dumps(doc)), {})
    assert [c.name for c in parsed.codecs] == ["numcodecs", "bytes", "zstd"]


def test_array_meta_v3_sharded_inner_chain() -> None:
    transpose = TransposeCodec((1, 0))
    meta = _meta(
        3,
        (8, 6),
        filters=(transpose,),
        serializer=BytesCodec("big"),
        compressor=(GzipCodec(3), Crc32cCodec()),
    )
    (sharding,) = meta.codecs
    assert isinstance(sharding, ShardingCodec)
    assert sharding.codecs == (transpose, BytesCodec("big"), GzipCodec(3), Crc32cCodec())
    assert codec_encoding_of(meta) == {
        "filters": ({"name": "transpose", "configuration": {"order": [1, 0]}},),
        "serializer": {"name": "bytes", "configuration": {"endian": "big"}},
        "compressors": ({"name": "gzip", "configuration": {"level": 3}}, {"name": "crc32c"}),
    }


def test_array_meta_refuses_wrong_kinds() -> None:
    with pytest.raises(MetadataError):
        _meta(3, filters=(ZstdCodec(),))
    with pytest.raises(MetadataError):
        _meta(3, serializer=ZstdCodec())
    with pytest.raises(MetadataError):
        array_meta(
            shape=(2,),
            dtype=np.dtype(object),
            dims=("x",),
            chunk_shape=(2,),
            shard_shape=None,
            zarr_format=3,
            compressor=None,
            fill_value=None,
            attributes={},
            serializer=BytesCodec(),
        )


@pytest.mark.parametrize(
    ("encoding", "compressor_id", "filter_ids"),
    [
        ({"compressor": "pcodec"}, "pcodec", None),
        ({"serializer": "pcodec", "compressors": "zstd"}, "zstd", ["pcodec"]),
        ({"compressor": "zfpy"}, "zfpy", None),
    ],
)
def test_v2_array_to_bytes_compressor_is_written_as_zarr_python_writes_it(
    tmp_path: Path, encoding: dict, compressor_id: str, filter_ids: list | None
) -> None:
    """pcodec and zfpy are V2 compressors (they take the array, not its bytes)."""
    for package in ("pcodec", "zfpy"):
        if package in encoding.values():
            pytest.importorskip(package)
    make = {
        "pcodec": lambda: numcodecs.PCodec(level=4),
        "zfpy": lambda: numcodecs.ZFPY(mode=4, tolerance=-1, rate=-1, precision=-1),
        "zstd": lambda: numcodecs.Zstd(level=1),
    }
    enc = {k: make[v]() for k, v in encoding.items()}
    values = np.random.default_rng(3).normal(size=(20, 30))
    ds = xr.Dataset({"v": (("y", "x"), values)}).chunk({"y": 10, "x": 15})
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=2, encoding={"v": enc})
    zarray = json.loads((tmp_path / "s.zarr" / "v" / ".zarray").read_text())
    assert zarray["compressor"]["id"] == compressor_id
    assert [f["id"] for f in zarray["filters"] or []] == (filter_ids or [])
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "s.zarr" / "v")[:], values)
    back = xr.open_dataset(tmp_path / "s.zarr", engine="zaro")
    np.testing.assert_array_equal(back.v.values, values)
