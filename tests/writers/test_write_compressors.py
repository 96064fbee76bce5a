"""Every compressor (and codec chain) ``to_store`` writes, in every layout, read back by
xzaro, zarr-python and tensorstore, and the codec chain stored in the metadata.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from helpers import assert_same, ts_read, zarr_read
from write_cases import LAYOUTS, QUIET, sample

import xzaro
from xzaro.codecs import BloscCodec, Crc32cCodec, GzipCodec, NumcodecsCodec, ZlibCodec, ZstdCodec
from xzaro.writers import BloscCompressionParams

pytestmark = QUIET


COMPRESSORS: dict[str, Any] = {
    **{
        f"blosc_{c}_{s}": BloscCompressionParams(c, 5, s)
        for c in ("lz4", "zstd")
        for s in ("noshuffle", "shuffle", "bitshuffle")
    },
    "blosc_codec_typed": BloscCodec("lz4hc", 4, "bitshuffle", typesize=4),
    "blosc_codec_untyped": BloscCodec("lz4", 3, "shuffle"),
    "zstd": ZstdCodec(3),
    "zstd_checksum": ZstdCodec(1, checksum=True),
    "gzip": GzipCodec(5),
    "zlib": ZlibCodec(4),
    "none": None,
    "crc32c": [Crc32cCodec()],
    "zstd_crc32c": [ZstdCodec(1), Crc32cCodec()],
    "shuffle_zstd": [NumcodecsCodec.from_id("shuffle", {"elementsize": 4}), ZstdCodec(2)],
}

# (layout, compressor) -> tensorstore cannot read it, through no fault of xzaro
_TS_CANNOT = {
    ("v2", "crc32c"),  # no crc32c V2 compressor in tensorstore
    ("v2", "zstd_crc32c"),  # no V2 filters in tensorstore
    ("v2", "shuffle_zstd"),
    ("v2", "zstd_checksum"),
    *((lay, "shuffle_zstd") for lay in ("v3", "v3_sharded")),  # no numcodecs.* V3 codecs
    *((lay, "zlib") for lay in ("v3", "v3_sharded")),
}

_BUGS: dict[tuple[str, str, str], str] = {}  # (layout, compressor, reader) -> bug


def _compressor_params() -> list[Any]:
    out = []
    for layout, comp, reader in itertools.product(
        LAYOUTS, COMPRESSORS, ("xzaro", "zarr", "tensorstore")
    ):
        marks: list[Any] = []
        if reader == "tensorstore" and (layout, comp) in _TS_CANNOT:
            continue
        bug = _BUGS.get((layout, comp, reader))
        if bug:  # zarr-python: UnknownCodecError (a ValueError); tensorstore: ValueError
            marks.append(pytest.mark.xfail(strict=True, reason=bug, raises=ValueError))
        out.append(pytest.param(layout, comp, reader, marks=marks, id=f"{layout}-{comp}-{reader}"))
    return out


@pytest.fixture(scope="module")
def compressor_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """One store per (layout, compressor): float32 with NaN/inf/-0.0 and a ragged edge, plus an
    int16 variable (other typesize); Dask-backed with misaligned blocks."""
    root = tmp_path_factory.mktemp("compressors")
    ds = xr.Dataset(
        {
            "f": (("y", "x"), sample("float32", (9, 7))),
            "i": (("y", "x"), sample("int16", (9, 7))),
        }
    ).chunk({"y": 5, "x": 4})
    out = {}
    for layout, comp in itertools.product(LAYOUTS, COMPRESSORS):
        path = root / f"{layout}-{comp}.zarr"
        encoding = None
        if comp == "shuffle_zstd":  # the shuffle element size must match each variable
            encoding = {
                "i": {
                    "compressor": [
                        NumcodecsCodec.from_id("shuffle", {"elementsize": 2}),
                        ZstdCodec(2),
                    ]
                }
            }
        ds.zaro.to_store(
            path,
            zarr_format=LAYOUTS[layout]["zarr_format"],
            chunks={"y": 2, "x": 3},
            shards={"y": 4, "x": 6} if layout == "v3_sharded" else None,
            compressor=COMPRESSORS[comp],
            encoding=encoding,
        )
        out[(layout, comp)] = path
    return out


@pytest.mark.parametrize(("layout", "comp", "reader"), _compressor_params())
def test_round_trip_compressors(
    compressor_stores: dict[tuple[str, str], Path], layout: str, comp: str, reader: str
) -> None:
    path = compressor_stores[(layout, comp)]
    fmt = LAYOUTS[layout]["zarr_format"]
    for name, dtype in (("f", "float32"), ("i", "int16")):
        expected = sample(dtype, (9, 7))
        if reader == "xzaro":
            got = xzaro.open_array(path, name)[...]
            with xr.open_dataset(path, engine="zaro") as ds:
                assert_same(ds[name].values, expected, f"engine=zaro {name}")
        elif reader == "zarr":
            got = zarr_read(path, name)
        else:
            got = ts_read(path, name, fmt)
        assert_same(got, expected, f"{reader} {name}")


def test_compressor_metadata(compressor_stores: dict[tuple[str, str], Path]) -> None:
    """The stored codec chain is the one asked for (V2 compressor/filters, V3 codecs)."""
    v2 = json.loads((compressor_stores[("v2", "blosc_zstd_bitshuffle")] / "f/.zarray").read_text())
    assert v2["compressor"] == BloscCompressionParams("zstd", 5, "bitshuffle").to_v2_json()
    assert v2["filters"] is None
    v2 = json.loads((compressor_stores[("v2", "none")] / "f/.zarray").read_text())
    assert v2["compressor"] is None and v2["filters"] is None
    v2 = json.loads((compressor_stores[("v2", "gzip")] / "f/.zarray").read_text())
    assert v2["compressor"] == {"id": "gzip", "level": 5}
    v2 = json.loads((compressor_stores[("v2", "shuffle_zstd")] / "f/.zarray").read_text())
    assert v2["filters"] == [{"id": "shuffle", "elementsize": 4}]
    assert v2["compressor"]["id"] == "zstd"
    v2 = json.loads((compressor_stores[("v2", "shuffle_zstd")] / "i/.zarray").read_text())
    assert v2["filters"] == [{"id": "shuffle", "elementsize": 2}]

    v3 = json.loads((compressor_stores[("v3", "blosc_lz4_shuffle")] / "i/zarr.json").read_text())
    assert [c["name"] for c in v3["codecs"]] == ["bytes", "blosc"]
    assert v3["codecs"][1]["configuration"]["typesize"] == 2
    v3 = json.loads((compressor_stores[("v3", "none")] / "f/zarr.json").read_text())
    assert [c["name"] for c in v3["codecs"]] == ["bytes"]
    v3 = json.loads((compressor_stores[("v3_sharded", "zstd_crc32c")] / "f/zarr.json").read_text())
    (shard,) = v3["codecs"]
    assert shard["name"] == "sharding_indexed"
    cfg = shard["configuration"]
    assert cfg["chunk_shape"] == [2, 3]
    assert [c["name"] for c in cfg["codecs"]] == ["bytes", "zstd", "crc32c"]
    assert [c["name"] for c in cfg["index_codecs"]] == ["bytes", "crc32c"]
    assert cfg["index_location"] == "end"
    assert v3["chunk_grid"]["configuration"]["chunk_shape"] == [4, 6]


def _blosc_configs(codecs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for codec in codecs:
        if codec["name"] == "blosc":
            found.append(codec["configuration"])
        found.extend(_blosc_configs(codec.get("configuration", {}).get("codecs", [])))
    return found


@pytest.mark.parametrize("shards", [None, 4], ids=["chunks", "shards"])
@pytest.mark.parametrize(
    "compressor", [None, BloscCompressionParams("zstd", 3, "bitshuffle")], ids=["default", "bit"]
)
def test_every_shuffled_blosc_codec_records_its_typesize(
    tmp_path: Path, shards: Any, compressor: Any
) -> None:
    """The V3 spec requires ``typesize`` wherever Blosc shuffles (zarrs refuses the codec
    without it): strings, a wide fixed-size type and numbers, with the default compressor and
    with a shuffle asked for, all read back by zarr-python."""
    strings = np.array(["a", "bb", "", "é" * 7, "z" * 40, "q", "", "w"], dtype=object)
    ds = xr.Dataset(
        {
            "text": ("x", strings),
            "wide": ("x", strings.astype("<U80")),  # 320-byte elements
            "number": ("x", np.arange(8, dtype="<i2")),
        }
    )
    path = tmp_path / "typed.zarr"
    kwargs = {} if compressor is None else {"compressor": compressor}
    ds.zaro.to_store(str(path), zarr_format=3, chunks=2, shards=shards, **kwargs)
    for name in ds.data_vars:
        meta = json.loads((path / str(name) / "zarr.json").read_text())
        configs = _blosc_configs(meta["codecs"])
        assert configs, name
        for config in configs:
            assert config["shuffle"] == "noshuffle" or config.get("typesize", 0) >= 1, (
                name,
                config,
            )
        assert_same(zarr_read(path, str(name)), ds[name].values)
