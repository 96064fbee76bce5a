"""Shapes and chunk grids at the edges of 64-bit arithmetic, and reads that cannot fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from capped import run_capped
from helpers import v2_array_doc, v3_array_doc

import xzaro
from xzaro.errors import DecodeError, MetadataError
from xzaro.meta import node_from_json

GiB = 1024**3


def _v2(path: Path, shape: list[int], chunks: list[int]) -> Path:
    path.mkdir()
    doc = v2_array_doc(shape, chunks, "<f8")
    (path / ".zarray").write_text(json.dumps(doc))
    return path


def _shape_of(path: Path, selection: Any) -> tuple[int, ...]:
    return xzaro.open_array(path)[selection].shape


@pytest.mark.parametrize("extent", [2**53 + 1, 2**62, 2**62 + 1, 2**63 - 1])
@pytest.mark.parametrize(
    "selection",
    [
        slice(None, None, 2**52),
        slice(None, None, -(2**52)),
        slice(5, None, 2**52 + 7),
        slice(2**53 - 1, 2**53 + 1),
    ],
)
def test_huge_strided_selections_have_pythons_length(
    tmp_path: Path, extent: int, selection: slice
) -> None:
    """Integer arithmetic throughout, and only the chunks holding selected items are visited."""
    path = _v2(tmp_path / "a", [extent], [2**20])
    outcome = run_capped(_shape_of, path, selection, mem_bytes=GiB, timeout=60)
    assert outcome.kind == "ok", outcome
    assert outcome.value == (len(range(extent)[selection]),)


def test_read_that_cannot_fit_is_an_xzaro_error(tmp_path: Path) -> None:
    path = _v2(tmp_path / "a", [2**40], [2**40])
    outcome = run_capped(_shape_of, path, slice(None), mem_bytes=GiB, timeout=60)
    assert outcome.raised("OutOfMemoryError") and outcome.raised("MemoryError"), outcome
    assert str(tmp_path / "a") in outcome.message


def test_chunk_declaring_a_terabyte_is_an_xzaro_error(tmp_path: Path) -> None:
    path = _v2(tmp_path / "a", [2**62], [2**40])
    (path / "0").write_bytes(bytes(16))
    with pytest.raises(DecodeError, match="holds 16 bytes") as info:
        xzaro.open_array(path)[:10]
    assert info.value.key == "0"


def test_extents_beyond_int64_are_metadata_errors() -> None:
    doc = v2_array_doc([2**64], [10], "<f8")
    with pytest.raises(MetadataError, match="2\\*\\*63"):
        node_from_json(doc, key="a/.zarray")


V3 = v3_array_doc([8], [8], "int8")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "codecs": [
                    {"name": "sharding_indexed", "configuration": {"chunk_shape": [2.5]}},
                ]
            },
            "codecs",
        ),
        ({"codecs": [{"name": "sharding_indexed", "configuration": {}}]}, "codecs"),
        ({"storage_transformers": 5}, "storage_transformers"),
        ({"chunk_grid": {"name": "regular", "configuration": True}}, "chunk_grid.configuration"),
        ({"chunk_grid": "regular"}, "chunk_grid.chunk_shape"),
        ({"chunk_key_encoding": {"name": "v2", "configuration": [1]}}, "chunk_key_encoding"),
    ],
)
def test_wrongly_typed_members_are_metadata_errors(change: dict, field: str) -> None:
    with pytest.raises(MetadataError) as info:
        node_from_json({**V3, **change}, url="memory://x", key="a/zarr.json")
    assert info.value.field == field
    assert info.value.key == "a/zarr.json"
