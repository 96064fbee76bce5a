"""A matrix of small Zarr stores written by zarr-python 3, used as an oracle for xzaro.

Every :class:`Case` describes one array store: how zarr-python writes it (``kwargs`` go straight to
``zarr.create_array``), which chunks are then deleted, how the metadata is hand-edited afterwards,
or -- for the few layouts zarr-python 3 cannot write -- a ``writer`` that writes ``.zarray`` /
``zarr.json`` and the chunk files by hand with numcodecs. Hand-written cases zarr-python cannot
read carry the values they must read as in ``expected`` (``zarr_readable=False``).

:class:`GroupCase` describes a three-level tree of groups and arrays, consolidated or not.

``build_all(root)`` writes every store below ``root`` and takes a few seconds.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr
import zarr.codecs as zc
import zarr.dtype as zd
from helpers import NUMERIC_DTYPES, smooth, v2_array_doc, v3_array_doc, values

# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Case:
    """One array store of the matrix."""

    id: str
    zarr_format: int
    data: np.ndarray | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    #: path of the array inside the store ("" = the store root); parents are made groups
    path: str = ""
    #: dimension names (V3 ``dimension_names``; V2 ``_ARRAY_DIMENSIONS`` attribute)
    dimension_names: tuple[str | None, ...] | None = None
    #: write only ``data[region]`` (the rest stays missing / fill)
    region: tuple[slice, ...] | None = None
    #: chunk keys (relative to the array) deleted after writing
    delete_chunks: tuple[str, ...] = ()
    #: hand-edit of the written metadata document (gets and returns the JSON dict)
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: writes the whole store by hand (instead of zarr-python); gets the array directory
    writer: Callable[[Path], None] | None = None
    #: the values the array must read as, when zarr-python cannot read the store
    expected: np.ndarray | None = None
    expected_dtype: np.dtype | None = None
    expected_fill: Any = None
    zarr_readable: bool = True
    #: chunk/shard shapes to expect where zarr-python's ``.chunks``/``.shards`` are not the
    #: sharding layout (it reports a sharding codec followed by other codecs as unsharded)
    expected_chunks: tuple[int, ...] | None = None
    expected_shards: tuple[int, ...] | None = None
    #: whether tensorstore is expected to read this store (second oracle)
    tensorstore: bool = False
    #: free-form notes ("hand-written", "lossy", ...)
    tags: frozenset[str] = frozenset()

    def store_dir(self, root: Path) -> Path:
        return root / f"{self.id}.zarr"

    def array_dir(self, root: Path) -> Path:
        d = self.store_dir(root)
        return d / self.path if self.path else d


CASES: list[Case] = []


def _add(case: Case) -> None:
    if any(c.id == case.id for c in CASES):  # pragma: no cover
        raise ValueError(f"duplicate case id {case.id}")
    CASES.append(case)


def v2(id: str, data: np.ndarray, chunks: tuple[int, ...], **kw: Any) -> None:
    kw.setdefault("kwargs", {})
    kw["kwargs"] = {"chunks": chunks, **kw["kwargs"]}
    _add(Case(id=f"v2_{id}", zarr_format=2, data=data, **kw))


def v3(id: str, data: np.ndarray, chunks: tuple[int, ...], **kw: Any) -> None:
    kw.setdefault("kwargs", {})
    kw["kwargs"] = {"chunks": chunks, **kw["kwargs"]}
    _add(Case(id=f"v3_{id}", zarr_format=3, data=data, **kw))


# --- V2 data types ----------------------------------------------------------------------------

_S2 = (7, 5)
_C2 = (3, 2)
v2(
    "f4",
    values("<f4", _S2, "v2f4"),
    _C2,
    attrs={"units": "m", "nested": {"a": [1, 2.5, None]}, "_ARRAY_DIMENSIONS": ["y", "x"]},
    dimension_names=None,
    kwargs={"compressors": numcodecs.Zlib(level=1)},
    tensorstore=True,
)
v2("i2_be", values(">i2", _S2, "v2i2"), _C2, tensorstore=True)
v2("u1", values("|u1", _S2, "v2u1"), _C2, kwargs={"compressors": None})
v2("i1", values("|i1", _S2, "v2i1"), _C2)
v2("i4", values("<i4", _S2, "v2i4"), _C2, kwargs={"fill_value": -7})
v2("u2_be", values(">u2", _S2, "v2u2"), _C2)
v2("u4", values("<u4", _S2, "v2u4"), _C2)
v2("i8", values("<i8", _S2, "v2i8"), _C2, kwargs={"fill_value": -(2**62)}, tensorstore=True)
v2("u8", values("<u8", _S2, "v2u8"), _C2, kwargs={"fill_value": 2**64 - 1})
v2("f2", values("<f2", _S2, "v2f2"), _C2)
v2("f8_be", values(">f8", _S2, "v2f8be"), _C2, tensorstore=True)
v2("c8", values("<c8", _S2, "v2c8"), _C2)
v2("c16", values("<c16", _S2, "v2c16"), _C2, kwargs={"fill_value": complex(1.5, -2.0)})
v2(
    "c16_fill_nan_inf",
    values("<c16", (9,), "v2c16b"),
    (4,),
    region=(slice(0, 4),),
    kwargs={"fill_value": complex(np.nan, np.inf)},
)
v2("b1", values("|b1", _S2, "v2b1"), _C2, kwargs={"fill_value": True}, tensorstore=True)
v2("M8_ns", values("<M8[ns]", _S2, "v2M8"), _C2)
v2("m8_s", values("<m8[s]", _S2, "v2m8"), _C2)
v2(
    "S8",
    values("|S8", (11,), "v2S8"),
    (4,),
    region=(slice(0, 6),),
    kwargs={"fill_value": b"ab\x00"},
)
v2("U4", values("<U4", (11,), "v2U4"), (4,), region=(slice(3, 11),))
v2(
    "vlen_utf8",
    values(str, (11,), "v2vu"),
    (4,),
    kwargs={"dtype": str},
    attrs={"kind": "text"},
)
v2(
    "vlen_bytes",
    values(bytes, (11,), "v2vb"),
    (4,),
    kwargs={"dtype": zd.VariableLengthBytes()},
)

v2(
    "vlen_bytes_missing",
    values(bytes, (11,), "v2vbm"),
    (4,),
    kwargs={"dtype": zd.VariableLengthBytes()},
    region=(slice(0, 4),),
)

# --- V2 compressors ---------------------------------------------------------------------------

_SC = (13, 6)
_CC = (5, 4)
for _name, _comp in [
    ("zlib", numcodecs.Zlib(level=5)),
    ("gzip", numcodecs.GZip(level=3)),
    ("zstd", numcodecs.Zstd(level=3)),
    ("zstd_checksum", numcodecs.Zstd(level=1, checksum=True)),
    ("lz4", numcodecs.LZ4(acceleration=2)),
    ("bz2", numcodecs.BZ2(level=2)),
    ("lzma", numcodecs.LZMA(preset=1)),
    ("none", None),
    ("blosc_lz4_noshuffle", numcodecs.Blosc("lz4", 5, numcodecs.Blosc.NOSHUFFLE)),
    ("blosc_lz4hc_shuffle", numcodecs.Blosc("lz4hc", 3, numcodecs.Blosc.SHUFFLE)),
    ("blosc_zstd_bitshuffle", numcodecs.Blosc("zstd", 4, numcodecs.Blosc.BITSHUFFLE)),
    ("blosc_zlib_shuffle", numcodecs.Blosc("zlib", 2, numcodecs.Blosc.SHUFFLE)),
    ("blosc_blosclz_bitshuffle", numcodecs.Blosc("blosclz", 9, numcodecs.Blosc.BITSHUFFLE)),
    ("blosc_zstd_noshuffle_bs", numcodecs.Blosc("zstd", 1, numcodecs.Blosc.NOSHUFFLE, 256)),
    ("blosc_lz4_autoshuffle", numcodecs.Blosc("lz4", 5, numcodecs.Blosc.AUTOSHUFFLE)),
]:
    v2(
        f"comp_{_name}",
        values("<f8" if "shuffle" in _name else "<i4", _SC, f"v2comp{_name}"),
        _CC,
        kwargs={"compressors": _comp},
        tensorstore=_name in ("zlib", "blosc_lz4_noshuffle", "zstd"),
    )

# --- V2 filters -------------------------------------------------------------------------------

v2(
    "filt_delta",
    values("<i4", (20,), "v2delta") // 4,
    (6,),
    kwargs={"filters": [numcodecs.Delta(dtype="<i4")], "compressors": numcodecs.Zlib(level=1)},
)
v2(
    "filt_delta_astype",
    np.arange(30, dtype="<i8").reshape(5, 6) * 3,
    (2, 4),
    kwargs={"filters": [numcodecs.Delta(dtype="<i8", astype="<i2")], "compressors": None},
)
v2(
    "filt_fixedscaleoffset",
    smooth("<f8", (6, 7), "v2fso"),
    (4, 3),
    kwargs={
        "filters": [numcodecs.FixedScaleOffset(offset=5, scale=10, dtype="<f8", astype="<i2")],
        "compressors": numcodecs.Zlib(level=3),
    },
    tags=frozenset({"lossy"}),
)
v2(
    "filt_quantize",
    smooth("<f8", (6, 7), "v2q"),
    (4, 3),
    kwargs={"filters": [numcodecs.Quantize(digits=2, dtype="<f8")], "compressors": None},
    tags=frozenset({"lossy"}),
)
v2(
    "filt_astype",
    smooth("<f8", (6, 7), "v2as"),
    (4, 3),
    kwargs={
        "filters": [numcodecs.AsType(encode_dtype="<f4", decode_dtype="<f8")],
        "compressors": None,
    },
    tags=frozenset({"lossy"}),
)
v2(
    "filt_shuffle",
    values("<f8", (6, 7), "v2sh"),
    (4, 3),
    kwargs={"filters": [numcodecs.Shuffle(elementsize=8)], "compressors": numcodecs.Zstd(level=1)},
)
v2(
    "filt_packbits",
    values("|b1", (21,), "v2pb"),
    (7,),
    kwargs={"filters": [numcodecs.PackBits()], "compressors": None},
)
v2(
    "filt_bitround",
    values("<f4", (6, 7), "v2br", special=False),
    (4, 3),
    kwargs={"filters": [numcodecs.BitRound(keepbits=6)], "compressors": numcodecs.Zlib()},
    tags=frozenset({"lossy"}),
)
v2(
    "filt_categorize_U",
    np.array(["a", "bb", "a", "c", "bb", "c", "a", "c", "c", "a", "bb", "a"], dtype="<U2"),
    (5,),
    kwargs={
        "filters": [numcodecs.Categorize(labels=["a", "bb", "c"], dtype="<U2", astype="|u1")],
        "compressors": None,
    },
)
v2(
    "filt_vlen_utf8_zlib",
    values(str, (3, 5), "v2vuz"),
    (2, 2),
    kwargs={"dtype": str, "filters": [numcodecs.VLenUTF8()], "compressors": numcodecs.Zlib()},
)
v2(
    "filt_vlen_bytes_blosc",
    values(bytes, (3, 5), "v2vbb"),
    (2, 2),
    kwargs={
        "dtype": zd.VariableLengthBytes(),
        "filters": [numcodecs.VLenBytes()],
        "compressors": numcodecs.Blosc("zstd", 3, numcodecs.Blosc.SHUFFLE),
    },
)
v2(
    "filt_chain_delta_shuffle_blosc",
    values("<i8", (9, 5), "v2chain") // 1024,
    (4, 4),
    kwargs={
        "filters": [numcodecs.Delta(dtype="<i8"), numcodecs.Shuffle(elementsize=8)],
        "compressors": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.BITSHUFFLE),
    },
)

# --- V2 layout: order, separators, shapes, fill values, missing chunks -------------------------

v2("order_F_2d", values("<f8", (7, 5), "v2F2"), (3, 2), kwargs={"order": "F"}, tensorstore=True)
v2(
    "order_F_3d_i2_be",
    values(">i2", (5, 4, 3), "v2F3"),
    (2, 3, 2),
    kwargs={"order": "F", "compressors": numcodecs.Blosc("zstd", 1, numcodecs.Blosc.SHUFFLE)},
)
v2(
    "order_F_delta",
    values("<i4", (6, 5), "v2Fd") // 8,
    (4, 3),
    kwargs={"order": "F", "filters": [numcodecs.Delta(dtype="<i4")], "compressors": None},
)
v2("order_F_U4", values("<U4", (5, 3), "v2FU"), (2, 2), kwargs={"order": "F"})
v2(
    "sep_slash",
    values("<u2", (7, 5, 3), "v2slash"),
    (3, 2, 2),
    kwargs={"chunk_key_encoding": {"name": "v2", "separator": "/"}},
    tensorstore=True,
)
v2("sep_dot", values("<u2", (7, 5, 3), "v2dot"), (3, 2, 2))
v2("shape_0d", np.array(3.25, dtype="<f8"), (), tensorstore=True)
v2("shape_0d_i2", np.array(-9, dtype=">i2"), ())
v2("shape_1elem", np.array([42], dtype="<i4"), (1,))
v2("shape_1elem_big_chunk", np.array([[7]], dtype="<u1"), (4, 4))
v2("shape_5d", values("<i2", (3, 2, 4, 2, 3), "v2_5d"), (2, 2, 3, 1, 2), tensorstore=True)
v2("edge_every_axis", values("<f4", (5, 7, 3), "v2edge"), (2, 3, 2))
v2("chunk_larger_than_shape", values("<i4", (3, 2), "v2big"), (10, 10))
v2(
    "fill_nan",
    values("<f8", (10, 4), "v2nan"),
    (3, 3),
    region=(slice(0, 3), slice(None)),
    kwargs={"fill_value": np.nan},
    tensorstore=True,
)
v2(
    "fill_inf",
    values("<f4", (10,), "v2inf"),
    (3,),
    region=(slice(0, 2),),
    kwargs={"fill_value": np.inf},
)
v2(
    "fill_neginf",
    values("<f2", (10,), "v2ninf"),
    (3,),
    region=(slice(5, 7),),
    kwargs={"fill_value": -np.inf},
)
v2(
    "fill_null_i4",
    values("<i4", (10,), "v2null"),
    (3,),
    region=(slice(0, 4),),
    kwargs={"fill_value": None},
)
v2(
    "fill_null_f8",
    values("<f8", (10,), "v2nullf"),
    (3,),
    region=(slice(6, 10),),
    kwargs={"fill_value": None},
)
v2(
    "fill_null_vlen_utf8",
    values(str, (10,), "v2nullu"),
    (3,),
    region=(slice(0, 3),),
    kwargs={"dtype": str, "fill_value": None},
)
v2(
    "missing_chunks_deleted",
    values("<i2", (8, 9), "v2miss"),
    (3, 4),
    kwargs={"fill_value": 11},
    delete_chunks=("0.0", "1.2", "2.1"),
    tensorstore=True,
)
v2(
    "missing_chunks_deleted_slash",
    values("<f4", (8, 9), "v2miss2"),
    (3, 4),
    kwargs={"fill_value": -1.5, "chunk_key_encoding": {"name": "v2", "separator": "/"}},
    delete_chunks=("0/1", "2/2"),
)
v2(
    "nested_path",
    values("<u4", (4, 5), "v2path"),
    (3, 3),
    path="grp/sub/arr",
    attrs={"where": "deep", "_ARRAY_DIMENSIONS": ["a", "b"]},
)


# --- V2 hand-written: categorize on object strings (zarr-python 3 cannot write or read it) ----


def _write_v2_categorize_object(d: Path) -> None:
    d.mkdir(parents=True)
    labels = ["a", "bb", "漢"]
    meta = v2_array_doc(
        [7],
        [3],
        "|O",
        compressor={"id": "zlib", "level": 1},
        fill_value=None,
        filters=[{"id": "categorize", "labels": labels, "dtype": "|O", "astype": "|u1"}],
    )
    (d / ".zarray").write_text(json.dumps(meta))
    (d / ".zattrs").write_text(json.dumps({"hand": "written"}))
    cat = numcodecs.Categorize(labels=labels, dtype=object, astype="u1")
    z = numcodecs.Zlib(level=1)
    full = np.array(["a", "bb", "漢", "", "a", "漢", "bb", "", ""], dtype=object)
    for i in range(3):
        (d / str(i)).write_bytes(z.encode(cat.encode(full[i * 3 : i * 3 + 3])))


_add(
    Case(
        id="v2_filt_categorize_object_hand",
        zarr_format=2,
        writer=_write_v2_categorize_object,
        expected=np.array(["a", "bb", "漢", "", "a", "漢", "bb"], dtype=object),
        expected_dtype=np.dtype(object),
        expected_fill=None,
        attrs={"hand": "written"},
        zarr_readable=False,
        tags=frozenset({"hand-written"}),
    )
)

# --- V3 data types ----------------------------------------------------------------------------

_S3 = (6, 7)
_C3 = (4, 3)
for _dt in NUMERIC_DTYPES:
    v3(
        f"dt_{_dt}",
        values(_dt, _S3, f"v3{_dt}"),
        _C3,
        dimension_names=("row", "col"),
        attrs={"dtype": _dt},
        tensorstore=_dt in ("bool", "int16", "uint64", "float32", "complex128"),
    )
v3(
    "dt_string",
    values(str, (3, 5), "v3str"),
    (2, 2),
    kwargs={"dtype": str},
    region=(slice(0, 2), slice(None)),
)
v3(
    "dt_string_fill",
    values(str, (7,), "v3strf"),
    (3,),
    kwargs={"dtype": str, "fill_value": "fé"},
    region=(slice(0, 3),),
)

v3(
    "dt_vlen_bytes_missing",
    values(bytes, (11,), "v3vbm"),
    (4,),
    kwargs={"dtype": zd.VariableLengthBytes()},
    region=(slice(4, 8),),
)


def _raw_writer(
    nbytes: int, codecs: list[dict[str, Any]], fill: list[int]
) -> Callable[[Path], None]:
    """Hand-write a V3 array of the raw ``r<N>`` data type (zarr-python 3 calls it raw_bytes)."""

    def write(d: Path) -> None:
        d.mkdir(parents=True)
        meta = v3_array_doc(
            [5, 3],
            [2, 2],
            f"r{nbytes * 8}",
            chunk_key_encoding={"name": "default", "configuration": {"separator": "/"}},
            fill_value=fill,
            codecs=codecs,
            attributes={"raw": True},
        )
        (d / "zarr.json").write_text(json.dumps(meta))
        data = _raw_expected(nbytes)
        gz = any(c["name"] == "gzip" for c in codecs)
        for i in range(3):
            for j in range(2):
                if (i, j) == (1, 1):
                    continue  # missing: reads as the fill value
                block = np.zeros((2, 2), dtype=f"V{nbytes}")
                src = data[i * 2 : i * 2 + 2, j * 2 : j * 2 + 2]
                block[: src.shape[0], : src.shape[1]] = src
                raw = block.tobytes()
                if gz:
                    raw = numcodecs.GZip(level=1).encode(raw)
                (d / "c" / str(i)).mkdir(parents=True, exist_ok=True)
                (d / "c" / str(i) / str(j)).write_bytes(raw)

    return write


def _raw_expected(nbytes: int, fill: list[int] | None = None) -> np.ndarray:
    data = values(f"V{nbytes}", (5, 3), f"raw{nbytes}")
    if fill is not None:
        data[2:4, 2:3] = np.frombuffer(bytes(fill), dtype=f"V{nbytes}")[0]
    return data


for _nb, _codecs, _fill in [
    (2, [{"name": "bytes"}], [1, 2]),
    (4, [{"name": "bytes"}, {"name": "gzip", "configuration": {"level": 1}}], [0, 0, 0, 255]),
]:
    _add(
        Case(
            id=f"v3_dt_r{_nb * 8}_hand",
            zarr_format=3,
            writer=_raw_writer(_nb, _codecs, _fill),
            expected=_raw_expected(_nb, _fill),
            expected_dtype=np.dtype(f"V{_nb}"),
            expected_fill=np.frombuffer(bytes(_fill), dtype=f"V{_nb}")[0],
            attrs={"raw": True},
            zarr_readable=False,
            tags=frozenset({"hand-written"}),
        )
    )

# --- V3 codecs --------------------------------------------------------------------------------

_D3 = values("<f8", (9, 7), "v3codec")
_I3 = values("<i4", (9, 7), "v3codeci")
v3(
    "bytes_little",
    _I3,
    (4, 3),
    kwargs={"serializer": zc.BytesCodec(endian="little"), "compressors": None},
)
v3(
    "bytes_big",
    _I3,
    (4, 3),
    kwargs={"serializer": zc.BytesCodec(endian="big"), "compressors": None},
    tensorstore=True,
)
v3("bytes_big_f8", _D3, (4, 3), kwargs={"serializer": zc.BytesCodec(endian="big")})
v3(
    "transpose_2d",
    _D3,
    (4, 3),
    kwargs={"filters": [zc.TransposeCodec(order=(1, 0))], "compressors": None},
    tensorstore=True,
)
v3(
    "transpose_3d",
    values("<u2", (5, 4, 3), "v3t3"),
    (2, 3, 2),
    kwargs={"filters": [zc.TransposeCodec(order=(2, 0, 1))]},
)
v3("gzip", _I3, (4, 3), kwargs={"compressors": [zc.GzipCodec(level=4)]}, tensorstore=True)
v3("zstd_checksum", _I3, (4, 3), kwargs={"compressors": [zc.ZstdCodec(level=2, checksum=True)]})
v3("zstd_nochecksum", _I3, (4, 3), kwargs={"compressors": [zc.ZstdCodec(level=2, checksum=False)]})
v3("crc32c_only", _I3, (4, 3), kwargs={"compressors": [zc.Crc32cCodec()]}, tensorstore=True)
for _cname, _shuf in [
    ("lz4", "noshuffle"),
    ("lz4hc", "shuffle"),
    ("zstd", "bitshuffle"),
    ("zlib", "noshuffle"),
    ("blosclz", "shuffle"),
]:
    v3(
        f"blosc_{_cname}_{_shuf}",
        _D3,
        (4, 3),
        kwargs={"compressors": [zc.BloscCodec(cname=_cname, clevel=5, shuffle=_shuf)]},
        tensorstore=_cname == "zstd",
    )
v3("nc_zlib", _I3, (4, 3), kwargs={"compressors": [zc.numcodecs.Zlib(level=1)]})
v3("nc_gzip", _I3, (4, 3), kwargs={"compressors": [zc.numcodecs.GZip(level=1)]})
v3("nc_lz4", _I3, (4, 3), kwargs={"compressors": [zc.numcodecs.LZ4()]})
v3("nc_bz2", _I3, (4, 3), kwargs={"compressors": [zc.numcodecs.BZ2(level=1)]})
v3("nc_lzma", _I3, (4, 3), kwargs={"compressors": [zc.numcodecs.LZMA()]})
v3(
    "nc_delta",
    _I3 // 1024,
    (4, 3),
    kwargs={"filters": [zc.numcodecs.Delta(dtype="<i4")], "compressors": [zc.numcodecs.Zlib()]},
)
v3(
    "nc_fixedscaleoffset",
    smooth("<f8", (9, 7), "v3fso"),
    (4, 3),
    kwargs={
        "filters": [zc.numcodecs.FixedScaleOffset(offset=5, scale=10, dtype="<f8", astype="<i2")],
        "compressors": [zc.numcodecs.LZ4()],
    },
    tags=frozenset({"lossy"}),
)
v3(
    "nc_bitround",
    values("float32", (9, 7), "v3br", special=False),
    (4, 3),
    kwargs={"filters": [zc.numcodecs.BitRound(keepbits=5)], "compressors": None},
    tags=frozenset({"lossy"}),
)
v3(
    "nc_shuffle_zstd",
    _D3,
    (4, 3),
    kwargs={"compressors": [zc.numcodecs.Shuffle(elementsize=8), zc.numcodecs.Zstd(level=1)]},
)
v3(
    "chain_transpose_bytes_blosc_crc32c",
    values("<f8", (5, 9, 4), "v3chain"),
    (2, 4, 3),
    kwargs={
        "filters": [zc.TransposeCodec(order=(1, 2, 0))],
        "serializer": zc.BytesCodec(endian="big"),
        "compressors": [zc.BloscCodec(cname="lz4", shuffle="bitshuffle"), zc.Crc32cCodec()],
    },
    tensorstore=True,
)
v3(
    "chain_gzip_crc32c_big",
    _I3,
    (4, 3),
    kwargs={
        "serializer": zc.BytesCodec(endian="big"),
        "compressors": [zc.GzipCodec(level=1), zc.Crc32cCodec()],
    },
)
v3("no_compressor", _D3, (4, 3), kwargs={"compressors": None})

# --- V3 sharding ------------------------------------------------------------------------------

_SH = values("<i4", (11, 13), "v3shard")
v3(
    "shard_end_crc",
    _SH,
    (2, 3),
    kwargs={"shards": (4, 6)},
    tensorstore=True,
)
v3(
    "shard_start_nocrc",
    _SH,
    (4, 6),
    kwargs={
        "serializer": zc.ShardingCodec(
            chunk_shape=(2, 3), index_location="start", index_codecs=[zc.BytesCodec()]
        ),
        "compressors": None,
    },
    tensorstore=True,
)
v3(
    "shard_start_crc_inner_gzip",
    _SH,
    (4, 6),
    kwargs={
        "serializer": zc.ShardingCodec(
            chunk_shape=(2, 3),
            codecs=[zc.BytesCodec(endian="big"), zc.GzipCodec(level=1)],
            index_location="start",
            index_codecs=[zc.BytesCodec(), zc.Crc32cCodec()],
        ),
        "compressors": None,
    },
)
v3(
    "shard_end_nocrc_inner_raw",
    _SH,
    (4, 6),
    kwargs={
        "serializer": zc.ShardingCodec(
            chunk_shape=(2, 3), codecs=[zc.BytesCodec()], index_codecs=[zc.BytesCodec()]
        ),
        "compressors": None,
    },
)
v3(
    "shard_inner_transpose_blosc",
    values("<f4", (9, 10), "v3shtb"),
    (6, 4),
    kwargs={
        "serializer": zc.ShardingCodec(
            chunk_shape=(3, 2),
            codecs=[zc.TransposeCodec(order=(1, 0)), zc.BytesCodec(), zc.BloscCodec(cname="zstd")],
        ),
        "compressors": None,
    },
)
v3(
    "shard_outer_zstd",
    _SH,
    (4, 6),
    kwargs={
        "serializer": zc.ShardingCodec(chunk_shape=(2, 3)),
        "compressors": [zc.ZstdCodec(level=1)],
    },
    expected_chunks=(2, 3),
    expected_shards=(4, 6),
)
v3(
    "shard_missing_inner_and_shards",
    _SH,
    (2, 3),
    kwargs={"shards": (4, 6), "fill_value": 17},
    # only part of the array: some shards are entirely missing, some shards hold only a few
    # inner chunks (the rest of the index reads "empty")
    region=(slice(0, 3), slice(1, 8)),
    tensorstore=True,
)
v3(
    "shard_deleted_shard",
    _SH,
    (2, 3),
    kwargs={"shards": (4, 6), "fill_value": -3},
    delete_chunks=("c/1/1", "c/0/2"),
)
v3(
    "shard_nested",
    values("<u2", (17, 16), "v3nest"),
    (16, 16),
    kwargs={
        "serializer": zc.ShardingCodec(
            chunk_shape=(8, 8),
            codecs=[zc.ShardingCodec(chunk_shape=(4, 4), codecs=[zc.BytesCodec(), zc.ZstdCodec()])],
        ),
        "compressors": None,
    },
)
v3(
    "shard_3d_edges",
    values("<f8", (5, 7, 6), "v3sh3"),
    (2, 3, 2),
    kwargs={"shards": (4, 6, 4), "fill_value": np.nan},
    region=(slice(0, 5), slice(0, 5), slice(1, 6)),
)
v3(
    "shard_string",
    values(str, (7, 5), "v3shs"),
    (2, 2),
    kwargs={"dtype": str, "shards": (4, 4)},
)

# --- V3 chunk key encodings, shapes, fill values, missing chunks ------------------------------

_K = values("<i2", (7, 5, 3), "v3keys")
v3("key_default_slash", _K, (3, 2, 2), tensorstore=True)
v3(
    "key_default_dot",
    _K,
    (3, 2, 2),
    kwargs={"chunk_key_encoding": {"name": "default", "separator": "."}},
    tensorstore=True,
)
v3("key_v2_dot", _K, (3, 2, 2), kwargs={"chunk_key_encoding": {"name": "v2", "separator": "."}})
v3("key_v2_slash", _K, (3, 2, 2), kwargs={"chunk_key_encoding": {"name": "v2", "separator": "/"}})
v3("shape_0d", np.array(-2.5, dtype="float64"), (), tensorstore=True)
v3("shape_0d_bool", np.array(True), ())
v3(
    "shape_0d_key_v2",
    np.array(77, dtype="uint16"),
    (),
    kwargs={"chunk_key_encoding": {"name": "v2", "separator": "."}},
)
v3("shape_1elem", np.array([5], dtype="int64"), (1,))
v3(
    "shape_5d",
    values("uint8", (3, 2, 4, 2, 3), "v3_5d"),
    (2, 1, 3, 2, 2),
    tensorstore=True,
    dimension_names=("a", "b", None, "d", "e"),
)
v3("edge_every_axis", values("float32", (5, 7, 3), "v3edge"), (2, 3, 2))
v3("chunk_larger_than_shape", values("int16", (3, 2), "v3big"), (10, 10))
v3(
    "fill_int",
    values("int32", (10,), "v3fi"),
    (3,),
    region=(slice(0, 3),),
    kwargs={"fill_value": -99},
)
v3(
    "fill_bool_true",
    values("bool", (10,), "v3fb"),
    (3,),
    region=(slice(3, 6),),
    kwargs={"fill_value": True},
)
v3(
    "fill_nan",
    values("float64", (10, 3), "v3nan"),
    (3, 2),
    region=(slice(0, 3), slice(None)),
    kwargs={"fill_value": np.nan},
    tensorstore=True,
)
v3(
    "fill_inf",
    values("float32", (10,), "v3inf"),
    (3,),
    region=(slice(0, 3),),
    kwargs={"fill_value": np.inf},
)
v3(
    "fill_neginf",
    values("float16", (10,), "v3ninf"),
    (3,),
    region=(slice(0, 3),),
    kwargs={"fill_value": -np.inf},
)
v3(
    "fill_complex",
    values("complex64", (10,), "v3fc"),
    (3,),
    region=(slice(0, 3),),
    kwargs={"fill_value": complex(1.5, -2.25)},
)
v3(
    "fill_complex_nan_inf",
    values("complex128", (10,), "v3fcn"),
    (3,),
    region=(slice(0, 3),),
    kwargs={"fill_value": complex(np.nan, -np.inf)},
)


def _hex_fill(h: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        doc["fill_value"] = h
        return doc

    return edit


#: NaN with a non-default payload, as hex; the missing chunks must read with exactly these bits
NAN_PAYLOAD_CASES = {
    "v3_fill_nan_payload_f4": 0x7FC00001,
    "v3_fill_nan_payload_f8": 0x7FF8000000000001,
}
v3(
    "fill_nan_payload_f4",
    values("float32", (10,), "v3nanp"),
    (3,),
    region=(slice(0, 3),),
    kwargs={"fill_value": np.nan},
    edit=_hex_fill("0x7fc00001"),
)
v3(
    "fill_nan_payload_f8",
    values("float64", (10,), "v3nanp8"),
    (3,),
    region=(slice(3, 6),),
    kwargs={"fill_value": np.nan},
    edit=_hex_fill("0x7ff8000000000001"),
)
v3(
    "fill_hex_f2",
    values("float16", (10,), "v3hexf2"),
    (3,),
    region=(slice(3, 6),),
    kwargs={"fill_value": 0.0},
    edit=_hex_fill("0x3c00"),
)  # 1.0
v3(
    "missing_chunks_deleted",
    values("int16", (8, 9), "v3miss"),
    (3, 4),
    kwargs={"fill_value": 11},
    delete_chunks=("c/0/0", "c/1/2", "c/2/1"),
    tensorstore=True,
)
v3(
    "missing_chunks_deleted_dot",
    values("float64", (8, 9), "v3miss2"),
    (3, 4),
    kwargs={"fill_value": np.inf, "chunk_key_encoding": {"name": "default", "separator": "."}},
    delete_chunks=("c.0.1", "c.2.2"),
)
v3(
    "empty_array",
    None,
    (4, 4),
    kwargs={"fill_value": 3, "dtype": "uint8", "shape": (9, 6)},
)
v3(
    "nested_path",
    values("float32", (4, 5), "v3path"),
    (3, 3),
    path="grp/sub/arr",
    attrs={"where": "deep"},
    dimension_names=("a", "b"),
)
v3(
    "attrs_rich",
    values("int8", (4,), "v3attr"),
    (4,),
    attrs={
        "str": "hé",
        "int": -3,
        "float": 2.5,
        "list": [1, "a", None, [True, False]],
        "dict": {"x": {"y": [1.25]}},
        "null": None,
    },
    dimension_names=(None,),
)


# ---------------------------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class GroupCase:
    """A three-level tree of groups and arrays."""

    id: str
    zarr_format: int
    consolidated: bool = False
    #: after consolidating, delete every node's own metadata below the root: only the
    #: consolidated metadata describes the tree
    drop_node_metadata: bool = False

    def store_dir(self, root: Path) -> Path:
        return root / f"{self.id}.zarr"


GROUP_CASES = [
    GroupCase("g_v2_plain", 2),
    GroupCase("g_v2_consolidated", 2, consolidated=True),
    GroupCase("g_v2_consolidated_only", 2, consolidated=True, drop_node_metadata=True),
    GroupCase("g_v3_plain", 3),
    GroupCase("g_v3_consolidated", 3, consolidated=True),
    GroupCase("g_v3_consolidated_only", 3, consolidated=True, drop_node_metadata=True),
]

#: the arrays of every group tree: path -> (values, create_array keyword arguments)
GROUP_ARRAYS: dict[str, tuple[np.ndarray, dict[str, Any]]] = {
    "root_arr": (values("<i2", (5, 4), "groot"), {"chunks": (2, 3)}),
    "g1/a1": (values("<f4", (6,), "ga1"), {"chunks": (4,), "fill_value": np.nan}),
    "g1/g2/a2": (values("|u1", (3, 3, 2), "ga2"), {"chunks": (2, 2, 2)}),
    "g1/g2/g3/deep": (values("<f8", (4, 4), "gdeep"), {"chunks": (3, 3)}),
    "g1/g2/g3/text": (values(str, (5,), "gtext"), {"chunks": (2,), "dtype": str}),
    "other/b": (values("<i8", (7,), "gb"), {"chunks": (3,)}),
}
GROUP_ATTRS: dict[str, dict[str, Any]] = {
    "": {"title": "root", "level": 0},
    "g1": {"level": 1, "tags": ["x", "y"]},
    "g1/g2": {"level": 2},
    "g1/g2/g3": {"level": 3, "deep": {"er": True}},
    "other": {},
    "empty": {"note": "no children"},
}
GROUP_ARRAY_ATTRS: dict[str, dict[str, Any]] = {
    "g1/a1": {"units": "K"},
    "g1/g2/g3/deep": {"scale": 0.5},
}
GROUP_DIMS: dict[str, tuple[str, ...]] = {"g1/g2/a2": ("z", "y", "x"), "g1/a1": ("t",)}


def _build_group(case: GroupCase, d: Path) -> None:
    fmt = case.zarr_format
    root = zarr.open_group(str(d), mode="w", zarr_format=fmt, attributes=GROUP_ATTRS[""])
    for gpath in sorted(GROUP_ATTRS):
        if gpath:
            root.create_group(gpath, attributes=GROUP_ATTRS[gpath])
    for apath, (data, kw) in GROUP_ARRAYS.items():
        kw = dict(kw)
        dtype = kw.pop("dtype", data.dtype)
        attrs = dict(GROUP_ARRAY_ATTRS.get(apath, {}))
        dims = GROUP_DIMS.get(apath)
        extra: dict[str, Any] = {}
        if dims is not None:
            if fmt == 3:
                extra["dimension_names"] = dims
            else:
                attrs["_ARRAY_DIMENSIONS"] = list(dims)
        a = root.create_array(apath, shape=data.shape, dtype=dtype, attributes=attrs, **kw, **extra)
        a[...] = data
    if case.consolidated:
        zarr.consolidate_metadata(str(d))
    if case.drop_node_metadata:
        names = (".zarray", ".zgroup", ".zattrs") if fmt == 2 else ("zarr.json",)
        for name in names:
            for f in d.rglob(name):
                if f.parent != d:
                    f.unlink()


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _write_case(case: Case, root: Path) -> None:
    store = case.store_dir(root)
    adir = case.array_dir(root)
    if case.writer is not None:
        case.writer(adir)
        return
    kw = dict(case.kwargs)
    data = case.data
    shape = kw.pop("shape", None) if data is None else data.shape
    dtype = kw.pop("dtype", None if data is None else data.dtype)
    attrs = dict(case.attrs)
    if case.dimension_names is not None:
        if case.zarr_format == 3:
            kw["dimension_names"] = case.dimension_names
        else:
            attrs["_ARRAY_DIMENSIONS"] = list(case.dimension_names)
    if case.path:
        parent = case.path.rsplit("/", 1)[0]
        g = zarr.open_group(str(store), mode="w", zarr_format=case.zarr_format)
        g.create_group(parent)
    a = zarr.create_array(
        store=str(store),
        name=case.path or None,
        shape=shape,
        dtype=dtype,
        zarr_format=case.zarr_format,
        attributes=attrs,
        overwrite=True,
        **kw,
    )
    if data is not None:
        if case.region is None:
            a[...] = data
        else:
            a[case.region] = data[case.region]
    for key in case.delete_chunks:
        p = adir / key
        if not p.is_file():
            raise FileNotFoundError(f"{case.id}: chunk {key} to delete does not exist")
        p.unlink()
    if case.edit is not None:
        mfile = adir / (".zarray" if case.zarr_format == 2 else "zarr.json")
        mfile.write_text(json.dumps(case.edit(json.loads(mfile.read_text()))))


def build_all(root: Path) -> Path:
    """Write every case and group case below ``root``; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in CASES:
            d = case.store_dir(root)
            if d.exists():
                shutil.rmtree(d)
            _write_case(case, root)
        for gcase in GROUP_CASES:
            d = gcase.store_dir(root)
            if d.exists():
                shutil.rmtree(d)
            _build_group(gcase, d)
    return root


CASE_BY_ID = {c.id: c for c in CASES}
