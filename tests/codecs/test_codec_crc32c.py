"""The ``crc32c`` codec: the checksum appended and verified, its JSON, its place in a V2 chain."""

from __future__ import annotations

import struct

import codec_checks as check
import crc32c
import numpy as np
import pytest
from helpers import assert_same, values

from xzaro.codecs import BytesCodec, Crc32cCodec, ZstdCodec, codec_from_v2, v2_codec_json
from xzaro.errors import ChecksumError


def test_round_trip() -> None:
    data = values("<f4", (5, 6), "crc32c")
    encoded = check.round_trip([BytesCodec(), Crc32cCodec()], data)
    assert encoded[-4:] == struct.pack("<I", crc32c.crc32c(data.tobytes()))


def test_json_both_formats() -> None:
    check.v3_json(Crc32cCodec())
    check.v2_json(Crc32cCodec())
    # V2 {"id": "crc32c"} is read as numcodecs' CRC32C, which decodes the same stream
    data = values("<f8", (4,), "crc32c-v2")
    written = bytes(check.pipeline([BytesCodec(), Crc32cCodec()], data).encode(data))
    read_back = check.pipeline([BytesCodec(), codec_from_v2({"id": "crc32c"})], data)
    assert_same(read_back.decode(written), data)


def test_v2_compressor_only_when_alone() -> None:
    assert v2_codec_json((BytesCodec(), Crc32cCodec())) == (None, {"id": "crc32c"})
    filters, compressor = v2_codec_json((BytesCodec(), ZstdCodec(1), Crc32cCodec()))
    assert compressor is None
    assert filters == [{"id": "zstd", "level": 1}, {"id": "crc32c"}]


def test_crc32c_mismatch_raises() -> None:
    arr = np.arange(16, dtype="<i4")
    pipe = check.pipeline([BytesCodec(), Crc32cCodec()], arr)
    good = pipe.encode(arr)
    assert good[-4:] == struct.pack("<I", crc32c.crc32c(arr.tobytes()))
    assert_same(pipe.decode(good), arr)
    bad = bytearray(good)
    bad[5] ^= 0x01
    with pytest.raises(ChecksumError):
        pipe.decode(bytes(bad))
    with pytest.raises(ChecksumError):
        pipe.decode(good[:2])
