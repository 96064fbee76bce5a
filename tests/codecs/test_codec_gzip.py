"""The ``gzip`` codec: round trips, both JSON forms, numcodecs' streams, bounded decoding."""

from __future__ import annotations

import logging
import zlib

import codec_checks as check
import numcodecs
import numpy as np
import pytest
from helpers import assert_same, values

from xzaro.codecs import BytesCodec, GzipCodec, codec_from_v2


@pytest.mark.parametrize("level", [1, 5, 9])
def test_round_trip(level: int) -> None:
    encoded = check.round_trip([BytesCodec(), GzipCodec(level)], values("<f8", (40, 3), "gzip"))
    assert encoded[:2] == b"\x1f\x8b"


def test_json_both_formats() -> None:
    check.v3_json(GzipCodec(7))
    check.v2_json(GzipCodec(7))
    assert codec_from_v2({"id": "gzip"}) == GzipCodec(5)  # numcodecs' default level


def test_decodes_numcodecs_streams() -> None:
    data = values("<i4", (100,), "gzip-numcodecs")
    check.decodes_stream_of(numcodecs.GZip(level=3), [BytesCodec(), GzipCodec(3)], data)


def test_bounded_decode() -> None:
    chain = [BytesCodec(), GzipCodec(1)]
    check.bounded_decode(chain, np.arange(16, dtype="<i4"), np.arange(20, dtype="<i4"))


def test_config_errors() -> None:
    check.config_errors("gzip", [({"level": 1, "lvl": 2}, "lvl")])


def test_gzip_declared_zlib_stream_is_read_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    arr = np.arange(100, dtype="<u2")
    stream = zlib.compress(arr.tobytes(), 5)
    assert stream[:2] != b"\x1f\x8b"
    pipe = check.pipeline([BytesCodec(), GzipCodec(5)], arr)
    with caplog.at_level(logging.INFO, logger="xzaro"):
        out = pipe.decode(stream)
    assert_same(out, arr)
    assert any("zlib" in r.getMessage() for r in caplog.records if r.name.startswith("xzaro"))
    # a real gzip stream logs nothing
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xzaro"):
        assert_same(pipe.decode(pipe.encode(arr)), arr)
    assert not [r for r in caplog.records if "zlib" in r.getMessage()]
