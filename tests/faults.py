"""A fault-injecting reverse HTTP/1.1 proxy on 127.0.0.1 for the network tests.

:class:`FaultProxy` stands in front of an upstream server (a :class:`~servers.StaticRangeServer`
or the moto S3 server) and forwards every request unchanged (method, request target, headers
with ``Host`` rewritten to the upstream's, body), adding latency and, for a chosen fraction of
requests, a fault:

==============  ==================================================================================
kind            what the client sees
==============  ==================================================================================
``"503"``       ``503 Service Unavailable`` with an S3-style ``SlowDown`` XML body
``"500"``       ``500 Internal Server Error`` (``InternalError``)
``"429"``       ``429 Too Many Requests`` (``SlowDown``)
``"403"``       ``403 Forbidden`` (``AccessDenied``)
``"301"``       S3's ``301 PermanentRedirect`` of a bucket in another region, saying which
                (``x-amz-bucket-region: eu-west-1``)
``"reset"``     the connection is closed (with a TCP reset) without an answer
``"truncate"``  the upstream's answer with its full ``Content-Length`` but half its body, then the
                connection is closed (an answer without a body is cut inside its headers)
``"stall"``     nothing at all for ``stall_seconds``, then the connection is closed
==============  ==================================================================================

Nothing here listens beyond the loopback interface.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from servers import HOST, _call_with_deadline, wait_for_port

#: Every kind of fault the proxy can inject.
FAULT_KINDS = ("503", "500", "429", "403", "301", "reset", "truncate", "stall")
#: The region a ``"301"`` fault says the bucket is in.
REDIRECT_REGION = "eu-west-1"

_STATUS_FAULTS = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "429": (429, "SlowDown", "Please reduce your request rate."),
    "403": (403, "AccessDenied", "Access Denied"),
    "301": (301, "PermanentRedirect", "The bucket is in another region."),
}
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)


@dataclass
class ProxyStats:
    """What a :class:`FaultProxy` has seen since it started or its stats were last reset."""

    requests: int = 0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    max_in_flight: int = 0
    by_method: collections.Counter[str] = field(default_factory=collections.Counter)
    in_flight: int = 0


def _signed_region(headers: Any) -> str | None:
    """The region in the credential scope of an AWS SigV4 ``Authorization`` header."""
    found = re.search(r"Credential=[^/,]+/\d{8}/([^/,]+)/", headers.get("Authorization") or "")
    return found.group(1) if found else None


class _Settings:
    """The live fault settings of a proxy; checked on every change."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.faults: dict[str, float] = {}
        self.stall_seconds = 30.0
        self.first_failures = 0
        self.fail_after: int | None = None
        self.methods: frozenset[str] | None = None
        self.bucket_region: str | None = None

    def update(self, changes: Mapping[str, Any]) -> None:
        unknown = set(changes) - set(vars(self))
        if unknown:
            raise ValueError(f"unknown FaultProxy setting(s) {sorted(unknown)}")
        faults = dict(changes.get("faults", self.faults) or {})
        bad = set(faults) - set(FAULT_KINDS)
        if bad:
            raise ValueError(f"unknown fault kind(s) {sorted(bad)}; known: {FAULT_KINDS}")
        if any(f < 0 for f in faults.values()) or sum(faults.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault fractions must be >= 0 and sum to <= 1, got {faults}")
        for name, value in changes.items():
            if name == "faults":
                value = faults
            elif name == "methods" and value is not None:
                value = frozenset(m.upper() for m in value)
            setattr(self, name, value)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients dropping connections are part of the game here


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _ProxyServer
    upstream_connection: http.client.HTTPConnection | None = None
    #: Whether the request being handled has left the proxy's count of requests in flight.
    answering = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self.upstream_connection is not None:
            self.upstream_connection.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        return b""

    def _read_chunked(self) -> bytes:
        """The chunked body exactly as sent (framing included), to forward it unchanged."""
        parts = []
        while True:
            line = self.rfile.readline()
            parts.append(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers up to the empty line
                    line = self.rfile.readline()
                    parts.append(line)
                    if line in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
            parts.append(self.rfile.read(size + 2))

    def _proxy(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        proxy._enter(self.command)
        self.answering = False
        try:
            kind, latency = proxy._decide(self.command, self.path)
            region = proxy._settings.bucket_region
            if region is not None and _signed_region(self.headers) != region:
                kind = "301"  # as S3 answers a request signed for another region
                with proxy._lock:
                    proxy.stats.faults[kind] += 1
            if latency:
                time.sleep(latency)
            if kind in _STATUS_FAULTS:
                self._answer_fault(kind)
            elif kind == "reset":
                self._reset()
            elif kind == "stall":
                proxy._stop.wait(proxy._settings.stall_seconds)
                self._reset()
            else:
                self._forward(body, truncate=kind == "truncate")
        finally:
            self._answer_ready()

    def _answer_ready(self) -> None:
        """End the request's time in flight (once): when its answer is ready to be sent, as
        the client may send its next request as soon as the answer has arrived."""
        if not self.answering:
            self.answering = True
            self.server.proxy._leave()

    def send_response(self, code: int, message: str | None = None) -> None:
        self._answer_ready()
        super().send_response(code, message)

    def _answer_fault(self, kind: str) -> None:
        status, code, message = _STATUS_FAULTS[kind]
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{self.path}</Resource><RequestId>fault-proxy</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(text)))
        if status in (503, 429):
            self.send_header("Retry-After", "0")
        if status == 301:
            region = self.server.proxy._settings.bucket_region or REDIRECT_REGION
            self.send_header("x-amz-bucket-region", region)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)

    def _reset(self) -> None:
        """Close the client connection at once, with a TCP reset, answering nothing."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _upstream(self, fresh: bool) -> http.client.HTTPConnection:
        if fresh or self.upstream_connection is None:
            if self.upstream_connection is not None:
                self.upstream_connection.close()
            host, port = self.server.proxy._upstream_address
            self.upstream_connection = http.client.HTTPConnection(host, port, timeout=120)
        return self.upstream_connection

    def _exchange(self, body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        host, port = self.server.proxy._upstream_address
        for attempt in range(2):
            connection = self._upstream(fresh=attempt > 0)
            try:
                connection.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                connection.putheader("Host", f"{host}:{port}")
                for name, value in self.headers.items():
                    if name.lower() not in ("host", "expect", "connection", "keep-alive"):
                        connection.putheader(name, value)
                connection.endheaders(body or None)
                response = connection.getresponse()
                return response, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _forward(self, body: bytes, truncate: bool) -> None:
        try:
            response, data = self._exchange(body)
        except OSError as exc:
            message = f"fault proxy: upstream failed: {exc!r}".encode()
            self.send_response(502)
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            self.wfile.write(message)
            return
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"content-length", "date", "server"}:
                self.send_header(name, value)
        length = response.getheader("Content-Length")
        if self.command == "HEAD" and length is not None:
            self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        # An upstream that closes its connections (moto does) does not close the client's: the
        # proxy opens a new upstream connection for the next request itself.
        if truncate:
            if not data:  # nothing to cut short: cut the headers instead
                self._headers_buffer = self._headers_buffer[: len(self._headers_buffer) // 2]
                self.flush_headers()
                self._reset()
                return
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._reset()
            return
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class FaultProxy:
    """A threaded reverse HTTP/1.1 proxy on 127.0.0.1 in front of ``upstream``, injecting
    latency and faults.

    Parameters
    ----------
    upstream
        ``http://127.0.0.1:PORT`` of the server to forward to.
    latency
        Seconds slept before each request is forwarded (no lock is held meanwhile).
    faults
        Fault kind (see the module's table) -> the fraction of requests that get it.
    stall_seconds
        How long a ``"stall"`` lasts (it ends early when the proxy stops).
    seed
        Seed of the random choice of faulty requests.
    first_failures
        When > 0: the first N requests of each (method, request target) fail, with a kind
        drawn from ``faults`` in proportion to its fraction (``"503"`` when ``faults`` is
        empty), and every later request passes; ``faults`` then only chooses the kinds.
    fail_after
        Every request after the first N (counted since the last :meth:`reset_stats`) fails with
        ``503``: an outage.
    methods
        Only requests of these methods get faults; ``None`` for all.
    bucket_region
        When given, the region S3 buckets behind the proxy are in: every request not signed
        (AWS SigV4) for it is answered ``301 PermanentRedirect`` naming it, as S3 does.
    """

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        faults: Mapping[str, float] | None = None,
        stall_seconds: float = 30.0,
        seed: int = 0,
        first_failures: int = 0,
        fail_after: int | None = None,
        methods: Collection[str] | None = None,
        bucket_region: str | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the upstream must be an http:// URL, got {upstream!r}")
        self._upstream_address = (parts.hostname, parts.port or 80)
        self._settings = _Settings()
        self._settings.update(
            {
                "latency": latency,
                "faults": faults,
                "stall_seconds": stall_seconds,
                "first_failures": first_failures,
                "fail_after": fail_after,
                "methods": methods,
                "bucket_region": bucket_region,
            }
        )
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seen: collections.Counter[tuple[str, str]] = collections.Counter()
        self.stats = ProxyStats()
        self._server = _ProxyServer((HOST, 0), _ProxyHandler)
        self._server.proxy = self
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy (no trailing slash)."""
        return f"http://{HOST}:{self._server.server_address[1]}"

    def configure(self, **changes: Any) -> None:
        """Change ``latency``, ``faults``, ``stall_seconds``, ``first_failures``,
        ``fail_after`` or ``methods`` while the proxy runs."""
        with self._lock:
            self._settings.update(changes)

    def reset_stats(self) -> None:
        """Zero the counters, and the per-(method, target) counts of ``first_failures``."""
        with self._lock:
            in_flight = self.stats.in_flight
            self.stats = ProxyStats(in_flight=in_flight, max_in_flight=in_flight)
            self._seen.clear()

    def _enter(self, method: str) -> None:
        with self._lock:
            stats = self.stats
            stats.requests += 1
            stats.by_method[method] += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.stats.in_flight -= 1

    def _decide(self, method: str, target: str) -> tuple[str | None, float]:
        """The fault of one request (``None``: forward it) and the latency to sleep first."""
        with self._lock:
            settings = self._settings
            self._seen[method, target] += 1
            kind = None
            if settings.methods is None or method in settings.methods:
                draw = self._rng.random()
                if settings.fail_after is not None and self.stats.requests > settings.fail_after:
                    kind = "503"
                elif settings.first_failures:
                    if self._seen[method, target] <= settings.first_failures:
                        kind = self._weighted(settings.faults)
                else:
                    kind = self._pick(settings.faults, draw)
            if kind is not None:
                self.stats.faults[kind] += 1
            return kind, settings.latency

    def _weighted(self, faults: Mapping[str, float]) -> str:
        total = sum(faults.values())
        if not total:
            return "503"
        return self._pick(faults, self._rng.random() * total) or "503"

    @staticmethod
    def _pick(faults: Mapping[str, float], draw: float) -> str | None:
        edge = 0.0
        for kind in sorted(faults):
            edge += faults[kind]
            if draw < edge:
                return kind
        return None

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        wait_for_port(self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving, end stalls and close the listening socket."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_fault_proxy(upstream: str, **kwargs: Any) -> FaultProxy:
    """A started :class:`FaultProxy` in front of ``upstream`` (see it for ``kwargs``); a proxy
    that cannot start within the servers' start deadline raises ``RuntimeError``."""
    proxy = FaultProxy(upstream, **kwargs)
    _call_with_deadline(proxy.start, "fault proxy")
    return proxy
