"""``BloscCompressionParams``: the JSON zarr-python writes for it, bad settings, a frozen value."""

from __future__ import annotations

import json
from typing import Any

import numcodecs
import numpy as np
import pytest
import zarr
from write_cases import QUIET

from xzaro.writers import BloscCompressionParams

pytestmark = QUIET


@pytest.mark.parametrize("cname", ["lz4", "lz4hc", "zstd", "zlib", "blosclz"])
@pytest.mark.parametrize("shuffle", ["noshuffle", "shuffle", "bitshuffle"])
def test_blosc_params_json_matches_zarr_python(cname: str, shuffle: str) -> None:
    clevel = {"lz4": 1, "lz4hc": 9, "zstd": 3, "zlib": 5, "blosclz": 7}[cname]
    p = BloscCompressionParams(cname, clevel, shuffle)
    sid = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[shuffle]
    z2 = zarr.create_array(
        zarr.storage.MemoryStore(),
        shape=(4,),
        dtype="f4",
        zarr_format=2,
        compressors=numcodecs.Blosc(cname=cname, clevel=clevel, shuffle=sid),
    )
    assert p.to_v2_json() == z2.metadata.to_dict()["compressor"]
    assert json.loads(json.dumps(p.to_v2_json())) == p.to_v2_json()
    for dtype in ("int8", "float32", "complex128", "uint16", "bool", "float64"):
        z3 = zarr.create_array(
            zarr.storage.MemoryStore(),
            shape=(4,),
            dtype=dtype,
            zarr_format=3,
            compressors=zarr.codecs.BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle),
        )
        assert p.to_v3_json(np.dtype(dtype)) == z3.metadata.to_dict()["codecs"][1], dtype


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cname": "snappy2"},
        {"cname": "LZ4"},
        {"cname": ""},
        {"clevel": 10},
        {"clevel": -1},
        {"clevel": 1.5},
        {"clevel": "5"},
        {"shuffle": "byte"},
        {"shuffle": 1},
        {"shuffle": None},
    ],
)
def test_blosc_params_invalid(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BloscCompressionParams(**kwargs)


def test_blosc_params_is_a_frozen_value() -> None:
    import dataclasses

    p = BloscCompressionParams("lz4", 5, "shuffle")
    assert p == BloscCompressionParams("lz4", 5, "shuffle")
    assert hash(p) == hash(BloscCompressionParams("lz4", 5, "shuffle"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.clevel = 3  # type: ignore[misc]
    assert p.codec(np.dtype("float64")).typesize == 8
