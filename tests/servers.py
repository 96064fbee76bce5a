"""Real object-store servers on 127.0.0.1 for the store tests.

Each server binds a free port, is started with a deadline (a server that cannot start fails the
fixture instead of hanging the run) and is stopped by its ``stop`` method. Nothing here talks to
anything but the loopback interface.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT = 20.0

#: Credentials the local S3 server accepts while IAM checks are off (the default).
S3_KEY = "testing"
S3_SECRET = "testing"
S3_REGION = "us-east-1"

_RANGE = re.compile(r"^\s*bytes=(\d*)-(\d*)\s*$")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT) -> None:
    """Block until something accepts connections on ``port``, or raise ``RuntimeError``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                msg = f"no server listening on {HOST}:{port} after {timeout}s"
                raise RuntimeError(msg) from exc
            time.sleep(0.05)


def _call_with_deadline(fn: Callable[[], Any], what: str, timeout: float = START_TIMEOUT) -> Any:
    """Run a blocking start-up call in a daemon thread so that a stuck start cannot hang tests."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, name=f"start-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise RuntimeError(f"{what} did not start within {timeout}s")
    if "error" in result:
        raise RuntimeError(f"{what} failed to start: {result['error']!r}") from result["error"]
    return result.get("value")


# --- HTTP -------------------------------------------------------------------------------------


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """Static files with single ``Range`` requests (``a-b``, ``a-``, ``-n``) and HEAD.

    A path containing ``__error500__`` or ``__error403__`` answers with that status, so tests can
    check that server errors are raised rather than read as missing keys.
    """

    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes; without this, Nagle's algorithm and delayed
    # ACKs stall every keep-alive response by ~40 ms
    disable_nagle_algorithm = True
    server: StaticRangeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        with self.server.track():
            status, headers, body = self._respond()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _respond(self) -> tuple[int, dict[str, str], bytes]:
        for code in (500, 403):
            if f"__error{code}__" in self.path:
                return code, {"Content-Length": "0"}, b""
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            return self._listing(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return 404, {"Content-Length": "0"}, b""
        size = len(data)
        header = self.headers.get("Range")
        match = _RANGE.match(header) if header else None
        if match is None or match.groups() == ("", ""):
            return 200, self._headers(size), data
        first, last = match.groups()
        if first == "":
            start, stop = max(0, size - int(last)), size
        else:
            start = int(first)
            stop = size if last == "" else min(size, int(last) + 1)
        if start >= size or stop <= start:
            return 416, {"Content-Length": "0", "Content-Range": f"bytes */{size}"}, b""
        headers = self._headers(stop - start)
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        return 206, headers, data[start:stop]

    def _listing(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if not self.path.split("?")[0].endswith("/"):
            location = self.path.split("?")[0] + "/"
            return 301, {"Location": location, "Content-Length": "0"}, b""
        links = []
        for name in sorted(os.listdir(path)):
            suffix = "/" if os.path.isdir(os.path.join(path, name)) else ""
            links.append(f'<a href="{name}{suffix}">{name}{suffix}</a>')
        body = ("<html><body>" + "\n".join(links) + "</body></html>").encode()
        headers = self._headers(len(body))
        headers["Content-Type"] = "text/html; charset=utf-8"
        return 200, headers, body

    @staticmethod
    def _headers(length: int) -> dict[str, str]:
        return {
            "Content-Length": str(length),
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }


def spy_requests(monkeypatch: Any, record: Callable[[RangeRequestHandler], object]) -> None:
    """Call ``record(handler)`` for every request a :class:`RangeRequestHandler` answers, before
    it answers (for the rest of a test: ``monkeypatch`` is pytest's fixture)."""
    original = RangeRequestHandler._respond

    def spy(self: RangeRequestHandler) -> Any:
        record(self)
        return original(self)

    monkeypatch.setattr(RangeRequestHandler, "_respond", spy)


class StaticRangeServer(ThreadingHTTPServer):
    """A threaded static file server that counts simultaneous requests.

    Parameters
    ----------
    directory
        The directory whose files are served.
    """

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        handler = partial(RangeRequestHandler, directory=str(self.directory))
        super().__init__((HOST, 0), handler)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{HOST}:{self.server_address[1]}"

    @contextlib.contextmanager
    def track(self):
        """Count a request as in flight until its response is ready to be sent."""
        with self._lock:
            self.in_flight += 1
            self.requests += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def reset_stats(self) -> None:
        """Zero the request counters."""
        with self._lock:
            self.max_in_flight = 0
            self.requests = 0

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="http-range", daemon=True)
        self._thread.start()
        wait_for_port(self.server_address[1])

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)


def start_http_server(directory: str | os.PathLike[str]) -> StaticRangeServer:
    """Start a :class:`StaticRangeServer` for ``directory``."""
    server = StaticRangeServer(directory)
    _call_with_deadline(server.start, "HTTP server")
    return server


# --- S3 (moto) --------------------------------------------------------------------------------


class S3Server:
    """A moto S3 server on a free port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address=HOST, port=free_port(), verbose=False)
        self.endpoint_url = ""

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        _call_with_deadline(self._server.start, "moto S3 server")
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        wait_for_port(port)

    def stop(self) -> None:
        """Stop the server."""
        _call_with_deadline(self._server.stop, "moto S3 server stop", timeout=10)

    def storage_options(self, key: str = S3_KEY, secret: str = S3_SECRET) -> dict[str, Any]:
        """s3fs options that talk to this server only."""
        return {
            "key": key,
            "secret": secret,
            "endpoint_url": self.endpoint_url,
            "client_kwargs": {"region_name": S3_REGION},
        }

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (if needed) and return it."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        )
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
        return name

    @contextlib.contextmanager
    def iam_checks(self):
        """Make the server check credentials (unknown keys get 403) inside the block."""
        import requests

        url = f"{self.endpoint_url}/moto-api/reset-auth"
        requests.post(url, data=b"0", timeout=10).raise_for_status()
        try:
            yield
        finally:
            requests.post(url, data=b"inf", timeout=10).raise_for_status()


# --- GCS (gcp-storage-emulator) ---------------------------------------------------------------


class GCSServer:
    """A gcp-storage-emulator server (in memory) on a free port."""

    def __init__(self, default_bucket: str = "test-bucket") -> None:
        from gcp_storage_emulator.server import create_server

        self.port = free_port()
        self.default_bucket = default_bucket
        self.endpoint_url = f"http://{HOST}:{self.port}"
        self._server = create_server(HOST, self.port, in_memory=True, default_bucket=default_bucket)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        _widen_backlog(self._server)
        _call_with_deadline(self._server.start, "GCS emulator")
        wait_for_port(self.port)

    def stop(self) -> None:
        """Stop the server."""
        _call_with_deadline(self._server.stop, "GCS emulator stop", timeout=10)

    def storage_options(self) -> dict[str, Any]:
        """gcsfs options that talk to this server only."""
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": "test"}


class _WideBacklogHTTPServer(HTTPServer):
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # gcsfs drops connections whose answer it no longer needs (e.g. in ``info``)
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _widen_backlog(emulator: Any) -> None:
    """Give the emulator's (single-threaded) HTTP server a deep listen queue.

    It serves one request at a time with the default backlog of 5, so a burst of parallel
    requests overflows the queue and the kernel drops connection attempts, each costing a 1-3 s
    SYN retry. This reaches into the emulator's private ``APIThread``; if that changes, the
    emulator still works, only slower.
    """
    api = getattr(emulator, "_api", None)
    if api is None or not all(hasattr(api, a) for a in ("_host", "_port", "_storage")):
        return
    from gcp_storage_emulator.server import RequestHandler

    def run() -> None:
        api._httpd = _WideBacklogHTTPServer(
            (api._host, api._port), partial(RequestHandler, api._storage)
        )
        api.is_running.set()
        api._httpd.serve_forever()

    api.run = run
