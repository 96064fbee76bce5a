"""OME-Zarr multiscale images read as xarray trees (``xzaro.backends.ome``).

Every store is written in the test by the program that makes such stores (ome-zarr-py,
ngff-zarr, acquire-zarr, xzaro's streams and pyramids, zarr-python with the OME-NGFF spec's
example documents). Each level is checked against zarr-python's read of the same array, its
dimensions against the OME axes names and its coordinates against the JSON the program wrote,
computed here with numpy; the metadata is validated with ``ome-zarr-models``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import xzaro
from xzaro.errors import DecodeError, MetadataError, NodeNotFoundError, UnsupportedError

zarr = pytest.importorskip("zarr")

# Stores written by other programs carry no consolidated metadata; xarray's warning about it is
# not what these tests are about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Failed to open Zarr store with consolidated metadata:RuntimeWarning"
)

ENGINE = "zaro"
#: The values as stored (Zarr V2's fill value is not turned into NaN).
RAW = {"mask_and_scale": False}


# ---------------------------------------------------------------------------------- helpers
def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def multiscale_json(url: str, group: str = "") -> dict:
    """The first ``multiscales`` entry of an image group, as the writing program stored it."""
    attrs = zarr.open_group(url, path=group, mode="r").attrs.asdict()
    entries = attrs["ome"]["multiscales"] if "ome" in attrs else attrs["multiscales"]
    return entries[0]


def expected_coordinates(ms: dict, dataset: dict, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Per axis: the level's transformations applied to the index, then the multiscale's."""
    coords = [np.arange(n, dtype=np.float64) for n in shape]
    for t in [
        *dataset.get("coordinateTransformations", []),
        *ms.get("coordinateTransformations", []),
    ]:
        if t["type"] == "scale":
            coords = [c * s for c, s in zip(coords, t["scale"])]
        elif t["type"] == "translation":
            coords = [c + s for c, s in zip(coords, t["translation"])]
    return coords


def level_node(path: str, layout: str) -> tuple[str, str]:
    """The node and variable a level's path gives: an array node holds ``image``; a level
    group holds the array under its own name."""
    if layout == "array":
        return path, "image"
    node, _, name = path.rpartition("/")
    return node, name


def check_level(
    ds: xr.Dataset, var: str, url: str, array_path: str, ms: dict, dataset: dict
) -> None:
    """Values as zarr-python reads them, OME axes as dimensions, coordinates from the JSON."""
    want = zarr.open_array(url, path=array_path, mode="r")[...]
    axes = ms["axes"]
    names = tuple(a["name"] for a in axes)
    assert ds[var].dims == names
    assert ds[var].dtype == want.dtype
    np.testing.assert_array_equal(ds[var].values, want)
    for axis, values in zip(axes, expected_coordinates(ms, dataset, want.shape)):
        coord = ds[axis["name"]]
        assert coord.dims == (axis["name"],)
        np.testing.assert_allclose(coord.values, values, rtol=1e-12, atol=1e-12)
        assert coord.attrs.get("units") == axis.get("unit")
        assert coord.attrs.get("type") == axis.get("type")


def check_image(
    url: str, layout: str, group: str = "", tree: xr.DataTree | None = None
) -> list[str]:
    """The tree of the image group at ``group``, its levels on their own, and
    ``xzaro.open_multiscale``, all checked level by level; returns the level nodes."""
    ms = multiscale_json(url, group)
    if tree is None:
        tree = xr.open_datatree(url, engine=ENGINE, group=group or None, **RAW)
    nodes = []
    levels = xzaro.open_multiscale(url, group=group, **RAW)
    assert len(levels) == len(ms["datasets"])
    for dataset, level in zip(ms["datasets"], levels):
        node, var = level_node(dataset["path"], layout)
        nodes.append(node)
        ds = tree[node].to_dataset()
        check_level(ds, var, url, join(group, dataset["path"]), ms, dataset)
        alone = xr.open_dataset(url, engine=ENGINE, group=join(group, node), **RAW)
        xr.testing.assert_identical(alone.load(), ds.load())
        xr.testing.assert_identical(level.load(), ds)
    # the image group keeps its attributes and does not repeat its levels
    assert tree.attrs == zarr.open_group(url, path=group, mode="r").attrs.asdict()
    assert not set(tree.data_vars) & {"image", *(d["path"] for d in ms["datasets"])}
    return nodes


def validate(url: str, version: str, group: str = "") -> Any:
    pytest.importorskip("ome_zarr_models")
    from ome_zarr_models import v04, v05

    cls = v04.Image if version == "0.4" else v05.Image
    return cls.from_zarr(zarr.open_group(url, path=group, mode="r"))


# ---------------------------------------------------------------------------------- programs
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_py_image(tmp_path: Path, version: str) -> None:
    """ome-zarr-py: one array per level (``s0``, ``s1``, ``s2``), scale and translation."""
    pytest.importorskip("ome_zarr")
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image

    url = str(tmp_path / "image.zarr")
    data = np.random.default_rng(0).integers(0, 4000, (2, 64, 64), dtype=np.uint16)
    group = zarr.open_group(url, mode="w", zarr_format=2 if version == "0.4" else 3)
    with pytest.warns(UserWarning, match="Scale value not provided"):  # for the channel axis
        write_image(
            data,
            group,
            axes="cyx",
            fmt=FormatV04() if version == "0.4" else FormatV05(),
            scale_factors=(2, 4),
            scale={"y": 0.5, "x": 0.25},
            axes_units={"y": "micrometer", "x": "nanometer"},
        )
    validate(url, version)
    ms = multiscale_json(url)
    assert [d["path"] for d in ms["datasets"]] == ["s0", "s1", "s2"]  # not digit names
    assert any(
        t.get("translation", [0])[-1]
        for d in ms["datasets"]
        for t in d["coordinateTransformations"]
    )
    nodes = check_image(url, "array")
    assert nodes == ["s0", "s1", "s2"]
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    assert list(tree.children) == ["s0", "s1", "s2"]
    np.testing.assert_array_equal(tree["s0"]["image"].values, data)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ngff_zarr_image(tmp_path: Path, version: str) -> None:
    """ngff-zarr: one group per level (``scale0/image``), with a translation."""
    nz = pytest.importorskip("ngff_zarr")
    url = str(tmp_path / "ngff.zarr")
    data = np.random.default_rng(1).integers(0, 4000, (64, 64), dtype=np.uint16)
    image = nz.to_ngff_image(
        data,
        dims=["y", "x"],
        scale={"y": 0.5, "x": 0.25},
        translation={"y": 10.0, "x": -3.0},
        axes_units={"y": "micrometer", "x": "micrometer"},
    )
    nz.to_ngff_zarr(url, nz.to_multiscales(image, scale_factors=[2, 4]), version=version)
    validate(url, version)
    ms = multiscale_json(url)
    assert [d["path"] for d in ms["datasets"]] == ["scale0/image", "scale1/image", "scale2/image"]
    assert check_image(url, "group") == ["scale0", "scale1", "scale2"]
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    np.testing.assert_array_equal(tree["scale0"]["image"].values, data)
    assert tree["scale0"]["y"].values[0] == 10.0 and tree["scale0"]["x"].values[0] == -3.0


def test_acquire_zarr_stream(tmp_path: Path) -> None:
    """acquire-zarr 0.10: arrays ``0``, ``1``, ``2`` of a growing time axis, mean pyramid."""
    aqz = pytest.importorskip("acquire_zarr")
    url = str(tmp_path / "acquire.zarr")
    dims = [
        aqz.Dimension(
            name="t",
            kind=aqz.DimensionType.TIME,
            array_size_px=0,
            chunk_size_px=2,
            shard_size_chunks=1,
        ),
        aqz.Dimension(
            name="y",
            kind=aqz.DimensionType.SPACE,
            array_size_px=64,
            chunk_size_px=16,
            shard_size_chunks=2,
            unit="micrometer",
            scale=0.5,
        ),
        aqz.Dimension(
            name="x",
            kind=aqz.DimensionType.SPACE,
            array_size_px=64,
            chunk_size_px=16,
            shard_size_chunks=2,
            unit="micrometer",
            scale=0.25,
        ),
    ]
    array = aqz.ArraySettings(
        dimensions=dims, data_type=np.uint16, downsampling_method=aqz.DownsamplingMethod.MEAN
    )
    settings = aqz.StreamSettings(store_path=url, arrays=[array], version=aqz.ZarrVersion.V3)
    frames = np.random.default_rng(2).integers(0, 4000, (5, 64, 64), dtype=np.uint16)
    stream = aqz.ZarrStream(settings)
    stream.append(frames)
    stream.close()
    validate(url, "0.5")
    ms = multiscale_json(url)
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    assert check_image(url, "array") == ["0", "1", "2"]
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    np.testing.assert_array_equal(tree["0"]["image"].values, frames)
    assert tree["0"]["y"].attrs == {"units": "micrometer", "type": "space"}
    assert tree["0"]["t"].attrs == {"type": "time"}


def _xzaro_stream_props(url: str) -> Any:
    from xzaro.streaming import Dimension, StorageProperties

    dims = [
        Dimension("x", "space", 64, 16),
        Dimension("y", "space", 48, 16),
        Dimension("t", "time", 0, 4),
    ]
    return StorageProperties(
        uri=url, acquisition_dimensions=dims, enable_multiscale=True, pixel_scale_um=(0.25, 0.5)
    )


@pytest.mark.parametrize("kind", ["ZarrV2", "ZarrV3"])
def test_xzaro_stream_read_while_written(tmp_path: Path, kind: str) -> None:
    """xzaro's own streams: array per level at the root; a reader during the acquisition sees
    the rows written so far, at every level, as zarr-python does."""
    from xzaro import streaming

    url = str(tmp_path / "live.zarr")
    frames = np.random.default_rng(3).integers(0, 4000, (14, 48, 64), dtype=np.uint16)
    s = getattr(streaming, kind)(_xzaro_stream_props(url))
    s.reserve_image_shape((48, 64), np.uint16)
    s.start()
    s.append(frames[:10])  # two rows of 4 written, 2 frames buffered
    deadline = time.monotonic() + 10
    n_levels = len(multiscale_json(url)["datasets"])
    assert n_levels == 3
    while time.monotonic() < deadline and any(
        zarr.open_array(url, path=str(i), mode="r").shape[0] < 8 for i in range(n_levels)
    ):
        time.sleep(0.01)
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    assert [tree[str(i)].sizes["t"] for i in range(n_levels)] == [8] * n_levels
    np.testing.assert_array_equal(tree["0"]["image"].values, frames[:8])
    check_image(url, "array", tree=tree)
    s.append(frames[10:])
    s.stop()
    validate(url, "0.4" if kind == "ZarrV2" else "0.5")
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    np.testing.assert_array_equal(tree["0"]["image"].values, frames)
    check_image(url, "array", tree=tree)
    assert tree["0"]["x"].attrs == {"units": "micrometer", "type": "space"}


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_xzaro_pyramid(tmp_path: Path, zarr_format: int) -> None:
    """``to_store(multiscale=...)``: one group per level, a multiscale entry per variable;
    without stored coordinates they come from the metadata, stored ones are kept."""
    from xzaro import Multiscale

    rng = np.random.default_rng(4)
    ds = xr.Dataset(
        {
            "img": (("c", "y", "x"), rng.integers(0, 4000, (2, 64, 64), dtype=np.uint16)),
            "mask": (("y", "x"), rng.integers(0, 2, (64, 64), dtype=np.uint8)),
        }
    )
    plain = str(tmp_path / "plain.zarr")
    ds.zaro.to_store(plain, zarr_format=zarr_format, multiscale=Multiscale(levels=3))
    validate(plain, "0.4" if zarr_format == 2 else "0.5")
    assert check_image(plain, "group") == ["0", "1", "2"]
    tree = xr.open_datatree(plain, engine=ENGINE, **RAW)
    assert set(tree["1"].data_vars) == {"img", "mask"}
    np.testing.assert_array_equal(tree["0"]["mask"].values, ds["mask"].values)

    located = str(tmp_path / "located.zarr")
    ds.assign_coords(y=100 + np.arange(64) * 0.5, x=np.arange(64) * 0.5).zaro.to_store(
        located, zarr_format=zarr_format, multiscale=Multiscale(levels=3)
    )
    levels = xzaro.open_multiscale(located)
    for i, level in enumerate(levels):
        for dim in ("y", "x"):  # the stored coordinate, not one from the metadata
            want = zarr.open_array(located, path=f"{i}/{dim}", mode="r")[...]
            np.testing.assert_array_equal(level[dim].values, want)
    assert levels[0]["y"].values[0] == 100.0


# ---------------------------------------------------------------------------------- spec examples
#: OME-NGFF 0.4 ``valid_strict/multiscales_example.json`` (ome/ngff): 5-D, with a multiscale
#: transformation (the time unit) applied after each level's scale.
SPEC_04_EXAMPLE = {
    "multiscales": [
        {
            "version": "0.4",
            "name": "example",
            "axes": [
                {"name": "t", "type": "time", "unit": "millisecond"},
                {"name": "c", "type": "channel"},
                {"name": "z", "type": "space", "unit": "micrometer"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [1.0, 1.0, 0.5, 0.5, 0.5]}
                    ],
                },
                {
                    "path": "1",
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [1.0, 1.0, 1.0, 1.0, 1.0]}
                    ],
                },
                {
                    "path": "2",
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [1.0, 1.0, 2.0, 2.0, 2.0]}
                    ],
                },
            ],
            "coordinateTransformations": [{"type": "scale", "scale": [0.1, 1.0, 1.0, 1.0, 1.0]}],
            "type": "gaussian",
            "metadata": {"method": "skimage.transform.pyramid_gaussian", "version": "0.16.1"},
        }
    ]
}

#: OME-NGFF 0.5 ``valid_strict/image_omero.json`` (ome/ngff 0.5 test suite): a translation on
#: level 0 only, omero rendering settings beside the multiscales.
SPEC_05_OMERO = {
    "ome": {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [
                    {"name": "t", "type": "time"},
                    {"name": "c", "type": "channel"},
                    {"name": "z", "type": "space", "unit": "micrometer"},
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
                "datasets": [
                    {
                        "path": "0",
                        "coordinateTransformations": [
                            {"scale": [1, 1, 0.5, 0.13, 0.13], "type": "scale"},
                            {"translation": [0, 9, 0.5, 25.74, 21.58], "type": "translation"},
                        ],
                    },
                    {
                        "path": "1",
                        "coordinateTransformations": [
                            {"scale": [1, 1, 1, 0.26, 0.26], "type": "scale"}
                        ],
                    },
                ],
                "name": "image_with_omero_metadata",
            }
        ],
        "omero": {"id": 1, "rdefs": {"defaultT": 0, "defaultZ": 2, "model": "color"}},
    }
}

#: OME-NGFF 0.5 ``valid_strict/image_metadata.json``: one level at the non-default path
#: ``path/to/0``.
SPEC_05_PATH = {
    "ome": {
        "version": "0.5",
        "multiscales": [
            {
                "name": "example",
                "datasets": [
                    {
                        "path": "path/to/0",
                        "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}],
                    }
                ],
                "type": "gaussian",
                "axes": [
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
            }
        ],
    }
}


def write_spec_image(url: str, attrs: dict, zarr_format: int, shapes: dict[str, tuple]) -> dict:
    """The example's attributes on a group, with an array made by zarr-python per level."""
    group = zarr.open_group(url, mode="w", zarr_format=zarr_format)
    entry = attrs.get("ome", attrs)["multiscales"][0]
    # OME-NGFF 0.5 arrays name their dimensions as the axes (Zarr V3 dimension_names)
    names = {"dimension_names": [a["name"] for a in entry["axes"]]} if zarr_format == 3 else {}
    values = {}
    for i, (path, shape) in enumerate(shapes.items()):
        data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + i
        if names and len(names["dimension_names"]) != len(shape):
            names = {}
        group.create_array(path, data=data, chunks=tuple(max(1, n // 2) for n in shape), **names)
        values[path] = data
    group.attrs.update(attrs)
    return values


def test_spec_example_04_multiscale_transformation(tmp_path: Path) -> None:
    url = str(tmp_path / "example.zarr")
    write_spec_image(
        url, SPEC_04_EXAMPLE, 2, {"0": (3, 2, 4, 8, 8), "1": (3, 2, 2, 4, 4), "2": (3, 2, 1, 2, 2)}
    )
    validate(url, "0.4")
    assert check_image(url, "array") == ["0", "1", "2"]
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    np.testing.assert_allclose(tree["0"]["t"].values, [0.0, 0.1, 0.2])  # 0.1 ms per step
    np.testing.assert_allclose(tree["2"]["z"].values, [0.0])
    np.testing.assert_allclose(tree["2"]["x"].values, [0.0, 2.0])


def test_spec_example_05_translation(tmp_path: Path) -> None:
    url = str(tmp_path / "omero.zarr")
    write_spec_image(url, SPEC_05_OMERO, 3, {"0": (1, 2, 4, 8, 8), "1": (1, 2, 2, 4, 4)})
    validate(url, "0.5")
    assert check_image(url, "array") == ["0", "1"]
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    np.testing.assert_allclose(tree["0"]["x"].values[:2], [21.58, 21.71])
    np.testing.assert_allclose(tree["1"]["x"].values[:2], [0.0, 0.26])
    assert tree.attrs["ome"]["omero"]["id"] == 1


def test_spec_example_05_nested_path(tmp_path: Path) -> None:
    url = str(tmp_path / "nested.zarr")
    values = write_spec_image(url, SPEC_05_PATH, 3, {"path/to/0": (8, 6)})
    validate(url, "0.5")
    assert check_image(url, "group") == ["path/to"]
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    np.testing.assert_array_equal(tree["path/to"]["0"].values, values["path/to/0"])
    assert tree["path/to"]["0"].dims == ("y", "x")


def test_level_groups_sharing_a_group_are_array_nodes(tmp_path: Path) -> None:
    """Level arrays that share a group (``levels/0``, ``levels/1``) are nodes of their own
    below that group, named by their path."""
    attrs = {
        "multiscales": [
            {
                "version": "0.4",
                "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
                "datasets": [
                    {
                        "path": f"levels/{i}",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [2.0**i, 2.0**i]},
                            {"type": "translation", "translation": [1.0, 2.0]},
                        ],
                    }
                    for i in range(2)
                ],
            }
        ]
    }
    url = str(tmp_path / "shared.zarr")
    write_spec_image(url, attrs, 2, {"levels/0": (8, 8), "levels/1": (4, 4)})
    validate(url, "0.4")
    assert check_image(url, "array") == ["levels/0", "levels/1"]
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    assert list(tree["levels"].data_vars) == []
    np.testing.assert_allclose(tree["levels/1"]["x"].values, [2.0, 4.0, 6.0, 8.0])


# ---------------------------------------------------------------------------------- whole stores
def test_plate_opens_as_nested_tree(tmp_path: Path) -> None:
    """An HCS plate by ome-zarr-py: plate → rows → wells → fields, each field an image whose
    levels are nodes; the plain groups keep their metadata."""
    pytest.importorskip("ome_zarr")
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    url = str(tmp_path / "plate.zarr")
    fmt = FormatV04()
    root = zarr.open_group(url, mode="w", zarr_format=2)
    wells = ["A/1", "A/2"]
    write_plate_metadata(root, ["A"], ["1", "2"], wells, fmt=fmt)
    rng = np.random.default_rng(5)
    fields = {}
    for well in wells:
        well_group = root.require_group(well)
        write_well_metadata(well_group, ["0", "1"], fmt=fmt)
        for field in ("0", "1"):
            data = rng.integers(0, 255, (32, 32), dtype=np.uint8)
            write_image(
                data, well_group.require_group(field), axes="yx", fmt=fmt, scale_factors=(2,)
            )
            fields[f"{well}/{field}"] = data
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    assert "plate" in tree.attrs
    assert "well" in tree["A/1"].attrs
    for path, data in fields.items():
        validate(url, "0.4", path)
        assert list(tree[path].children) == ["s0", "s1"]
        np.testing.assert_array_equal(tree[f"{path}/s0"]["image"].values, data)
        check_image(url, "array", path, tree=tree[path])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_image_with_labels(tmp_path: Path, version: str) -> None:
    """An image with ``labels/cells`` (ome-zarr-py): both images' levels are nodes."""
    pytest.importorskip("ome_zarr")
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels

    url = str(tmp_path / "labelled.zarr")
    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(url, mode="w", zarr_format=2 if version == "0.4" else 3)
    rng = np.random.default_rng(6)
    data = rng.integers(0, 4000, (64, 64), dtype=np.uint16)
    labels = rng.integers(0, 5, (64, 64), dtype=np.uint8)
    write_image(data, root, axes="yx", fmt=fmt, scale_factors=(2, 4))
    write_labels(labels, root, name="cells", axes="yx", fmt=fmt, scale_factors=(2, 4))
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    assert list(tree.children) == ["s0", "s1", "s2", "labels"]
    assert tree["labels"].attrs == zarr.open_group(url, path="labels", mode="r").attrs.asdict()
    check_image(url, "array", tree=tree)
    check_image(url, "array", "labels/cells", tree=tree["labels/cells"])
    np.testing.assert_array_equal(tree["labels/cells/s0"]["image"].values, labels)
    validate(url, version, "labels/cells")


def test_several_images_and_a_level_as_the_tree_root(tmp_path: Path) -> None:
    """Two images in one store are two subtrees; ``group=`` may name one level array."""
    url = str(tmp_path / "two.zarr")
    root = zarr.open_group(url, mode="w", zarr_format=3)
    for name in ("a", "b"):
        root.create_group(name)
        write_spec_image(
            f"{url}/{name}", SPEC_05_OMERO, 3, {"0": (1, 2, 4, 8, 8), "1": (1, 2, 2, 4, 4)}
        )
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    assert list(tree.children) == ["a", "b"]
    assert list(tree["b"].children) == ["0", "1"]
    one = xr.open_datatree(url, engine=ENGINE, group="b/1")
    xr.testing.assert_identical(one.to_dataset().load(), tree["b/1"].to_dataset().load())
    assert list(one.children) == []


def test_other_multiscales_attributes_stay_plain_groups(tmp_path: Path) -> None:
    """ndpyramid's ``multiscales`` (no axes, no version) are not OME's: plain groups."""
    url = str(tmp_path / "ndpyramid.zarr")
    for level in range(2):
        n = 8 >> level
        xr.Dataset({"v": (("y", "x"), np.ones((n, n), "f4"))}).to_zarr(
            url, group=str(level), mode="a", zarr_format=2, consolidated=False
        )
    root = zarr.open_group(url, mode="a", zarr_format=2)
    root.attrs["multiscales"] = [{"datasets": [{"path": "0"}, {"path": "1"}], "type": "reduce"}]
    tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    assert list(tree["1"].data_vars) == ["v"] and "x" not in tree["1"].coords
    assert [lv.sizes["x"] for lv in xzaro.open_multiscale(url)] == [8, 4]


# ---------------------------------------------------------------------------------- errors
def _spec_shapes(zarr_format: int) -> dict[str, tuple[int, ...]]:
    """The level shapes of ``SPEC_04_EXAMPLE`` (Zarr V2) or ``SPEC_05_OMERO`` (V3)."""
    shapes = {"0": (3, 2, 4, 8, 8), "1": (3, 2, 2, 4, 4), "2": (3, 2, 1, 2, 2)}
    if zarr_format == 3:
        shapes.pop("2")
    return shapes


def _broken(tmp_path: Path, zarr_format: int, change: Any) -> tuple[str, str]:
    url = str(tmp_path / f"broken{zarr_format}.zarr")
    attrs = json.loads(json.dumps(SPEC_04_EXAMPLE if zarr_format == 2 else SPEC_05_OMERO))
    entry = (attrs["multiscales"] if zarr_format == 2 else attrs["ome"]["multiscales"])[0]
    change(entry)
    write_spec_image(url, attrs, zarr_format, _spec_shapes(zarr_format))
    prefix = "multiscales[0]" if zarr_format == 2 else "ome.multiscales[0]"
    return url, prefix


def _missing_array(entry: dict) -> None:
    entry["datasets"][1]["path"] = "missing"


def _axes_count(entry: dict) -> None:
    entry["axes"] = entry["axes"][1:]


def _scale_length(entry: dict) -> None:
    entry["datasets"][1]["coordinateTransformations"][0]["scale"] = [1.0, 1.0]


def _no_scale(entry: dict) -> None:
    entry["datasets"][0]["coordinateTransformations"] = []


def _translation_not_numbers(entry: dict) -> None:
    transforms = entry["datasets"][0]["coordinateTransformations"]
    transforms[1:] = [{"type": "translation", "translation": [0, 0, 0, "1", 0]}]


def _scale_beyond_floats(entry: dict) -> None:
    entry["datasets"][0]["coordinateTransformations"][0]["scale"][0] = 10**400  # OverflowError


def _coordinates_beyond_floats(entry: dict) -> None:
    # each factor finite, the last x coordinate (7 * 1e308) not: it read as inf
    entry["datasets"][0]["coordinateTransformations"][0]["scale"][-1] = 1e308


def _one_array_two_levels(entry: dict) -> None:
    entry["datasets"][1]["path"] = entry["datasets"][0]["path"]  # a level silently dropped


def _axis_name_with_a_slash(entry: dict) -> None:
    entry["axes"][0]["name"] = "a/b"  # xarray's ValueError


def _axis_named_as_the_variable(entry: dict) -> None:
    entry["axes"][0]["name"] = "image"  # the level read as a coordinate, no data variable


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_missing_array, "datasets[1].path"),
        (_axes_count, "axes"),
        (_scale_length, "datasets[1].coordinateTransformations[0].scale"),
        (_no_scale, "datasets[0].coordinateTransformations"),
        (_translation_not_numbers, "datasets[0].coordinateTransformations[1].translation"),
        (_scale_beyond_floats, "datasets[0].coordinateTransformations[0].scale"),
        (_coordinates_beyond_floats, "datasets[0].coordinateTransformations"),
        (_one_array_two_levels, "datasets[1].path"),
        (_axis_name_with_a_slash, "axes[0].name"),
        (_axis_named_as_the_variable, "axes[0].name"),
    ],
)
def test_bad_multiscales_metadata_is_refused(
    tmp_path: Path, zarr_format: int, change: Any, field: str
) -> None:
    url, prefix = _broken(tmp_path, zarr_format, change)
    key = ".zattrs" if zarr_format == 2 else "zarr.json"
    opens = [
        lambda: xr.open_datatree(url, engine=ENGINE),
        lambda: xr.open_dataset(url, engine=ENGINE, group="0"),
        lambda: xzaro.open_multiscale(url),
    ]
    for open_ in opens:
        with pytest.raises(MetadataError) as info:
            open_()
        assert info.value.url is not None and info.value.url.rstrip("/").endswith(
            f"broken{zarr_format}.zarr"
        )
        assert info.value.key == key
        assert info.value.field == f"{prefix}.{field}"


def test_axes_that_contradict_dimension_names_are_refused(tmp_path: Path) -> None:
    url = str(tmp_path / "contradict.zarr")
    group = zarr.open_group(url, mode="w", zarr_format=3)
    group.create_array("0", data=np.zeros((4, 6), "u1"), dimension_names=("x", "y"))
    ome = json.loads(json.dumps(SPEC_05_PATH["ome"]))
    ome["multiscales"][0]["datasets"][0]["path"] = "0"  # axes y, x; the array says x, y
    group.attrs["ome"] = ome
    with pytest.raises(MetadataError, match="do not match the dimension names") as info:
        xr.open_datatree(url, engine=ENGINE)
    assert info.value.field == "ome.multiscales[0].axes"


def test_transformation_by_path_is_unsupported(tmp_path: Path) -> None:
    def by_path(entry: dict) -> None:
        entry["datasets"][0]["coordinateTransformations"] = [{"type": "scale", "path": "scale.bin"}]

    url, prefix = _broken(tmp_path, 2, by_path)
    with pytest.raises(UnsupportedError) as info:
        xr.open_dataset(url, engine=ENGINE, group="1")
    assert info.value.field == f"{prefix}.datasets[0].coordinateTransformations[0].path"


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("version", ["latest", 5, ""])
def test_a_version_that_is_no_major_minor_is_refused(
    tmp_path: Path, zarr_format: int, version: Any
) -> None:
    url = str(tmp_path / "version.zarr")
    attrs = json.loads(json.dumps(SPEC_04_EXAMPLE if zarr_format == 2 else SPEC_05_OMERO))
    (attrs["multiscales"][0] if zarr_format == 2 else attrs["ome"])["version"] = version
    write_spec_image(url, attrs, zarr_format, _spec_shapes(zarr_format))
    with pytest.raises(MetadataError, match=r"MAJOR\.MINOR") as info:
        xr.open_datatree(url, engine=ENGINE)
    assert info.value.field == ("multiscales[0].version" if zarr_format == 2 else "ome.version")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_newer_version_reads_as_the_newest_known_with_a_warning(
    tmp_path: Path, zarr_format: int
) -> None:
    url = str(tmp_path / "newer.zarr")
    attrs = json.loads(json.dumps(SPEC_04_EXAMPLE if zarr_format == 2 else SPEC_05_OMERO))
    (attrs["multiscales"][0] if zarr_format == 2 else attrs["ome"])["version"] = "0.7-dev"
    write_spec_image(url, attrs, zarr_format, _spec_shapes(zarr_format))
    with pytest.warns(UserWarning, match=r"OME-NGFF 0.7-dev is newer than 0.5.*read as 0.5"):
        tree = xr.open_datatree(url, engine=ENGINE, **RAW)
    assert list(tree.children) == list(_spec_shapes(zarr_format))
    assert tree["1"]["x"].size == 4


def _two_images(url: str, inner_scale: float, inner_paths: list[str]) -> None:
    """An image at the root whose one level is ``a/0``, and an image at ``a`` with levels
    ``inner_paths``, scaled ``inner_scale``."""
    root = zarr.open_group(url, mode="w", zarr_format=2)
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]

    def multiscales(paths: list[str], scale: float) -> dict:
        datasets = [
            {"path": p, "coordinateTransformations": [{"type": "scale", "scale": [scale] * 2}]}
            for p in paths
        ]
        return {"multiscales": [{"version": "0.4", "axes": axes, "datasets": datasets}]}

    inner = root.create_group("a")
    inner.create_array("0", data=np.arange(16, dtype="f4").reshape(4, 4))
    inner.create_array("1", data=np.arange(4, dtype="f4").reshape(2, 2))
    root.attrs.update(multiscales(["a/0"], 10.0))
    inner.attrs.update(multiscales(inner_paths, inner_scale))


def test_an_array_two_images_show_differently_is_refused(tmp_path: Path) -> None:
    """The root image shows ``a/0`` as variable ``0`` of node ``a`` scaled 10; the image at
    ``a`` as node ``a/0`` scaled 1 (xarray's KeyError before: a variable and a child both named
    ``0``)."""
    url = str(tmp_path / "nested.zarr")
    _two_images(url, 1.0, ["0", "1"])
    for open_ in (
        lambda: xr.open_datatree(url, engine=ENGINE),
        lambda: xr.open_dataset(url, engine=ENGINE, group="a"),
    ):
        with pytest.raises(MetadataError, match="'a/0' is a level of the image at ''") as info:
            open_()
        assert (info.value.key, info.value.field) == (
            "a/.zattrs",
            "multiscales[0].datasets[0].path",
        )


def test_two_entries_of_one_image_may_share_a_level(tmp_path: Path) -> None:
    """Two ``multiscales`` entries of one image group that both start from array ``0`` (two
    pyramids of one image) show it alike: it reads once."""
    url = str(tmp_path / "two_entries.zarr")
    _two_images(url, 1.0, ["0", "1"])
    group = zarr.open_group(f"{url}/a", mode="a")
    entry = group.attrs["multiscales"][0]
    group.attrs["multiscales"] = [entry, {**entry, "datasets": entry["datasets"][:1]}]
    tree = xr.open_datatree(f"{url}/a", engine=ENGINE, **RAW)
    assert list(tree.children) == ["0", "1"]
    np.testing.assert_array_equal(tree["0"]["image"].values, np.arange(16).reshape(4, 4))


def _rows_complete(written: xzaro.ZaroArray, frames: np.ndarray) -> bool:
    """Whether the rows a live store shows hold the frames, every shard of them written."""
    try:
        return bool(np.array_equal(written[...], frames[: written.shape[0]]))
    except DecodeError:  # a shard the writer has created and not yet written
        return False


def test_acquire_zarr_store_mid_stream(tmp_path: Path) -> None:
    """acquire-zarr 0.10 writes the image group's metadata when the stream is closed: while it
    runs, the level arrays show the rows written so far, and the image is not an OME image yet
    (xzaro says so, naming the store, rather than guessing levels from digit names)."""
    aqz = pytest.importorskip("acquire_zarr")
    url = str(tmp_path / "live.zarr")
    dims = [
        aqz.Dimension(
            name="t",
            kind=aqz.DimensionType.TIME,
            array_size_px=0,
            chunk_size_px=2,
            shard_size_chunks=1,
        ),
        aqz.Dimension(
            name="y",
            kind=aqz.DimensionType.SPACE,
            array_size_px=32,
            chunk_size_px=16,
            shard_size_chunks=1,
        ),
        aqz.Dimension(
            name="x",
            kind=aqz.DimensionType.SPACE,
            array_size_px=32,
            chunk_size_px=16,
            shard_size_chunks=1,
        ),
    ]
    array = aqz.ArraySettings(
        dimensions=dims, data_type=np.uint16, downsampling_method=aqz.DownsamplingMethod.MEAN
    )
    stream = aqz.ZarrStream(
        aqz.StreamSettings(store_path=url, arrays=[array], version=aqz.ZarrVersion.V3)
    )
    frames = np.random.default_rng(7).integers(0, 4000, (12, 32, 32), dtype=np.uint16)
    try:
        stream.append(frames[:8])
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline
            and not (tmp_path / "live.zarr" / "0" / "zarr.json").exists()
        ):
            time.sleep(0.01)
        # acquire-zarr updates the shape before every chunk of the last row is stored, and
        # creates a shard's file before it writes it (a read then meets a shard of 0 bytes and
        # says so): wait until the rows it shows are complete
        written = xzaro.open_array(url, "0")
        while time.monotonic() < deadline and not _rows_complete(written, frames):
            time.sleep(0.01)
            written = xzaro.open_array(url, "0")
        assert 0 < written.shape[0] <= 8
        np.testing.assert_array_equal(written[...], frames[: written.shape[0]])
        if not (tmp_path / "live.zarr" / "zarr.json").exists():
            with pytest.raises(NodeNotFoundError):
                xr.open_datatree(url, engine=ENGINE)
        else:
            tree = xr.open_datatree(url, engine=ENGINE, **RAW)
            np.testing.assert_array_equal(tree["0"]["image"].values, frames[: tree["0"].sizes["t"]])
    finally:
        stream.close()
    check_image(url, "array")


def test_an_image_group_that_is_no_xarray_tree_is_a_metadata_error(tmp_path: Path) -> None:
    # a thumbnail beside the levels: xarray's alignment ValueError leaked from open_datatree
    url = str(tmp_path / "thumb.zarr")
    attrs = json.loads(json.dumps(SPEC_05_OMERO))
    write_spec_image(url, attrs, 3, {"0": (3, 2, 4, 8, 8), "1": (3, 2, 2, 4, 4)})
    group = zarr.open_group(url, mode="a")
    group.create_array("thumb", shape=(2, 3, 3), dtype="u1", dimension_names=["c", "y", "x"])
    with pytest.raises(MetadataError, match="do not form an xarray tree") as info:
        xr.open_datatree(url, engine=ENGINE)
    assert info.value.url == url
