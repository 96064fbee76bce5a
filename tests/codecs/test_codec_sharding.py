"""The ``sharding_indexed`` codec and its ``ShardIndex``: inner chunks, index locations, the
index as a value, nested codec chains in its JSON, corrupt indexes."""

from __future__ import annotations

import codec_checks as check
import numpy as np
import pytest
from helpers import values

from xzaro.codecs import (
    BytesCodec,
    ChunkSpec,
    Crc32cCodec,
    NumcodecsCodec,
    ShardIndex,
    ShardingCodec,
    ZstdCodec,
    codec_from_json,
)
from xzaro.errors import ChecksumError, DecodeError


def _sharding(location: str = "end") -> ShardingCodec:
    return ShardingCodec(
        (2, 3), (BytesCodec(), ZstdCodec(1)), (BytesCodec(), Crc32cCodec()), location
    )


@pytest.mark.parametrize("location", ["end", "start"])
def test_round_trip(location: str) -> None:
    data = values("<f8", (4, 6), f"shard-{location}")
    data[2:4, 0:3] = 0  # an inner chunk of fill: not stored
    codec = _sharding(location)
    encoded = check.round_trip([codec], data)
    index = codec.locate_index(encoded, data.shape)
    assert len(index) == 4
    assert [index.is_empty(i) for i in range(4)] == [False, False, True, False]
    assert index.get_chunk_slice(2) is None
    first = index.get_chunk_slice(0)
    assert first is not None and first.start == (
        codec.index_nbytes(data.shape) if location == "start" else 0
    )


def test_a_shard_of_fill_stores_only_its_index() -> None:
    codec = _sharding()
    data = np.zeros((4, 6))
    encoded = bytes(check.pipeline([codec], data).encode(data))
    assert len(encoded) == codec.index_nbytes(data.shape)
    assert codec.locate_index(encoded, data.shape).is_all_empty()


def test_shard_index_value() -> None:
    index = ShardIndex.create_empty(3)
    assert index.is_all_empty() and len(index) == 3
    index.set_chunk_slice(1, slice(10, 25))
    assert index.get_chunk_slice(1) == slice(10, 25)
    assert index.get_chunk_slice(0) is None and not index.is_all_empty()
    index.set_chunk_slice(1, None)
    assert index.is_all_empty()
    index.set_chunk_slice(2, slice(0, 40))
    index.check(40)
    with pytest.raises(DecodeError, match="outside the 39-byte shard"):
        index.check(39)
    codec = _sharding()
    shape = (2, 9)
    again = codec.decode_index(codec.encode_index(index, shape), shape)
    assert np.array_equal(again.entries, index.entries)


def test_zarrita_marker_and_corrupt_entries() -> None:
    empty = 2**64 - 1
    index = ShardIndex.from_pairs(np.array([[0, 8], [8, empty]], dtype=np.uint64))
    assert index.get_chunk_slice(0) == slice(0, 8) and index.get_chunk_slice(1) is None
    with pytest.raises(DecodeError, match="no offset"):
        ShardIndex.from_pairs(np.array([[empty, 8]], dtype=np.uint64))


def test_json_with_nested_chains() -> None:
    codec = _sharding("start")
    check.v3_json(codec)
    check.no_v2_form(codec)
    default = codec_from_json({"name": "sharding_indexed", "configuration": {"chunk_shape": [2]}})
    assert default == ShardingCodec((2,))
    assert default.index_codecs == (BytesCodec(), Crc32cCodec())
    inner = codec_from_json(
        {
            "name": "sharding_indexed",
            "configuration": {
                "chunk_shape": [2],
                "codecs": ["bytes", {"name": "numcodecs.zlib", "configuration": {"level": 1}}],
            },
        }
    )
    assert isinstance(inner, ShardingCodec) and isinstance(inner.codecs[1], NumcodecsCodec)


def test_bounded_decode() -> None:
    codec = _sharding()
    data = values("<i4", (4, 6), "shard-bounded")
    encoded = bytearray(check.pipeline([codec], data).encode(data))
    encoded[-10] ^= 0x40  # inside the index: its crc32c no longer matches
    with pytest.raises(ChecksumError):
        check.pipeline([codec], data).decode(bytes(encoded))
    with pytest.raises(DecodeError):
        check.pipeline([codec], data).decode(bytes(encoded[:20]))
    plain = ShardingCodec((2, 3), (BytesCodec(),), (BytesCodec(),))
    index = ShardIndex.create_empty(4)
    index.set_chunk_slice(0, slice(0, 10**6))  # beyond the shard's end
    shard = bytes(plain.encode_index(index, data.shape))
    with pytest.raises(DecodeError, match="outside"):
        plain.decode_to_array(shard, ChunkSpec(data.shape, data.dtype, 0))


def test_config_errors() -> None:
    check.config_errors(
        "sharding_indexed",
        [
            ({"chunk_shape": [2.5]}, "chunk_shape"),
            ({"chunk_shape": [0]}, "positive"),
            ({"chunk_shape": [2], "index_location": "middle"}, "index_location"),
            ({"chunk_shape": [2], "codecs": "bytes"}, "codecs must be a list"),
            ({"chunk_shape": [2], "index_codecs": {"name": "bytes"}}, "index_codecs"),
        ],
    )
