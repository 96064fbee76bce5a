"""Fixtures shared by the whole test run: object-store servers and a Dask cluster."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import GCSServer, S3Server, StaticRangeServer, start_http_server

# xarray's own zarr tests run through xzaro (test_xarray_suite.py): marks, expectations, report
pytest_plugins = ["xarray_suite_plugin"]

# --- object-store servers on 127.0.0.1 (see tests/servers.py) ------------------------------


@contextlib.contextmanager
def _serving(server: Any) -> Iterator[dict[str, Any]]:
    """Start ``server``; ``endpoint_url``, ``storage_options`` and ``server`` while it runs."""
    server.start()
    try:
        yield {
            "endpoint_url": server.endpoint_url,
            "storage_options": server.storage_options(),
            "server": server,
        }
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """A moto S3 server: ``endpoint_url``, ``storage_options``, ``make_bucket(name)``, ``server``.

    AWS variables point at fake credentials for the session so nothing can reach real AWS.
    """
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        with _serving(S3Server()) as served:
            yield {**served, "make_bucket": served["server"].make_bucket}


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[dict[str, Any]]:
    """A GCS emulator: ``endpoint_url``, ``storage_options``, ``bucket``, ``server``.

    gcsfs's default ``GCSFileSystem`` is its "extended" class, which first asks the gRPC storage
    control API for the bucket type; the emulator has no such API and each lookup waits out a
    60 s timeout. The fixture therefore maps ``gs://``/``gcs://`` to the plain class for the
    session (and turns the extended class off for processes started meanwhile).
    """
    pytest.importorskip("gcp_storage_emulator")
    gcsfs_core = pytest.importorskip("gcsfs.core")
    # the module, not the read-only ``fsspec.registry`` mapping that shadows it
    fsspec_registry = importlib.import_module("fsspec.registry")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        for protocol in ("gs", "gcs"):
            mp.setitem(fsspec_registry._registry, protocol, gcsfs_core.GCSFileSystem)
        with _serving(GCSServer()) as served:
            yield {**served, "bucket": served["server"].default_bucket}


@pytest.fixture(scope="session")
def http_server_handle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticRangeServer]:
    """The Range-capable static HTTP server itself (request counters, ``delay``)."""
    server = start_http_server(tmp_path_factory.mktemp("http-root"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def http_server(http_server_handle: StaticRangeServer) -> tuple[str, Path]:
    """``(base_url, directory)`` of a static HTTP server with Range support."""
    return http_server_handle.base_url, http_server_handle.directory


# --- a Dask cluster of worker processes on 127.0.0.1 ---------------------------------------


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[Any]:
    """A ``distributed.LocalCluster`` of two single-threaded worker processes, started once.

    Tasks run in other processes, so what travels to them must pickle. Nothing listens beyond
    127.0.0.1 (the scheduler's HTTP server included); no dashboard.
    """
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
    ) as cluster:
        yield cluster


@pytest.fixture
def dask_client(local_cluster: Any) -> Iterator[Any]:
    """A ``distributed.Client`` of the shared cluster, the default scheduler during one test.

    Both workers are waited for (a nanny restarts one that an earlier test brought down).
    """
    distributed = pytest.importorskip("distributed")
    with distributed.Client(local_cluster) as client:
        client.wait_for_workers(2, timeout=60)
        yield client
