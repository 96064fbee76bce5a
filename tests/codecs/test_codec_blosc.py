"""The ``blosc`` codec: every compressor and shuffle, ``typesize`` from the data type, both JSON
forms, the one list of compressor and shuffle names, encoding into a buffer, bounded decoding."""

from __future__ import annotations

import codec_checks as check
import numcodecs
import numpy as np
import pytest
import zarr.codecs
from helpers import assert_same, values
from numcodecs import blosc

from xzaro.codecs import (
    BLOSC_MAX_OVERHEAD,
    BloscCodec,
    BytesCodec,
    ChunkSpec,
    codec_from_json,
    codec_from_v2,
)
from xzaro.codecs import blosc as blosc_module
from xzaro.codecs.blosc import BLOSC_CNAMES, BLOSC_SHUFFLES, BLOSC_WRITTEN_CNAMES
from xzaro.errors import DecodeError
from xzaro.writers import BloscCompressionParams


@pytest.mark.parametrize("cname", BLOSC_WRITTEN_CNAMES)
@pytest.mark.parametrize("shuffle", BLOSC_SHUFFLES)
def test_round_trip(cname: str, shuffle: str) -> None:
    data = values("<f8", (30, 7), f"blosc-{cname}")
    check.round_trip([BytesCodec(), BloscCodec(cname, 5, shuffle)], data)


def test_json_both_formats() -> None:
    codec = BloscCodec("zstd", 3, "bitshuffle", 4, 256)
    check.v3_json(codec)
    check.v2_json(BloscCodec("zstd", 3, "bitshuffle", None, 256))
    # V2 has no typesize: numcodecs takes it from the array it compresses
    assert codec.to_v2() == {
        "id": "blosc",
        "cname": "zstd",
        "clevel": 3,
        "shuffle": 2,
        "blocksize": 256,
    }
    assert codec_from_v2({"id": "blosc"}) == BloscCodec("lz4", 5, "shuffle", None, 0)


def test_shuffle_names_are_numcodecs_numbers() -> None:
    numbers = (numcodecs.Blosc.NOSHUFFLE, numcodecs.Blosc.SHUFFLE, numcodecs.Blosc.BITSHUFFLE)
    assert tuple(BLOSC_SHUFFLES[n] for n in numbers) == ("noshuffle", "shuffle", "bitshuffle")
    for number, name in enumerate(BLOSC_SHUFFLES):
        assert BloscCodec(shuffle=number).shuffle == name
    assert BloscCodec(shuffle=numcodecs.Blosc.AUTOSHUFFLE).shuffle == "shuffle"


def _zarr_cnames() -> set[str]:
    """zarr-python's Blosc compressor names: ``BLOSC_CNAME`` in newer releases (in 3.4 the
    ``BloscCname`` enum is deprecated and cannot be iterated), else that enum."""
    names = getattr(zarr.codecs.blosc, "BLOSC_CNAME", None)
    if names is not None:
        return set(names)
    return {c.value for c in zarr.codecs.BloscCname}


def test_compressor_names() -> None:
    """Every name of the V3 spec (zarr-python's ``BloscCname``) is read; the ones written are
    those numcodecs' c-blosc has (it lacks snappy), and only those make a writer's params."""
    assert set(BLOSC_CNAMES) == _zarr_cnames()
    assert set(BLOSC_WRITTEN_CNAMES) == set(blosc.list_compressors())
    for cname in BLOSC_CNAMES:
        assert BloscCodec(cname).cname == cname
        if cname in BLOSC_WRITTEN_CNAMES:
            assert BloscCompressionParams(cname).codec() == BloscCodec(cname, 5, "shuffle")
        else:
            with pytest.raises(ValueError, match="cname"):
                BloscCompressionParams(cname)


@pytest.mark.parametrize("dtype", ["u1", "<i2", "<f8", "<c16", "V3", "|S5"])
def test_typesize_is_resolved_from_the_data_type(dtype: str) -> None:
    spec = ChunkSpec((4,), np.dtype(dtype))
    codec = BloscCodec("lz4", 5, "shuffle").evolve_from_spec(spec)
    assert codec.to_json()["configuration"]["typesize"] == np.dtype(dtype).itemsize
    assert codec.evolve_from_spec(ChunkSpec((4,), np.dtype("<f4"))) is codec  # set: kept
    assert BloscCompressionParams("lz4", 5).to_v3_json(np.dtype(dtype)) == codec.to_json()


def test_variable_length_chunks_record_typesize_one() -> None:
    """A string array's shuffled frames have their typesize recorded, as the V3 spec requires
    (zarrs refuses a shuffled blosc codec without one), and are made of single bytes, as
    numcodecs makes a V2 string array's and zarr-python records a V3 one's."""
    codec = BloscCodec("zstd", 5, "shuffle").evolve_from_spec(ChunkSpec((4,), np.dtype(object)))
    assert codec.to_json()["configuration"]["typesize"] == 1
    assert codec.encode_bytes(bytes(range(64)))[3] == 1
    assert codec.encode_bytes(bytes(range(64))) == bytes(
        numcodecs.Blosc("zstd", 5, numcodecs.Blosc.SHUFFLE).encode(bytes(range(64)))
    )


@pytest.mark.parametrize("typesize", [256, 400, 2**20])
def test_typesizes_beyond_a_frame_header_are_read_and_written_as_c_blosc_does(
    typesize: int,
) -> None:
    """zarr-python records a ``<U100`` array's typesize as 400: any positive typesize is read,
    and frames are made of single bytes where it does not fit their header (as c-blosc
    does with numcodecs' typesize)."""
    codec = codec_from_json(
        {
            "name": "blosc",
            "configuration": {
                "cname": "lz4",
                "clevel": 5,
                "shuffle": "shuffle",
                "typesize": typesize,
                "blocksize": 0,
            },
        }
    )
    assert codec.typesize == typesize
    assert codec.to_json()["configuration"]["typesize"] == typesize
    data = np.frombuffer(bytes(range(256)) * 8, np.uint8)
    frame = codec.encode_bytes(data)
    assert frame[3] == 1
    assert frame == bytes(blosc.compress(data, b"lz4", 5, 1, 0))
    out = np.zeros(data.nbytes + BLOSC_MAX_OVERHEAD, np.uint8)
    n = codec.encode_into(data, out)
    assert bytes(out[:n]) == frame
    assert bytes(codec.decode_bytes(frame, data.nbytes)) == data.tobytes()


def test_bounded_decode() -> None:
    chain = [BytesCodec(), BloscCodec("lz4", 5, "shuffle")]
    check.bounded_decode(chain, np.arange(16, dtype="<i4"), np.arange(20, dtype="<i4"))


def test_config_errors() -> None:
    check.config_errors(
        "blosc",
        [
            ({"cname": 5}, "cname"),
            ({"cname": "lz5"}, "cname"),
            ({"shuffle": "byte"}, "shuffle"),
            ({"shuffle": 7}, "shuffle"),
            ({"cname": "lz4", "level": 5}, "level"),
        ],
    )


@pytest.mark.parametrize("cname", ["lz4", "zstd", "blosclz", "zlib"])
@pytest.mark.parametrize("shuffle", ["noshuffle", "shuffle", "bitshuffle"])
@pytest.mark.parametrize("dtype", ["u1", "<u2", "<f4", "<f8", "V3"])
def test_blosc_encode_into_makes_numcodecs_frames(cname: str, shuffle: str, dtype: str) -> None:
    """Compressing into a caller's buffer gives the frame numcodecs makes, byte for byte."""
    rng = np.random.default_rng(3)
    raw = (rng.normal(0, 40, 3000) + 1000).astype("<f8").view("u1")[: 3 * 2000]
    data = np.frombuffer(raw.tobytes(), dtype=np.dtype(dtype))
    codec = BloscCodec(cname, 4, shuffle, None).evolve_from_spec(ChunkSpec(None, data.dtype))
    out = np.zeros(data.nbytes + BLOSC_MAX_OVERHEAD, np.uint8)
    n = codec.encode_into(data, out)
    assert n is not None
    assert bytes(out[:n]) == codec.encode_bytes(data)
    assert codec.encode_into(data, out[: data.nbytes]) is None  # too small


def test_pipeline_encodes_into_the_callers_buffer() -> None:
    data = values("<i4", (64,), "blosc-out")
    pipe = check.pipeline([BytesCodec(), BloscCodec("zstd", 3, "shuffle")], data)
    out = np.zeros(data.nbytes + BLOSC_MAX_OVERHEAD, np.uint8)
    view = pipe.encode(data, out)
    assert isinstance(view, memoryview) and view.obj is out
    assert bytes(view) == bytes(pipe.encode(data))
    assert_same(pipe.decode(bytes(view)), data)


@pytest.mark.parametrize("cname", ["lz4", "zstd", "blosclz", "zlib", "lz4hc"])
@pytest.mark.parametrize("shuffle", [0, 1, 2])
@pytest.mark.parametrize("size", [0, 1, 255, 1024, 70_001, 1 << 20])
def test_frames_decode_as_numcodecs_decodes_them(cname: str, shuffle: int, size: int) -> None:
    """numcodecs' c-blosc, called directly, gives numcodecs' bytes: into the caller's buffer
    when it fits, into a new one when the caller's is read-only, not contiguous or missing."""
    assert blosc_module._blosc_decompress_ctx() is not None  # the direct call is under test
    rng = np.random.default_rng(size)
    data = (rng.normal(0, 40, size // 4 + 1) + 1000).astype("<f4").view("u1")[:size].copy()
    frame = blosc.compress(data, cname.encode(), 5, shuffle, 0)
    codec = BloscCodec(cname, 5, BLOSC_SHUFFLES[shuffle], 4)
    expected = bytes(blosc.decompress(frame)) if size else b""  # numcodecs refuses 0 bytes
    out = np.zeros(size, np.uint8)
    assert codec.decode_bytes(frame, size, out) is out
    assert bytes(out) == expected
    readonly = np.zeros(size, np.uint8)
    readonly.flags.writeable = False
    strided = np.zeros(2 * size, np.uint8)[::2]
    unusable = [None, readonly, np.zeros(size + 1, np.uint8)]
    for given in unusable + ([strided] if size > 1 else []):
        decoded = codec.decode_bytes(memoryview(frame + b"pad"), size, given)
        assert decoded is not given and bytes(decoded) == expected
    assert not readonly.any() and not strided.any()


def test_corrupt_frames_are_decode_errors() -> None:
    """A frame c-blosc refuses raises DecodeError, naming the missing compressor when that is
    the reason; nothing is written past the caller's buffer."""
    data = np.random.default_rng(1).integers(0, 1000, 4096).astype("<i4")
    frame = bytearray(blosc.compress(data, b"zstd", 5, 1, 0))
    codec = BloscCodec("zstd", 5, "shuffle", 4)
    broken = bytearray(frame)
    broken[24:28] = bytes(4)  # the magic number of the block's zstd frame
    guard = np.full(data.nbytes + 64, 7, np.uint8)
    with pytest.raises(DecodeError, match="blosc frame is corrupt"):
        codec.decode_bytes(bytes(broken), data.nbytes, guard[: data.nbytes])
    assert (guard[data.nbytes :] == 7).all()
    snappy = bytearray(frame)
    snappy[2] = (snappy[2] & 0x1F) | (2 << 5)  # the compressor code of snappy
    with pytest.raises(DecodeError, match="compressed with snappy"):
        codec.decode_bytes(bytes(snappy), data.nbytes)
