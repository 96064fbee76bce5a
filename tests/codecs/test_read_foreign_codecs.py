"""Codec configurations other programs write, read as those programs read them.

* V2 arrays whose compressor (or filter) is an array->bytes numcodecs codec (``pcodec``,
  ``zfpy``), as zarr-python writes them, and the same codecs in V3 (``numcodecs.pcodec``).
* Shards whose index marks an empty inner chunk ``(offset, 2**64-1)`` instead of
  ``(2**64-1, 2**64-1)`` (zarrita), and the size reported for a shard shorter than its index.
* Blosc frames made with a compressor this build of c-blosc lacks (snappy).
* ``pickle``-filtered object arrays with and without ``allow_unsafe_codecs``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import struct
import warnings
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import assert_same, v2_array_doc, zarr_read

import xzaro
from xzaro.codecs import BloscCodec, v2_codec_json
from xzaro.errors import DecodeError, UnsafeCodecError
from xzaro.meta import ZaroMeta
from xzaro.stores import open_store
from xzaro.writers.writer import writer_for

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EMPTY = 2**64 - 1


def smooth(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    values = np.linspace(-20, 30, n) + np.sin(np.arange(n)) * 7
    return values.astype(dtype).reshape(shape)


# ----------------------------------------------------------------------------------------------
# 1. array->bytes numcodecs codecs (pcodec, zfpy)
# ----------------------------------------------------------------------------------------------


def write_v2(path: Path, data: np.ndarray, chunks: tuple[int, ...], **kwargs: Any) -> None:
    """A V2 array written by zarr-python 3."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = zarr.create_array(
            str(path), shape=data.shape, chunks=chunks, dtype=data.dtype, zarr_format=2, **kwargs
        )
        z[...] = data


V2_CASES = [
    # name, dtype, shape, chunks, zarr-python keywords
    ("pcodec_f8", "float64", (7, 5), (3, 2), {"compressors": "pcodec"}),
    ("pcodec_i4_edges_3d", "int32", (5, 6, 7), (2, 4, 3), {"compressors": "pcodec"}),
    ("pcodec_u2_1d", "uint16", (23,), (10,), {"compressors": "pcodec"}),
    ("pcodec_f4_order_F", "float32", (9, 4), (4, 3), {"compressors": "pcodec", "order": "F"}),
    ("zfpy_f4_lossless", "float32", (9, 7), (4, 3), {"compressors": "zfpy_lossless"}),
    ("zfpy_f8_lossless_3d", "float64", (5, 6, 4), (2, 4, 3), {"compressors": "zfpy_lossless"}),
    ("zfpy_f8_accuracy", "float64", (11, 6), (4, 4), {"compressors": "zfpy_accuracy"}),
    ("zfpy_f4_accuracy", "float32", (30,), (8,), {"compressors": "zfpy_accuracy"}),
    # zarr-python 2 runs a filter on the chunk, whatever its kind: pcodec's bytes then zstd
    ("pcodec_filter_then_zstd", "int32", (7, 5), (3, 2), {"filters": "pcodec"}),
]


def numcodecs_codec(name: str) -> Any:
    pytest.importorskip("pcodec" if name.startswith("pcodec") else "zfpy")
    if name == "pcodec":
        return numcodecs.PCodec(level=8)
    if name == "zfpy_lossless":
        return numcodecs.ZFPY(mode=4, tolerance=-1)  # fixed accuracy -1: zfp's reversible mode
    return numcodecs.ZFPY(mode=4, tolerance=1e-3)


def v2_kwargs(kwargs: dict) -> dict:
    out = dict(kwargs)
    if "compressors" in out:
        out["compressors"] = numcodecs_codec(out["compressors"])
    if "filters" in out:
        out["filters"] = [numcodecs_codec(out["filters"])]
        out["compressors"] = numcodecs.Zstd(level=3)
    return out


@pytest.mark.parametrize(
    ("dtype", "shape", "chunks", "kwargs"),
    [c[1:] for c in V2_CASES],
    ids=[c[0] for c in V2_CASES],
)
def test_v2_array_bytes_compressor_reads_as_zarr_python(
    tmp_path: Path, dtype: str, shape: tuple, chunks: tuple, kwargs: dict
) -> None:
    path = tmp_path / "a.zarr"
    write_v2(path, smooth(dtype, shape), chunks, **v2_kwargs(kwargs))
    expected = zarr_read(path)
    array = xzaro.open_array(str(path))
    assert_same(array[...], expected)
    # a read of a region that cuts chunks, including the edge chunks
    region = tuple(slice(1, None) for _ in shape)
    assert_same(array[region], expected[region])


def test_v2_pcodec_and_zfpy_through_xarray(tmp_path: Path) -> None:
    pytest.importorskip("pcodec")
    pytest.importorskip("zfpy")
    ds = xr.Dataset(
        {
            "p": (("y", "x"), smooth("float64", (9, 5))),
            "z": (("y", "x"), smooth("float32", (9, 5))),
        }
    )
    path = tmp_path / "ds.zarr"
    encoding = {
        "p": {"compressors": numcodecs.PCodec(), "chunks": (4, 3)},
        "z": {"compressors": numcodecs.ZFPY(mode=4, tolerance=-1), "chunks": (4, 3)},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(str(path), zarr_format=2, encoding=encoding, consolidated=False)
        expected = xr.open_dataset(str(path), engine="zarr", consolidated=False).load()
    actual = xr.open_dataset(str(path), engine="zaro", consolidated=False).load()
    xr.testing.assert_identical(actual, expected)
    assert json.loads((path / "p" / ".zarray").read_text())["compressor"]["id"] == "pcodec"


@pytest.mark.parametrize("codec", ["pcodec", "zfpy"])
def test_v3_numcodecs_array_bytes_codecs_read_as_zarr_python(tmp_path: Path, codec: str) -> None:
    pytest.importorskip(codec)
    import zarr.codecs.numcodecs as znc

    data = smooth("float64", (9, 7))
    path = tmp_path / "a.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numcodecs codecs are not in the V3 specification
        serializer = znc.PCodec(level=4) if codec == "pcodec" else znc.ZFPY(mode=4, tolerance=-1)
        z = zarr.create_array(
            str(path),
            shape=data.shape,
            chunks=(4, 3),
            dtype=data.dtype,
            serializer=serializer,
            compressors=None,
        )
        z[...] = data
    doc = json.loads((path / "zarr.json").read_text())
    assert doc["codecs"][0]["name"] == f"numcodecs.{codec}"
    assert_same(xzaro.open_array(str(path))[...], zarr_read(path))


def test_v2_array_bytes_compressor_round_trips_its_json_and_chunks(tmp_path: Path) -> None:
    """xzaro's V2 emission of a chain built without the stored document: the pcodec is the
    compressor again (not a filter), and chunks xzaro writes read back through zarr-python."""
    pytest.importorskip("pcodec")
    source = tmp_path / "src.zarr"
    data = smooth("int32", (7, 5))
    write_v2(source, data, (3, 2), compressors=numcodecs.PCodec(level=5))
    stored = json.loads((source / ".zarray").read_text())
    meta = ZaroMeta.from_json(stored, url=str(source), key=".zarray")
    assert meta.to_json()["compressor"] == stored["compressor"]  # from the stored document

    rebuilt = dataclasses.replace(meta, raw={})  # as a writer builds it: from the chain alone
    emitted = rebuilt.to_json()
    assert emitted["compressor"] == stored["compressor"]
    assert emitted["filters"] is None
    assert v2_codec_json(meta.codecs) == (None, stored["compressor"])

    target = tmp_path / "dst.zarr"
    target.mkdir()
    (target / ".zarray").write_text(json.dumps(emitted))
    writer_for(open_store(str(target)), "", rebuilt).write_block(data)
    assert_same(zarr_read(target), data)
    assert_same(xzaro.open_array(str(target))[...], data)


def test_v2_filter_then_compressor_round_trips_its_json() -> None:
    """pcodec listed as a V2 filter before a compressor is emitted the same way."""
    pytest.importorskip("pcodec")
    pcodec = numcodecs.PCodec().get_config()
    doc = v2_array_doc([10], [5], "<i4", compressor={"id": "zstd", "level": 3}, filters=[pcodec])
    meta = ZaroMeta.from_json(doc)
    assert [c.kind for c in meta.codecs] == ["array_bytes", "bytes_bytes"]
    emitted = dataclasses.replace(meta, raw={}).to_json()
    assert emitted["filters"] == [pcodec]
    assert emitted["compressor"]["id"] == "zstd"


@pytest.mark.parametrize("codec", ["pcodec", "zfpy"])
def test_v2_array_bytes_chunk_of_the_wrong_size_is_an_error(tmp_path: Path, codec: str) -> None:
    """A chunk that decodes to another number of items than the chunk holds is refused, naming
    the key: never reshaped, padded or truncated."""
    compressor = numcodecs_codec("pcodec" if codec == "pcodec" else "zfpy_lossless")
    path = tmp_path / "a.zarr"
    data = smooth("float64", (8, 6))
    write_v2(path, data, (4, 3), compressors=compressor)
    other = tmp_path / "other.zarr"
    write_v2(other, data, (4, 2), compressors=compressor)
    shutil.copy(other / "1.1", path / "1.1")  # a (4, 2) chunk where a (4, 3) one belongs
    array = xzaro.open_array(str(path))
    assert_same(array[:4, :3], data[:4, :3])
    with pytest.raises(DecodeError) as e:
        array[...]
    assert e.value.key == "1.1" and e.value.url == str(path)
    assert "8" in e.value.message and "12" in e.value.message


# ----------------------------------------------------------------------------------------------
# 2. shard indexes marking empty inner chunks (offset, 2**64-1)
# ----------------------------------------------------------------------------------------------


def sharded_with_holes(path: Path, index_location: str = "end") -> np.ndarray:
    """An (8, 12) int32 array in two (8, 6) shards of (2, 3) inner chunks, written by
    zarr-python; some inner chunks are all fill, so their index entries mark them empty."""
    data = np.arange(8 * 12, dtype="i4").reshape(8, 12) + 1
    data[0:2, 0:3] = 0
    data[4:6, 3:6] = 0
    data[2:4, 9:12] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = zarr.create_array(
            str(path),
            shape=data.shape,
            chunks=(2, 3),
            shards=(8, 6),
            dtype=data.dtype,
            fill_value=0,
            compressors=zarr.codecs.ZstdCodec(level=1),
            serializer="auto",
        )
        if index_location == "start":
            shutil.rmtree(path)
            z = zarr.create_array(
                str(path),
                shape=data.shape,
                chunks=(8, 6),
                dtype=data.dtype,
                fill_value=0,
                serializer=zarr.codecs.ShardingCodec(
                    chunk_shape=(2, 3),
                    codecs=[zarr.codecs.BytesCodec(), zarr.codecs.ZstdCodec(level=1)],
                    index_location="start",
                ),
                compressors=None,
            )
        z[...] = data
    return data


INDEX_ENTRIES = 8  # an (8, 6) shard of (2, 3) inner chunks
INDEX_BYTES = INDEX_ENTRIES * 16 + 4  # uint64 pairs and the crc32c


def rewrite_index(shard: Path, index_location: str, edit: Any) -> np.ndarray:
    """Apply ``edit`` to a shard's index (an (n, 2) uint64 array) and store it back, with its
    crc32c recomputed; returns the original index."""
    import crc32c

    blob = bytearray(shard.read_bytes())
    at = slice(-INDEX_BYTES, None) if index_location == "end" else slice(0, INDEX_BYTES)
    raw = bytes(blob[at])
    assert struct.unpack("<I", raw[-4:])[0] == crc32c.crc32c(raw[:-4])
    original = np.frombuffer(raw[:-4], "<u8").reshape(-1, 2)
    index = original.copy()
    edit(index)
    body = index.astype("<u8").tobytes()
    blob[at] = body + struct.pack("<I", crc32c.crc32c(body))
    shard.write_bytes(bytes(blob))
    return original


def mark_empty_with_offset(index: np.ndarray) -> None:
    empty = (index[:, 0] == EMPTY) & (index[:, 1] == EMPTY)
    assert empty.any()
    index[empty, 0] = np.arange(int(empty.sum()), dtype=np.uint64) * 7 + 3


@pytest.mark.parametrize("index_location", ["end", "start"])
def test_shard_index_empty_with_offset_reads_as_fill(
    tmp_path: Path, index_location: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.zarr"
    data = sharded_with_holes(path, index_location)
    # zarr-python's read of the store as it wrote it (it reads (offset, 2**64-1) as a range
    # running past the shard, tensorstore as a corrupt index, so they are read before the edit)
    expected = zarr_read(path)
    assert_same(expected, data)
    small = (slice(0, 2), slice(0, 5))  # an empty inner chunk and a stored one in shard (0, 0)
    for shard in ("c/0/0", "c/0/1"):
        rewrite_index(path / shard, index_location, mark_empty_with_offset)

    with caplog.at_level(logging.INFO, logger="xzaro"):
        actual = xzaro.open_array(str(path))[...]
    assert_same(actual, expected)
    lines = [r.getMessage() for r in caplog.records if "non-standard" in r.getMessage()]
    assert len(lines) == 2, lines  # one line per shard, not one per inner chunk
    assert any("c/0/0" in line for line in lines) and any("c/0/1" in line for line in lines)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xzaro"):
        part = xzaro.open_array(str(path))[small]  # a partial read: index, then ranges
    assert_same(part, expected[small])
    lines = [r.getMessage() for r in caplog.records if "non-standard" in r.getMessage()]
    assert len(lines) == 1 and "c/0/0" in lines[0], lines


def test_shard_index_empty_offset_with_a_length_is_corrupt(tmp_path: Path) -> None:
    """(2**64-1, n) with n != 2**64-1 is no marker of any writer: a corrupt-shard error."""
    path = tmp_path / "s.zarr"
    sharded_with_holes(path)

    def corrupt(index: np.ndarray) -> None:
        index[index[:, 0] == EMPTY, 1] = 40

    rewrite_index(path / "c/0/0", "end", corrupt)
    for selection in [(...,), (slice(0, 2), slice(0, 5))]:
        with pytest.raises(DecodeError, match="corrupt") as e:
            xzaro.open_array(str(path))[selection]
        assert e.value.key == "c/0/0" and e.value.url == str(path)


def test_shard_shorter_than_its_index_reports_its_real_size(tmp_path: Path) -> None:
    """A shard whose index points past its end: whole and partial reads name the shard's real
    size in bytes (not 2**63)."""
    path = tmp_path / "s.zarr"
    sharded_with_holes(path)
    shard = path / "c/0/0"
    blob = shard.read_bytes()
    index = np.frombuffer(blob[-INDEX_BYTES:-4], "<u8").reshape(-1, 2)
    stored = index[index[:, 0] != EMPTY]
    last = int(stored[:, 0].max())
    # drop bytes from the start: the last inner chunk's range now ends past the shard's end
    drop = INDEX_BYTES + 8
    assert len(blob) - INDEX_BYTES > drop
    cut = blob[drop:]
    shard.write_bytes(cut)
    size = len(cut)
    # the inner chunk that was last in the file, as an array selection
    position = int(np.flatnonzero(index[:, 0] == last)[0])
    row, col = divmod(position, 2)
    selection = (slice(2 * row, 2 * row + 2), slice(3 * col, 3 * col + 3))
    for sel in [(...,), selection]:
        with pytest.raises(DecodeError) as e:
            xzaro.open_array(str(path))[sel]
        assert f"{size}-byte shard" in e.value.message, e.value.message
        assert str(2**63) not in e.value.message
        assert e.value.key == "c/0/0"


# ----------------------------------------------------------------------------------------------
# 3. blosc frames made with a compressor this build lacks
# ----------------------------------------------------------------------------------------------


def as_snappy(frame: bytes) -> bytes:
    """The frame with its header's compressor code (flags bits 5-7) set to snappy's (2)."""
    blob = bytearray(frame)
    assert blob[2] >> 5 == 1  # lz4
    assert not blob[2] & 0x02  # compressed, not a memcpy frame
    blob[2] = (blob[2] & 0x1F) | (2 << 5)
    return bytes(blob)


def test_blosc_frame_with_a_missing_compressor_names_it(tmp_path: Path) -> None:
    from numcodecs import blosc

    if "snappy" in blosc.list_compressors():
        pytest.skip("this build of c-blosc has snappy")
    path = tmp_path / "b.zarr"
    data = smooth("float64", (40, 50))  # chunks large and smooth enough to compress
    write_v2(path, data, (20, 50), compressors=numcodecs.Blosc(cname="lz4", clevel=5))
    (path / "1.0").write_bytes(as_snappy((path / "1.0").read_bytes()))
    with pytest.raises(RuntimeError):  # numcodecs, and so zarr-python, cannot read it either
        numcodecs.Blosc().decode((path / "1.0").read_bytes())
    array = xzaro.open_array(str(path))
    assert_same(array[:20], data[:20])
    with pytest.raises(DecodeError) as e:
        array[...]
    assert "snappy" in e.value.message and "corrupt" not in e.value.message
    assert e.value.key == "1.0" and e.value.url == str(path)

    frame = as_snappy(numcodecs.Blosc(cname="lz4").encode(np.arange(100, dtype="i4")))
    with pytest.raises(DecodeError, match="snappy"):
        BloscCodec().decode_bytes(frame, 400)


def test_blosc_corrupt_frame_with_an_available_compressor_is_still_corrupt() -> None:
    frame = bytearray(numcodecs.Blosc(cname="lz4").encode(np.arange(1000, dtype="i4") % 7))
    frame[20:40] = bytes(20)
    with pytest.raises(DecodeError, match="corrupt"):
        BloscCodec().decode_bytes(bytes(frame), 4000)


# ----------------------------------------------------------------------------------------------
# 4. pickle with allow_unsafe_codecs
# ----------------------------------------------------------------------------------------------

OBJECTS = np.array([{"a": 1}, [1, 2], "x", None, 3.5], dtype=object)


def write_pickled(root: Path, name: str = "") -> Path:
    """A V2 ``|O`` array with a pickle filter, chunks encoded by numcodecs' Pickle."""
    path = root / name if name else root
    path.mkdir(parents=True, exist_ok=True)
    doc = v2_array_doc([5], [2], "|O", fill_value=None, filters=[{"id": "pickle", "protocol": 5}])
    (path / ".zarray").write_text(json.dumps(doc))
    (path / ".zattrs").write_text(json.dumps({"_ARRAY_DIMENSIONS": ["i"]}))
    codec = numcodecs.Pickle(protocol=5)
    for i in range(3):
        chunk = np.empty(2, dtype=object)
        part = OBJECTS[2 * i : 2 * i + 2]
        chunk[: len(part)] = part
        (path / str(i)).write_bytes(codec.encode(chunk))
    return path


def test_pickle_decodes_only_with_the_opt_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numcodecs.pickles

    monkeypatch.delenv("NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE", raising=False)
    monkeypatch.setattr(numcodecs.pickles, "ALLOW_UNSAFE_PICKLE_DECODE", False)
    path = write_pickled(tmp_path / "p.zarr")
    with pytest.raises(UnsafeCodecError) as e:
        xzaro.open_array(str(path))
    assert "pickle" in e.value.message and "allow_unsafe_codecs=True" in e.value.message
    assert e.value.url == str(path)

    values = xzaro.open_array(str(path), allow_unsafe_codecs=True)[...]
    assert values.dtype == object and values.tolist() == OBJECTS.tolist()
    # scoped to the codec the caller allowed: numcodecs' process-wide switch stays off
    assert numcodecs.pickles.ALLOW_UNSAFE_PICKLE_DECODE is False
    with pytest.raises(numcodecs.errors.UnsafeDecodeError):
        numcodecs.Pickle().decode(numcodecs.Pickle().encode(OBJECTS))


def test_pickle_through_xarray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numcodecs.pickles

    monkeypatch.setattr(numcodecs.pickles, "ALLOW_UNSAFE_PICKLE_DECODE", False)
    root = tmp_path / "g.zarr"
    root.mkdir()
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    write_pickled(root, "v")
    with pytest.raises(UnsafeCodecError, match="allow_unsafe_codecs"):
        xr.open_dataset(str(root), engine="zaro", consolidated=False)
    ds = xr.open_dataset(str(root), engine="zaro", consolidated=False, allow_unsafe_codecs=True)
    assert ds["v"].dims == ("i",)
    assert ds["v"].values.tolist() == OBJECTS.tolist()
    assert numcodecs.pickles.ALLOW_UNSAFE_PICKLE_DECODE is False


@pytest.mark.parametrize("dtype", ["<U100", "S300", "V300"])
def test_blosc_typesize_of_a_wide_data_type_reads_as_zarr_python(tmp_path: Path, dtype: str):
    """zarr-python records Blosc's ``typesize`` as the element size, 400 for ``<U100``: more
    than a Blosc frame's header holds, yet valid metadata that must read."""
    path = tmp_path / "wide.zarr"
    array = zarr.create_array(
        str(path),
        shape=(5,),
        chunks=(2,),
        dtype=dtype,
        compressors=[zarr.codecs.BloscCodec()],
        zarr_format=3,
    )
    values = np.array(["x" * 50, "", "yz", "e" * 9, "w"]).astype("<U100")
    values = (
        values.astype(dtype)
        if dtype != "V300"
        else np.frombuffer(values.tobytes()[: 5 * 300], "V300")
    )
    array[...] = values
    blosc = json.loads((path / "zarr.json").read_text())["codecs"][-1]["configuration"]
    assert blosc["typesize"] == np.dtype(dtype).itemsize > 255
    assert_same(xzaro.open_array(str(path))[...], values)
