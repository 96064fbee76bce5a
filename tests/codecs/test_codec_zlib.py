"""The ``zlib`` codec: round trips, both JSON forms (V3 as ``numcodecs.zlib``), bounded decoding."""

from __future__ import annotations

import codec_checks as check
import numcodecs
import numpy as np
import pytest
from helpers import values

from xzaro.codecs import BytesCodec, NumcodecsCodec, ZlibCodec, codec_from_json, codec_from_v2


@pytest.mark.parametrize("level", [1, 6, 9])
def test_round_trip(level: int) -> None:
    check.round_trip([BytesCodec(), ZlibCodec(level)], values("<i8", (7, 9), "zlib"))


def test_json_both_formats() -> None:
    codec = ZlibCodec(4)
    doc = codec.to_json()
    assert doc == {"name": "numcodecs.zlib", "configuration": {"level": 4}}
    # V3 has no core zlib: what xzaro writes reads back as numcodecs' zlib, with xzaro's decoder
    again = codec_from_json(doc)
    assert isinstance(again, NumcodecsCodec) and again.to_json() == doc
    assert codec_from_json({"name": "zlib", "configuration": {"level": 4}}) == codec
    check.v2_json(codec)
    assert codec_from_v2({"id": "zlib"}) == ZlibCodec(1)  # numcodecs' default level


def test_decodes_numcodecs_streams() -> None:
    data = values("<f4", (50,), "zlib-numcodecs")
    check.decodes_stream_of(numcodecs.Zlib(level=2), [BytesCodec(), ZlibCodec(2)], data)


def test_bounded_decode() -> None:
    chain = [BytesCodec(), ZlibCodec(1)]
    check.bounded_decode(chain, np.arange(16, dtype="<i4"), np.arange(20, dtype="<i4"))


def test_config_errors() -> None:
    check.config_errors("zlib", [({"level": 1, "window": 15}, "window")])
