"""``xzaro.acquire`` (acquire-zarr 0.10's API) against acquire-zarr itself.

The same settings, built with each module, stream the same frames; zarr-python reads both stores
and they must agree: the hierarchy, every array's shape, chunks, shards, dtype, compressors and
values, the OME-NGFF axes and scales, custom metadata, plate and well metadata. Pyramid levels
agree exactly except integer means: acquire-zarr truncates them, xzaro rounds them (half to even),
so a level ``k`` may differ by ``k``. Without acquire-zarr, the facade's output is checked
against numpy alone.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import xzaro.acquire as xa
from xzaro.writers.coarsen import coarsen_array

zarr = pytest.importorskip("zarr")

HAVE_ACQUIRE = importlib.util.find_spec("acquire_zarr") is not None
#: acquire-zarr's OME ``type`` for each method.
ACQUIRE_TYPES = {
    "MEAN": "local_mean",
    "DECIMATE": "decimate",
    "MIN": "local_min",
    "MAX": "local_max",
}
KERNELS = {"MEAN": "mean", "DECIMATE": "decimate", "MIN": "min", "MAX": "max"}


def modules() -> list[ModuleType]:
    """The facade, and acquire-zarr when it is installed."""
    if not HAVE_ACQUIRE:
        return [xa]
    import acquire_zarr

    acquire_zarr.set_log_level(acquire_zarr.LogLevel.ERROR)
    return [xa, acquire_zarr]


def dim(m: ModuleType, name: str, kind: str, size: int, chunk: int, shard: int = 1, **kw: Any):
    return m.Dimension(
        name=name,
        kind=getattr(m.DimensionType, kind),
        array_size_px=size,
        chunk_size_px=chunk,
        shard_size_chunks=shard,
        **kw,
    )


def stream(m: ModuleType, path: Path, frames: dict[str, np.ndarray], **settings: Any) -> None:
    """Stream ``frames`` (by array key) into ``path`` with module ``m``'s API."""
    s = m.StreamSettings(store_path=str(path), overwrite=True, **settings)
    z = m.ZarrStream(s)
    assert z.is_active()
    for key, data in frames.items():
        z.append(data, key=key or None)
    z.close()
    assert not z.is_active()


def arrays_of(path: Path) -> dict[str, Any]:
    """Every array below ``path`` (zarr-python), by path; ``""`` for a root array."""
    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return {"": node}
    return {k: v for k, v in node.members(max_depth=None) if isinstance(v, zarr.Array)}


def groups_of(path: Path) -> dict[str, dict]:
    """Every group's attributes below ``path`` (and the root's as ``""``)."""
    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Array):
        return {}
    found = {"": dict(node.attrs)}
    found.update(
        {k: dict(v.attrs) for k, v in node.members(max_depth=None) if isinstance(v, zarr.Group)}
    )
    return found


def assert_same_arrays(ours: Path, theirs: Path, mean_levels: bool = False) -> None:
    a, b = arrays_of(ours), arrays_of(theirs)
    assert sorted(a) == sorted(b)
    for key in a:
        x, y = a[key], b[key]
        assert (x.shape, x.dtype, x.shards) == (y.shape, y.dtype, y.shards), key
        assert [c.to_dict() for c in x.compressors] == [c.to_dict() for c in y.compressors], key
        level = int(key.rsplit("/", 1)[-1]) if key.rsplit("/", 1)[-1].isdigit() else 0
        if level == 0:
            assert x.chunks == y.chunks, key
        diff = np.abs(x[...].astype(np.int64) - y[...].astype(np.int64)).max(initial=0)
        assert diff <= (level if mean_levels else 0), (key, diff)


def ome_image(attrs: dict) -> dict:
    return attrs["ome"]["multiscales"][0]


def assert_same_image(ours: dict, theirs: dict) -> None:
    """The OME-NGFF images agree on axes and every level's path and scale."""
    a, b = ome_image(ours), ome_image(theirs)
    assert a["axes"] == b["axes"]
    assert [d["path"] for d in a["datasets"]] == [d["path"] for d in b["datasets"]]
    for da, db in zip(a["datasets"], b["datasets"]):
        scale = [t for t in da["coordinateTransformations"] if t["type"] == "scale"]
        assert scale == [t for t in db["coordinateTransformations"] if t["type"] == "scale"]


def frames_4d(shape: tuple[int, ...], dtype: Any = np.uint16) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 1000, shape).astype(dtype)


def test_single_array_compressed_sharded(tmp_path: Path) -> None:
    """t, c, y, x with LZ4 (shuffle), shards, units and scales, no pyramid: a plain array at
    the store path, with custom metadata in its attributes."""
    data = frames_4d((5, 2, 48, 64))
    for m in modules():
        arrays = [
            m.ArraySettings(
                data_type=np.uint16,
                compression=m.CompressionSettings(
                    compressor=m.Compressor.BLOSC1,
                    codec=m.CompressionCodec.BLOSC_LZ4,
                    level=3,
                    shuffle=1,
                ),
                dimensions=[
                    dim(m, "t", "TIME", 0, 2),
                    dim(m, "c", "CHANNEL", 2, 1),
                    dim(m, "y", "SPACE", 48, 16, 2, unit="micrometer", scale=0.5),
                    dim(m, "x", "SPACE", 64, 16, 2, unit="micrometer", scale=0.25),
                ],
            )
        ]
        s = m.StreamSettings(store_path=str(tmp_path / m.__name__), overwrite=True, arrays=arrays)
        assert s.get_array_keys() == [""]
        assert s.get_maximum_memory_usage() > 0
        z = m.ZarrStream(s)
        z.append(data[:3])
        z.append(data[3:])
        assert z.write_custom_metadata('{"lab": {"x": 1}}')
        assert z.write_custom_metadata({"n": 2}, metadata_key="more")
        z.close()
    ours = tmp_path / xa.__name__
    got = zarr.open_array(str(ours), mode="r")
    np.testing.assert_array_equal(got[...], data)
    assert (got.chunks, got.shards) == ((2, 1, 16, 16), (2, 1, 32, 32))
    assert got.attrs["lab"] == {"x": 1} and got.attrs["more"] == {"n": 2}
    if HAVE_ACQUIRE:
        theirs = tmp_path / "acquire_zarr"
        assert_same_arrays(ours, theirs)
        assert dict(got.attrs) == dict(zarr.open_array(str(theirs), mode="r").attrs)


@pytest.mark.parametrize("method", ["MEAN", "DECIMATE", "MIN", "MAX"])
def test_downsampling_methods(tmp_path: Path, method: str) -> None:
    """A pyramid over z, y and x (odd sizes) with Blosc-Zstd: the same levels, shapes, shards
    and values (integer means within a level's number of roundings), the method in ``type``."""
    data = np.random.default_rng(3).integers(0, 255, (3, 6, 45, 63), dtype=np.uint8)
    for m in modules():
        array = m.ArraySettings(
            output_key="img",
            data_type=m.DataType.UINT8,
            compression=m.CompressionSettings(
                compressor=m.Compressor.BLOSC1, codec=m.CompressionCodec.BLOSC_ZSTD, level=1
            ),
            downsampling_method=getattr(m.DownsamplingMethod, method),
            dimensions=[
                dim(m, "t", "TIME", 0, 1),
                dim(m, "z", "SPACE", 6, 2),
                dim(m, "y", "SPACE", 45, 16, 2, unit="micrometer", scale=0.5),
                dim(m, "x", "SPACE", 63, 16, 2, unit="micrometer", scale=0.5),
            ],
        )
        stream(m, tmp_path / m.__name__, {"img": data}, arrays=[array])
    ours = tmp_path / xa.__name__
    image = ome_image(groups_of(ours)["img"])
    assert image["type"] == KERNELS[method]
    assert len(image["datasets"]) == 3
    expected = data
    for level in range(3):
        got = zarr.open_array(str(ours / "img" / str(level)), mode="r")[...]
        np.testing.assert_array_equal(got, expected)
        expected = coarsen_array(expected, (1, 2, 3), KERNELS[method])
    if HAVE_ACQUIRE:
        theirs = tmp_path / "acquire_zarr"
        assert_same_arrays(ours, theirs, mean_levels=method == "MEAN")
        assert_same_image(groups_of(ours)["img"], groups_of(theirs)["img"])
        assert ome_image(groups_of(theirs)["img"])["type"] == ACQUIRE_TYPES[method]


@pytest.mark.parametrize("max_levels", [1, 2])
def test_max_levels(tmp_path: Path, max_levels: int) -> None:
    data = frames_4d((2, 64, 64), np.uint8)
    for m in modules():
        array = m.ArraySettings(
            data_type=np.uint8,
            downsampling_method=m.DownsamplingMethod.MAX,
            max_levels=max_levels,
            dimensions=[
                dim(m, "t", "TIME", 0, 2),
                dim(m, "y", "SPACE", 64, 8),
                dim(m, "x", "SPACE", 64, 8),
            ],
        )
        stream(m, tmp_path / m.__name__, {"": data}, arrays=[array])
    ours = groups_of(tmp_path / xa.__name__)[""]
    assert len(ome_image(ours)["datasets"]) == 1 + max_levels
    if HAVE_ACQUIRE:
        assert_same_arrays(tmp_path / xa.__name__, tmp_path / "acquire_zarr")
        assert_same_image(ours, groups_of(tmp_path / "acquire_zarr")[""])


@pytest.mark.parametrize(
    ("zyx", "chunks", "shapes"),
    [
        ((8, 8, 8), (1, 4, 4), [(8, 8, 8), (4, 4, 4), (2, 4, 4), (1, 4, 4)]),
        ((5, 32, 32), (4, 8, 8), [(5, 32, 32), (3, 16, 16), (3, 8, 8)]),
        ((2, 32, 64), (2, 8, 8), [(2, 32, 64), (2, 16, 32), (2, 8, 16)]),
        ((1, 33, 33), (1, 8, 8), [(1, 33, 33), (1, 17, 17), (1, 9, 9), (1, 5, 5)]),
    ],
)
def test_pyramid_shapes(tmp_path: Path, zyx: tuple, chunks: tuple, shapes: list) -> None:
    """acquire-zarr's pyramid: an axis is halved while it is larger than a chunk; levels are
    made while y and x both are, or z is; every level keeps the chunk sizes."""
    data = np.random.default_rng(5).integers(0, 255, (1, *zyx), dtype=np.uint8)
    for m in modules():
        names = (("z", "SPACE"), ("y", "SPACE"), ("x", "SPACE"))
        array = m.ArraySettings(
            data_type=np.uint8,
            downsampling_method=m.DownsamplingMethod.MAX,
            dimensions=[
                dim(m, "t", "TIME", 0, 1),
                *(dim(m, n, k, s, c) for (n, k), s, c in zip(names, zyx, chunks)),
            ],
        )
        stream(m, tmp_path / m.__name__, {"": data}, arrays=[array])
    read = arrays_of(tmp_path / xa.__name__)
    assert [read[str(i)].shape[1:] for i in range(len(read))] == shapes
    assert {read[k].chunks[1:] for k in read} == {chunks}
    if HAVE_ACQUIRE:
        theirs = tmp_path / "acquire_zarr"
        assert_same_arrays(tmp_path / xa.__name__, theirs)
        assert_same_image(groups_of(tmp_path / xa.__name__)[""], groups_of(theirs)[""])


def test_several_arrays(tmp_path: Path) -> None:
    """Three arrays by key (nested, OME-NGFF without a pyramid, plain), custom metadata per
    array; the intermediate group is written."""
    pyramid = frames_4d((3, 32, 40), np.uint16)
    labels = (frames_4d((4, 8, 8)) % 7).astype(np.uint8)
    floats = frames_4d((2, 3, 8, 8)).astype(np.float32) / 7
    for m in modules():
        arrays = [
            m.ArraySettings(
                output_key="a/pyramid",
                data_type=np.uint16,
                downsampling_method=m.DownsamplingMethod.DECIMATE,
                dimensions=[
                    dim(m, "t", "TIME", 0, 2),
                    dim(m, "y", "SPACE", 32, 8, 2),
                    dim(m, "x", "SPACE", 40, 8, 2),
                ],
            ),
            m.ArraySettings(
                output_key="labels",
                data_type=m.DataType.UINT8,
                is_ngff=True,
                dimensions=[
                    dim(m, "t", "TIME", 0, 3),
                    dim(m, "y", "SPACE", 8, 4),
                    dim(m, "x", "SPACE", 8, 4),
                ],
            ),
            m.ArraySettings(
                output_key="floats",
                data_type=m.DataType.FLOAT32,
                dimensions=[
                    dim(m, "t", "TIME", 0, 1),
                    dim(m, "c", "CHANNEL", 3, 3),
                    dim(m, "y", "SPACE", 8, 8),
                    dim(m, "x", "SPACE", 8, 8),
                ],
            ),
        ]
        s = m.StreamSettings(store_path=str(tmp_path / m.__name__), overwrite=True, arrays=arrays)
        assert sorted(s.get_array_keys()) == ["a/pyramid", "floats", "labels"]
        z = m.ZarrStream(s)
        z.append(pyramid, key="a/pyramid")
        z.append(labels[:1], key="labels")
        z.append(floats, key="floats")
        z.append(labels[1:], key="labels")
        z.write_custom_metadata({"who": "me"}, array_key="labels", metadata_key="meta")
        z.write_custom_metadata({"what": 1}, array_key="a/pyramid")
        z.close()
    ours = tmp_path / xa.__name__
    read = arrays_of(ours)
    np.testing.assert_array_equal(read["labels/0"][...], labels)
    np.testing.assert_array_equal(read["floats"][...], floats)
    np.testing.assert_array_equal(read["a/pyramid/1"][...], pyramid[:, ::2, ::2])
    groups = groups_of(ours)
    assert groups["labels"]["meta"] == {"who": "me"} and groups["a/pyramid"]["what"] == 1
    if HAVE_ACQUIRE:
        theirs = tmp_path / "acquire_zarr"
        assert_same_arrays(ours, theirs)
        other = groups_of(theirs)
        assert sorted(groups) == sorted(other)
        for key in ("labels", "a/pyramid"):
            assert_same_image(groups[key], other[key])
            assert {k: v for k, v in groups[key].items() if k != "ome"} == {
                k: v for k, v in other[key].items() if k != "ome"
            }


def plate_settings(m: ModuleType) -> dict[str, Any]:
    def fov(path: str, acquisition: int | None) -> Any:
        array = m.ArraySettings(
            data_type=np.uint16,
            dimensions=[
                dim(m, "t", "TIME", 0, 2),
                dim(m, "y", "SPACE", 8, 4),
                dim(m, "x", "SPACE", 8, 4),
            ],
        )
        return m.FieldOfView(path=path, acquisition_id=acquisition, array_settings=array)

    plate = m.Plate(
        path="plate",
        name="test plate",
        row_names=["A", "B"],
        column_names=["1", "2", "3"],
        acquisitions=[m.Acquisition(id=0, name="first", start_time=10, end_time=20)],
        wells=[
            m.Well(row_name="A", column_name="1", images=[fov("f0", 0), fov("f1", None)]),
            m.Well(row_name="B", column_name="3", images=[fov("0", 0)]),
        ],
    )
    return {"hcs_plates": [plate]}


def test_plates(tmp_path: Path) -> None:
    """An HCS plate (two wells, three fields): the same plate and well metadata, valid
    OME-NGFF 0.5 by ome-zarr-models (where installed), and the same field images."""
    keys = ["plate/A/1/f0", "plate/A/1/f1", "plate/B/3/0"]
    frames = {k: frames_4d((3, 8, 8)) + i for i, k in enumerate(keys)}
    for m in modules():
        stream(m, tmp_path / m.__name__, frames, **plate_settings(m))
    ours = tmp_path / xa.__name__
    if importlib.util.find_spec("ome_zarr_models") is not None:
        from ome_zarr_models.v05.hcs import HCS
        from ome_zarr_models.v05.image import Image
        from ome_zarr_models.v05.well import Well

        HCS.from_zarr(zarr.open_group(str(ours / "plate"), mode="r"))
        for key in ("plate/A/1", "plate/B/3"):
            Well.from_zarr(zarr.open_group(str(ours / key), mode="r"))
        for key in keys:
            Image.from_zarr(zarr.open_group(str(ours / key), mode="r"))
    for key in keys:
        np.testing.assert_array_equal(arrays_of(ours)[f"{key}/0"][...], frames[key])
    if HAVE_ACQUIRE:
        theirs = tmp_path / "acquire_zarr"
        assert_same_arrays(ours, theirs)
        a, b = groups_of(ours), groups_of(theirs)
        assert sorted(a) == sorted(b)
        assert a["plate"] == b["plate"]
        for key in ("plate/A/1", "plate/B/3"):
            assert a[key] == b[key]
        for key in keys:
            assert_same_image(a[key], b[key])


def config_settings(m: ModuleType) -> Any:
    array = m.ArraySettings(
        output_key="k",
        data_type=m.DataType.FLOAT32,
        downsampling_method=m.DownsamplingMethod.MIN,
        max_levels=2,
        compression=m.CompressionSettings(
            compressor=m.Compressor.BLOSC1, codec=m.CompressionCodec.BLOSC_ZSTD, level=3, shuffle=2
        ),
        dimensions=[
            dim(m, "t", "TIME", 0, 1, unit="second", scale=0.5),
            dim(m, "y", "SPACE", 8, 4),
            dim(m, "x", "SPACE", 8, 4),
        ],
    )
    return m.StreamSettings(
        store_path="x.zarr", overwrite=True, arrays=[array], **plate_settings(m)
    )


def test_config_documents(tmp_path: Path) -> None:
    """``to_dict``/``to_json``/``to_yaml``/``to_file`` and back: the same document as
    acquire-zarr's, read by either library."""
    ours = config_settings(xa)
    doc = ours.to_dict()
    assert doc["version"] == 2 and doc["arrays"][0]["compression"]["codec"] == "blosc-zstd"
    assert xa.StreamSettings.from_dict(doc).to_dict() == doc
    assert xa.StreamSettings.from_string(ours.to_json()).to_dict() == doc
    have_yaml = importlib.util.find_spec("yaml") is not None
    for name in ("s.json", "s.yaml") if have_yaml else ("s.json",):
        ours.to_file(str(tmp_path / name))
        assert xa.StreamSettings.from_file(str(tmp_path / name)).to_dict() == doc
    if have_yaml:
        assert xa.StreamSettings.from_string(ours.to_yaml()).to_dict() == doc
    with pytest.raises(xa.StreamingError, match="unknown keys"):
        xa.StreamSettings.from_dict({**doc, "bogus": 1})
    if HAVE_ACQUIRE:
        import acquire_zarr

        theirs = config_settings(acquire_zarr)
        assert theirs.to_dict() == doc
        assert xa.StreamSettings.from_string(theirs.to_json()).to_dict() == doc
        assert acquire_zarr.StreamSettings.from_string(ours.to_json()).to_dict() == doc
