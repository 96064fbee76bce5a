"""The ``bytes`` codec: byte orders, fixed-size data types, its JSON, the V2 ``dtype`` it is."""

from __future__ import annotations

import codec_checks as check
import numpy as np
import pytest
from helpers import values

from xzaro.codecs import BytesCodec, codec_from_json, v2_codec_json
from xzaro.errors import DecodeError


@pytest.mark.parametrize("endian", ["little", "big"])
@pytest.mark.parametrize("dtype", ["<i2", ">f8", "<c8", "u1", "|S3", "<M8[s]"])
def test_round_trip(endian: str, dtype: str) -> None:
    data = values(dtype, (5, 4), f"bytes-{dtype}")
    encoded = check.round_trip([BytesCodec(endian)], data)
    assert encoded == data.astype(BytesCodec(endian).stored_dtype(data.dtype)).tobytes()


def test_structured_fields_take_the_byte_order() -> None:
    dtype = np.dtype([("a", "<i4"), ("b", "<f2")])
    data = np.array([(1, 1.5), (-7, 2.0)], dtype=dtype)
    encoded = check.round_trip([BytesCodec("big")], data)
    assert encoded[:4] == (1).to_bytes(4, "big")


def test_json_and_v2_member() -> None:
    for codec in (BytesCodec("little"), BytesCodec("big"), BytesCodec(None)):
        if codec.endian is not None:
            check.v3_json(codec)
        check.no_v2_form(codec)
        assert v2_codec_json((codec,)) == (None, None)  # V2 keeps the byte order in its dtype
    # no byte order (one-byte elements, as V2's "|u1"): no configuration, read as the default
    assert BytesCodec(None).to_json() == {"name": "bytes"}
    assert codec_from_json("bytes") == BytesCodec("little")


def test_bounded_decode() -> None:
    check.bounded_decode(
        [BytesCodec()], np.arange(16, dtype="<i4"), np.arange(20, dtype="<i4"), truncate=True
    )


def test_config_errors() -> None:
    check.config_errors(
        "bytes", [({"endian": "middle"}, "endian"), ({"endian": "little", "order": 1}, "order")]
    )


def test_bytes_codec_wrong_length_raises() -> None:
    pipe = check.pipeline([BytesCodec()], np.zeros(16, dtype="<i4"))
    with pytest.raises(DecodeError):
        pipe.decode(b"\x00" * 60)
