"""Stores written by zarr-python, then changed as an attacker (or a failing disk) would: every
read raises an error from xzaro's hierarchy naming the store and key, or gives the values
zarr-python reads; never another exception, a crash, or another inner chunk's values.

Each case was found by mutating stored shards, chunks and metadata at random and reading them
with xzaro and zarr-python side by side.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import crc32c
import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, ShardingCodec, ZstdCodec

import xzaro
from xzaro.errors import DecodeError, MetadataError, OutOfMemoryError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

INNER = 16  # a 16 x 16 shard of 4 x 4 inner chunks


def _sharded(path: Path, inner_codecs: list, shape: int = 16, inner: int = 4) -> np.ndarray:
    """One ``shape`` x ``shape`` uint16 shard of 16 inner chunks (index at the end, with
    crc32c); inner chunks of 16 x 16 hold smooth values Blosc compresses (tiny ones it would
    store as copies)."""
    array = zarr.create(
        (shape, shape),
        chunks=(shape, shape),
        dtype="uint16",
        store=str(path),
        zarr_format=3,
        fill_value=0,
        codecs=[ShardingCodec(chunk_shape=(inner, inner), codecs=[BytesCodec(), *inner_codecs])],
    )
    n = shape * shape
    values = np.arange(n) * 7919 % 65521 if inner < 16 else np.arange(n) % 100
    array[...] = values.astype("uint16").reshape(shape, shape)
    return array[...]


def _edit_shard(path: Path, edit) -> None:
    """Rewrite shard ``c/0/0`` as ``edit(body, entries)`` gives it (``entries`` the index as
    an ``(16, 2)`` array to change in place), with the index's checksum made valid again."""
    shard = path / "c" / "0" / "0"
    blob = shard.read_bytes()
    index_at = len(blob) - (16 * INNER + 4)
    entries = np.frombuffer(blob[index_at:-4], "<u8").reshape(INNER, 2).copy()
    body = edit(blob[:index_at], entries)
    index = entries.astype("<u8").tobytes()
    shard.write_bytes(body + index + struct.pack("<I", crc32c.crc32c(index)))


def _reads_raise(path: Path, inner: int = 4) -> None:
    """The whole shard, and the mutated inner chunk 5 alone, raise DecodeError naming it."""
    for selection in [(...,), (slice(inner, 2 * inner), slice(inner, 2 * inner))]:
        with pytest.raises(DecodeError) as caught:
            xzaro.open_array(str(path))[selection]
        assert caught.value.key == "c/0/0" and caught.value.url == str(path)


@pytest.mark.parametrize(
    "codecs",
    [[ZstdCodec()], [BloscCodec(cname="zstd", shuffle="shuffle")]],
    ids=["zstd", "blosc-zstd"],
)
def test_an_entry_covering_two_frames(tmp_path: Path, codecs: list) -> None:
    """Inner chunk 5's entry made to cover inner chunk 0's frame and the next one. A zstd
    chunk is an error (a shard decoded in one call once read inner chunk 0's values for inner
    chunk 5). A Blosc frame says its own size and may be followed by padding (z5 leaves
    some), so c-blosc, numcodecs and xzaro read the first frame: the values zarr-python
    reads, whether the shard is decoded in one call or the chunk alone."""
    path = tmp_path / "a.zarr"
    _sharded(path, codecs, shape=64, inner=16)

    def edit(body: bytes, entries: np.ndarray) -> bytes:
        first = int(np.argmin(entries[:, 0]))
        after = next(j for j in range(INNER) if entries[j, 0] == sum(entries[first]))
        entries[5] = (entries[first, 0], entries[first, 1] + entries[after, 1])
        return body

    _edit_shard(path, edit)
    if isinstance(codecs[0], ZstdCodec):
        _reads_raise(path, inner=16)
        return
    oracle = zarr.open_array(str(path))
    for selection in [(...,), (slice(16, 32), slice(16, 32))]:
        np.testing.assert_array_equal(xzaro.open_array(str(path))[selection], oracle[selection])


def test_bytes_inside_a_frame_are_an_error(tmp_path: Path) -> None:
    """Eight bytes inserted into the middle of inner chunk 5's zstd frame (its entry grown to
    hold them): the frame's first block still decodes, the bytes after it must not pass."""
    path = tmp_path / "a.zarr"
    _sharded(path, [ZstdCodec()])

    def edit(body: bytes, entries: np.ndarray) -> bytes:
        offset, length = (int(x) for x in entries[5])
        at = offset + length // 2
        entries[5, 1] += 8
        entries[entries[:, 0] > offset, 0] += 8
        return body[:at] + bytes.fromhex("204d6354c04f6d71") + body[at:]

    _edit_shard(path, edit)
    _reads_raise(path)


def test_bytes_after_a_blosc_stream_are_an_error(tmp_path: Path) -> None:
    """Four bytes after inner chunk 5's zstd stream inside its Blosc frame, with the stream's
    length, the frame's size and the index entry grown to hold them (c-blosc refuses it)."""
    path = tmp_path / "a.zarr"
    _sharded(path, [BloscCodec(cname="zstd", shuffle="shuffle")], shape=64, inner=16)

    def edit(body: bytes, entries: np.ndarray) -> bytes:
        offset, length = (int(x) for x in entries[5])
        assert not body[offset + 2] & 0x02  # a compressed frame, not a copy
        frame = bytearray(body[offset : offset + length]) + b"\xde\xad\xbe\xef"
        struct.pack_into("<I", frame, 12, len(frame))  # the frame's size
        stream = struct.unpack_from("<i", frame, 20)[0]
        struct.pack_into("<i", frame, 20, stream + 4)  # its one stream's length
        entries[5, 1] += 4
        entries[entries[:, 0] > offset, 0] += 4
        return body[:offset] + bytes(frame) + body[offset + length :]

    _edit_shard(path, edit)
    _reads_raise(path, inner=16)


def test_gzip_members_and_what_may_follow_them(tmp_path: Path) -> None:
    """A gzip chunk may hold further members and zero padding (Python's gzip reads them);
    any other bytes after the stream are an error, also where a shard index entry covers
    another inner chunk's member and more."""
    path = tmp_path / "a.zarr"
    values = _sharded(path, [GzipCodec(level=1)])
    _edit_shard(path, lambda body, entries: body)
    np.testing.assert_array_equal(xzaro.open_array(str(path))[...], values)

    def grow(tail: bytes):
        def edit(body: bytes, entries: np.ndarray) -> bytes:
            offset, length = (int(x) for x in entries[5])
            entries[5, 1] += len(tail)
            entries[entries[:, 0] > offset, 0] += len(tail)
            return body[: offset + length] + tail + body[offset + length :]

        return edit

    _edit_shard(path, grow(b"\x00" * 7))  # zero padding after the member: the same values
    np.testing.assert_array_equal(xzaro.open_array(str(path))[...], values)
    _edit_shard(path, grow(b"junk"))
    _reads_raise(path)

    other = tmp_path / "b.zarr"
    _sharded(other, [GzipCodec(level=1)])

    def cover(body: bytes, entries: np.ndarray) -> bytes:
        entries[5] = (entries[0, 0], entries[0, 1] + 1)
        return body

    _edit_shard(other, cover)
    _reads_raise(other)


def test_a_hex_fill_value_of_another_width_is_an_error(tmp_path: Path) -> None:
    """``"0x7fc00000"`` on a float64 (zarr-python reads it as NaN; zero-extended it is a tiny
    denormal): neither is guessed, the fill value must spell the type's whole bit pattern."""
    path = tmp_path / "a.zarr"
    zarr.create_array(str(path), shape=(8,), chunks=(4,), dtype="float64", fill_value=np.nan)
    doc = json.loads((path / "zarr.json").read_text())
    for fill in ["0x7fc00000", "0x7ff8", "0x01", "0x7ff800000000000g", "0x7ff8000000000000 "]:
        doc["fill_value"] = fill
        (path / "zarr.json").write_text(json.dumps(doc))
        with pytest.raises(MetadataError, match="16 hex digits") as caught:
            xzaro.open_array(str(path))
        assert caught.value.field == "fill_value" and caught.value.key == "zarr.json"
        assert str(caught.value).count("url=") == 1  # said once, not wrapped again
    doc["fill_value"] = "0x7ff8000000000001"
    (path / "zarr.json").write_text(json.dumps(doc))
    fill = xzaro.open_array(str(path))[0]
    assert np.array(fill).view("<u8") == 0x7FF8000000000001


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_chunks_and_selections_no_array_can_hold(tmp_path: Path, zarr_format: int) -> None:
    """A chunk shape of more bytes than an array can have, and a selection of as many, are
    OutOfMemoryError naming the store (numpy says ValueError for them)."""
    path = tmp_path / "a.zarr"
    zarr.create_array(
        str(path), shape=(40, 50), chunks=(16, 16), dtype="float64", zarr_format=zarr_format
    )[...] = 1.0
    name = ".zarray" if zarr_format == 2 else "zarr.json"
    doc = json.loads((path / name).read_text())
    if zarr_format == 2:
        doc["chunks"] = [2**31, 2**31]
    else:
        doc["chunk_grid"]["configuration"]["chunk_shape"] = [2**62, 2**62]
    (path / name).write_text(json.dumps(doc))
    with pytest.raises(OutOfMemoryError) as caught:
        xzaro.open_array(str(path))[0, 0]
    assert caught.value.url == str(path)

    zarr.create_array(str(path), shape=(40, 50), chunks=(16, 16), dtype="float32", overwrite=True)
    doc = json.loads((path / "zarr.json").read_text())
    doc["shape"] = [2**40, 2**40]
    (path / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(OutOfMemoryError):
        xzaro.open_array(str(path))[...]
    assert xzaro.open_array(str(path))[0, 0:3].tolist() == [0.0, 0.0, 0.0]


def test_a_corrupt_inner_chunk_leaves_no_crash_behind(tmp_path: Path) -> None:
    """A zstd inner chunk of an edge shard whose entry says one byte: the read raises
    DecodeError, and the next garbage collection does not crash Python (before 3.12.7 a cffi
    buffer of a memoryview, kept alive by the error's traceback, could be cleared under its
    export: CPython gh-77894)."""
    path = tmp_path / "a.zarr"
    array = zarr.create(
        (200, 150),
        chunks=(128, 128),
        dtype="float32",
        store=str(path),
        zarr_format=3,
        fill_value=0,
        codecs=[ShardingCodec(chunk_shape=(64, 64), codecs=[BytesCodec(), ZstdCodec()])],
    )
    array[...] = np.arange(200 * 150, dtype="float32").reshape(200, 150)
    shard = path / "c" / "1" / "0"  # 2 x 2 inner chunks
    blob = bytearray(shard.read_bytes())
    index_at = len(blob) - (16 * 4 + 4)
    offset = struct.unpack_from("<Q", blob, index_at)[0]
    struct.pack_into("<QQ", blob, index_at, offset, 1)
    struct.pack_into("<I", blob, len(blob) - 4, crc32c.crc32c(bytes(blob[index_at:-4])))
    shard.write_bytes(bytes(blob))
    script = textwrap.dedent(
        f"""
        import gc, xzaro
        def read():
            try:
                xzaro.open_array({str(path)!r})[...]
            except xzaro.errors.DecodeError as e:
                print("DecodeError", e.key)
        read()
        gc.collect()
        print("survived")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["DecodeError", "c/1/0", "survived"]


def test_bytes_after_a_zlib_stream_read_as_numcodecs_reads_them(tmp_path: Path) -> None:
    """A V2 zlib chunk followed by stray bytes: ``zlib.decompress`` and numcodecs read the
    stream and leave what follows it (its Adler-32 has checked the stream), so does xzaro."""
    import numcodecs

    path = tmp_path / "a.zarr"
    array = zarr.create_array(
        str(path),
        shape=(8, 8),
        chunks=(8, 8),
        dtype="int32",
        zarr_format=2,
        compressors=numcodecs.Zlib(level=1),
    )
    array[...] = np.arange(64, dtype="int32").reshape(8, 8)
    chunk = path / "0.0"
    chunk.write_bytes(chunk.read_bytes() + b"stray")
    np.testing.assert_array_equal(xzaro.open_array(str(path))[...], zarr.open_array(str(path))[...])


@pytest.mark.parametrize(
    ("codec", "setting", "value"),
    [
        ("zstd", "level", "<U3"),
        ("zstd", "level", 2**32),
        ("zstd", "checksum", "yes"),
        ("blosc", "clevel", "."),
        ("blosc", "blocksize", [1e300, 1e300]),
        ("blosc", "typesize", [1, 1, 1]),
        ("blosc", "typesize", 0),
        ("gzip", "level", 10),
        ("gzip", "level", True),
    ],
)
def test_codec_settings_of_the_wrong_kind_are_refused_at_open(
    tmp_path: Path, codec: str, setting: str, value: object
) -> None:
    """A codec setting of the wrong type or out of range is a MetadataError when the array is
    opened; before, reads passed (they need no level) and an append crashed in the compressor
    with TypeError or OverflowError."""
    path = tmp_path / "a.zarr"
    compressor = {"zstd": ZstdCodec(), "blosc": BloscCodec(), "gzip": GzipCodec()}[codec]
    zarr.create_array(str(path), shape=(8,), chunks=(4,), dtype="int32", compressors=compressor)
    doc = json.loads((path / "zarr.json").read_text())
    entry = next(c for c in doc["codecs"] if c["name"] == codec)
    entry["configuration"][setting] = value
    (path / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(MetadataError, match=f"{codec} {setting}") as caught:
        xzaro.open_array(str(path))
    assert caught.value.field == "codecs" and caught.value.key == "zarr.json"


def test_zstd_levels_numcodecs_writes_are_read(tmp_path: Path) -> None:
    """numcodecs records a zstd level above 22 as given (libzstd clamps it): such an array is
    read, and appended to."""
    import numcodecs
    import xarray as xr

    path = str(tmp_path / "a.zarr")
    first = xr.Dataset({"v": ("x", np.arange(4.0))})
    encoding = {"v": {"compressors": [numcodecs.Zstd(level=30)], "chunks": (4,)}}
    first.to_zarr(path, zarr_format=2, encoding=encoding, consolidated=False)
    assert xzaro.open_array(path, "v")[...].tolist() == [0.0, 1.0, 2.0, 3.0]
    second = xr.Dataset({"v": ("x", np.arange(4.0, 8.0))})
    second.zaro.to_store(path, mode="a", append_dim="x", consolidated=False)
    assert zarr.open_array(path, path="v")[...].tolist() == list(np.arange(8.0))
    assert json.loads((tmp_path / "a.zarr" / "v" / ".zarray").read_text())["compressor"] == {
        "id": "zstd",
        "level": 30,
    }


# --- the second campaign: variable-length data, V2 filters, data types and their fill values ---


def _edit_doc(path: Path, name: str, edit) -> None:
    doc = json.loads((path / name).read_text())
    edit(doc)
    (path / name).write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "data_type",
    [
        {"name": "fixed_length_utf32", "configuration": {"length_bytes": 2**40}},
        {"name": "null_terminated_bytes", "configuration": {"length_bytes": -1}},
        {"name": "raw_bytes", "configuration": {"length_bytes": True}},
        "r68719476736",
        "r8589934592",  # 1 GiB elements: its fill value was built, then printed whole (SIGSEGV)
        {"name": "numpy.datetime64", "configuration": {"unit": "s", "scale_factor": 0}},
        {"name": "numpy.datetime64", "configuration": {"unit": "generic", "scale_factor": 1}},
        {"name": "numpy.timedelta64", "configuration": {"unit": "s", "scale_factor": "2"}},
        {"name": "numpy.datetime64", "configuration": {"unit": "s", "scale_factor": True}},
    ],
    ids=str,
)
def test_data_types_of_impossible_sizes_or_units_are_refused(
    tmp_path: Path, data_type: object
) -> None:
    """Each was numpy's TypeError, a crash, or another data type than the one stored (a zero
    scale, a generic unit that holds nothing but NaT)."""
    path = tmp_path / "a.zarr"
    zarr.create_array(str(path), shape=(8,), chunks=(4,), dtype="int64", fill_value=0)
    _edit_doc(path, "zarr.json", lambda doc: doc.update(data_type=data_type, fill_value=0))
    script = textwrap.dedent(
        f"""
        import xzaro
        try:
            xzaro.open_array({str(path)!r})[...]
        except xzaro.ZaroError as e:
            print(type(e).__name__, e.field)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[1] == "data_type", done.stdout


@pytest.mark.parametrize("dtype", ["(2,)i4", "|V2147483647", "|S2147483647"])
def test_v2_data_types_no_array_takes_are_refused(tmp_path: Path, dtype: str) -> None:
    """A subarray type is only a field of a structured type (numpy would add a dimension to
    every array), and elements of 2 GiB made their fill value at open."""
    path = tmp_path / "a.zarr"
    zarr.create_array(str(path), shape=(8,), chunks=(4,), dtype="<i4", zarr_format=2)
    _edit_doc(path, ".zarray", lambda doc: doc.update(dtype=dtype, fill_value=None))
    with pytest.raises((MetadataError, xzaro.errors.UnsupportedError)) as caught:
        xzaro.open_array(str(path))
    assert caught.value.field == "dtype"


@pytest.mark.parametrize("filters", [0, False, "", {}])
def test_v2_filters_that_are_not_a_list_are_refused(tmp_path: Path, filters: object) -> None:
    """A Delta-encoded array whose ``filters`` became a falsy non-list read its chunks
    undecoded; only ``null`` and a list say what the filters are."""
    import numcodecs

    path = tmp_path / "a.zarr"
    array = zarr.create_array(
        str(path),
        shape=(8,),
        chunks=(4,),
        dtype="<i4",
        zarr_format=2,
        filters=[numcodecs.Delta(dtype="<i4")],
        compressors=None,
    )
    array[...] = np.arange(8) * 3
    _edit_doc(path, ".zarray", lambda doc: doc.update(filters=filters))
    with pytest.raises(MetadataError, match="filters must be null or a list"):
        xzaro.open_array(str(path))


def test_chunks_their_codecs_cannot_make_into_the_data_type_are_decode_errors(
    tmp_path: Path,
) -> None:
    """A string array relabelled int32: its strings are not numbers (numpy's ValueError, now a
    DecodeError naming the chunk)."""
    path = tmp_path / "a.zarr"
    zarr.create_array(str(path), shape=(4,), chunks=(4,), dtype=str)[...] = ["a", "b", "c", "d"]
    _edit_doc(path, "zarr.json", lambda doc: doc.update(data_type="int32", fill_value=0))
    with pytest.raises(DecodeError) as caught:
        xzaro.open_array(str(path))[...]
    assert caught.value.key == "c/0"


@pytest.mark.parametrize("sharded", [False, True])
def test_missing_elements_of_a_bytes_array_are_bytes(tmp_path: Path, sharded: bool) -> None:
    """A never-written chunk of a variable-length bytes array reads as ``b""`` (or the
    base64 fill value's bytes), also inside shards and with a V2 ``null`` fill value; a fill
    value neither base64 nor text is an error."""
    path = tmp_path / "a.zarr"
    array = zarr.create_array(
        str(path),
        shape=(20,),
        chunks=(5,),
        shards=(20,) if sharded else None,
        dtype=zarr.dtype.VariableLengthBytes(),
        compressors=None,
    )
    array[5:] = [b"x%d" % i for i in range(15)]
    for fill, expected in [("", b""), ("AAAA", b"\x00\x00\x00")]:
        _edit_doc(path, "zarr.json", lambda doc, fill=fill: doc.update(fill_value=fill))
        got = xzaro.open_array(str(path))[:6].tolist()
        assert got == [expected] * 5 + [b"x0"]
        assert got == zarr.open_array(str(path))[:6].tolist()
    _edit_doc(path, "zarr.json", lambda doc: doc.update(fill_value="\udcff"))
    with pytest.raises(MetadataError, match="neither base64 nor text"):
        xzaro.open_array(str(path))

    v2 = tmp_path / "b.zarr"
    zarr.create_array(
        str(v2),
        shape=(10,),
        chunks=(5,),
        dtype=zarr.dtype.VariableLengthBytes(),
        zarr_format=2,
        compressors=None,
    )[5:] = [b"y"] * 5
    _edit_doc(v2, ".zarray", lambda doc: doc.update(fill_value=None))
    assert xzaro.open_array(str(v2))[:6].tolist() == [b""] * 5 + [b"y"]


@pytest.mark.parametrize("length", [0, 1, 3, 21, False])
def test_string_lengths_that_cut_code_points_are_refused(tmp_path: Path, length: object) -> None:
    """``fixed_length_utf32`` counts bytes of whole UTF-32 code points: a length of 1 or 3 read
    every string cut to nothing or to one character."""
    path = tmp_path / "a.zarr"
    zarr.create_array(str(path), shape=(2,), chunks=(2,), dtype=str)[...] = ["hello", "ab"]
    data_type = {"name": "fixed_length_utf32", "configuration": {"length_bytes": length}}
    _edit_doc(path, "zarr.json", lambda doc: doc.update(data_type=data_type, fill_value=""))
    with pytest.raises(MetadataError, match="multiple of 4"):
        xzaro.open_array(str(path))


@pytest.mark.parametrize("fill", ["AAAA", "Infinity", "2020-01-01", [1, 2]])
def test_raw_fill_values_must_hold_the_whole_element(tmp_path: Path, fill: object) -> None:
    """A structured type's fill value is base64 (or a list) of all its bytes: too few bytes
    were padded, text that is not base64 was decoded anyway."""
    path = tmp_path / "a.zarr"
    zarr.create_array(
        str(path), shape=(4,), chunks=(2,), dtype=[("a", "<i4"), ("b", "<f8")], zarr_format=2
    )
    _edit_doc(path, ".zarray", lambda doc: doc.update(fill_value=fill))
    with pytest.raises(MetadataError) as caught:
        xzaro.open_array(str(path))
    assert caught.value.field == "fill_value"
