"""Writing Dask-backed data: misaligned blocks, ``compute=False`` templates, where tasks run,
progress, and a distributed cluster of worker processes.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr
import zarr
from dask.delayed import Delayed
from helpers import assert_same, files, ts_read, zarr_read
from write_cases import (
    CHUNKS,
    LAYOUTS,
    METADATA_NAMES,
    QUIET,
    SHARDS,
    RecordingStore,
    assert_datasets_same,
    data_keys,
    dataset,
    sample,
)

import xzaro

pytestmark = QUIET


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dask_chunk", [7, 3, 13])
def test_misaligned_dask_chunks_write_each_object_once(layout: str, dask_chunk: int) -> None:
    """Dask chunks of 7 (or 3, or 13) against storage objects of 5 (or shards of 10)."""
    data = sample("float64", (37, 23), seed="mis")
    ds = xr.Dataset({"v": (("y", "x"), data)}).chunk({"y": dask_chunk, "x": dask_chunk})
    opts = dict(LAYOUTS[layout])
    if "shards" in opts:
        opts["shards"] = {"y": 10, "x": 10}
    store = RecordingStore()
    ds.zaro.to_store(store, chunks={"y": 5, "x": 5}, **opts)
    counts = Counter(k for k in store.log if k in data_keys(store.log))
    twice = {k: c for k, c in counts.items() if c > 1}
    assert not twice, f"objects written more than once: {twice}"
    unit = 10 if "shards" in opts else 5
    assert len(data_keys(counts)) == math.ceil(37 / unit) * math.ceil(23 / unit)
    assert_same(xzaro.open_array(store, "v")[...], data)
    with xr.open_dataset(store, engine="zaro") as got:
        assert_same(got.v.values, data)


def test_no_temporary_files_left(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    dataset("int32", dask_chunks={"y": 2}).zaro.to_store(path, chunks=CHUNKS, shards=SHARDS)
    names = [p.name for p in path.rglob("*")]
    assert not [n for n in names if "tmp" in n or (n.startswith(".") and n not in METADATA_NAMES)]


@pytest.mark.parametrize("layout", ["v2", "v3_sharded"])
def test_compute_false_writes_the_template_at_once(tmp_path: Path, layout: str) -> None:
    """As ``to_zarr(compute=False)``: the metadata and the in-memory variables are written at
    once, the Dask-backed data when the returned object is computed."""
    path = tmp_path / "s.zarr"
    ds = dataset("float32", dask_chunks={"y": 4})
    task = ds.zaro.to_store(path, chunks=CHUNKS, compute=False, **LAYOUTS[layout])
    assert isinstance(task, Delayed)
    assert [k for k in data_keys(files(path)) if k.startswith("v/")] == []
    template = zarr.open_group(path, mode="r")
    assert_same(template["x"][...], ds.x.values, "the in-memory coordinate, written at once")
    assert template["v"].shape == ds.v.shape
    assert np.isnan(template["v"][...]).all()
    written = dask.compute(task)[0]
    assert written == len(data_keys(files(path)))
    with xr.open_dataset(path, engine="zaro") as got:
        assert_datasets_same(got, dataset("float32"))
    with xr.open_dataset(path, engine="zarr") as got:
        assert_datasets_same(got, dataset("float32"))


@pytest.mark.parametrize("scheduler", [None, "threads", "synchronous"])
def test_writes_run_where_dask_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheduler: str | None
) -> None:
    """Under Dask's threaded scheduler (the default) the write tasks run on xzaro's pool, where
    they encode inline; another configured scheduler is used as it is."""
    from xzaro.writers.writer import Writer

    threads: list[str] = []
    real = Writer.write_block

    def recording(self: Any, *args: Any, **kwargs: Any) -> int:
        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Writer, "write_block", recording)
    ds = dataset("float32", dask_chunks={"y": 4})
    with dask.config.set(scheduler=scheduler) if scheduler else contextlib.nullcontext():
        ds.zaro.to_store(tmp_path / "s.zarr", chunks=CHUNKS)
    # (in-memory coordinates are written from the calling thread in every case)
    on_pool = [name for name in threads if name.startswith("xzaro")]
    if scheduler == "synchronous":
        assert set(threads) == {"MainThread"}
    else:
        assert on_pool and set(threads) - set(on_pool) <= {"MainThread"}
    with xr.open_dataset(tmp_path / "s.zarr", engine="zaro") as got:
        assert_datasets_same(got, dataset("float32"))


def test_zeroed_buffer_is_writable_zeros() -> None:
    from xzaro.buffers import zeroed_buffer

    for shape in [(3, 5), (9, 1024, 1024)]:  # below and above the mapped-buffer size
        buf = zeroed_buffer(shape, np.uint16)
        assert buf.shape == shape and buf.dtype == np.uint16 and not buf.any()
        buf[(-1,) * len(shape)] = 7
        assert buf.sum() == 7


def test_compute_false_memory_store() -> None:
    store = RecordingStore()
    task = dataset("int16", dask_chunks={"y": 4}).zaro.to_store(store, compute=False)
    assert "v/zarr.json" in store.data and "x/zarr.json" in store.data
    assert not [k for k in store.data if k.startswith("v/c")]
    task.compute()
    assert_same(xzaro.open_array(store, "v")[...], dataset("int16").v.values)


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset("uint8", dask_chunks={"y": 2}).zaro.to_store(tmp_path / "s.zarr", progress=True)
    out = capsys.readouterr()
    assert "100%" in out.out + out.err
    assert_same(xzaro.open_array(tmp_path / "s.zarr", "v")[...], sample("uint8"))


def _mean2x2(a: np.ndarray) -> np.ndarray:
    """numpy's 2x2 mean (float64); odd edges average the cells that exist."""
    pad = np.pad(
        a.astype(np.float64), [(0, a.shape[0] % 2), (0, a.shape[1] % 2)], constant_values=np.nan
    )
    return np.nanmean(pad.reshape(pad.shape[0] // 2, 2, pad.shape[1] // 2, 2), axis=(1, 3))


def test_distributed_local_cluster_v3_sharded(tmp_path: Path, dask_client: Any) -> None:
    path = tmp_path / "s.zarr"
    data = sample("float32", (40, 30), seed="dist")
    ints = sample("uint16", (40, 30), seed="dist-i")
    ds = xr.Dataset(
        {"f": (("y", "x"), data), "i": (("y", "x"), ints)},
        coords={"y": np.arange(40)},
    ).chunk({"y": 7, "x": 11})  # misaligned with the shards too
    written = ds.zaro.to_store(
        path, chunks={"y": 5, "x": 5}, shards={"y": 10, "x": 15}, zarr_format=3
    )
    assert written > 0
    assert len(dask_client.scheduler_info()["workers"]) == 2
    # A multiscale pyramid from the same workers: levels are coarsened there too.
    pyramid = tmp_path / "p.zarr"
    rng = np.random.default_rng(5)
    field = rng.normal(0, 100, (40, 30)).astype(np.float32)
    field[3, 4] = np.nan  # a missing cell: the mean of the others
    counts = rng.integers(0, 65536, (40, 30), dtype=np.uint16)
    image = xr.Dataset({"f": (("y", "x"), field), "i": (("y", "x"), counts)})
    image.chunk({"y": 7, "x": 11}).zaro.to_store(
        pyramid,
        chunks={"y": 8, "x": 8},
        shards={"y": 16, "x": 16},
        multiscale=xzaro.Multiscale(dims=("y", "x")),
    )
    level_f, level_i = field, counts
    for level in range(4):  # 40x30, 20x15, 10x8, 5x4: the first to fit in one 8x8 chunk
        if level:
            level_f = _mean2x2(level_f).astype(np.float32)
            level_i = np.rint(_mean2x2(level_i)).astype(np.uint16)
        assert_same(zarr_read(pyramid, f"{level}/f"), level_f, f"f level {level}")
        assert_same(zarr_read(pyramid, f"{level}/i"), level_i, f"i level {level}")
    assert not (pyramid / "4").exists()
    for name, expected in (("f", data), ("i", ints)):
        assert_same(zarr_read(path, name), expected, f"{name} zarr-python")
        assert zarr.open_array(str(path), path=name, mode="r").shards == (10, 15)
        assert_same(ts_read(path, name, 3), expected, f"{name} tensorstore")
    with xr.open_dataset(path, engine="zarr") as got:
        assert_same(got.f.values, data)
