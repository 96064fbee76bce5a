"""Multiscale pyramids: every level is numpy's 2x2 reduction of the one below; OME-NGFF valid."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import xarray as xr

import xzaro
from xzaro.writers.coarsen import coarsen_array
from xzaro.writers.pyramid import Multiscale, default_dims


def reference_reduce(a: np.ndarray, method: str) -> np.ndarray:
    """numpy's 2x2 reduction over the last two axes; odd edges reduce the cells that exist."""
    if method == "decimate":
        return a[..., ::2, ::2]
    work = a.astype(np.float64)
    pad = [(0, 0)] * (a.ndim - 2) + [(0, a.shape[-2] % 2), (0, a.shape[-1] % 2)]
    work = np.pad(work, pad, constant_values=np.nan)
    blocks = work.reshape(*work.shape[:-2], work.shape[-2] // 2, 2, work.shape[-1] // 2, 2)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = {"mean": np.nanmean, "min": np.nanmin, "max": np.nanmax}[method](
                blocks, axis=(-3, -1)
            )
    if a.dtype.kind in "iu":
        return np.rint(out).astype(a.dtype)
    return out.astype(a.dtype)


@pytest.mark.parametrize("method", ["mean", "decimate", "min", "max"])
@pytest.mark.parametrize("dtype", ["uint16", "int8", "uint8", "int32", "float32", "float64"])
def test_levels_are_numpy_reductions(tmp_path, dtype, method):
    rng = np.random.default_rng(1)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        data = rng.normal(0, 100, (2, 37, 45)).astype(dt)
        data[0, :3, :3] = np.nan  # a whole 2x2 block and partial blocks of NaN
    else:
        info = np.iinfo(dt)
        # values near the top of the range: a sum in the dtype would overflow
        data = rng.integers(
            max(info.min, info.max - 40), info.max, (2, 37, 45), endpoint=True
        ).astype(dt)
    ds = xr.Dataset({"img": (("c", "y", "x"), data)})
    url = str(tmp_path / "p.zarr")
    ds.zaro.to_store(url, multiscale=Multiscale(method=method), chunks={"y": 8, "x": 8})
    levels = xzaro.open_multiscale(url, mask_and_scale=False)
    assert [lv.img.shape[-2:] for lv in levels] == [(37, 45), (19, 23), (10, 12), (5, 6)]
    for below, level in itertools.pairwise(levels):
        want = reference_reduce(below.img.values, method)
        if dt == np.float64 and method == "mean":  # float64 sums: order decides the last ulp
            np.testing.assert_allclose(level.img.values, want, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(level.img.values, want)
        assert level.img.dtype == dt


def test_integer_mean_rounds_instead_of_truncating():
    a = np.array([[1, 2], [2, 2]], dtype=np.uint8)  # mean 1.75
    assert coarsen_array(a, (0, 1), "mean")[0, 0] == 2
    b = np.array([[65535, 65535], [65535, 65534]], dtype=np.uint16)
    assert coarsen_array(b, (0, 1), "mean")[0, 0] == 65535


@pytest.mark.parametrize("axes", [(1,), (1, 2), (0, 1, 2), (0, 2)])
@pytest.mark.parametrize(
    "dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32"]
)
def test_mean_is_the_rounded_float64_mean(dtype, axes):
    """The even-size fast path: exact accumulation, integers rounded half to even (ties are
    frequent with small values), extremes without overflow, NaN handled by the general path."""
    rng = np.random.default_rng(7)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = (rng.standard_normal((4, 6, 8)) * 1000).astype(dt)
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, (4, 6, 8), dtype=dt, endpoint=True)
        a[0] = rng.integers(-3 if dt.kind == "i" else 0, 4, (6, 8))  # many ties
        a[1] = info.max
        a[2, ::2] = info.min
    blocks = a.astype(np.float64)
    for axis in axes:
        shape = list(blocks.shape)
        shape[axis : axis + 1] = [shape[axis] // 2, 2]
        blocks = blocks.reshape(shape).sum(axis=axis + 1)
    want = blocks / 2 ** len(axes)
    want = np.rint(want).astype(dt) if dt.kind in "iu" else want.astype(dt)
    got = coarsen_array(a, axes, "mean")
    assert got.dtype == dt
    np.testing.assert_array_equal(got, want)
    if dt.kind == "f":
        a[3, 0, 0] = np.nan
        got = coarsen_array(a, axes, "mean")
        assert not np.isnan(got).any()


def test_dask_and_numpy_pyramids_are_identical(tmp_path):
    data = np.random.default_rng(2).normal(size=(3, 50, 61)).astype("f4")
    ds = xr.Dataset({"v": (("t", "y", "x"), data)})
    ds.zaro.to_store(str(tmp_path / "a.zarr"), multiscale=True, chunks={"y": 16, "x": 16})
    ds.chunk({"y": 17, "x": 9}).zaro.to_store(
        str(tmp_path / "b.zarr"), multiscale=True, chunks={"y": 16, "x": 16}
    )
    for a, b in zip(
        xzaro.open_multiscale(str(tmp_path / "a.zarr")),
        xzaro.open_multiscale(str(tmp_path / "b.zarr")),
    ):
        xr.testing.assert_identical(a.load(), b.load())


def test_coordinates_are_coarsened_consistently(tmp_path):
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), np.ones((2, 9, 12), "f4"))},
        coords={"time": [0, 1], "lat": np.linspace(-40, 40, 9), "lon": np.arange(12) * 2.5},
    )
    assert default_dims(ds) == ("lat", "lon")
    url = str(tmp_path / "c.zarr")
    ds.zaro.to_store(url, zarr_format=2, multiscale=Multiscale(levels=2))
    one = xzaro.open_multiscale(url)[1]
    np.testing.assert_allclose(one.lon.values, (ds.lon.values[0::2] + ds.lon.values[1::2]) / 2)
    np.testing.assert_allclose(
        one.lat.values[:4], (ds.lat.values[0:8:2] + ds.lat.values[1:8:2]) / 2
    )
    assert one.lat.values[-1] == ds.lat.values[-1]  # odd edge: the one cell that exists
    np.testing.assert_array_equal(one.time.values, ds.time.values)  # not a pyramid dimension


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_ngff_metadata(tmp_path, zarr_format):
    ds = xr.Dataset(
        {"img": (("c", "y", "x"), np.zeros((2, 64, 80), "u2"))},
        coords={"y": np.arange(64) * 0.25, "x": np.arange(80) * 0.25},
    )
    url = tmp_path / "o.zarr"
    ds.zaro.to_store(str(url), zarr_format=zarr_format, multiscale=True, chunks={"y": 16, "x": 16})
    if zarr_format == 2:
        ms = json.loads((url / ".zattrs").read_text())["multiscales"]
        assert ms[0]["version"] == "0.4"
    else:
        attrs = json.loads((url / "zarr.json").read_text())["attributes"]
        assert attrs["ome"]["version"] == "0.5"
        ms = attrs["ome"]["multiscales"]
    entry = ms[0]
    assert [a["type"] for a in entry["axes"]] == ["channel", "space", "space"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in entry["datasets"]]
    assert scales[:3] == [[1.0, 0.25, 0.25], [1.0, 0.5, 0.5], [1.0, 1.0, 1.0]]
    assert entry["datasets"][1]["coordinateTransformations"][1]["translation"] == [0, 0.125, 0.125]
    assert [d["path"] for d in entry["datasets"]] == [f"{i}/img" for i in range(len(scales))]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_tools_open_the_pyramid(tmp_path, zarr_format):
    models = pytest.importorskip("ome_zarr_models")
    reader = pytest.importorskip("ome_zarr.reader")
    io = pytest.importorskip("ome_zarr.io")
    zarr = pytest.importorskip("zarr")
    data = np.random.default_rng(3).integers(0, 4000, (2, 70, 90), dtype="uint16")
    ds = xr.Dataset({"img": (("c", "y", "x"), data)})
    url = str(tmp_path / "ome.zarr")
    ds.zaro.to_store(url, zarr_format=zarr_format, multiscale=True, chunks={"y": 32, "x": 32})
    image = models.open_ome_zarr(zarr.open_group(url, mode="r"))
    assert type(image).__name__ == "Image"
    nodes = list(reader.Reader(io.parse_url(url))())
    shapes = [tuple(level.shape) for level in nodes[0].data]
    assert shapes == [(2, 70, 90), (2, 35, 45), (2, 18, 23)]
    np.testing.assert_array_equal(np.asarray(nodes[0].data[0]), data)


def test_existing_store_is_refused_and_replaced(tmp_path):
    ds = xr.Dataset({"img": (("y", "x"), np.ones((8, 8), "f4"))})
    url = str(tmp_path / "r.zarr")
    ds.zaro.to_store(url, multiscale=Multiscale(levels=2))
    with pytest.raises(xzaro.NodeExistsError):
        ds.zaro.to_store(url, multiscale=True)
    (ds * 2).zaro.to_store(url, multiscale=Multiscale(levels=3), mode="w")
    levels = xzaro.open_multiscale(url)
    assert len(levels) == 3 and float(levels[2].img.mean()) == 2.0


def test_invalid_multiscale_arguments(tmp_path):
    ds = xr.Dataset({"img": (("y", "x"), np.ones((8, 8), "f4"))})
    with pytest.raises(ValueError, match="method"):
        Multiscale(method="median")
    with pytest.raises(ValueError, match="not dimensions"):
        ds.zaro.to_store(str(tmp_path / "x.zarr"), multiscale=Multiscale(dims=("z",)))
    with pytest.raises(ValueError, match="mode"):
        ds.zaro.to_store(str(tmp_path / "x.zarr"), multiscale=True, mode="a")
