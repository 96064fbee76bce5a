"""The codec registry: every codec once, by V3 name and V2 id, both directions; unknown codecs;
each codec has its test module here."""

from __future__ import annotations

from pathlib import Path

import pytest

from xzaro.codecs import (
    ARRAY_BYTES,
    CODECS,
    OBJECT_CODEC_IDS,
    codec_from_json,
    codec_from_v2,
)
from xzaro.errors import UnsupportedError, ZaroError


def test_names_and_ids_are_unique() -> None:
    names = [cls.name for cls in CODECS]
    assert len(set(names)) == len(names)
    ids = [cls.v2_id for cls in CODECS if cls.v2_id is not None]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("cls", CODECS, ids=lambda cls: cls.name)
def test_each_codec_has_its_test_module(cls: type) -> None:
    module = cls.__module__.rpartition(".")[2]
    assert (Path(__file__).parent / f"test_codec_{module}.py").is_file(), module


@pytest.mark.parametrize("cls", [c for c in CODECS if c.v2_id is not None], ids=lambda c: c.name)
def test_v2_ids_read_as_their_codec(cls: type) -> None:
    assert isinstance(codec_from_v2({"id": cls.v2_id}), cls)


def test_object_codecs_are_known_to_v2_mapping() -> None:
    own = {cls.v2_id for cls in CODECS if cls.kind == ARRAY_BYTES and cls.v2_id is not None}
    assert own <= OBJECT_CODEC_IDS


@pytest.mark.parametrize("name", ["bytes", "crc32c", "gzip", "zstd", "vlen-utf8"])
def test_codec_from_bare_name(name: str) -> None:
    codec = codec_from_json(name)
    assert codec is not None
    assert codec.to_json()["name"] == name


def test_unknown_codec() -> None:
    with pytest.raises(UnsupportedError, match="no_such_codec"):
        codec_from_json({"name": "no_such_codec", "configuration": {}})
    assert codec_from_json({"name": "no_such_codec", "must_understand": False}) is None
    with pytest.raises(UnsupportedError):
        codec_from_json({"name": "numcodecs.no_such_codec"})
    with pytest.raises(ZaroError):
        codec_from_json({"configuration": {}})
    with pytest.raises(ZaroError):
        codec_from_json({"name": "transpose", "configuration": {"order": [0, 0]}})
