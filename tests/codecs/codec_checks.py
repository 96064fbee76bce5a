"""The checks every codec's test module runs, as numcodecs' ``tests/common.py`` does
(``import codec_checks as check``, then ``check.round_trip(...)``).

- :func:`round_trip`: a chain with the codec encodes and decodes a chunk bit for bit, also
  when decoding into a caller's buffer;
- :func:`v3_json` and :func:`v2_json`: the codec's JSON in each format goes through
  the registry (:mod:`xzaro.codecs.registry`) and back to an equal codec and the same JSON;
- :func:`bounded_decode`: a stream holding more (or fewer) bytes or items than the chunk
  may hold, or a truncated one, is a :class:`~xzaro.errors.DecodeError`;
- :func:`config_errors`: a configuration the codec refuses is a MetadataError naming the
  URL, the key and the ``codecs`` field, and saying what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from helpers import assert_same

from xzaro.codecs import (
    BytesCodec,
    Codec,
    CodecPipeline,
    codec_from_json,
    codec_from_v2,
    v2_codec_json,
)
from xzaro.errors import DecodeError, MetadataError

URL = "memory://codec-checks"
KEY = "a/zarr.json"


def pipeline(chain: Sequence[Codec], data: np.ndarray, fill_value: Any = 0) -> CodecPipeline:
    """The pipeline of ``chain`` for chunks of ``data``'s shape and dtype."""
    return CodecPipeline(chain, data.shape, data.dtype, fill_value)


def round_trip(chain: Sequence[Codec], data: np.ndarray, fill_value: Any = 0) -> bytes:
    """Encode ``data`` with ``chain`` and decode it back, into a new array and into ``out``;
    return the encoded bytes."""
    pipe = pipeline(chain, data, fill_value)
    encoded = bytes(pipe.encode(data))
    assert_same(pipe.decode(encoded), data, "decode")
    out = np.empty(data.shape, dtype=data.dtype)
    assert pipe.decode(encoded, out=out) is out
    assert_same(out, data, "decode into out")
    return encoded


def v3_json(codec: Codec) -> None:
    """V3 JSON, through text, back to an equal codec with the same JSON."""
    doc = codec.to_json()
    again = codec_from_json(json.loads(json.dumps(doc)))
    assert again == codec, (again, codec)
    assert again is not None and again.to_json() == doc


def v2_json(codec: Codec) -> None:
    """V2 JSON, through text, back to an equal codec with the same entry, and the entry as
    :func:`~xzaro.codecs.v2_codec_json` writes it for a chain ending with the codec."""
    entry = codec.to_v2()
    assert entry["id"] == (codec.v2_id or entry["id"])
    again = codec_from_v2(json.loads(json.dumps(entry)))
    assert again.to_v2() == entry
    if codec.v2_id is not None:
        assert again == codec, (again, codec)
    filters, compressor = v2_codec_json((BytesCodec(), codec))
    written = compressor if codec.is_v2_compressor(alone=True) else (filters or [None])[-1]
    assert written == entry


def decodes_stream_of(numcodecs_codec: Any, chain: Sequence[Codec], data: np.ndarray) -> None:
    """A chunk ``numcodecs_codec`` encoded (numcodecs' own implementation of the codec) decodes
    through ``chain`` to ``data``."""
    assert_same(pipeline(chain, data).decode(numcodecs_codec.encode(data)), data, "numcodecs")


def no_v2_form(codec: Codec) -> None:
    """A V3-only codec refuses to give a V2 entry, naming itself."""
    with pytest.raises(MetadataError, match=codec.name):
        codec.to_v2()


def bounded_decode(
    chain: Sequence[Codec], data: np.ndarray, larger: np.ndarray, *, truncate: bool = True
) -> None:
    """A stream of ``larger`` (more bytes or items than a chunk of ``data`` holds) fails to
    decode as a chunk of ``data``, and so does the chunk's own stream cut in half."""
    pipe = pipeline(chain, data)
    with pytest.raises(DecodeError):
        pipe.decode(bytes(pipeline(chain, larger).encode(larger)))
    if truncate:
        encoded = bytes(pipe.encode(data))
        with pytest.raises(DecodeError):
            pipe.decode(encoded[: len(encoded) // 2])


def config_errors(name: str, cases: Sequence[tuple[dict, str]]) -> None:
    """Each ``(configuration, words)`` of codec ``name`` is refused with a MetadataError naming
    the URL, the key and the ``codecs`` field, whose message holds ``words``."""
    for config, words in cases:
        doc = {"name": name, "configuration": config}
        with pytest.raises(MetadataError) as raised:
            codec_from_json(doc, url=URL, key=KEY)
        error = raised.value
        assert (error.url, error.key, error.field) == (URL, KEY, "codecs"), (config, error)
        assert words in error.message, (config, error.message)
