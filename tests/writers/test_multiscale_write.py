"""Writing pyramids: how many levels, which stored layout, and progress under every scheduler.

Values, chunks and shards are read back by zarr-python, and the OME-NGFF metadata from the
root group, not only through xzaro.
"""

from __future__ import annotations

import math
import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr

from xzaro import Multiscale
from xzaro.writers.compute import compute_writes
from xzaro.writers.dataset import prepare_store
from xzaro.writers.layout import DEFAULT_CHUNK_BYTES
from xzaro.writers.options import WriteOptions
from xzaro.writers.pyramid import pyramid_chunks


def block_mean(a: np.ndarray) -> np.ndarray:
    """numpy's 2x2 mean over the last two axes in float64, integers rounded to the nearest;
    odd edges average the cells that exist."""
    pad = [(0, 0)] * (a.ndim - 2) + [(0, a.shape[-2] % 2), (0, a.shape[-1] % 2)]
    work = np.pad(a.astype(np.float64), pad, constant_values=np.nan)
    blocks = work.reshape(*work.shape[:-2], work.shape[-2] // 2, 2, work.shape[-1] // 2, 2)
    mean = np.nanmean if np.isnan(work).any() else np.mean
    out = mean(blocks, axis=(-3, -1))
    return (np.rint(out) if a.dtype.kind in "iu" else out).astype(a.dtype)


def numpy_pyramid(a: np.ndarray, levels: int) -> list[np.ndarray]:
    out = [a]
    for _ in range(levels - 1):
        out.append(block_mean(out[-1]))
    return out


def ome_datasets(path: str, zarr_format: int = 3) -> list[dict]:
    attrs = zarr.open_group(path, mode="r").attrs
    multiscales = attrs["multiscales"] if zarr_format == 2 else attrs["ome"]["multiscales"]
    assert len(multiscales) == 1
    return multiscales[0]["datasets"]


def pyramid_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [
        str(w.message)
        for w in record
        if issubclass(w.category, UserWarning) and "multiscale" in str(w.message)
    ]


# --- how many levels -------------------------------------------------------------------------


def test_one_dask_chunk_still_gives_a_pyramid_of_4mib_chunks(tmp_path):
    """A 4096² float32 image in a single Dask chunk: the stored chunks are about 4 MiB, not
    the 64 MiB Dask chunk, and default levels go on until a level fits in one of them."""
    ramp = np.add.outer(np.arange(4096), np.arange(4096)).astype("f4")
    ds = xr.Dataset({"v": (("y", "x"), da.from_array(ramp, chunks=-1))})
    path = str(tmp_path / "p.zarr")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds.zaro.to_store(path, multiscale=Multiscale())
    assert pyramid_warnings(record) == []

    group = zarr.open_group(path, mode="r")
    assert sorted(group.group_keys(), key=int) == ["0", "1", "2"]
    want = numpy_pyramid(ramp, 3)
    for i, expected in enumerate(want):
        array = group[f"{i}/v"]
        assert array.shape == expected.shape
        assert array.chunks == (1024, 1024)
        assert math.prod(array.chunks) * array.dtype.itemsize == 4 * 2**20
        np.testing.assert_array_equal(array[...], expected)
    assert [d["path"] for d in ome_datasets(path)] == ["0/v", "1/v", "2/v"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ome_datasets(path)]
    assert scales == [[1.0, 1.0], [2.0, 2.0], [4.0, 4.0]]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_an_image_in_one_chunk_warns_and_explicit_levels_write_more(tmp_path, zarr_format):
    data = np.random.default_rng(0).integers(0, 1000, (64, 80)).astype("u2")
    ds = xr.Dataset({"img": (("y", "x"), data)})
    path = str(tmp_path / "small.zarr")
    with pytest.warns(UserWarning, match=r"only level 0.*Multiscale\(levels=n\)"):
        ds.zaro.to_store(path, zarr_format=zarr_format, multiscale=True)
    group = zarr.open_group(path, mode="r")
    assert list(group.group_keys()) == ["0"]
    np.testing.assert_array_equal(group["0/img"][...], data)
    assert [d["path"] for d in ome_datasets(path, zarr_format)] == ["0/img"]

    path = str(tmp_path / "three.zarr")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds.zaro.to_store(path, zarr_format=zarr_format, multiscale=Multiscale(levels=3))
    assert pyramid_warnings(record) == []
    group = zarr.open_group(path, mode="r")
    for i, expected in enumerate(numpy_pyramid(data, 3)):
        np.testing.assert_array_equal(group[f"{i}/img"][...], expected)
    assert [d["path"] for d in ome_datasets(path, zarr_format)] == ["0/img", "1/img", "2/img"]


def test_asking_for_more_levels_than_the_image_has_warns(tmp_path):
    data = np.arange(64, dtype="f4").reshape(8, 8)
    ds = xr.Dataset({"img": (("y", "x"), data)})
    path = str(tmp_path / "p.zarr")
    with pytest.warns(UserWarning, match=r"4 levels are written, not 6.*at most 4"):
        ds.zaro.to_store(path, multiscale=Multiscale(levels=6))
    group = zarr.open_group(path, mode="r")
    assert sorted(group.group_keys(), key=int) == ["0", "1", "2", "3"]
    np.testing.assert_array_equal(group["3/img"][...], [[data.mean()]])
    assert len(ome_datasets(path)) == 4


def test_levels_stop_at_the_requested_chunk_size(tmp_path):
    data = np.random.default_rng(1).normal(size=(2, 300, 200)).astype("f4")
    ds = xr.Dataset({"v": (("c", "y", "x"), data)}).chunk({"y": 300, "x": 200})
    path = str(tmp_path / "p.zarr")
    ds.zaro.to_store(path, multiscale=True, chunks={"y": 64, "x": 64})
    group = zarr.open_group(path, mode="r")
    # 300x200 -> 150x100 -> 75x50 -> 38x25: the first level within one 64x64 chunk
    shapes = [group[f"{i}/v"].shape for i in range(len(list(group.group_keys())))]
    assert shapes == [(2, 300, 200), (2, 150, 100), (2, 75, 50), (2, 38, 25)]
    assert [group[f"{i}/v"].chunks for i in range(4)] == [
        (2, 64, 64),
        (2, 64, 64),
        (2, 64, 50),
        (2, 38, 25),
    ]
    for i, expected in enumerate(numpy_pyramid(data, 4)):
        np.testing.assert_allclose(group[f"{i}/v"][...], expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("shape", "itemsize", "axes", "want"),
    [
        ((4096, 4096), 4, (0, 1), (1024, 1024)),
        ((2, 4096, 4096), 2, (1, 2), (1, 1440, 1440)),
        ((4096, 4096), 8, (0, 1), (720, 720)),
        ((512, 512, 512), 4, (0, 1, 2), (96, 96, 96)),
        ((1000, 10, 10), 4, (1, 2), (1000, 10, 10)),
        ((3, 100, 50000), 1, (1, 2), (1, 100, 41936)),
        ((4096, 4096, 3), 1, (0, 1), (1168, 1168, 3)),
    ],
)
def test_default_pyramid_chunks(shape, itemsize, axes, want):
    """Square tiles along the pyramid dimensions, about 4 MiB, whole trailing bands, leading
    dimensions filled with what is left."""
    chunks = pyramid_chunks(shape, itemsize, axes)
    assert chunks == want
    assert math.prod(chunks) * itemsize <= DEFAULT_CHUNK_BYTES


# --- explicit chunks and shards win over the source's --------------------------------------


@pytest.fixture
def source(tmp_path):
    """A V3 store read back with xzaro: its variables carry chunks (64, 64) and shards
    (128, 128) in their encoding."""
    data = np.random.default_rng(2).normal(size=(300, 300)).astype("f4")
    ds = xr.Dataset(
        {"v": (("y", "x"), data)},
        coords={"y": np.arange(300) * 0.5, "x": np.arange(300) * 0.5},
    )
    path = str(tmp_path / "src.zarr")
    ds.zaro.to_store(path, chunks={"y": 64, "x": 64}, shards={"y": 128, "x": 128})
    opened = xr.open_dataset(path, engine="zaro")
    assert opened.v.encoding["chunks"] == (64, 64)
    assert opened.v.encoding["shards"] == (128, 128)
    return opened, data


def _check_levels(path, data, chunks, shards, zarr_format=3):
    group = zarr.open_group(path, mode="r")
    names = sorted(group.group_keys(), key=int)
    assert len(names) == len(chunks)
    for i, expected in enumerate(numpy_pyramid(data, len(names))):
        array = group[f"{i}/v"]
        assert array.chunks == chunks[i]
        if zarr_format == 3:
            assert array.shards == shards[i]
        np.testing.assert_allclose(array[...], expected, rtol=1e-6)
    datasets = ome_datasets(path, zarr_format)
    assert [d["path"] for d in datasets] == [f"{i}/v" for i in range(len(names))]
    scale = [d["coordinateTransformations"][0]["scale"] for d in datasets]
    assert scale == [[0.5 * 2**i, 0.5 * 2**i] for i in range(len(names))]


def test_explicit_chunks_and_shards_win_over_the_source(tmp_path, source):
    opened, data = source
    path = str(tmp_path / "out.zarr")
    opened.zaro.to_store(
        path, multiscale=True, chunks={"y": 50, "x": 50}, shards={"y": 100, "x": 100}
    )
    # 300 -> 150 -> 75 -> 38: shards hold whole chunks at every level
    _check_levels(
        path,
        data,
        chunks=[(50, 50), (50, 50), (50, 50), (38, 38)],
        shards=[(100, 100), (100, 100), (100, 100), (38, 38)],
    )


def test_explicit_chunks_drop_the_source_shards_they_do_not_divide(tmp_path, source):
    opened, data = source
    path = str(tmp_path / "out.zarr")
    opened.zaro.to_store(path, multiscale=Multiscale(levels=3), chunks={"y": 50, "x": 50})
    _check_levels(path, data, chunks=[(50, 50)] * 3, shards=[None] * 3)
    # Chunks that divide the source's shards keep them, as a plain write does.
    path = str(tmp_path / "out32.zarr")
    opened.zaro.to_store(path, multiscale=Multiscale(levels=3), chunks={"y": 32, "x": 32})
    _check_levels(path, data, chunks=[(32, 32)] * 3, shards=[(128, 128), (128, 128), (96, 96)])


def test_explicit_chunks_win_in_zarr_v2(tmp_path, source):
    opened, data = source
    path = str(tmp_path / "out.zarr")
    opened.zaro.to_store(
        path, zarr_format=2, multiscale=True, chunks={"y": 100, "x": 100}, shards={"y": 200}
    )
    _check_levels(path, data, chunks=[(100, 100), (100, 100), (75, 75)], shards=[], zarr_format=2)


def test_without_arguments_every_level_keeps_the_source_layout(tmp_path, source):
    opened, data = source
    path = str(tmp_path / "out.zarr")
    opened.zaro.to_store(path, multiscale=True)
    # Chunks (64, 64) capped at each level; shards capped at the whole chunks covering it.
    _check_levels(
        path,
        data,
        chunks=[(64, 64), (64, 64), (64, 64), (38, 38)],
        shards=[(128, 128), (128, 128), (128, 128), (38, 38)],
    )


def test_encoding_argument_wins_for_its_variable(tmp_path, source):
    opened, data = source
    path = str(tmp_path / "out.zarr")
    opened.zaro.to_store(
        path,
        multiscale=Multiscale(levels=3),
        chunks={"y": 50, "x": 50},
        encoding={"v": {"chunks": (40, 40), "shards": None}},
    )
    _check_levels(path, data, chunks=[(40, 40)] * 3, shards=[None] * 3)
    assert zarr.open_group(path, mode="r")["1/y"].chunks == (50,)


# --- progress --------------------------------------------------------------------------------


def _small() -> tuple[xr.Dataset, np.ndarray]:
    data = np.arange(128 * 96, dtype="f4").reshape(128, 96)
    return xr.Dataset({"v": (("y", "x"), data)}).chunk({"y": 32, "x": 32}), data


def test_compute_writes_shows_progress_on_stderr(tmp_path, capsys):
    ds, data = _small()
    for progress in (False, True):
        path = str(tmp_path / f"plain-{progress}.zarr")
        tasks, finalize = prepare_store(ds, path, WriteOptions(chunks={"y": 32, "x": 32}))
        finalize(*compute_writes(*tasks, progress=progress))
        out, err = capsys.readouterr()
        assert out == ""
        assert ("100% Completed" in err) is progress
        np.testing.assert_array_equal(zarr.open_group(path, mode="r")["v"][...], data)


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_pyramid_progress(tmp_path, capsys, scheduler):
    import dask

    ds, data = _small()
    with dask.config.set(scheduler=scheduler):
        for progress in (False, True):
            path = str(tmp_path / f"p-{progress}.zarr")
            ds.zaro.to_store(path, multiscale=True, chunks={"y": 32, "x": 32}, progress=progress)
            out, err = capsys.readouterr()
            assert out == ""
            assert ("100% Completed" in err) is progress
            group = zarr.open_group(path, mode="r")
            for i, expected in enumerate(numpy_pyramid(data, 3)):
                np.testing.assert_array_equal(group[f"{i}/v"][...], expected)


def test_progress_under_a_distributed_client(tmp_path, capsys, dask_client):
    ds, data = _small()
    capsys.readouterr()
    for progress in (False, True):
        path = str(tmp_path / f"p-{progress}.zarr")
        ds.zaro.to_store(path, multiscale=True, chunks={"y": 32, "x": 32}, progress=progress)
        plain = str(tmp_path / f"plain-{progress}.zarr")
        tasks, finalize = prepare_store(ds, plain, WriteOptions(chunks={"y": 32, "x": 32}))
        finalize(*compute_writes(*tasks, progress=progress))
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("100% Completed") == (2 if progress else 0)
        group = zarr.open_group(path, mode="r")
        for i, expected in enumerate(numpy_pyramid(data, 3)):
            np.testing.assert_array_equal(group[f"{i}/v"][...], expected)
        np.testing.assert_array_equal(zarr.open_group(plain, mode="r")["v"][...], data)


def test_a_refused_replacement_leaves_the_old_pyramid(tmp_path):
    """mode='w' deletes the old pyramid only once the new one has been checked."""
    data = np.arange(64 * 64, dtype="f4").reshape(64, 64)
    ds = xr.Dataset({"img": (("y", "x"), data)})
    path = str(tmp_path / "p.zarr")
    ds.zaro.to_store(path, multiscale=Multiscale(levels=3), chunks={"y": 16, "x": 16})
    with pytest.raises(ValueError, match="chunkz"):
        (ds * 2).zaro.to_store(
            path, mode="w", multiscale=Multiscale(levels=3), encoding={"img": {"chunkz": 4}}
        )
    with pytest.raises(ValueError, match="group"):
        (ds * 2).zaro.to_store(path, mode="w", multiscale=True, group="..")
    with pytest.raises(ValueError, match="shards"):
        (ds * 2).zaro.to_store(path, mode="w", multiscale=True, chunks=16, shards=24)
    group = zarr.open_group(path, mode="r")
    for i, expected in enumerate(numpy_pyramid(data, 3)):
        np.testing.assert_array_equal(group[f"{i}/img"][...], expected)

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        (ds * 2).zaro.to_store(path, mode="w", multiscale=Multiscale(levels=1))
    assert pyramid_warnings(record) == []  # one level, as asked
    group = zarr.open_group(path, mode="r")
    assert list(group.group_keys()) == ["0"]
    np.testing.assert_array_equal(group["0/img"][...], data * 2)
    assert [d["path"] for d in ome_datasets(path)] == ["0/img"]


def test_the_source_codecs_stay_with_explicit_chunks(tmp_path):
    """Replacing the layout keeps the rest of what a variable was read with: its codecs."""
    from xzaro.writers import BloscCompressionParams

    data = np.random.default_rng(3).normal(size=(200, 200)).astype("f4")
    src = str(tmp_path / "src.zarr")
    xr.Dataset({"v": (("y", "x"), data)}).zaro.to_store(
        src, chunks=64, compressor=BloscCompressionParams("zstd", 9, "shuffle")
    )
    path = str(tmp_path / "out.zarr")
    xr.open_dataset(src, engine="zaro").zaro.to_store(path, multiscale=True, chunks=100)
    group = zarr.open_group(path, mode="r")
    assert sorted(group.group_keys(), key=int) == ["0", "1"]
    for i, expected in enumerate(numpy_pyramid(data, 2)):
        array = group[f"{i}/v"]
        assert array.chunks == (100, 100)
        (codec,) = array.compressors
        cname = getattr(codec.cname, "value", codec.cname)  # an enum before zarr-python 3.4
        assert (cname, codec.clevel) == ("zstd", 9)
        np.testing.assert_allclose(array[...], expected, rtol=1e-6)
