"""The ``zstd`` codec: levels, the content checksum, both JSON forms, bounded decoding."""

from __future__ import annotations

import codec_checks as check
import numcodecs
import numpy as np
import pytest
from helpers import values

from xzaro.codecs import BytesCodec, ZstdCodec, codec_from_v2
from xzaro.errors import DecodeError


@pytest.mark.parametrize(("level", "checksum"), [(0, False), (3, True), (-1, False), (22, False)])
def test_round_trip(level: int, checksum: bool) -> None:
    check.round_trip([BytesCodec(), ZstdCodec(level, checksum)], values("<c16", (6, 5), "zstd"))


@pytest.mark.parametrize("checksum", [False, True])
def test_json_both_formats(checksum: bool) -> None:
    codec = ZstdCodec(9, checksum)
    check.v3_json(codec)
    check.v2_json(codec)
    assert ("checksum" in codec.to_v2()) is checksum  # written as numcodecs writes it
    assert codec_from_v2({"id": "zstd"}) == ZstdCodec(0, False)


def test_decodes_numcodecs_streams() -> None:
    data = values("<u2", (64,), "zstd-numcodecs")
    check.decodes_stream_of(
        numcodecs.Zstd(level=5, checksum=True), [BytesCodec(), ZstdCodec(5, True)], data
    )


def test_bounded_decode() -> None:
    chain = [BytesCodec(), ZstdCodec(1, False)]
    check.bounded_decode(chain, np.arange(16, dtype="<i4"), np.arange(20, dtype="<i4"))


def test_config_errors() -> None:
    check.config_errors("zstd", [({"level": 1, "strategy": 2}, "strategy")])


def test_zstd_checksum_mismatch_raises() -> None:
    arr = np.arange(16, dtype="<i4")
    pipe = check.pipeline([BytesCodec(), ZstdCodec(1, True)], arr)
    good = bytearray(pipe.encode(arr))
    good[-1] ^= 0xFF  # the content checksum is the frame's last 4 bytes
    with pytest.raises(DecodeError):
        pipe.decode(bytes(good))


@pytest.mark.parametrize(("level", "checksum"), [(0, False), (5, True), (-3, False), (30, True)])
def test_frames_numcodecs_reads(level: int, checksum: bool) -> None:
    """Frames are made by per-thread libzstd contexts (through zstandard's cffi module; a level
    above 22 is taken as 22, as numcodecs takes it): numcodecs decodes every one, the header
    declares the size, and the checksum flag is set exactly when asked for."""
    data = values("<f8", (40, 25), "zstd-encode")
    frame = ZstdCodec(level, checksum).encode_bytes(data.tobytes())
    assert numcodecs.Zstd().decode(frame) == data.tobytes()
    descriptor = frame[4]
    assert bool(descriptor & 0x04) is checksum  # Content_Checksum_flag
    assert descriptor >> 6 or descriptor & 0x20  # a Frame_Content_Size field is present


def test_levels_beyond_the_bounds_are_clamped_as_numcodecs_does() -> None:
    data = values("<f8", (40, 25), "zstd-encode").tobytes()
    assert ZstdCodec(30, False).encode_bytes(data) == ZstdCodec(22, False).encode_bytes(data)


def test_frames_are_made_without_block_presplitting() -> None:
    """libzstd 1.5.7 pre-splits blocks by default (a quarter more time at level 3 for frames
    1-3% smaller); frames are made as numcodecs' and tensorstore's older libzstd make them."""
    from xzaro.codecs import zstd_contexts

    cffi = zstd_contexts.cffi_module()
    if cffi is None or not hasattr(cffi.lib, "ZSTD_c_blockSplitterLevel"):
        pytest.skip("libzstd before 1.5.7 has no block pre-splitting")
    ffi, lib = cffi.ffi, cffi.lib
    z, y, x = np.ogrid[:64, :64, :64]  # zarr_benchmarks' generator: compressible, in parts
    data = ((x + y * y // 32 + z**3) % 65536).astype("<u2").tobytes()

    def frame(splitter: int | None) -> bytes:
        cctx = ffi.gc(lib.ZSTD_createCCtx(), lib.ZSTD_freeCCtx)
        lib.ZSTD_CCtx_setParameter(cctx, lib.ZSTD_c_compressionLevel, 3)
        if splitter is not None:
            lib.ZSTD_CCtx_setParameter(cctx, lib.ZSTD_c_blockSplitterLevel, splitter)
        room = lib.ZSTD_compressBound(len(data))
        out = ffi.new("char[]", room)
        made = lib.ZSTD_compress2(cctx, out, room, data, len(data))
        assert not lib.ZSTD_isError(made)
        return ffi.buffer(out, made)[:]

    ours = ZstdCodec(3, False).encode_bytes(data)
    assert ours == frame(1) != frame(None)
    assert numcodecs.Zstd().decode(ours) == data
