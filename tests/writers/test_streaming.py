"""Streaming frame writer (``xzaro.streaming``): acceptance geometries, read back with xzaro,
zarr-python and tensorstore."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xzaro
from xzaro.errors import StoreError, ZaroError
from xzaro.streaming import (
    Dimension,
    DimensionKind,
    StorageProperties,
    StreamingError,
    ZarrV2,
    ZarrV3,
)
from xzaro.writers.coarsen import coarsen_array
from xzaro.writers.compression import BloscCompressionParams

zarr = pytest.importorskip("zarr")


def frames_of(n: int, h: int, w: int, dtype: Any = np.uint16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return rng.integers(1, min(info.max, 60000), (n, h, w), dtype=dtype)


def dims3(w: int, h: int, cw: int, ch: int, ct: int, **shards: int) -> list[Dimension]:
    return [
        Dimension("x", "space", w, cw, shards.get("x", 0)),
        Dimension("y", DimensionKind.SPACE, h, ch, shards.get("y", 0)),
        Dimension("t", "time", 0, ct, shards.get("t", 0)),
    ]


def stream(cls: type, props: StorageProperties, data: np.ndarray, stack: bool = False) -> Any:
    s = cls(props)
    s.reserve_image_shape(data.shape[1:], data.dtype)
    with s:
        if stack:
            assert s.append(data) == len(data)
        else:
            for f in data:
                assert s.append(f) == 1
    return s


def expected(data: np.ndarray, mids: tuple[int, ...]) -> np.ndarray:
    """Frames laid out as the stored array (append, *mids, y, x), padded to whole steps."""
    per = int(np.prod(mids)) if mids else 1
    steps = -(-len(data) // per)
    out = np.zeros((steps * per, *data.shape[1:]), data.dtype)
    out[: len(data)] = data
    return out.reshape(steps, *mids, *data.shape[1:])


def check_readers(url: str, path: str, want: np.ndarray, tensorstore: bool = True) -> None:
    a = xzaro.open_array(url, path)
    assert a.shape == want.shape
    np.testing.assert_array_equal(a[...], want)
    z = zarr.open_array(url, path=path, mode="r")
    assert z.shape == want.shape
    np.testing.assert_array_equal(z[...], want)
    if tensorstore:
        ts = pytest.importorskip("tensorstore")
        driver = "zarr3" if os.path.exists(os.path.join(url, path, "zarr.json")) else "zarr"
        t = ts.open(
            {"driver": driver, "kvstore": {"driver": "file", "path": os.path.join(url, path)}},
            open=True,
        ).result()
        np.testing.assert_array_equal(t.read().result(), want)


# ---------------------------------------------------------------------------- V2 geometries


def test_raw_v2_with_external_metadata(tmp_path: Path) -> None:
    url = str(tmp_path / "raw.zarr")
    data = frames_of(70, 48, 64)
    props = StorageProperties(
        uri=url,
        external_metadata_json='{"hello":"world"}',
        pixel_scale_um=(0.5, 0.25),
        acquisition_dimensions=dims3(64, 48, 64, 48, 32),
    )
    stream(ZarrV2, props, data)
    check_readers(url, "0", data)
    meta = json.loads(Path(tmp_path / "raw.zarr" / "0" / ".zarray").read_text())
    assert meta["shape"] == [70, 48, 64] and meta["chunks"] == [32, 48, 64]
    assert meta["compressor"] is None and meta["fill_value"] == 0
    assert zarr.open_array(url, path="0").attrs["external_metadata"] == {"hello": "world"}
    root = json.loads(Path(tmp_path / "raw.zarr" / ".zattrs").read_text())
    ms = root["multiscales"][0]
    assert ms["version"] == "0.4"
    assert ms["axes"] == [
        {"name": "t", "type": "time"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    assert ms["datasets"] == [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 0.25, 0.5]}]}
    ]
    models = pytest.importorskip("ome_zarr_models")
    image = models.open_ome_zarr(zarr.open_group(url, mode="r"))
    assert type(image).__name__ == "Image"


def test_chunk_larger_than_frame(tmp_path: Path) -> None:
    url = str(tmp_path / "big.zarr")
    data = frames_of(70, 46, 62)
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(62, 46, 64, 48, 32))
    stream(ZarrV2, props, data, stack=True)
    meta = json.loads(Path(tmp_path / "big.zarr" / "0" / ".zarray").read_text())
    assert meta["chunks"] == [32, 46, 62]  # clamped to the frame
    check_readers(url, "0", data)


def test_even_chunking_1080p(tmp_path: Path) -> None:
    url = str(tmp_path / "even.zarr")
    data = np.broadcast_to(
        (np.arange(1920, dtype=np.uint16)[None, :] + np.arange(1080)[:, None]).astype(np.uint8),
        (128, 1080, 1920),
    ).copy()
    data[:, 0, 0] = np.arange(1, 129)
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(1920, 1080, 960, 540, 128))
    stream(ZarrV2, props, data, stack=True)
    files = sorted(p.name for p in (tmp_path / "even.zarr" / "0").iterdir())
    assert files == [".zarray", ".zattrs", "0.0.0", "0.0.1", "0.1.0", "0.1.1"]
    assert os.path.getsize(tmp_path / "even.zarr" / "0" / "0.1.1") == 128 * 540 * 960
    check_readers(url, "0", data, tensorstore=False)


def test_rollover_513_frames(tmp_path: Path) -> None:
    url = str(tmp_path / "roll.zarr")
    data = frames_of(513, 12, 16, np.uint8)
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(16, 12, 16, 12, 512))
    stream(ZarrV2, props, data, stack=True)
    arr = tmp_path / "roll.zarr" / "0"
    assert json.loads(Path(arr / ".zarray").read_text())["shape"] == [513, 12, 16]
    raw = np.fromfile(arr / "1.0.0", dtype=np.uint8)
    assert raw.size == 512 * 12 * 16  # the partial chunk is padded with the fill value
    np.testing.assert_array_equal(raw[: 12 * 16], data[512].ravel())
    assert not raw[12 * 16 :].any()
    check_readers(url, "0", data)


def test_ragged_chunking(tmp_path: Path) -> None:
    url = str(tmp_path / "ragged.zarr")
    data = frames_of(40, 192, 256)
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(256, 192, 85, 38, 16))
    stream(ZarrV2, props, data)
    names = {p.name for p in (tmp_path / "ragged.zarr" / "0").iterdir()}
    assert len(names - {".zarray", ".zattrs"}) == 3 * 6 * 4
    check_readers(url, "0", data)


@pytest.mark.parametrize("cname", ["lz4", "zstd"])
@pytest.mark.parametrize("cls", [ZarrV2, ZarrV3])
def test_compression(tmp_path: Path, cname: str, cls: type) -> None:
    url = str(tmp_path / "c.zarr")
    ramp = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)
    data = np.stack([ramp + i for i in range(50)])
    props = StorageProperties(
        uri=url,
        acquisition_dimensions=dims3(64, 48, 32, 16, 16),
        compression=BloscCompressionParams(cname, 1, "shuffle"),
    )
    stream(cls, props, data)
    if cls is ZarrV2:
        comp = json.loads(Path(tmp_path / "c.zarr" / "0" / ".zarray").read_text())["compressor"]
        assert comp["id"] == "blosc" and comp["cname"] == cname and comp["shuffle"] == 1
        assert os.path.getsize(tmp_path / "c.zarr" / "0" / "0.0.0") < 16 * 16 * 32 * 2
    else:
        doc = json.loads(Path(tmp_path / "c.zarr" / "0" / "zarr.json").read_text())
        inner = doc["codecs"][0]["configuration"]["codecs"]
        assert inner[1]["name"] == "blosc"
        assert inner[1]["configuration"]["cname"] == cname
    check_readers(url, "0", data)


def test_multiscale_240x135(tmp_path: Path) -> None:
    url = str(tmp_path / "ms.zarr")
    data = frames_of(100, 135, 240, np.uint16)
    props = StorageProperties(
        uri=url,
        pixel_scale_um=(0.5, 0.5),
        acquisition_dimensions=dims3(240, 135, 80, 45, 128),
        enable_multiscale=True,
    )
    s = stream(ZarrV2, props, data)
    assert s.get_meta().buffer_bytes > 0
    level = data
    shapes = []
    for i in range(3):
        if i:
            level = coarsen_array(level, (1, 2), "mean")
        shapes.append(level.shape[1:])
        check_readers(url, str(i), level, tensorstore=i == 2)
    assert shapes == [(135, 240), (68, 120), (34, 60)]
    assert not (tmp_path / "ms.zarr" / "3").exists()
    ms = json.loads(Path(tmp_path / "ms.zarr" / ".zattrs").read_text())["multiscales"][0]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert scales == [[1.0, 0.5, 0.5], [1.0, 1.0, 1.0], [1.0, 2.0, 2.0]]
    models = pytest.importorskip("ome_zarr_models")
    assert type(models.open_ome_zarr(zarr.open_group(url, mode="r"))).__name__ == "Image"


def test_multiscale_v3_mean_of_float_and_int8(tmp_path: Path) -> None:
    for dtype in (np.int8, np.float32):
        url = str(tmp_path / f"ms-{np.dtype(dtype).name}.zarr")
        rng = np.random.default_rng(1)
        data = rng.integers(-128, 128, (7, 33, 50)) if dtype == np.int8 else rng.random((7, 33, 50))
        data = data.astype(dtype)
        props = StorageProperties(
            uri=url,
            acquisition_dimensions=dims3(50, 33, 16, 16, 4, x=2, y=2),
            enable_multiscale=True,
        )
        stream(ZarrV3, props, data)
        level = data
        for i in range(3):
            if i:
                level = coarsen_array(level, (1, 2), "mean")
            check_readers(url, str(i), level, tensorstore=False)
        root = json.loads(Path(Path(url) / "zarr.json").read_text())
        assert root["attributes"]["ome"]["version"] == "0.5"
        models = pytest.importorskip("ome_zarr_models")
        assert type(models.open_ome_zarr(zarr.open_group(url, mode="r"))).__name__ == "Image"


# ---------------------------------------------------------------------------- 5-d


@pytest.mark.parametrize("cls", [ZarrV2, ZarrV3])
def test_5d_xyzct(tmp_path: Path, cls: type) -> None:
    # The acceptance geometry 1920/960, 1080/540 scaled down by 4 in x and y (same structure).
    url = str(tmp_path / "5d.zarr")
    w, h = 480, 270
    v3 = cls is ZarrV3
    dims = [
        Dimension("x", "space", w, 240, 2 if v3 else 0),
        Dimension("y", "space", h, 135, 1 if v3 else 0),
        Dimension("z", "space", 8, 4, 2 if v3 else 0),
        Dimension("c", "channel", 3, 1, 1 if v3 else 0),
        Dimension("t", "time", 0, 10, 1 if v3 else 0),
    ]
    data = frames_of(241, h, w, np.uint8, seed=5)
    stream(cls, StorageProperties(uri=url, acquisition_dimensions=dims), data, stack=True)
    want = expected(data, (3, 8))  # stored (t, c, z, y, x): z fastest among frames
    assert want.shape == (11, 3, 8, 270, 480)
    check_readers(url, "0", want)
    a = xzaro.open_array(url, "0")
    assert a.meta.dimension_names == ("t", "c", "z", "y", "x")
    assert a.meta.chunk_shape == (10, 1, 4, 135, 240)
    if v3:
        assert a.meta.shard_shape == (10, 1, 8, 135, 480)


def test_5d_multiscale_halves_z(tmp_path: Path) -> None:
    url = str(tmp_path / "5dms.zarr")
    dims = [
        Dimension("x", "space", 64, 16),
        Dimension("y", "space", 40, 16),
        Dimension("z", "space", 5, 2),
        Dimension("c", "channel", 2, 1),
        Dimension("t", "time", 0, 3),
    ]
    data = frames_of(23, 40, 64, np.uint16, seed=9)
    props = StorageProperties(uri=url, acquisition_dimensions=dims, enable_multiscale=True)
    stream(ZarrV2, props, data)
    level = expected(data, (2, 5))
    for i in range(3):
        if i:
            level = coarsen_array(level, (2, 3, 4), "mean")
        check_readers(url, str(i), level, tensorstore=False)
    assert level.shape == (3, 2, 2, 10, 16)


# ---------------------------------------------------------------------------- V3 sharding


def test_v3_ragged_sharding_index(tmp_path: Path) -> None:
    from numcodecs import CRC32C

    url = str(tmp_path / "shard.zarr")
    cw, ch, ct = 16, 12, 5
    w, h = 8 * cw, 8 * ch
    data = frames_of(ct, h, w, np.uint16, seed=2)
    props = StorageProperties(
        uri=url, acquisition_dimensions=dims3(w, h, cw, ch, ct, x=6, y=7, t=1)
    )
    stream(ZarrV3, props, data)
    check_readers(url, "0", data)
    root = tmp_path / "shard.zarr" / "0" / "c"
    shard_files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert shard_files == ["0/0/0", "0/0/1", "0/1/0", "0/1/1"]
    nchunks = 1 * 7 * 6
    chunk_bytes = ct * ch * cw * 2
    for name in shard_files:
        _, sy, sx = (int(v) for v in name.split("/"))
        blob = (root / name).read_bytes()
        index_bytes = blob[-(16 * nchunks + 4) :]
        body, crc = index_bytes[:-4], index_bytes[-4:]
        assert struct.unpack("<I", crc)[0] == struct.unpack("<I", CRC32C().encode(body)[-4:])[0]
        index = np.frombuffer(body, "<u8").reshape(7, 6, 2)
        offset = 0
        for iy in range(7):
            for ix in range(6):
                gy, gx = sy * 7 + iy, sx * 6 + ix
                off, nbytes = (int(v) for v in index[iy, ix])
                if gy >= 8 or gx >= 8:  # outside the array: not stored
                    assert off == nbytes == 2**64 - 1
                    continue
                assert (off, nbytes) == (offset, chunk_bytes)
                chunk = np.frombuffer(blob[off : off + nbytes], "<u2").reshape(ct, ch, cw)
                want = data[:, gy * ch : (gy + 1) * ch, gx * cw : (gx + 1) * cw]
                np.testing.assert_array_equal(chunk, want)
                offset += nbytes
        assert len(blob) == offset + 16 * nchunks + 4


def test_v3_sharded_append_partial_shard(tmp_path: Path) -> None:
    url = str(tmp_path / "v3.zarr")
    data = frames_of(23, 30, 40, np.uint16)
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(40, 30, 16, 16, 4, x=2, t=2))
    s = stream(ZarrV3, props, data)
    assert s.get_meta().sharding
    doc = json.loads(Path(tmp_path / "v3.zarr" / "0" / "zarr.json").read_text())
    assert doc["shape"] == [23, 30, 40]
    assert doc["chunk_grid"]["configuration"]["chunk_shape"] == [8, 16, 32]
    codec = doc["codecs"][0]
    assert codec["name"] == "sharding_indexed"
    assert [c["name"] for c in codec["configuration"]["index_codecs"]] == ["bytes", "crc32c"]
    check_readers(url, "0", data)


# ---------------------------------------------------------------------------- lifecycle


def test_get_set_roundtrip(tmp_path: Path) -> None:
    props = StorageProperties(
        uri=str(tmp_path / "rt.zarr"),
        external_metadata_json='{"a": 1}',
        pixel_scale_um=(1.0, 2.0),
        acquisition_dimensions=dims3(64, 48, 32, 16, 8, x=2, y=3),
        enable_multiscale=True,
        compression=BloscCompressionParams("lz4", 1, "shuffle"),
    )
    s = ZarrV3()
    s.set(props)
    got = s.get()
    s.set(got)
    assert s.get() == props
    meta = s.get_meta()
    assert meta.chunking and meta.sharding and meta.multiscale and meta.s3
    assert not ZarrV2().get_meta().sharding


def test_restart(tmp_path: Path) -> None:
    url = str(tmp_path / "restart.zarr")
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(16, 8, 8, 8, 4), overwrite=True)
    s = ZarrV2(props)
    s.reserve_image_shape((8, 16), np.uint16)
    first, second = frames_of(9, 8, 16, seed=1), frames_of(5, 8, 16, seed=2)
    s.start()
    s.append(first)
    s.stop()
    s.stop()  # idempotent
    check_readers(url, "0", first)
    s.start()
    s.append(second)
    s.stop()
    check_readers(url, "0", second)
    assert s.frames_written == 5


def test_existing_store_needs_overwrite(tmp_path: Path) -> None:
    url = str(tmp_path / "e.zarr")
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(16, 8, 8, 8, 4))
    stream(ZarrV2, props, frames_of(3, 8, 16))
    with pytest.raises(StreamingError, match="overwrite"):
        stream(ZarrV2, props, frames_of(3, 8, 16))


def test_reader_mid_acquisition(tmp_path: Path) -> None:
    url = str(tmp_path / "live.zarr")
    data = frames_of(30, 24, 32, np.uint16)
    for cls in (ZarrV2, ZarrV3):
        props = StorageProperties(
            uri=url, acquisition_dimensions=dims3(32, 24, 16, 16, 8), overwrite=True
        )
        s = cls(props)
        s.reserve_image_shape((24, 32), np.uint16)
        s.start()
        assert xzaro.open_array(url, "0").shape == (0, 24, 32)  # valid at once
        s.append(data[:19])  # two rows of 8 handed over, 3 frames buffered
        deadline = time.monotonic() + 10
        while xzaro.open_array(url, "0").shape[0] < 16 and time.monotonic() < deadline:
            time.sleep(0.01)
        a = xzaro.open_array(url, "0")
        assert a.shape == (16, 24, 32)
        np.testing.assert_array_equal(a[...], data[:16])
        assert zarr.open_array(url, path="0", mode="r").shape == (16, 24, 32)
        s.append(data[19:])
        s.stop()
        check_readers(url, "0", data, tensorstore=False)


@pytest.mark.parametrize("cls", [ZarrV2, ZarrV3])
def test_stream_to_s3(s3_server: dict[str, Any], cls: type) -> None:
    """An S3 URI (moto server on 127.0.0.1): readable mid-acquisition, every level right."""
    bucket = s3_server["make_bucket"](f"stream-{cls.zarr_format}")
    url = f"s3://{bucket}/acq.zarr"
    options = s3_server["storage_options"]
    data = frames_of(21, 40, 48, np.uint16, seed=3)
    v3 = cls is ZarrV3
    props = StorageProperties(
        uri=url,
        storage_options=options,
        acquisition_dimensions=dims3(48, 40, 16, 16, 4, x=2 if v3 else 0, y=2 if v3 else 0),
        enable_multiscale=True,
        compression=BloscCompressionParams("lz4", 1, "shuffle"),
    )
    s = cls(props)
    s.reserve_image_shape((40, 48), np.uint16)
    s.start()
    assert xzaro.open_array(url, "0", storage_options=options).shape == (0, 40, 48)
    s.append(data[:9])  # two rows of 4 handed over
    deadline = time.monotonic() + 20
    while (
        xzaro.open_array(url, "0", storage_options=options).shape[0] < 8
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    mid = xzaro.open_array(url, "0", storage_options=options)
    assert mid.shape == (8, 40, 48)
    np.testing.assert_array_equal(mid[...], data[:8])
    s.append(data[9:])
    s.stop()
    level = data
    for i in range(3):  # 40x48, 20x24, 10x12
        if i:
            level = coarsen_array(level, (1, 2), "mean")
        np.testing.assert_array_equal(
            xzaro.open_array(url, str(i), storage_options=options)[...], level
        )
        z = zarr.open_array(url, path=str(i), mode="r", storage_options=options)
        np.testing.assert_array_equal(z[...], level)
    again = cls(props)  # the store exists and overwrite is false
    again.reserve_image_shape((40, 48), np.uint16)
    with pytest.raises(StreamingError, match="overwrite"):
        again.start()


def test_frames_are_never_cast(tmp_path: Path) -> None:
    s = ZarrV2(
        StorageProperties(
            uri=str(tmp_path / "f.zarr"), acquisition_dimensions=dims3(16, 8, 8, 8, 4)
        )
    )
    with pytest.raises(StreamingError, match="reserve_image_shape"):
        s.start()
    with pytest.raises(StreamingError, match="does not match"):
        s.reserve_image_shape((16, 8), np.uint16)
    s.reserve_image_shape((8, 16), np.uint16)
    with pytest.raises(StreamingError, match="start"):
        s.append(np.zeros((8, 16), np.uint16))
    with s:
        with pytest.raises(StreamingError, match="dtype"):
            s.append(np.zeros((8, 16), np.int16))
        with pytest.raises(StreamingError, match="shape"):
            s.append(np.zeros((16, 8), np.uint16))
        with pytest.raises(StreamingError, match="shape"):
            s.append(np.zeros((1, 1, 8, 16), np.uint16))
        assert s.append(np.ones((3, 8, 16), np.uint16)) == 3
    check_readers(str(tmp_path / "f.zarr"), "0", np.ones((3, 8, 16), np.uint16), tensorstore=False)


def _bad(tmp_path: Path, **change: Any) -> StorageProperties:
    props = StorageProperties(
        uri=str(tmp_path / "v.zarr"), acquisition_dimensions=dims3(16, 8, 8, 8, 4)
    )
    for k, v in change.items():
        setattr(props, k, v)
    return props


@pytest.mark.parametrize(
    "change, match",
    [
        ({"acquisition_dimensions": dims3(16, 8, 8, 8, 4)[:2]}, "at least 3"),
        (
            {"acquisition_dimensions": [Dimension("", "space", 16, 8), *dims3(16, 8, 8, 8, 4)[1:]]},
            "empty",
        ),
        (
            {
                "acquisition_dimensions": [
                    Dimension("y", "space", 16, 8),
                    *dims3(16, 8, 8, 8, 4)[1:],
                ]
            },
            "duplicate",
        ),
        (
            {"acquisition_dimensions": [*dims3(16, 8, 8, 8, 4)[:2], Dimension("t", "time", 5, 4)]},
            "append",
        ),
        (
            {"acquisition_dimensions": [Dimension("x", "space", 0, 8), *dims3(16, 8, 8, 8, 4)[1:]]},
            "'x'.*positive",
        ),
        (
            {
                "acquisition_dimensions": [
                    Dimension("x", "space", 16, 0),
                    *dims3(16, 8, 8, 8, 4)[1:],
                ]
            },
            "chunk_size_px",
        ),
        (
            {"acquisition_dimensions": [Dimension("t", "time", 0, 4), *dims3(16, 8, 8, 8, 4)[:2]]},
            "slowest first",
        ),
        ({"downsampling_method": "median"}, "downsampling_method"),
        ({"max_levels": -1}, "max_levels"),
        ({"ngff": False, "enable_multiscale": True}, "ngff"),
        ({"external_metadata_json": "{nope"}, "external_metadata_json"),
        ({"uri": "/nonexistent-dir-xzaro/sub/a.zarr"}, "does not exist"),
    ],
)
def test_validation_errors(tmp_path: Path, change: dict, match: str) -> None:
    with pytest.raises(StreamingError, match=match):
        ZarrV2().set(_bad(tmp_path, **change))


def test_validation_bad_kind_and_unwritable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        Dimension("x", "spatial", 16, 8)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(StreamingError, match="not writable"):
            ZarrV3().set(_bad(tmp_path, uri=str(ro / "a.zarr")))
    finally:
        ro.chmod(0o700)
    ZarrV3().set(_bad(tmp_path, acquisition_dimensions=dims3(16, 8, 8, 8, 4, x=2)))


@pytest.mark.parametrize("cls", [ZarrV2, ZarrV3])
def test_partial_last_step_is_padded_with_fill_on_reused_buffers(tmp_path: Path, cls: type) -> None:
    """Row buffers are recycled: the unused tail of the last, partial time step must read as
    the fill value, never as frames of an earlier row."""
    dims = [
        Dimension("x", "space", 24, 8, 3 if cls is ZarrV3 else 0),
        Dimension("y", "space", 16, 8, 2 if cls is ZarrV3 else 0),
        Dimension("z", "space", 3, 3, 1 if cls is ZarrV3 else 0),
        Dimension("t", "time", 0, 2, 1 if cls is ZarrV3 else 0),
    ]
    url = str(tmp_path / "p.zarr")
    data = frames_of(3 * 2 * 6 + 1, 16, 24)  # six full rows, then one frame of a seventh
    s = cls(StorageProperties(uri=url, acquisition_dimensions=dims))
    s.reserve_image_shape((16, 24), data.dtype)
    with s:
        for f in data:
            s.append(f)
            time.sleep(0.001)  # let written rows return their buffers for reuse
    want = expected(data, (3,))
    assert want.shape == (13, 3, 16, 24)
    assert not want[-1, 1:].any()
    check_readers(url, "0", want, tensorstore=False)


def _store_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in ("zarr.json", ".zarray", ".zattrs", ".zgroup")
    }


@pytest.mark.parametrize(
    ("cls", "dims", "n", "fill_rows"),
    [
        (ZarrV2, dims3(50, 33, 16, 16, 4), 10, ()),
        (ZarrV3, dims3(128, 96, 16, 12, 5, x=6, y=7, t=1), 7, ()),
        (ZarrV3, dims3(40, 30, 16, 16, 4, x=2, t=2), 23, (0, 1, 2, 3)),
        (
            ZarrV3,
            [
                Dimension("x", "space", 48, 16, 2),
                Dimension("y", "space", 20, 10, 1),
                Dimension("z", "space", 5, 2, 2),
                Dimension("c", "channel", 2, 1, 1),
                Dimension("t", "time", 0, 3, 1),
            ],
            30,
            (),
        ),
    ],
)
def test_direct_writes_store_what_buffered_rows_store(
    tmp_path: Path, cls: type, dims: list[Dimension], n: int, fill_rows: tuple[int, ...]
) -> None:
    """Uncompressed frames written straight to their objects give the same store as rows
    buffered and encoded: byte-identical objects, fill-only chunks left out of the index."""
    h, w = dims[1].array_size_px, dims[0].array_size_px
    data = frames_of(n, h, w, np.uint16, seed=11)
    data[list(fill_rows)] = 0
    urls = {}
    for direct in (True, False):
        urls[direct] = str(tmp_path / f"direct-{direct}.zarr")
        s = cls(StorageProperties(uri=urls[direct], acquisition_dimensions=dims))
        s.direct_writes = direct
        s.reserve_image_shape((h, w), np.uint16)
        with s:
            assert (s._direct is not None) is direct
            for f in data:
                s.append(f)
        if direct:
            assert s.get_meta().buffer_bytes < data[0].nbytes * 2  # one frame, not a row
    mids = tuple(d.array_size_px for d in reversed(dims[2:-1]))
    check_readers(urls[True], "0", expected(data, mids), tensorstore=False)
    direct, buffered = (_store_files(Path(urls[d])) for d in (True, False))
    assert direct.keys() == buffered.keys()
    if not fill_rows:
        assert direct == buffered
    else:  # a fill-only inner chunk: absent from both indexes, its bytes left in place here
        for name in direct:
            index = [
                np.frombuffer(f[-4 - 16 * 4 : -4], "<u8") for f in (direct[name], buffered[name])
            ]
            assert ((index[0] == 2**64 - 1) == (index[1] == 2**64 - 1)).all()
            assert len(direct[name]) >= len(buffered[name])


def test_direct_writes_leave_no_partial_object_on_error(tmp_path: Path) -> None:
    url = str(tmp_path / "err.zarr")
    s = ZarrV2(StorageProperties(uri=url, acquisition_dimensions=dims3(32, 24, 16, 16, 8)))
    s.reserve_image_shape((24, 32), np.uint16)
    s.start()
    s.append(frames_of(3, 24, 32))
    assert any(p.name.endswith(".xzaro-tmp") for p in Path(url).rglob("*"))
    with pytest.raises(StreamingError):
        s.append(np.zeros((24, 32), np.uint8))  # refused, the stream goes on
    s._direct.abort()  # what stop() does after a failure
    assert not any(p.name.endswith(".xzaro-tmp") for p in Path(url).rglob("*"))
    assert xzaro.open_array(url, "0").shape == (0, 24, 32)


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), StoreError("refused")])
def test_background_failure_is_an_xzaro_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """A failure in the background writer reaches the caller as an xzaro error."""
    import xzaro.writers.streaming.rows

    def broken(*args: Any, **kwargs: Any) -> None:
        raise failure

    monkeypatch.setattr(xzaro.writers.streaming.rows, "coarsen_tiles", broken)
    props = StorageProperties(
        uri=str(tmp_path / "bg.zarr"),
        acquisition_dimensions=dims3(32, 24, 16, 16, 4),
        enable_multiscale=True,
    )
    s = ZarrV3(props)
    s.reserve_image_shape((24, 32), np.uint16)
    s.start()
    with pytest.raises(ZaroError, match="writing frames failed") as info:
        s.append(frames_of(8, 24, 32))
        s.stop()
    assert isinstance(info.value, StoreError)
    assert info.value.__cause__ is failure


# ---------------------------------------------------------------------------- methods, layouts


def test_v2_accepts_and_ignores_shards(tmp_path: Path) -> None:
    """As the Acquire device did: ``shard_size_chunks`` given to ``ZarrV2`` is ignored, and
    ``get_meta`` says so."""
    url = str(tmp_path / "v2.zarr")
    data = frames_of(5, 16, 24)
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(24, 16, 8, 8, 2, x=2, y=2, t=3))
    s = stream(ZarrV2, props, data)
    assert s.get_meta().shard_size_chunks_ignored and not s.get_meta().sharding
    assert not ZarrV3().get_meta().shard_size_chunks_ignored
    check_readers(url, "0", data, tensorstore=False)
    assert zarr.open_array(url, path="0").chunks == (2, 8, 8)


@pytest.mark.parametrize("method", ["decimate", "min", "max", "mean"])
@pytest.mark.parametrize("cls", [ZarrV2, ZarrV3])
def test_downsampling_methods(tmp_path: Path, cls: type, method: str) -> None:
    """Every level is the method's kernel of the level below (odd sizes, a spatial z), and
    the OME metadata names the method."""
    url = str(tmp_path / "m.zarr")
    data = frames_of(2 * 3 * 3, 21, 27, np.uint8)
    dims = [
        Dimension("x", "space", 27, 8, 2, unit="micrometer", scale=0.5),
        Dimension("y", "space", 21, 8, 2),
        Dimension("z", "space", 3, 2, 1),
        Dimension("t", "time", 0, 2, 1),
    ]
    props = StorageProperties(
        uri=url,
        acquisition_dimensions=dims,
        enable_multiscale=True,
        downsampling_method=method,
        compression=BloscCompressionParams("zstd", 1, "shuffle"),
    )
    stream(cls, props, data, stack=True)
    group = zarr.open_group(url, mode="r")
    attrs = dict(group.attrs)
    entry = (attrs["ome"] if cls is ZarrV3 else attrs)["multiscales"][0]
    assert entry["type"] == method
    assert entry["axes"][-1] == {"name": "x", "type": "space", "unit": "micrometer"}
    want = expected(data, (3,))
    for level in range(len(entry["datasets"])):
        np.testing.assert_array_equal(group[str(level)][...], want)
        assert (
            entry["datasets"][level]["coordinateTransformations"][0]["scale"][-1] == 0.5 * 2**level
        )
        want = coarsen_array(want, (1, 2, 3), method)
    assert len(entry["datasets"]) == 3


def test_plain_array_layout_and_attributes(tmp_path: Path) -> None:
    """``ngff=False`` writes the array at the root (no group); attributes given while the
    stream runs are on it, and stay at stop."""
    url = str(tmp_path / "plain.zarr")
    data = frames_of(5, 8, 16)
    props = StorageProperties(uri=url, acquisition_dimensions=dims3(16, 8, 8, 8, 2), ngff=False)
    s = ZarrV3(props)
    s.reserve_image_shape((8, 16), np.uint16)
    with s:
        s.append(data[:3])
        s.update_attributes({"note": "hi"})
        assert zarr.open_array(url, mode="r").attrs["note"] == "hi"
        s.append(data[3:])
    a = zarr.open_array(url, mode="r")
    np.testing.assert_array_equal(a[...], data)
    assert dict(a.attrs) == {"note": "hi"}


@pytest.mark.parametrize(
    ("layout", "levels", "last_chunk"), [("xzaro", 4, (2, 4, 5)), ("acquire-zarr", 3, (2, 8, 8))]
)
def test_pyramid_conventions_and_max_levels(
    tmp_path: Path, layout: str, levels: int, last_chunk: tuple[int, ...]
) -> None:
    """32 x 40 frames in 8 x 8 chunks: xzaro's conventions halve until both fit (chunks
    shrink), acquire-zarr's until one fits (chunks kept); ``max_levels`` caps either."""
    data = frames_of(2, 32, 40)
    for cap, want in ((0, levels), (1, 2)):
        url = str(tmp_path / f"{layout}{cap}.zarr")
        props = StorageProperties(
            uri=url,
            acquisition_dimensions=dims3(40, 32, 8, 8, 2),
            enable_multiscale=True,
            conventions=layout,
            max_levels=cap,
        )
        stream(ZarrV3, props, data, stack=True)
        group = zarr.open_group(url, mode="r")
        assert len(list(group.array_keys())) == want
    assert group["1"].shape == (2, 16, 20)
    url = str(tmp_path / f"{layout}0.zarr")
    assert zarr.open_array(url, path=str(levels - 1), mode="r").chunks == last_chunk


def test_middle_dimension_of_size_one(tmp_path: Path) -> None:
    """A channel (or z) of size 1 between y and the append dimension."""
    url = str(tmp_path / "c1.zarr")
    data = frames_of(3, 8, 16)
    dims = [
        *dims3(16, 8, 8, 8, 2)[:2],
        Dimension("c", "channel", 1, 1),
        Dimension("t", "time", 0, 2),
    ]
    stream(ZarrV3, StorageProperties(uri=url, acquisition_dimensions=dims), data)
    np.testing.assert_array_equal(zarr.open_array(url, path="0")[...], data[:, None])
