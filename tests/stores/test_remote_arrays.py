"""Arrays read end to end from every store backend: local, memory://, S3, GCS and HTTP servers.

The same stores, written by zarr-python, are uploaded to each backend; every array must read
exactly as zarr-python reads the local copy, and reads must cost the requests they should.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest

import xzaro
from xzaro.stores.network import set_network_options

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")


@pytest.fixture(autouse=True)
def quick_retries() -> Iterator[None]:
    """Few, fast retries: the failures these tests provoke are retried before they raise."""
    with set_network_options(retries=2, backoff=0.01, max_backoff=0.05):
        yield


def _build(root: Path) -> dict[str, np.ndarray]:
    """Write the test stores under ``root``; return the expected array per store#path."""
    rng = np.random.default_rng(7)
    expected: dict[str, np.ndarray] = {}

    g2 = zarr.open_group(str(root / "v2.zarr"), mode="w", zarr_format=2)
    g2.attrs["title"] = "v2"
    t = np.round(rng.normal(280, 5, (12, 17, 9)), 2).astype("<f4")
    a = g2.create_array(
        "temp",
        shape=t.shape,
        chunks=(5, 8, 4),
        dtype="<f4",
        order="F",
        compressors=numcodecs.Blosc("lz4"),
        fill_value=np.nan,
    )
    a[:] = t
    a.attrs["_ARRAY_DIMENSIONS"] = ["time", "y", "x"]
    expected["v2.zarr#temp"] = t
    sub = g2.create_group("sub")
    m = rng.integers(-1000, 1000, (30,), dtype="i2").astype(">i2")
    b = sub.create_array(
        "mask", shape=m.shape, chunks=(7,), dtype=">i2", compressors=numcodecs.Zstd(3)
    )
    b[:] = m
    expected["v2.zarr#sub/mask"] = m
    zarr.consolidate_metadata(str(root / "v2.zarr"))

    g3 = zarr.open_group(str(root / "v3.zarr"), mode="w", zarr_format=3)
    s = rng.integers(0, 60000, (40, 36), dtype="uint16")
    s[20:, :18] = 9  # becomes a missing shard below
    c = g3.create_array(
        "img",
        shape=s.shape,
        chunks=(5, 6),
        shards=(20, 18),
        dtype="uint16",
        fill_value=9,
        compressors=zarr.codecs.ZstdCodec(level=1),
        dimension_names=["y", "x"],
    )
    c[:] = s
    expected["v3.zarr#img"] = s
    d = g3.create_array(
        "start",
        shape=(10, 10),
        chunks=(2, 5),
        shards=(10, 10),
        dtype="f8",
        fill_value=-1.0,
        serializer=zarr.codecs.ShardingCodec(chunk_shape=(2, 5), index_location="start"),
    )
    v = np.arange(100.0).reshape(10, 10)
    v[4:6] = -1.0  # inner chunks equal to the fill value are not stored
    d[:] = v
    expected["v3.zarr#start"] = v
    zarr.consolidate_metadata(str(root / "v3.zarr"))
    return expected


@pytest.fixture(scope="module")
def local_stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("remote-src")
    return root, _build(root)


def _upload(fs: fsspec.AbstractFileSystem, src: Path, dest: str) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_file():
            fs.pipe_file(f"{dest}/{path.relative_to(src).as_posix()}", path.read_bytes())


@pytest.fixture(scope="module", params=["local", "memory", "s3", "gcs", "http"])
def backend(request, local_stores):
    """``(base_url, storage_options)`` where the test stores live on one backend."""
    root, _ = local_stores
    kind = request.param
    if kind == "local":
        return str(root), None
    if kind == "memory":
        fs = fsspec.filesystem("memory")
        for name in ("v2.zarr", "v3.zarr"):
            _upload(fs, root / name, f"memory://remote-arrays/{name}")
        return "memory://remote-arrays", None
    if kind == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = server["make_bucket"]("remote-arrays")
        fs = fsspec.filesystem("s3", **server["storage_options"])
        for name in ("v2.zarr", "v3.zarr"):
            _upload(fs, root / name, f"{bucket}/{name}")
        return f"s3://{bucket}", server["storage_options"]
    if kind == "gcs":
        server = request.getfixturevalue("gcs_server")
        fs = fsspec.filesystem("gs", **server["storage_options"])
        for name in ("v2.zarr", "v3.zarr"):
            _upload(fs, root / name, f"{server['bucket']}/remote-arrays/{name}")
        return f"gs://{server['bucket']}/remote-arrays", server["storage_options"]
    base_url, directory = request.getfixturevalue("http_server")
    for name in ("v2.zarr", "v3.zarr"):
        shutil.copytree(root / name, Path(directory) / "remote-arrays" / name, dirs_exist_ok=True)
    return f"{base_url}/remote-arrays", None


def test_every_array_reads_exactly(backend, local_stores):
    base, options = backend
    _, expected = local_stores
    for name, want in expected.items():
        store, path = name.split("#")
        a = xzaro.open_array(f"{base}/{store}", path, storage_options=options)
        np.testing.assert_array_equal(a[...], want)
        np.testing.assert_array_equal(a[1:-1:3, ...], want[1:-1:3, ...])
        tail = (slice(1, None),) * want.ndim
        np.testing.assert_array_equal(a.read_region([1] * want.ndim), want[tail])
        assert a[(0,) * want.ndim] == want[(0,) * want.ndim]  # partial (index + range) read


def test_groups_walk_consolidated(backend, local_stores):
    base, options = backend
    g = xzaro.open_group(f"{base}/v2.zarr", storage_options=options)
    assert g.index.source == "V2 consolidated"
    assert dict(g.walk()).keys() == {"temp", "sub", "sub/mask"}
    assert g["temp"].dimension_names == ("time", "y", "x")
    g3 = xzaro.open_group(f"{base}/v3.zarr", storage_options=options)
    assert g3.index.source == "V3 consolidated"
    assert set(g3.arrays()) == {"img", "start"}


def test_request_counts_over_http(http_server_handle, local_stores):
    root, expected = local_stores
    directory = Path(http_server_handle.directory) / "counted"
    shutil.copytree(root / "v3.zarr", directory / "v3.zarr", dirs_exist_ok=True)
    url = f"{http_server_handle.base_url}/counted/v3.zarr"
    a = xzaro.open_array(url, "img")
    http_server_handle.reset_stats()
    np.testing.assert_array_equal(a[...], expected["v3.zarr#img"])
    # four shards, one of them missing: one request each, whole objects
    assert http_server_handle.requests == 4
    http_server_handle.reset_stats()
    assert a[3, 4] == expected["v3.zarr#img"][3, 4]
    # the shard index (suffix range), then the one inner chunk
    assert http_server_handle.requests == 2


def test_open_costs_one_round_of_requests_over_http(http_server_handle, local_stores):
    root, _ = local_stores
    directory = Path(http_server_handle.directory) / "open-count"
    shutil.copytree(root / "v2.zarr", directory / "v2.zarr", dirs_exist_ok=True)
    http_server_handle.reset_stats()
    xzaro.open_array(f"{http_server_handle.base_url}/open-count/v2.zarr", "temp")
    assert http_server_handle.requests <= 5  # zarr.json, .zmetadata, .zarray, .zgroup, .zattrs


def test_missing_store_over_http_is_a_clear_error(http_server):
    base_url, _ = http_server
    with pytest.raises(xzaro.NodeNotFoundError, match="no Zarr array or group"):
        xzaro.open_array(f"{base_url}/no-such-store.zarr")


def test_server_error_is_not_read_as_fill(http_server, local_stores):
    base_url, directory = http_server
    root, _ = local_stores
    target = Path(directory) / "err" / "v2.zarr"
    shutil.copytree(root / "v2.zarr", target, dirs_exist_ok=True)
    # The server answers 500 for any path containing __error500__. Consolidated metadata names
    # the array, so opening needs no request under it, but every chunk request fails.
    (target / "temp").rename(target / "temp__error500__")
    zmeta = target / ".zmetadata"
    zmeta.write_text(zmeta.read_text().replace('"temp/', '"temp__error500__/'))
    a = xzaro.open_array(f"{base_url}/err/v2.zarr", "temp__error500__")
    with pytest.raises(xzaro.StoreError) as e:
        a[0, 0, 0]
    assert "500" in str(e.value) and e.value.key == "temp__error500__/0.0.0"
    with pytest.raises(xzaro.StoreError) as e:
        xzaro.open_array(f"{base_url}/err/v2.zarr/temp__error500__")
    assert e.value.key in {"zarr.json", ".zmetadata", ".zarray", ".zgroup", ".zattrs"}


def test_array_pickles_small_and_reads_in_another_process(http_server, local_stores):
    base_url, directory = http_server
    root, expected = local_stores
    shutil.copytree(root / "v3.zarr", Path(directory) / "pickled" / "v3.zarr", dirs_exist_ok=True)
    a = xzaro.open_array(f"{base_url}/pickled/v3.zarr", "img")
    blob = pickle.dumps(a)
    assert len(blob) < 8000
    code = (
        "import pickle, sys, numpy as np; a = pickle.loads(sys.stdin.buffer.read()); "
        "sys.stdout.write(str(int(a[...].astype(np.int64).sum())))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=blob, capture_output=True, timeout=120, check=True
    )
    assert int(out.stdout) == int(expected["v3.zarr#img"].astype(np.int64).sum())
