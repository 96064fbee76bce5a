"""``to_store`` (datasets, pyramids, trees) and the streaming writer into Icechunk sessions: the
metadata first, no journal, one commit at the end (by the caller who holds the session, or by
xzaro for a repository it opened from an ``icechunk://`` URL). zarr-python reads what was
committed, through Icechunk's own store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

icechunk = pytest.importorskip("icechunk")
xr = pytest.importorskip("xarray")

import xzaro  # noqa: E402
from xzaro.errors import NodeNotFoundError  # noqa: E402
from xzaro.stores import LocalStore  # noqa: E402
from xzaro.stores.icechunk import open_icechunk  # noqa: E402


def _dataset(offset: float = 0.0, start: int = 0) -> Any:
    values = np.arange(96, dtype="float32").reshape(12, 8) + offset
    return xr.Dataset(
        {"t": (("x", "y"), values, {"units": "K"})},
        coords={"x": np.arange(start, start + 12), "y": np.arange(8) * 10.0},
        attrs={"title": "icechunk"},
    ).chunk({"x": 4})


def _snapshots(repo: Any) -> int:
    return len(list(repo.ancestry(branch="main")))


def _oracle(repo: Any) -> Any:
    """What zarr-python reads from the branch, through Icechunk's own store."""
    pytest.importorskip("zarr")
    return xr.open_zarr(repo.readonly_session("main").store, consolidated=False).load()


def test_eager_write_into_a_session_the_caller_commits() -> None:
    repo = icechunk.Repository.create(icechunk.in_memory_storage())
    before = _snapshots(repo)
    session = repo.writable_session("main")
    ds = _dataset()
    ds.zaro.to_store(session.store, zarr_format=3)  # Icechunk's own store object
    assert _snapshots(repo) == before  # nothing committed by xzaro
    with pytest.raises(NodeNotFoundError):  # the branch has nothing yet
        xr.open_dataset(repo.readonly_session("main").store, engine="zaro")
    session.commit("mine")
    xr.testing.assert_identical(_oracle(repo), ds.compute())
    back = xr.open_dataset(repo.readonly_session("main").store, engine="zaro").load()
    xr.testing.assert_identical(back, ds.compute())


def test_url_write_commits_once(tmp_path: Path) -> None:
    url = f"icechunk://{tmp_path / 'repo'}"
    ds = _dataset()
    ds.zaro.to_store(url, mode="w", chunks={"x": 4}, shards={"x": 8})
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(tmp_path / "repo")))
    messages = [snapshot.message for snapshot in repo.ancestry(branch="main")]
    assert messages[0] == "xzaro to_store" and len(messages) == 2  # the write and the root
    xr.testing.assert_identical(_oracle(repo), ds.compute())
    # an append from a URL, with its own message
    more = _dataset(100.0, start=12)
    more.zaro.to_store(url, mode="a", append_dim="x", commit="appended 12 rows")
    assert next(iter(repo.ancestry(branch="main"))).message == "appended 12 rows"
    back = xr.open_dataset(url, engine="zaro").load()
    np.testing.assert_array_equal(back.t.values, np.concatenate([ds.t.values, more.t.values]))
    assert _oracle(repo).sizes["x"] == 24


def test_commit_option_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no commits"):
        _dataset().zaro.to_store(LocalStore(str(tmp_path / "x.zarr")), commit="nope")
    assert not (tmp_path / "x.zarr").exists()
    store = open_icechunk(icechunk.Repository.create(icechunk.in_memory_storage()), mode="a")
    with pytest.raises(ValueError, match="compute=True"):
        _dataset().zaro.to_store(store, commit="later", compute=False)


def test_failed_write_commits_nothing(tmp_path: Path) -> None:
    url = f"icechunk://{tmp_path / 'repo'}"
    _dataset().zaro.to_store(url, mode="w")

    def explode(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block_info[0]["chunk-location"][0] == 2:
            raise RuntimeError("the source failed midway")
        return block + 1000

    bad = _dataset()
    bad["t"] = bad.t.copy(data=bad.t.data.map_blocks(explode, dtype="float32"))
    with pytest.raises(RuntimeError, match="midway"):
        bad.zaro.to_store(url, mode="w")
    xr.testing.assert_identical(xr.open_dataset(url, engine="zaro").load(), _dataset().compute())


def test_pyramid_and_tree_into_a_session() -> None:
    repo = icechunk.Repository.create(icechunk.in_memory_storage())
    store = open_icechunk(repo, mode="a")
    ds = _dataset()
    pyramid = xzaro.Multiscale(levels=2, dims=("x", "y"))
    ds.zaro.to_store(store, group="pyramid", multiscale=pyramid, commit="pyramid")
    levels = xzaro.open_multiscale(open_icechunk(repo), group="pyramid")
    assert len(levels) == 2
    np.testing.assert_array_equal(levels[0].t.values, ds.t.values)
    coarse = ds.t.values.reshape(6, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(levels[1].t.values, coarse)
    tree = xr.DataTree.from_dict({"/": xr.Dataset(attrs={"kind": "tree"}), "/child": ds})
    store = open_icechunk(repo, mode="a")
    tree.zaro.to_store(store, group="tree", commit="tree")
    back = xr.open_datatree(open_icechunk(repo), engine="zaro", group="tree")
    np.testing.assert_array_equal(back["child"].t.values, ds.t.values)
    assert back.attrs["kind"] == "tree"
    assert [s.message for s in repo.ancestry(branch="main")][:2] == ["tree", "pyramid"]


def test_written_from_this_process_under_a_cluster(tmp_path: Path, dask_client: Any) -> None:
    """Under a distributed client a session cannot travel to the workers (its writes there
    would be lost): the write runs on this process's threads, into this session."""
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "r")))
    store = open_icechunk(repo, mode="a")
    ds = _dataset()
    ds.zaro.to_store(store, commit="from the client")
    xr.testing.assert_identical(_oracle(repo), ds.compute())


def test_stream_into_a_repository_commits_at_stop(tmp_path: Path) -> None:
    """Frames streamed into an ``icechunk://`` repository: nothing on the branch while the
    stream runs, one commit at ``stop()``; 70 frames in rows of 32 (a padded last row)."""
    from xzaro.streaming import Dimension, StorageProperties, ZarrV3

    path = tmp_path / "repo"
    rng = np.random.default_rng(1)
    frames = rng.integers(1, 60000, (70, 24, 40), dtype=np.uint16)
    dims = [
        Dimension("x", "space", 40, 20, 2),
        Dimension("y", "space", 24, 12, 2),
        Dimension("t", "time", 0, 32, 1),
    ]
    device = ZarrV3(StorageProperties(uri=f"icechunk://{path}", acquisition_dimensions=dims))
    device.reserve_image_shape((24, 40), np.uint16)
    device.start()
    device.append(frames[:40])
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    assert len(list(repo.ancestry(branch="main"))) == 1  # only the repository's first snapshot
    device.append(frames[40:])
    device.stop()
    assert next(iter(repo.ancestry(branch="main"))).message == "xzaro stream: 70 frames"
    back = xzaro.open_array(f"icechunk://{path}", "0")[...]
    np.testing.assert_array_equal(back, frames)
    zarr = pytest.importorskip("zarr")
    oracle = zarr.open_array(repo.readonly_session("main").store, path="0", mode="r")
    np.testing.assert_array_equal(oracle[...], frames)
