"""The ``vlen-utf8`` and ``vlen-bytes`` codecs: strings of any length, both JSON forms."""

from __future__ import annotations

import codec_checks as check
import numcodecs
import numpy as np
import pytest
from helpers import values

from xzaro.codecs import OBJECT_CODEC_IDS, Codec, VLenBytesCodec, VLenUTF8Codec, ZstdCodec
from xzaro.errors import DecodeError

CODECS = [(VLenUTF8Codec(), "vlen-utf8"), (VLenBytesCodec(), "vlen-bytes")]


@pytest.mark.parametrize(("codec", "kind"), CODECS)
def test_round_trip(codec: Codec, kind: str) -> None:
    data = values(kind, (6, 5), kind)
    check.round_trip([codec], data, fill_value="")
    check.round_trip([codec, ZstdCodec(1)], data, fill_value="")


@pytest.mark.parametrize(("codec", "kind"), CODECS)
def test_json_both_formats(codec: Codec, kind: str) -> None:
    check.v3_json(codec)
    check.v2_json(codec)
    assert codec.to_v2() == {"id": kind}
    assert kind in OBJECT_CODEC_IDS


@pytest.mark.parametrize(("codec", "kind"), CODECS)
def test_numcodecs_layout(codec: Codec, kind: str) -> None:
    data = values(kind, (9,), f"{kind}-numcodecs")
    check.decodes_stream_of(numcodecs.get_codec({"id": kind}), [codec], data)


@pytest.mark.parametrize(("codec", "kind"), CODECS)
def test_bounded_decode(codec: Codec, kind: str) -> None:
    data = values(kind, (4,), kind)
    larger = values(kind, (5,), kind)
    check.bounded_decode([codec], data, larger)


def test_items_must_fill_the_chunk_exactly() -> None:
    pipe = check.pipeline([VLenUTF8Codec()], np.empty((3,), dtype=object), "")
    stream = numcodecs.VLenUTF8().encode(np.array(["a", "b"], dtype=object))
    with pytest.raises(DecodeError, match="holds 2 items, expected 3"):
        pipe.decode(stream)
