"""The whole pipeline on a cluster of worker processes against a slow, faulty S3.

A ``distributed.LocalCluster`` (two worker processes of two threads) reads a dataset from moto
S3 through a :class:`~faults.FaultProxy` that delays every request by 10 ms and answers about
one in ten with ``503 SlowDown`` or a dropped connection: open (``engine="zaro"``), reduce
(a mean), write (``to_store``), read back, and read a Kerchunk reference document on S3 whose
targets are on S3. The values must be numpy's, the faults must have been met (and retried), and
each worker process must have opened the file system of each store it used exactly once, however
many tasks it ran.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import xarray as xr
from reference_docs import VALUES, target_files, v0_doc, with_fill

import xzaro
from xzaro.stores.network import request_stats, reset_request_stats, set_network_options

pytestmark = pytest.mark.timeout(300)

#: Worker processes read the network options from these variables when they start.
NETWORK_ENVIRONMENT = {
    "XZARO_RETRIES": "10",
    "XZARO_BACKOFF": "0.01",
    "XZARO_MAX_BACKOFF": "0.2",
    "XZARO_READ_TIMEOUT": "20",
}
FAULTS = {"503": 0.05, "reset": 0.05}

# --- what runs in the worker processes (this module is importable there: spawned workers get
# --- the test process's sys.path) ----------------------------------------------------------

#: The URLs fsspec file systems were opened for in this process, once counting started.
OPENED: list[str] = []
_counting = threading.Lock()


def count_file_system_opens() -> None:
    """Record every ``fsspec.core.url_to_fs`` call of this process from now on (once)."""
    import fsspec.core

    with _counting:
        real = fsspec.core.url_to_fs
        if getattr(real, "counted", False):
            return

        def url_to_fs(url: str, **kwargs: Any) -> Any:
            OPENED.append(str(url))
            return real(url, **kwargs)

        url_to_fs.counted = True  # type: ignore[attr-defined]
        fsspec.core.url_to_fs = url_to_fs


def opened() -> list[str]:
    return list(OPENED)


def worker_requests() -> tuple[int, int]:
    stats = request_stats()
    return stats.requests, stats.retries


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network_cluster(s3_server: dict[str, Any]) -> Iterator[Any]:
    """A client of two worker processes with two threads each, whose ``XZARO_*`` network
    options allow for the faults (the AWS variables of ``s3_server`` are inherited)."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=2,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,
            env=NETWORK_ENVIRONMENT,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        yield client


@pytest.fixture(scope="module")
def faulty_s3(s3_server: dict[str, Any]) -> Iterator[tuple[str, Any, dict, dict]]:
    """``(bucket, proxy, direct options, proxied options)``: the proxy adds 10 ms and faults."""
    from faults import start_fault_proxy

    bucket = s3_server["make_bucket"]("distributed-network")
    proxy = start_fault_proxy(s3_server["endpoint_url"], latency=0.01, faults=FAULTS, seed=14)
    direct = s3_server["storage_options"]
    try:
        yield bucket, proxy, direct, {**direct, "endpoint_url": proxy.base_url}
    finally:
        proxy.stop()


def source() -> xr.Dataset:
    rng = np.random.default_rng(14)
    return xr.Dataset(
        {
            "v": (("t", "x", "y"), rng.normal(size=(60, 12, 8))),
            "w": (("t", "x"), rng.integers(0, 100, (60, 12)).astype("int32")),
        },
        coords={"t": np.arange(60), "x": np.arange(12.0), "y": np.arange(8.0)},
    )


# --- the test ------------------------------------------------------------------------------


def test_pipeline_on_a_cluster_against_a_faulty_s3(
    network_cluster: Any, faulty_s3: tuple[str, Any, dict, dict], tmp_path: Any
) -> None:
    client = network_cluster
    bucket, proxy, direct, proxied = faulty_s3
    expected = source()
    # the inputs are written without faults
    expected.zaro.to_store(
        f"s3://{bucket}/src.zarr", chunks={"t": 4}, zarr_format=3, storage_options=direct
    )
    target_files(tmp_path)
    refs = xzaro.open_store(f"s3://{bucket}/refs", direct, mode="w")
    refs.set("data.bin", (tmp_path / "data.bin").read_bytes())
    refs.set("whole.bin", (tmp_path / "whole.bin").read_bytes())
    doc = v0_doc(f"s3://{bucket}/refs/data.bin", f"s3://{bucket}/refs/whole.bin")
    # the array as a data variable ``r`` along ``i``: an index would be read here, not there
    doc = {key.replace("x/", "r/", 1): value for key, value in doc.items()}
    doc["r/.zattrs"] = json.dumps({"_ARRAY_DIMENSIONS": ["i"]})
    refs.set("refs.json", json.dumps(doc).encode())

    client.run(count_file_system_opens)
    client.run(reset_request_stats)
    reset_request_stats()
    proxy.reset_stats()
    with set_network_options(retries=10, backoff=0.01, max_backoff=0.2):
        ds = xr.open_dataset(
            f"s3://{bucket}/src.zarr", engine="zaro", chunks={}, storage_options=proxied
        )
        assert ds.v.chunks is not None
        reduced = ds.mean("x")
        reduced.zaro.to_store(f"s3://{bucket}/out.zarr", mode="w", storage_options=proxied)
        with xr.open_dataset(
            f"s3://{bucket}/out.zarr", engine="zaro", chunks={}, storage_options=proxied
        ) as back:
            assert back.v.chunks is not None  # read on the cluster, not here
            got = back.compute()
        references = xr.open_dataset(
            f"reference+json://s3://{bucket}/refs/refs.json",
            engine="zaro",
            chunks={"i": 2},
            mask_and_scale=False,  # the fill value -1 stays -1
            storage_options=proxied,
        )
        assert references.r.chunks is not None
        got_r = references.r.compute().values

    np.testing.assert_allclose(got.v.values, expected.v.values.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(got.w.values, expected.w.values.mean(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(got.t.values, expected.t.values)
    np.testing.assert_array_equal(got_r, with_fill(VALUES, [3]))

    # the faults were met, and retried (by the workers and by this process)
    assert sum(proxy.stats.faults.values()) > 0, proxy.stats
    workers = client.run(worker_requests)
    assert len(workers) == 2
    assert sum(retries for _, retries in workers.values()) + request_stats().retries > 0
    # each worker opened the file system of each store it used once, however many requests
    # (and tasks) it made on it; the scheduler decides which worker gets which tasks
    opens = client.run(opened)
    for address, urls in opens.items():
        counts = collections.Counter(urls)
        assert all(n == 1 for n in counts.values()), (address, counts)
    total_opens = sum(len(urls) for urls in opens.values())
    total_requests = sum(requests for requests, _ in workers.values())
    assert 0 < 4 * total_opens < total_requests, (opens, workers)
