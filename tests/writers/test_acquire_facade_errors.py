"""``xzaro.acquire`` on its own: what it refuses (with xzaro's errors, saying why) and what it
adds to acquire-zarr's API (Zarr V2, a context manager)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xzaro.acquire as xa
from xzaro.errors import StreamingError, ZaroError

zarr = pytest.importorskip("zarr")


def dims(t: int = 0, shard: int = 1) -> list[xa.Dimension]:
    return [
        xa.Dimension(
            name="t",
            kind=xa.DimensionType.TIME,
            array_size_px=t,
            chunk_size_px=2,
            shard_size_chunks=shard,
        ),
        xa.Dimension(name="y", array_size_px=16, chunk_size_px=8, shard_size_chunks=shard),
        xa.Dimension(name="x", array_size_px=16, chunk_size_px=8, shard_size_chunks=shard),
    ]


def settings(path: Path, **array: Any) -> xa.StreamSettings:
    spec = {"dimensions": dims(), "data_type": xa.DataType.UINT16, **array}
    return xa.StreamSettings(
        store_path=str(path), overwrite=True, arrays=[xa.ArraySettings(**spec)]
    )


def test_defaults_match_acquire_zarr() -> None:
    d = xa.Dimension()
    assert (d.name, d.kind, d.unit, d.scale, d.array_size_px, d.chunk_size_px) == (
        "",
        xa.DimensionType.SPACE,
        None,
        1.0,
        0,
        0,
    )
    c = xa.CompressionSettings()
    assert (c.compressor, c.codec, c.level, c.shuffle) == (
        xa.Compressor.NONE,
        xa.CompressionCodec.NONE,
        1,
        0,
    )
    a = xa.ArraySettings()
    assert (a.output_key, a.data_type, a.downsampling_method, a.max_levels, a.is_ngff) == (
        "",
        xa.DataType.UINT8,
        None,
        0,
        False,
    )
    s = xa.StreamSettings()
    assert (s.store_path, s.max_threads, s.overwrite, s.version) == (
        "",
        0,
        False,
        xa.ZarrVersion.V3,
    )
    assert [m.name for m in xa.DownsamplingMethod] == ["DECIMATE", "MEAN", "MIN", "MAX"]


def test_fastest_first_dimensions_say_the_order(tmp_path: Path) -> None:
    """The device's old order (x first, the append dimension last) is refused with a message
    that says dimensions go slowest first."""
    with pytest.raises(StreamingError, match="slowest first"):
        xa.ZarrStream(settings(tmp_path / "a.zarr", dimensions=dims()[::-1]))
    assert not (tmp_path / "a.zarr").exists()  # nothing written for refused settings


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"dimensions": dims(shard=0)}, "shard_size_chunks"),
        ({"data_type": np.float16}, "data_type"),
        ({"storage_dimension_order": ["t", "x", "y"]}, "storage_dimension_order"),
        (
            {"compression": xa.CompressionSettings(compressor=xa.Compressor.BLOSC1)},
            "needs a codec",
        ),
        (
            {
                "compression": xa.CompressionSettings(
                    compressor=xa.Compressor.BLOSC1, codec=xa.CompressionCodec.BLOSC_LZ4, level=12
                )
            },
            "clevel",
        ),
        ({"max_levels": -1}, "max_levels"),
        (
            {
                "dimensions": [
                    *dims()[:2],
                    xa.Dimension(name="x", kind="space", array_size_px=16, shard_size_chunks=1),
                ]
            },
            "DimensionType",
        ),
    ],
)
def test_invalid_array_settings(tmp_path: Path, change: dict, match: str) -> None:
    with pytest.raises(StreamingError, match=match):
        xa.ZarrStream(settings(tmp_path / "a.zarr", **change))
    assert not (tmp_path / "a.zarr").exists()  # refused before the store is touched


def test_stream_settings_checks(tmp_path: Path) -> None:
    s = settings(tmp_path / "a.zarr")
    s.max_threads = -1
    with pytest.raises(StreamingError, match="max_threads"):
        xa.ZarrStream(s)
    with pytest.raises(StreamingError, match="store_path"):
        xa.ZarrStream(xa.StreamSettings(arrays=s.arrays))
    assert xa.get_log_level() in tuple(xa.LogLevel)
    xzaro_logger = logging.getLogger("xzaro")
    before = xzaro_logger.level  # NOTSET, which no LogLevel restores (verbose needs it)
    try:
        xa.set_log_level(xa.LogLevel.ERROR)
        assert xa.get_log_level() is xa.LogLevel.ERROR
        assert xzaro_logger.level == logging.ERROR
    finally:
        xzaro_logger.setLevel(before)


def test_append_refusals(tmp_path: Path) -> None:
    z = xa.ZarrStream(settings(tmp_path / "a.zarr"))
    with pytest.raises(StreamingError, match="dtype"):
        z.append(np.zeros((1, 16, 16), np.uint8))
    with pytest.raises(StreamingError, match="whole number"):
        z.append(np.zeros(100, np.uint16))
    with pytest.raises(StreamingError, match="no array"):
        z.append(np.zeros((16, 16), np.uint16), key="other")
    with pytest.raises(StreamingError, match="JSON"):
        z.write_custom_metadata("{nope")
    with pytest.raises(StreamingError, match="OME-NGFF"):
        z.write_custom_metadata({"ome": {}})
    z.append(np.ones((16, 16), np.uint16))
    assert z.get_current_memory_usage() > 0
    z.close()
    z.close()  # idempotent
    assert z.get_current_memory_usage() == 0
    with pytest.raises(ZaroError, match="closed"):
        z.append(np.ones((16, 16), np.uint16))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr"))[...], 1)


def test_bounded_first_dimension(tmp_path: Path) -> None:
    """A first dimension of size 5 takes at most 5 frames; fewer give a shorter array."""
    with xa.ZarrStream(settings(tmp_path / "a.zarr", dimensions=dims(t=5))) as z:
        z.append(np.ones((3, 16, 16), np.uint16))
        with pytest.raises(StreamingError, match="first dimension"):
            z.append(np.ones((3, 16, 16), np.uint16))
    assert zarr.open_array(str(tmp_path / "a.zarr")).shape == (3, 16, 16)


def test_keys_and_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "a.zarr"
    array = {"dimensions": dims(), "data_type": np.uint16}
    two = [xa.ArraySettings(output_key="a", **array), xa.ArraySettings(output_key="a", **array)]
    with pytest.raises(StreamingError, match="more than one"):
        xa.ZarrStream(xa.StreamSettings(store_path=str(path), arrays=two))
    nested = [xa.ArraySettings(**array), xa.ArraySettings(output_key="b", **array)]
    with pytest.raises(StreamingError, match="would hold"):
        xa.ZarrStream(xa.StreamSettings(store_path=str(path), arrays=nested))
    with pytest.raises(StreamingError, match="at least one array"):
        xa.ZarrStream(xa.StreamSettings(store_path=str(path)))
    two = [xa.ArraySettings(output_key="a", **array), xa.ArraySettings(output_key="b", **array)]
    z = xa.ZarrStream(xa.StreamSettings(store_path=str(path), arrays=two))
    with pytest.raises(StreamingError, match="key is needed"):
        z.append(np.ones((16, 16), np.uint16))
    z.close()
    with pytest.raises(StreamingError, match="overwrite"):
        xa.ZarrStream(xa.StreamSettings(store_path=str(path), arrays=two))
    xa.ZarrStream(xa.StreamSettings(store_path=str(path), arrays=two, overwrite=True)).close()


def test_zarr_v2_ignores_shards(tmp_path: Path) -> None:
    """``version=ZarrVersion.V2`` (xzaro's addition) writes chunked arrays and OME-NGFF 0.4;
    shard sizes are accepted and ignored."""
    data = np.arange(3 * 16 * 16, dtype=np.uint16).reshape(3, 16, 16)
    s = settings(tmp_path / "a.zarr", dimensions=dims(shard=2))
    s.version = xa.ZarrVersion.V2
    s.arrays[0].downsampling_method = xa.DownsamplingMethod.MIN
    with xa.ZarrStream(s) as z:
        z.append(data)
    group = zarr.open_group(str(tmp_path / "a.zarr"), mode="r")
    assert group.metadata.zarr_format == 2
    assert group.attrs["multiscales"][0]["type"] == "min"
    np.testing.assert_array_equal(group["0"][...], data)
    assert group["0"].chunks == (2, 8, 8)
    np.testing.assert_array_equal(group["1"][...], data.reshape(3, 8, 2, 8, 2).min(axis=(2, 4)))
