"""Any numcodecs codec in a chain: ``numcodecs.<id>`` V3 names and V2 ids, its kind from its id,
xzaro's bounded decoders for the streams it knows, the opt-in for codecs that run code."""

from __future__ import annotations

import codec_checks as check
import numcodecs
import numpy as np
import pytest
from helpers import values

from xzaro.codecs import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    BytesCodec,
    NumcodecsCodec,
    codec_from_json,
    codec_from_v2,
)
from xzaro.errors import UnsafeCodecError, UnsupportedError


def _codec(codec_id: str, **config: object) -> NumcodecsCodec:
    return NumcodecsCodec.from_id(codec_id, config)


def test_round_trip_filter_and_compressor() -> None:
    data = values("<i4", (40,), "numcodecs")
    check.round_trip([_codec("delta", dtype="<i4"), BytesCodec(), _codec("lz4")], data)
    check.round_trip([BytesCodec(), _codec("bz2", level=1)], data)


def test_kind_comes_from_the_id() -> None:
    assert _codec("delta", dtype="<i4").kind == ARRAY_ARRAY
    assert _codec("vlen-array", dtype="<i4").kind == ARRAY_BYTES
    assert _codec("lzma").kind == BYTES_BYTES
    # a V2 filter works on the chunk array whatever numcodecs calls it
    assert codec_from_v2({"id": "zstd", "level": 1}, filter=True).kind == ARRAY_ARRAY


def test_json_both_formats() -> None:
    for codec in (_codec("delta", dtype="<i4"), _codec("lz4", acceleration=2)):
        check.v3_json(codec)
        check.v2_json(codec)
        assert codec.to_json()["name"] == f"numcodecs.{codec.codec_id}"


@pytest.mark.parametrize(
    "config",
    [
        {"name": "numcodecs.zlib", "configuration": {"level": 1}},
        {"name": "numcodecs.zstd", "configuration": {"level": 1}},
        {"name": "numcodecs.gzip", "configuration": {"level": 1}},
        {"name": "numcodecs.blosc", "configuration": {"cname": "lz4"}},
        {"name": "numcodecs.lz4", "configuration": {"acceleration": 1}},
        {"name": "numcodecs.bz2", "configuration": {"level": 1}},
    ],
    ids=lambda c: c["name"],
)
def test_bounded_decode(config: dict) -> None:
    chain = [BytesCodec(), codec_from_json(config)]
    check.bounded_decode(chain, np.arange(16, dtype="<i4"), np.arange(20, dtype="<i4"))


def test_reads_numcodecs_streams_with_xzaros_decoders() -> None:
    data = values("<f8", (33,), "numcodecs-own")
    for codec in (numcodecs.Zstd(level=2), numcodecs.Blosc("zstd", 2, 2), numcodecs.GZip(2)):
        config = codec.get_config()
        wrapper = codec_from_json(
            {"name": f"numcodecs.{config.pop('id')}", "configuration": config}
        )
        check.decodes_stream_of(codec, [BytesCodec(), wrapper], data)


def test_config_errors() -> None:
    check.config_errors("numcodecs.lz4", [({"acceleration": "fast", "x": 1}, "lz4")])
    with pytest.raises(UnsupportedError, match="not in numcodecs"):
        codec_from_json({"name": "numcodecs.no_such_codec"})


def test_unsafe_codec_refused() -> None:
    with pytest.raises(UnsafeCodecError):
        codec_from_json({"name": "numcodecs.pickle"})
    with pytest.raises(UnsafeCodecError):
        codec_from_v2({"id": "pickle"})
    assert codec_from_v2({"id": "pickle"}, allow_unsafe=True) is not None
