"""xzaro's codec layer against numcodecs and zarr-python's V3 codecs.

* Bytes encoded by numcodecs (the V2 filter/compressor algorithm) decode through xzaro's codec
  pipeline to the same values, and xzaro's encoded bytes decode through numcodecs.
* Chunks written by zarr-python with V3 codec chains decode through xzaro, and chunks xzaro
  encodes read back through zarr-python.
* Codec JSON round-trips, and a corrupt shard written by zarr-python is refused. Each codec's own
  checks (round trips, JSON, bounded decoding, configuration errors) are in ``tests/codecs/``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr
import zarr.codecs as zc
from helpers import assert_same, values
from numcodecs.compat import ensure_contiguous_ndarray

from xzaro.codecs import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    BytesCodec,
    CodecPipeline,
    codec_from_json,
    codec_from_v2,
)
from xzaro.errors import ChecksumError, DecodeError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def rng_values(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Deterministic values of every kind the oracle checks (NaN and infinities among floats)."""
    return values(dtype, shape, f"codecs-oracle-{seed}")


def smooth(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    return (np.linspace(-20, 30, n) + np.sin(np.arange(n))).astype(dtype).reshape(shape)


def strings(shape: tuple[int, ...], kind: type = str) -> np.ndarray:
    pool = ["", "a", "héllo", "漢字", "🙂x", "zz zz", "q"]
    rng = np.random.default_rng(1)
    out = np.array([pool[i] for i in rng.integers(0, len(pool), int(np.prod(shape)))], dtype=object)
    if kind is bytes:
        out = np.array([s.encode() for s in out], dtype=object)
    return out.reshape(shape)


def endian_of(dtype: np.dtype) -> str | None:
    if dtype.itemsize <= 1 or dtype.byteorder == "|":
        return "little"
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False):
        return "big"
    return "little"


def v2_chain(filters: list[dict], compressor: dict | None, dtype: np.dtype) -> list[Any]:
    """Map a V2 filters+compressor to a V3-style chain by each codec's kind (as xzaro does)."""
    aa: list[Any] = []
    ab: Any = None
    bb: list[Any] = []
    for f in filters:
        c = codec_from_v2(f)
        if c.kind == ARRAY_ARRAY:
            assert ab is None and not bb, "array->array filter after a serialiser"
            aa.append(c)
        elif c.kind == ARRAY_BYTES:
            ab = c
        else:
            assert c.kind == BYTES_BYTES
            bb.append(c)
    if ab is None:
        ab = BytesCodec(endian=endian_of(dtype))
    if compressor is not None:
        bb.append(codec_from_v2(compressor))
    return [*aa, ab, *bb]


def numcodecs_encode(arr: np.ndarray, filters: list[dict], compressor: dict | None) -> bytes:
    """The zarr V2 chunk encoding algorithm, done with numcodecs directly."""
    buf: Any = np.ascontiguousarray(arr)
    for f in filters:
        buf = numcodecs.get_codec(dict(f)).encode(buf)
    if compressor is not None:
        buf = numcodecs.get_codec(dict(compressor)).encode(buf)
    return bytes(ensure_contiguous_ndarray(buf))


def numcodecs_decode(
    data: bytes, filters: list[dict], compressor: dict | None, dtype: np.dtype, shape: tuple
) -> np.ndarray:
    buf: Any = data
    if compressor is not None:
        buf = numcodecs.get_codec(dict(compressor)).decode(buf)
    for f in reversed(filters):
        buf = numcodecs.get_codec(dict(f)).decode(buf)
    if dtype.hasobject:
        return np.asarray(buf, dtype=object).reshape(shape)
    arr = np.asarray(ensure_contiguous_ndarray(buf))
    if arr.dtype != dtype:
        arr = arr.reshape(-1).view(np.uint8).view(dtype)
    return arr.reshape(shape)


# ----------------------------------------------------------------------------------------------
# numcodecs (V2) cross-decoding
# ----------------------------------------------------------------------------------------------

BLOSC = [
    {"id": "blosc", "cname": c, "clevel": lvl, "shuffle": s, "blocksize": bs}
    for c, lvl, s, bs in [
        ("lz4", 5, 0, 0),
        ("lz4", 5, 1, 0),
        ("lz4", 5, 2, 0),
        ("lz4hc", 3, 1, 0),
        ("zstd", 1, 2, 0),
        ("zstd", 5, 0, 128),
        ("zlib", 4, 1, 0),
        ("blosclz", 9, 2, 0),
        ("blosclz", 1, -1, 0),
    ]
]
COMPRESSORS = [
    {"id": "zlib", "level": 1},
    {"id": "zlib", "level": 9},
    {"id": "gzip", "level": 1},
    {"id": "gzip", "level": 6},
    {"id": "zstd", "level": 0},
    {"id": "zstd", "level": 3, "checksum": True},
    {"id": "zstd", "level": -1},
    {"id": "lz4", "acceleration": 1},
    {"id": "lz4", "acceleration": 4},
    {"id": "bz2", "level": 1},
    {"id": "lzma", "preset": 1},
    {"id": "lzma", "format": 2, "preset": 3},
    *BLOSC,
]
COMPRESSOR_DTYPES = ["<f8", ">i2", "|u1", "<c8", "|b1", "<u4"]


def _cid(c: dict) -> str:
    return "-".join(str(v) for v in c.values())


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=_cid)
@pytest.mark.parametrize("dtype", COMPRESSOR_DTYPES)
def test_numcodecs_compressor_cross_decode(compressor: dict, dtype: str) -> None:
    dt = np.dtype(dtype)
    shape = (37, 11)
    arr = rng_values(dtype, shape, seed=len(_cid(compressor)))
    pipe = CodecPipeline(v2_chain([], compressor, dt), shape, dt, None)

    # numcodecs -> xzaro
    stored = numcodecs_encode(arr, [], compressor)
    assert_same(pipe.decode(stored), arr)

    # xzaro -> numcodecs
    mine = pipe.encode(arr)
    assert_same(numcodecs_decode(mine, [], compressor, dt, shape), arr)

    # xzaro -> xzaro
    assert_same(pipe.decode(mine), arr)


def test_compressor_output_is_compressed() -> None:
    """The encoders really compress (a pass-through encoder would still round-trip)."""
    arr = np.zeros((64, 64), dtype="<f8")
    raw = arr.nbytes
    for comp in [{"id": "zlib", "level": 1}, {"id": "gzip", "level": 5}, *BLOSC[:3]]:
        pipe = CodecPipeline(v2_chain([], comp, arr.dtype), arr.shape, arr.dtype, None)
        out = pipe.encode(arr)
        assert len(out) < raw // 10, comp
    gz = CodecPipeline(v2_chain([], {"id": "gzip", "level": 5}, arr.dtype), arr.shape, arr.dtype, 0)
    assert gz.encode(arr)[:2] == b"\x1f\x8b"


FILTER_CASES: list[tuple[str, list[dict], dict | None, Any]] = [
    ("delta_i4", [{"id": "delta", "dtype": "<i4"}], None, lambda: rng_values("<i4", (50,)) // 4),
    (
        "delta_i8_astype_i2",
        [{"id": "delta", "dtype": "<i8", "astype": "<i2"}],
        {"id": "zlib", "level": 1},
        lambda: (np.arange(40, dtype="<i8") * 7).reshape(8, 5),
    ),
    (
        "delta_f8",
        [{"id": "delta", "dtype": "<f8"}],
        {"id": "zstd", "level": 1},
        lambda: smooth("<f8", (9, 4)),
    ),
    (
        "fixedscaleoffset",
        [{"id": "fixedscaleoffset", "offset": 5, "scale": 10, "dtype": "<f8", "astype": "<i2"}],
        {"id": "zlib", "level": 3},
        lambda: smooth("<f8", (6, 7)),
    ),
    (
        "fixedscaleoffset_u1",
        [{"id": "fixedscaleoffset", "offset": -20, "scale": 4, "dtype": "<f4", "astype": "|u1"}],
        None,
        lambda: smooth("<f4", (30,)),
    ),
    (
        "quantize",
        [{"id": "quantize", "digits": 2, "dtype": "<f8"}],
        None,
        lambda: smooth("<f8", (6, 7)),
    ),
    (
        "quantize_f4",
        [{"id": "quantize", "digits": 3, "dtype": "<f4", "astype": "<f4"}],
        {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1},
        lambda: smooth("<f4", (40,)),
    ),
    (
        "astype",
        [{"id": "astype", "encode_dtype": "<f4", "decode_dtype": "<f8"}],
        None,
        lambda: smooth("<f8", (6, 7)),
    ),
    (
        "astype_i",
        [{"id": "astype", "encode_dtype": "<i2", "decode_dtype": "<i8"}],
        None,
        lambda: (np.arange(30, dtype="<i8") - 15).reshape(5, 6),
    ),
    (
        "shuffle",
        [{"id": "shuffle", "elementsize": 8}],
        {"id": "zlib", "level": 1},
        lambda: rng_values("<f8", (6, 7)),
    ),
    ("shuffle_2", [{"id": "shuffle", "elementsize": 2}], None, lambda: rng_values("<u2", (33,))),
    ("packbits", [{"id": "packbits"}], None, lambda: rng_values("|b1", (21,))),
    (
        "packbits_2d",
        [{"id": "packbits"}],
        {"id": "zstd", "level": 1},
        lambda: rng_values("|b1", (5, 3)),
    ),
    (
        "bitround",
        [{"id": "bitround", "keepbits": 6}],
        {"id": "zlib", "level": 1},
        lambda: smooth("<f4", (6, 7)),
    ),
    ("bitround_f8", [{"id": "bitround", "keepbits": 20}], None, lambda: smooth("<f8", (6, 7))),
    (
        "categorize_U",
        [{"id": "categorize", "labels": ["a", "bb", "c"], "dtype": "<U2", "astype": "|u1"}],
        None,
        lambda: np.array(["a", "bb", "c", "a", "", "c"], dtype="<U2"),
    ),
    (
        "categorize_object",
        [{"id": "categorize", "labels": ["a", "bb", "漢"], "dtype": "|O", "astype": "|u1"}],
        {"id": "zlib", "level": 1},
        lambda: np.array(["a", "bb", "漢", "", "a"], dtype=object),
    ),
    ("vlen_utf8", [{"id": "vlen-utf8"}], None, lambda: strings((4, 3))),
    ("vlen_utf8_zstd", [{"id": "vlen-utf8"}], {"id": "zstd", "level": 1}, lambda: strings((7,))),
    (
        "vlen_bytes",
        [{"id": "vlen-bytes"}],
        {"id": "gzip", "level": 1},
        lambda: strings((3, 4), bytes),
    ),
    (
        "delta_shuffle_blosc",
        [{"id": "delta", "dtype": "<i8"}, {"id": "shuffle", "elementsize": 8}],
        {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2},
        lambda: np.cumsum(rng_values("<i2", (40,)).astype("<i8")).reshape(8, 5),
    ),
]


@pytest.mark.parametrize(
    ("filters", "compressor", "make"),
    [c[1:] for c in FILTER_CASES],
    ids=[c[0] for c in FILTER_CASES],
)
def test_numcodecs_filter_cross_decode(filters: list[dict], compressor: dict | None, make) -> None:
    arr = make()
    dt = arr.dtype
    shape = arr.shape
    pipe = CodecPipeline(v2_chain(filters, compressor, dt), shape, dt, None)

    stored = numcodecs_encode(arr, filters, compressor)
    # what numcodecs itself reads back (differs from arr for lossy filters)
    expected = numcodecs_decode(stored, filters, compressor, dt, shape)
    assert_same(pipe.decode(stored), expected)

    # xzaro's encoding decodes, through numcodecs, to the same values
    mine = pipe.encode(arr)
    assert_same(numcodecs_decode(mine, filters, compressor, dt, shape), expected)
    assert_same(pipe.decode(mine), expected)


def test_lossy_filters_are_applied() -> None:
    """Quantize/bitround/fixedscaleoffset encode really change values (guards a no-op codec)."""
    arr = smooth("<f8", (40,))
    for f in [
        {"id": "quantize", "digits": 1, "dtype": "<f8"},
        {"id": "bitround", "keepbits": 3},
        {"id": "fixedscaleoffset", "offset": 0, "scale": 1, "dtype": "<f8", "astype": "<i4"},
    ]:
        pipe = CodecPipeline(v2_chain([f], None, arr.dtype), arr.shape, arr.dtype, None)
        out = pipe.decode(pipe.encode(arr))
        assert not np.array_equal(out, arr), f


# ----------------------------------------------------------------------------------------------
# zarr-python V3 codecs cross-decoding
# ----------------------------------------------------------------------------------------------

V3_CHAINS: list[tuple[str, str, tuple[int, ...], dict]] = [
    (
        "bytes_le",
        "int32",
        (6, 5),
        {"serializer": zc.BytesCodec(endian="little"), "compressors": None},
    ),
    (
        "bytes_be",
        "float64",
        (6, 5),
        {"serializer": zc.BytesCodec(endian="big"), "compressors": None},
    ),
    (
        "bytes_be_c8",
        "complex64",
        (7,),
        {"serializer": zc.BytesCodec(endian="big"), "compressors": None},
    ),
    ("bytes_u1", "uint8", (9, 3), {"compressors": None}),
    ("bytes_bool", "bool", (9, 3), {"compressors": None}),
    ("bytes_f2_be", "float16", (9,), {"serializer": zc.BytesCodec(endian="big")}),
    (
        "transpose",
        "int16",
        (4, 5, 3),
        {"filters": [zc.TransposeCodec(order=(2, 0, 1))], "compressors": None},
    ),
    (
        "transpose_be",
        "uint32",
        (4, 5),
        {
            "filters": [zc.TransposeCodec(order=(1, 0))],
            "serializer": zc.BytesCodec(endian="big"),
            "compressors": None,
        },
    ),
    ("gzip", "float32", (10, 10), {"compressors": [zc.GzipCodec(level=1)]}),
    ("gzip9", "int64", (10, 3), {"compressors": [zc.GzipCodec(level=9)]}),
    ("zstd", "int32", (10, 10), {"compressors": [zc.ZstdCodec(level=3)]}),
    ("zstd_checksum", "int32", (10, 10), {"compressors": [zc.ZstdCodec(level=1, checksum=True)]}),
    ("crc32c", "uint16", (10, 10), {"compressors": [zc.Crc32cCodec()]}),
    (
        "blosc_lz4_bitshuffle",
        "float64",
        (10, 10),
        {"compressors": [zc.BloscCodec(cname="lz4", shuffle="bitshuffle")]},
    ),
    (
        "blosc_zstd_shuffle",
        "int16",
        (10, 10),
        {"compressors": [zc.BloscCodec(cname="zstd", clevel=2, shuffle="shuffle")]},
    ),
    (
        "blosc_zlib_noshuffle",
        "uint64",
        (10, 10),
        {"compressors": [zc.BloscCodec(cname="zlib", shuffle="noshuffle")]},
    ),
    (
        "blosc_blosclz",
        "float32",
        (10, 10),
        {"compressors": [zc.BloscCodec(cname="blosclz", shuffle="shuffle", typesize=4)]},
    ),
    ("blosc_lz4hc", "int8", (10, 10), {"compressors": [zc.BloscCodec(cname="lz4hc")]}),
    (
        "chain_t_be_blosc_crc",
        "float64",
        (3, 4, 5),
        {
            "filters": [zc.TransposeCodec(order=(1, 2, 0))],
            "serializer": zc.BytesCodec(endian="big"),
            "compressors": [zc.BloscCodec(cname="lz4", shuffle="bitshuffle"), zc.Crc32cCodec()],
        },
    ),
    ("chain_gzip_crc", "int32", (8, 8), {"compressors": [zc.GzipCodec(), zc.Crc32cCodec()]}),
    ("nc_zlib", "int32", (8, 8), {"compressors": [zc.numcodecs.Zlib(level=2)]}),
    ("nc_gzip", "int32", (8, 8), {"compressors": [zc.numcodecs.GZip(level=2)]}),
    ("nc_lz4", "float32", (8, 8), {"compressors": [zc.numcodecs.LZ4()]}),
    ("nc_bz2", "float32", (8, 8), {"compressors": [zc.numcodecs.BZ2()]}),
    ("nc_lzma", "float32", (8, 8), {"compressors": [zc.numcodecs.LZMA()]}),
    ("nc_zstd", "float32", (8, 8), {"compressors": [zc.numcodecs.Zstd(level=2)]}),
    (
        "nc_shuffle",
        "float64",
        (8, 8),
        {"compressors": [zc.numcodecs.Shuffle(elementsize=8), zc.numcodecs.Zlib()]},
    ),
    (
        "nc_delta",
        "int32",
        (8, 8),
        {"filters": [zc.numcodecs.Delta(dtype="<i4")], "compressors": [zc.numcodecs.Zlib()]},
    ),
    (
        "nc_fixedscaleoffset",
        "float64",
        (8, 8),
        {
            "filters": [
                zc.numcodecs.FixedScaleOffset(offset=1, scale=100, dtype="<f8", astype="<i4")
            ],
            "compressors": None,
        },
    ),
    (
        "nc_bitround",
        "float32",
        (8, 8),
        {"filters": [zc.numcodecs.BitRound(keepbits=4)], "compressors": None},
    ),
    (
        "nc_quantize",
        "float64",
        (8, 8),
        {"filters": [zc.numcodecs.Quantize(digits=3, dtype="<f8")], "compressors": None},
    ),
    (
        "nc_astype",
        "float64",
        (8, 8),
        {
            "filters": [zc.numcodecs.AsType(encode_dtype="<f4", decode_dtype="<f8")],
            "compressors": None,
        },
    ),
    ("nc_crc32", "int32", (8, 8), {"compressors": [zc.numcodecs.CRC32()]}),
    ("nc_adler32", "int32", (8, 8), {"compressors": [zc.numcodecs.Adler32()]}),
    ("nc_fletcher32", "int16", (8, 8), {"compressors": [zc.numcodecs.Fletcher32()]}),
    ("vlen_utf8", "str", (4, 3), {}),
    ("vlen_utf8_gzip", "str", (5,), {"compressors": [zc.GzipCodec()]}),
]


def _v3_data(dtype: str, shape: tuple[int, ...], name: str) -> np.ndarray:
    if dtype == "str":
        return strings(shape)
    if "fixedscaleoffset" in name or "bitround" in name or "quantize" in name or "astype" in name:
        return smooth(dtype, shape)
    return rng_values(dtype, shape, seed=len(name))


def _chunk_key(shape: tuple[int, ...]) -> str:
    return "c/" + "/".join("0" for _ in shape) if shape else "c"


def _write_zarr(tmp: Path, dtype: str, shape: tuple, kwargs: dict, data: np.ndarray) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = zarr.create_array(
            store=str(tmp),
            shape=shape,
            chunks=shape,
            dtype=str if dtype == "str" else dtype,
            zarr_format=3,
            **kwargs,
        )
        z[...] = data
    return tmp


def _xzaro_pipeline(store: Path, dtype: np.dtype, shape: tuple) -> CodecPipeline:
    doc = json.loads((store / "zarr.json").read_text())
    codecs = [codec_from_json(c) for c in doc["codecs"]]
    return CodecPipeline([c for c in codecs if c is not None], shape, dtype, None)


def _read_zarr(store: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zarr.open_array(str(store), mode="r")[...]


@pytest.mark.parametrize(
    ("name", "dtype", "shape", "kwargs"), V3_CHAINS, ids=[c[0] for c in V3_CHAINS]
)
def test_zarr_v3_codec_cross_decode(
    tmp_path: Path, name: str, dtype: str, shape: tuple, kwargs: dict
) -> None:
    data = _v3_data(dtype, shape, name)
    store = _write_zarr(tmp_path / "a", dtype, shape, kwargs, data)
    expected = _read_zarr(store)  # zarr-python's reading (lossy codecs differ from data)
    dt = np.dtype(object) if dtype == "str" else np.dtype(dtype)
    key = store / _chunk_key(shape)
    stored = key.read_bytes()
    pipe = _xzaro_pipeline(store, dt, shape)

    # zarr-python -> xzaro
    assert_same(pipe.decode(stored), expected)

    # xzaro -> zarr-python: replace the chunk with xzaro's encoding
    mine = pipe.encode(data if dtype != "str" else data.astype(object))
    key.write_bytes(mine)
    assert_same(_read_zarr(store), expected)


SHARDINGS: list[tuple[str, dict]] = [
    ("default", {"chunk_shape": (2, 3)}),
    (
        "start_nocrc",
        {"chunk_shape": (2, 3), "index_location": "start", "index_codecs": [zc.BytesCodec()]},
    ),
    (
        "inner_gzip_be",
        {"chunk_shape": (4, 2), "codecs": [zc.BytesCodec(endian="big"), zc.GzipCodec(level=1)]},
    ),
    (
        "index_be_crc",
        {"chunk_shape": (2, 2), "index_codecs": [zc.BytesCodec(endian="big"), zc.Crc32cCodec()]},
    ),
    (
        "inner_transpose_blosc",
        {
            "chunk_shape": (4, 6),
            "codecs": [
                zc.TransposeCodec(order=(1, 0)),
                zc.BytesCodec(),
                zc.BloscCodec(cname="zstd"),
            ],
        },
    ),
    ("nested", {"chunk_shape": (4, 6), "codecs": [zc.ShardingCodec(chunk_shape=(2, 3))]}),
]


@pytest.mark.parametrize(("name", "config"), SHARDINGS, ids=[s[0] for s in SHARDINGS])
@pytest.mark.parametrize("partial", [False, True], ids=["full", "partial"])
def test_zarr_sharding_cross_decode(tmp_path: Path, name: str, config: dict, partial: bool) -> None:
    shape = (8, 12)
    data = rng_values("int32", shape, seed=7)
    if partial:  # some inner chunks equal the fill value: zarr-python leaves them out
        data[:4, :6] = 0
        data[4:6, 6:9] = 0
    kwargs = {"serializer": zc.ShardingCodec(**config), "compressors": None, "fill_value": 0}
    store = _write_zarr(tmp_path / "s", "int32", shape, kwargs, data)
    dt = np.dtype("int32")
    pipe = _xzaro_pipeline(store, dt, shape)
    pipe = CodecPipeline(pipe.codecs, shape, dt, np.int32(0))
    key = store / "c/0/0"
    assert_same(pipe.decode(key.read_bytes()), data)
    key.write_bytes(pipe.encode(data))
    assert_same(_read_zarr(store), data)


# ----------------------------------------------------------------------------------------------
# JSON, registry, errors
# ----------------------------------------------------------------------------------------------

V3_JSON = [
    {"name": "bytes", "configuration": {"endian": "little"}},
    {"name": "bytes", "configuration": {"endian": "big"}},
    {"name": "transpose", "configuration": {"order": [2, 0, 1]}},
    {"name": "gzip", "configuration": {"level": 7}},
    {"name": "zstd", "configuration": {"level": 4, "checksum": True}},
    {"name": "zstd", "configuration": {"level": -2, "checksum": False}},
    {"name": "crc32c"},
    {
        "name": "blosc",
        "configuration": {
            "cname": "zstd",
            "clevel": 3,
            "shuffle": "bitshuffle",
            "typesize": 4,
            "blocksize": 0,
        },
    },
    {
        "name": "blosc",
        "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "noshuffle", "blocksize": 0},
    },
    {"name": "vlen-utf8"},
    {
        "name": "sharding_indexed",
        "configuration": {
            "chunk_shape": [2, 2],
            "codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "gzip", "configuration": {"level": 1}},
            ],
            "index_codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "crc32c"},
            ],
            "index_location": "start",
        },
    },
    {"name": "numcodecs.zlib", "configuration": {"level": 3}},
    {"name": "numcodecs.delta", "configuration": {"dtype": "<i4"}},
    {
        "name": "numcodecs.fixedscaleoffset",
        "configuration": {"offset": 1.5, "scale": 10, "dtype": "<f8", "astype": "<i2"},
    },
    {"name": "numcodecs.bitround", "configuration": {"keepbits": 5}},
    {"name": "numcodecs.shuffle", "configuration": {"elementsize": 4}},
    {"name": "numcodecs.lz4", "configuration": {"acceleration": 1}},
]


def _semantic(doc: dict) -> dict:
    """Codec JSON with an empty configuration dropped (``{}`` and absent mean the same)."""
    doc = dict(doc)
    if not doc.get("configuration"):
        doc.pop("configuration", None)
    return doc


@pytest.mark.parametrize("doc", V3_JSON, ids=lambda d: d["name"])
def test_codec_json_round_trip(doc: dict) -> None:
    codec = codec_from_json(doc)
    assert codec is not None
    out = codec.to_json()
    assert out["name"] == doc["name"]
    # every configured value survives (xzaro may add defaults, never change values)
    for k, v in (doc.get("configuration") or {}).items():
        assert out["configuration"][k] == v, (k, out)
    # and the emitted JSON parses back to an equal codec
    again = codec_from_json(json.loads(json.dumps(out)))
    assert _semantic(again.to_json()) == _semantic(out)


def test_sharding_corrupt_index_raises(tmp_path: Path) -> None:
    shape = (8, 12)
    data = rng_values("int32", shape, seed=3)
    kwargs = {"serializer": zc.ShardingCodec(chunk_shape=(2, 3)), "compressors": None}
    store = _write_zarr(tmp_path / "s", "int32", shape, kwargs, data)
    pipe = _xzaro_pipeline(store, np.dtype("int32"), shape)
    raw = bytearray((store / "c/0/0").read_bytes())
    raw[-10] ^= 0x40  # inside the index: its crc32c no longer matches
    with pytest.raises(ChecksumError):
        pipe.decode(bytes(raw))
    with pytest.raises(DecodeError):
        pipe.decode(bytes(raw[:20]))


# ----------------------------------------------------------------------------------------------
# pipeline_for(meta) on real stores
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "kwargs", "key"),
    [
        (
            2,
            {
                "compressors": numcodecs.Blosc("zstd", 3, 2),
                "filters": [numcodecs.Delta(dtype="<i4")],
            },
            "0.0",
        ),
        (2, {"compressors": numcodecs.GZip(1), "order": "F"}, "0.0"),
        (
            3,
            {
                "compressors": [zc.ZstdCodec(level=1, checksum=True)],
                "serializer": zc.BytesCodec(endian="big"),
            },
            "c/0/0",
        ),
        (3, {"shards": (4, 6)}, "c/0/0"),
    ],
    ids=["v2_delta_blosc", "v2_F_gzip", "v3_be_zstd", "v3_shard"],
)
def test_pipeline_for_meta(tmp_path: Path, fmt: int, kwargs: dict, key: str) -> None:
    import xzaro
    from xzaro.codecs import pipeline_for

    data = rng_values("<i4", (4, 6), seed=5)
    chunks = (2, 3) if "shards" in kwargs else (4, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = zarr.create_array(
            store=str(tmp_path),
            shape=data.shape,
            chunks=chunks,
            dtype="<i4",
            zarr_format=fmt,
            **kwargs,
        )
        z[...] = data
    a = xzaro.open_array(str(tmp_path))
    pipe = pipeline_for(a.meta)
    out = pipe.decode((tmp_path / key).read_bytes())
    assert_same(np.asarray(out, dtype="<i4"), data)
