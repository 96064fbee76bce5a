"""Data, servers and readers of the network benchmark (``bench_network.py``).

Everything listens on 127.0.0.1 only. The latency case reaches the stores over HTTP through a
:class:`_latency_server.LatencyServer` (asyncio worker processes that serve the files with
``Range`` and answer each request after the latency, so that thousands of small requests measure
the client, not the server) and over S3 through a :class:`faults.FaultProxy` (which sleeps the
latency per request) in front of a moto S3 server. The throughput case reads straight from a
:class:`servers.StaticRangeServer` (HTTP with ``Range``) and from moto. The latency server and
the proxy count the requests and the most in flight. ``servers`` and ``faults`` come from the
repository's ``tests/`` directory.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import sys
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_REPO / "tests"))
sys.path.insert(0, str(_REPO))

from _latency_server import LatencyServer, start_latency_server  # noqa: E402
from servers import S3_KEY, S3_REGION, S3_SECRET, S3Server, start_http_server  # noqa: E402

BUCKET = "bench"
DTYPE = np.dtype("float32")

#: The latency case: 1024x1024 float32 in 16x16 chunks (4,096 chunks), consolidated.
LATENCY_SHAPE = (1024, 1024)
LATENCY_CHUNKS = (16, 16)
LATENCY_SHARDS = (256, 256)
LATENCY_STORES = {"v2": "v2.zarr", "v3_sharded": "v3_sharded.zarr"}

#: The throughput case: chunk shapes of 0.5, 4 and 32 MiB of float32 (rows of 16,384).
THROUGHPUT_WIDTH = 16384
THROUGHPUT_CHUNKS = {"0.5 MiB": (8, 16384), "4 MiB": (64, 16384), "32 MiB": (512, 16384)}

#: Every reader, in column order; see README.md (bench_network) for what each one times.
READERS = (
    "zaro",
    "zaro obstore",
    "zaro fsspec",
    "zaro ru=shard",
    "zaro chunks=None",
    "zaro array",
    "zarr",
    "zarr obstore",
    "zarr-array obstore",
    "tensorstore",
)
#: Readers that open the data with xarray and Dask (the rest return numpy arrays directly).
SLOW_READERS = ("zarr", "zarr obstore")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def latency_field() -> np.ndarray:
    """The latency case's array: a smooth field plus seeded noise, rounded to 0.01."""
    ny, nx = LATENCY_SHAPE
    y = np.linspace(0, 4 * np.pi, ny, dtype=np.float32)[:, None]
    x = np.linspace(0, 6 * np.pi, nx, dtype=np.float32)[None, :]
    rng = np.random.default_rng(20241114)
    noise = rng.standard_normal(LATENCY_SHAPE, dtype=np.float32) * np.float32(0.5)
    field = np.float32(10) * np.sin(y) * np.cos(x) + np.float32(15) + noise
    return np.round(field, 2).astype(DTYPE)


def throughput_field(mib: int) -> np.ndarray:
    """The throughput case's array: ``mib`` MiB of float32, ``(rows, 16384)``, every value
    distinct within 2**24 (so a misplaced chunk cannot compare equal)."""
    rows = mib * (1 << 20) // (4 * THROUGHPUT_WIDTH)
    flat = np.arange(rows * THROUGHPUT_WIDTH, dtype=np.int64) % (1 << 24)
    return flat.astype(DTYPE).reshape(rows, THROUGHPUT_WIDTH)


def write_latency_stores(workdir: Path, data: np.ndarray) -> None:
    """Write ``v2.zarr`` (Blosc lz4) and ``v3_sharded.zarr`` (256x256 shards of 16x16 chunks,
    Blosc zstd) with xarray and zarr-python, both consolidated, one variable ``v`` (y, x)."""
    import numcodecs
    import xarray as xr
    from zarr.codecs import BloscCodec

    ds = xr.Dataset({"v": (("y", "x"), data)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v2 = {"chunks": LATENCY_CHUNKS, "compressors": [numcodecs.Blosc("lz4", 5, 1)]}
        ds.to_zarr(workdir / LATENCY_STORES["v2"], zarr_format=2, encoding={"v": v2}, mode="w")
        codec = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=4)
        v3 = {"chunks": LATENCY_CHUNKS, "shards": LATENCY_SHARDS, "compressors": [codec]}
        path = workdir / LATENCY_STORES["v3_sharded"]
        ds.to_zarr(path, zarr_format=3, encoding={"v": v3}, mode="w", consolidated=True)


def write_throughput_stores(workdir: Path, data: np.ndarray) -> None:
    """Write one uncompressed V2 store per chunk size, ``tp_<label>.zarr``, consolidated."""
    import xarray as xr

    ds = xr.Dataset({"v": (("y", "x"), data)})
    for label, chunks in THROUGHPUT_CHUNKS.items():
        encoding = {"v": {"chunks": chunks, "compressors": None}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.to_zarr(throughput_path(workdir, label), zarr_format=2, encoding=encoding, mode="w")


def throughput_path(workdir: Path, label: str) -> Path:
    """Where the throughput store of one chunk size lives."""
    return workdir / f"tp_{label.replace(' ', '').replace('.', '_')}.zarr"


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """One way to reach the stores: HTTP or S3, with or without latency.

    ``control`` asks what counts this endpoint's requests (the latency server, the S3 latency
    proxy, or the HTTP server when there is no latency) to ``"reset"`` or report its
    ``"stats"``.
    """

    transport: str  # "http" or "s3"
    base_url: str  # what clients talk to (the proxy's URL when there is one)
    control: Callable[[str], Any] | None = None

    def url(self, name: str) -> str:
        """The URL of store ``name`` (``http://.../name`` or ``s3://bench/name``)."""
        if self.transport == "http":
            return f"{self.base_url}/{name}"
        return f"s3://{BUCKET}/{name}"

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec options for the stores (for S3: the moto credentials and the endpoint)."""
        if self.transport == "http":
            return {}
        return {
            "key": S3_KEY,
            "secret": S3_SECRET,
            "endpoint_url": self.base_url,
            "client_kwargs": {"region_name": S3_REGION},
        }

    def reset_stats(self) -> None:
        """Zero the request counters."""
        if self.control is not None:
            self.control("reset")

    def stats(self) -> tuple[int | None, int | None]:
        """``(requests, most in flight)`` since the last reset, ``None`` where not counted."""
        if self.control is None:
            return None, None
        return self.control("stats")


class _LocalServers:
    """The HTTP and S3 servers and the proxies in front of them, in the server process."""

    def __init__(self, root: Path, s3: bool) -> None:
        self.root = root
        self.http = start_http_server(root)
        self.s3 = None
        self.counted: list[Any] = []
        if s3:
            # moto's werkzeug server logs every request to the terminal
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            self.s3 = S3Server()
            self.s3.start()
            self.s3.make_bucket(BUCKET)

    def upload(self, names: list[str]) -> None:
        """Copy the store directories ``names`` under ``root`` into the bucket."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.s3.endpoint_url,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        )
        files = [p for name in names for p in sorted((self.root / name).rglob("*")) if p.is_file()]

        def put(path: Path) -> None:
            key = path.relative_to(self.root).as_posix()
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, files))

    def endpoint(self, transport: str, latency: float | None) -> tuple[str, int | None]:
        """The base URL for ``transport`` (a new latency proxy unless ``latency`` is None) and
        the number of what counts its requests (``None``: nothing does)."""
        upstream = self.http.base_url if transport == "http" else self.s3.endpoint_url
        if latency is None:
            if transport != "http":
                return upstream, None
            self.counted.append(self.http)
            return upstream, len(self.counted) - 1
        from faults import start_fault_proxy

        proxy = start_fault_proxy(upstream, latency=latency)
        self.counted.append(proxy)
        return proxy.base_url, len(self.counted) - 1

    def control(self, index: int, what: str) -> Any:
        """Reset, or report ``(requests, most in flight)`` of counter ``index``."""
        counter = self.counted[index]
        if what == "reset":
            counter.reset_stats()
            return None
        stats = counter if counter is self.http else counter.stats
        return stats.requests, stats.max_in_flight

    def stop(self) -> None:
        """Stop every proxy and server."""
        for counter in self.counted:
            if counter is not self.http:
                counter.stop()
        if self.s3 is not None:
            self.s3.stop()
        self.http.stop()


def _serve(conn: Any, root: str, s3: bool) -> None:
    """The server process: answer ``(method, *args)`` messages until ``("stop",)``."""
    try:
        servers = _LocalServers(Path(root), s3)
    except BaseException as exc:
        conn.send(("error", repr(exc)))
        return
    conn.send(("ok", None))
    while True:
        method, *args = conn.recv()
        if method == "stop":
            servers.stop()
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", getattr(servers, method)(*args)))
        except BaseException as exc:
            conn.send(("error", repr(exc)))


class Servers:
    """The HTTP and S3 servers of one run, in a process of their own, so that the servers and
    proxies (Python threads) never hold the readers' GIL; and the HTTP latency servers, each in
    processes of their own.

    Parameters
    ----------
    root
        The directory the HTTP server serves and the stores are uploaded from.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._conn: Any = None
        self._process: Any = None
        self._lock = threading.Lock()
        self._latency_servers: list[LatencyServer] = []

    def _call(self, method: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((method, *args))
            if not self._conn.poll(600):
                raise RuntimeError(f"the server process did not answer {method!r}")
            status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"server process: {method}: {value}")
        return value

    def start(self, s3: bool) -> None:
        """Start the server process: the HTTP server on ``root`` and, with ``s3``, moto."""
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve, args=(child, str(self.root), s3), name="bench-servers", daemon=True
        )
        self._process.start()
        if not self._conn.poll(120):
            raise RuntimeError("the server process did not start within 120 s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"the server process failed to start: {value}")

    def upload(self, names: list[str]) -> None:
        """Copy the store directories ``names`` under ``root`` into the S3 bucket."""
        self._call("upload", names)

    def endpoint(self, transport: str, latency: float | None) -> Endpoint:
        """An endpoint for ``transport``, with ``latency`` per request unless it is None: over
        HTTP a new :class:`LatencyServer` (without latency too: it serves large objects at
        several GB/s, where a thread-per-request server caps every reader), over S3 a new
        latency proxy in front of moto."""
        if transport == "http":
            server = start_latency_server(self.root, latency or 0.0)
            self._latency_servers.append(server)
            return Endpoint(transport, server.base_url, partial(_control_latency, server))
        base_url, index = self._call("endpoint", transport, latency)
        if index is None:
            return Endpoint(transport, base_url)
        return Endpoint(transport, base_url, lambda what: self._call("control", index, what))

    def stop(self) -> None:
        """Stop the servers and their processes."""
        for server in self._latency_servers:
            server.stop()
        self._latency_servers = []
        if self._process is None:
            return
        try:
            self._call("stop")
        finally:
            self._process.join(30)
            if self._process.is_alive():
                self._process.terminate()
            self._process = None


def _control_latency(server: LatencyServer, what: str) -> tuple[int, int] | None:
    """:attr:`Endpoint.control` of a latency server."""
    if what == "reset":
        server.reset_stats()
        return None
    return server.stats()


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------

Read = Callable[[], np.ndarray]


def obstore_available() -> str | None:
    """Why xzaro's obstore store cannot be used, or ``None`` when it can."""
    if importlib.util.find_spec("obstore") is None:
        return "obstore is not installed"
    if importlib.util.find_spec("xzaro.stores.obstore_store") is None:
        return "xzaro.stores.obstore_store does not exist yet"
    return None


def zarr_obstore(ep: Endpoint, name: str) -> Any:
    """zarr-python's ``ObjectStore`` over an obstore store of ``name`` at ``ep``."""
    import obstore.store as oss
    from zarr.storage import ObjectStore

    if ep.transport == "http":
        store = oss.HTTPStore.from_url(ep.url(name), client_options={"allow_http": True})
    else:
        store = oss.S3Store(
            BUCKET,
            prefix=name,
            endpoint=ep.base_url,
            access_key_id=S3_KEY,
            secret_access_key=S3_SECRET,
            region=S3_REGION,
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )
    return ObjectStore(store, read_only=True)


def tensorstore_spec(ep: Endpoint, name: str, zarr_format: int) -> dict[str, Any]:
    """tensorstore's spec of array ``v`` of store ``name`` (http or s3 kvstore)."""
    driver = "zarr" if zarr_format == 2 else "zarr3"
    if ep.transport == "http":
        kvstore = {"driver": "http", "base_url": ep.url(name), "path": "v/"}
    else:
        kvstore = {
            "driver": "s3",
            "bucket": BUCKET,
            "path": f"{name}/v/",
            "endpoint": ep.base_url,
            "aws_region": S3_REGION,
            "aws_credentials": {"type": "environment"},
        }
    return {"driver": driver, "kvstore": kvstore}


def set_aws_environment() -> None:
    """The moto credentials as ``AWS_*`` variables (tensorstore's s3 kvstore reads them)."""
    os.environ["AWS_ACCESS_KEY_ID"] = S3_KEY
    os.environ["AWS_SECRET_ACCESS_KEY"] = S3_SECRET
    os.environ.setdefault("AWS_REGION", S3_REGION)


def _xarray_values(target: Any, engine: str, chunks: Any = {}, **kwargs: Any) -> np.ndarray:  # noqa: B006
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_dataset(target, engine=engine, chunks=chunks, **kwargs).v.values


def make_reader(reader: str, ep: Endpoint, name: str, zarr_format: int) -> Read:
    """The timed call of ``reader`` on store ``name``: open, then every value as numpy."""
    url, options = ep.url(name), ep.storage_options
    if reader == "zaro":
        return lambda: _xarray_values(url, "zaro", storage_options=options)
    if reader == "zaro fsspec":
        fsspec_options = {**options, "client": "fsspec"}
        return lambda: _xarray_values(url, "zaro", storage_options=fsspec_options)
    if reader == "zaro ru=shard":
        return lambda: _xarray_values(url, "zaro", storage_options=options, read_unit="shard")
    if reader == "zaro chunks=None":
        return lambda: _xarray_values(url, "zaro", chunks=None, storage_options=options)
    if reader == "zaro array":
        import xzaro

        return lambda: xzaro.open_array(url, "v", storage_options=options)[...]
    if reader == "zaro obstore":
        from xzaro.stores.obstore_store import ObstoreStore

        return lambda: _xarray_values(ObstoreStore(url, options), "zaro")
    if reader == "zarr":
        return lambda: _xarray_values(url, "zarr", storage_options=options or None)
    if reader == "zarr obstore":
        return lambda: _xarray_values(zarr_obstore(ep, name), "zarr")
    if reader == "zarr-array obstore":
        import zarr

        return lambda: zarr.open_array(zarr_obstore(ep, name), path="v", mode="r")[...]
    if reader == "tensorstore":
        import tensorstore as ts

        spec = tensorstore_spec(ep, name, zarr_format)
        return lambda: ts.open(spec).result().read().result()
    raise ValueError(f"unknown reader {reader!r}")


def reader_unavailable(reader: str) -> str | None:
    """Why ``reader`` cannot run here (a missing package), or ``None``."""
    needs = {
        "zaro obstore": None,
        "zarr obstore": "obstore",
        "zarr-array obstore": "obstore",
        "tensorstore": "tensorstore",
    }
    if reader == "zaro obstore":
        return obstore_available()
    module = needs.get(reader)
    if module and importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    return None


def check(expected: np.ndarray) -> Callable[[Any], str | None]:
    """A verifier: ``None`` when a result equals ``expected`` (shape, dtype and values)."""

    def verify(result: Any) -> str | None:
        got = np.asarray(result)
        if got.shape != expected.shape or got.dtype != expected.dtype:
            return f"got {got.dtype}{got.shape}, expected {expected.dtype}{expected.shape}"
        if not np.array_equal(got, expected):
            bad = int(np.count_nonzero(got != expected))
            return f"{bad} of {expected.size} values differ"
        return None

    return verify
