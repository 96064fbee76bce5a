"""A static HTTP/1.1 file server on 127.0.0.1 that answers every request after a fixed latency.

The latency case of ``bench_network.py`` reads thousands of small objects. A thread per request
(as in ``tests/servers.py`` and ``tests/faults.py``) caps the server at a few hundred requests a
second on a small machine, so the benchmark would time the server rather than the client. Here
each worker process runs one asyncio event loop: a request waits for its latency as a timer, not
in a thread, and is answered straight from the files (no proxy hop).

Served: ``GET`` and ``HEAD`` of the files under a directory, with HTTP/1.1 keep-alive and a
single ``Range: bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` (``206`` with ``Content-Range``;
``416`` when unsatisfiable; any other ``Range`` is ignored). A missing file is ``404``; a
directory redirects to its ``/`` form, which lists it as HTML links. Other methods get ``405``.

The workers share one listening socket and count, exactly and together (in shared memory, under
one lock), the requests and the most in flight: a request is in flight from the end of its
headers until its answer is ready to be sent, as in :class:`faults.FaultProxy`.
"""

from __future__ import annotations

import asyncio
import html
import multiprocessing
import os
import posixpath
import re
import socket
import stat
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HOST = "127.0.0.1"
START_TIMEOUT = 20.0

_RANGE = re.compile(rb"^\s*bytes=(\d*)-(\d*)\s*$")
_MAX_HEAD = 65536
_REQUESTS, _IN_FLIGHT, _MAX_IN_FLIGHT = range(3)
_REASONS = {
    200: "OK",
    206: "Partial Content",
    301: "Moved Permanently",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large",
}


class _Counters:
    """Requests, requests in flight and the most in flight, shared by the workers."""

    def __init__(self, values: Any, lock: Any) -> None:
        self.values = values
        self.lock = lock

    def enter(self) -> None:
        with self.lock:
            values = self.values
            values[_REQUESTS] += 1
            values[_IN_FLIGHT] += 1
            if values[_IN_FLIGHT] > values[_MAX_IN_FLIGHT]:
                values[_MAX_IN_FLIGHT] = values[_IN_FLIGHT]

    def leave(self) -> None:
        with self.lock:
            self.values[_IN_FLIGHT] -= 1


class _Request:
    """The parts of a request the answer depends on."""

    __slots__ = ("close", "method", "range", "target")

    def __init__(self, method: str, target: str, range_: bytes | None, close: bool) -> None:
        self.method = method
        self.target = target
        self.range = range_
        self.close = close


def _parse_head(head: bytes) -> _Request | None:
    """The request of one header block (without its final blank line); ``None`` if malformed."""
    request_line, _, fields = head.partition(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    range_ = None
    connection = b""
    for line in fields.split(b"\r\n") if fields else ():
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        name = name.strip().lower()
        if name == b"range":
            range_ = value.strip()
        elif name == b"connection":
            connection = value.strip().lower()
        elif name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return None  # a GET or HEAD with a body is not something the benchmark sends
    if parts[2] == b"HTTP/1.0":
        close = b"keep-alive" not in connection
    else:
        close = b"close" in connection
    return _Request(parts[0].decode("latin-1"), parts[1].decode("latin-1"), range_, close)


def _byte_range(header: bytes | None, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` asked for by a ``Range`` header; ``None`` for the whole file; raises
    ``ValueError`` when it cannot be satisfied."""
    match = _RANGE.match(header) if header else None
    if match is None or match.groups() == (b"", b""):
        return None
    first, last = match.groups()
    if first == b"":
        start, stop = max(0, size - int(last)), size
    else:
        start = int(first)
        stop = size if last == b"" else min(size, int(last) + 1)
    if start >= size or stop <= start:
        raise ValueError("unsatisfiable range")
    return start, stop


def _answer(root: str, request: _Request) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the answer to a GET or HEAD (the body even for HEAD)."""
    target = request.target
    url_path = unquote(target.partition("?")[0] if target[:1] == "/" else urlsplit(target).path)
    path = root + posixpath.normpath("/" + url_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 404, {}, b""
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return _listing(path, url_path)
        size = info.st_size
        try:
            window = _byte_range(request.range, size)
        except ValueError:
            return 416, {"Content-Range": f"bytes */{size}"}, b""
        if window is None:
            return 200, {}, os.pread(fd, size, 0)
        start, stop = window
        headers = {"Content-Range": f"bytes {start}-{stop - 1}/{size}"}
        return 206, headers, os.pread(fd, stop - start, start)
    finally:
        os.close(fd)


def _listing(path: str, url_path: str) -> tuple[int, dict[str, str], bytes]:
    """A directory: a redirect to its ``/`` form, or there an HTML page of links."""
    if not url_path.endswith("/"):
        return 301, {"Location": url_path + "/"}, b""
    links = []
    for name in sorted(os.listdir(path)):
        suffix = "/" if os.path.isdir(os.path.join(path, name)) else ""
        label = html.escape(name + suffix)
        links.append(f'<a href="{label}">{label}</a>')
    body = ("<html><body>" + "\n".join(links) + "</body></html>").encode()
    return 200, {"Content-Type": "text/html; charset=utf-8"}, body


def _encode(status: int, headers: dict[str, str], body: bytes, head: bool, close: bool) -> bytes:
    """The bytes of an answer: status line, headers (``Content-Length`` always) and body."""
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}", f"Content-Length: {len(body)}"]
    if status in (200, 206):
        headers.setdefault("Content-Type", "application/octet-stream")
        lines.append("Accept-Ranges: bytes")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if close:
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data if head else data + body


class _Connection(asyncio.Protocol):
    """One client connection: its requests are answered in order, each after the latency."""

    def __init__(self, root: str, latency: float, counters: _Counters) -> None:
        self.root = root
        self.latency = latency
        self.counters = counters
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.pending: asyncio.TimerHandle | None = None
        self.busy = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None
            self.counters.leave()
        self.transport = None

    def _next(self) -> None:
        """Start on the next complete request in the buffer, if there is one."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                self._fail(431)
            return
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        request = _parse_head(head)
        if request is None:
            self._fail(400)
            return
        self.busy = True
        self.counters.enter()
        if self.latency:
            self.pending = self.loop.call_later(self.latency, self._respond, request)
        else:
            self._respond(request)

    def _respond(self, request: _Request) -> None:
        self.pending = None
        head = request.method == "HEAD"
        if head or request.method == "GET":
            try:
                status, headers, body = _answer(self.root, request)
            except OSError:
                status, headers, body = 404, {}, b""
        else:
            status, headers, body = 405, {"Allow": "GET, HEAD"}, b""
            request.close = True
        self.counters.leave()
        self.busy = False
        if self.transport is None:
            return
        self.transport.write(_encode(status, headers, body, head, request.close))
        if request.close:
            self.transport.close()
            self.transport = None
        elif self.buffer:
            self._next()

    def _fail(self, status: int) -> None:
        if self.transport is not None:
            self.transport.write(_encode(status, {}, b"", False, True))
            self.transport.close()
            self.transport = None


def _worker(listener: socket.socket, root: str, latency: float, counters: _Counters, ready: Any):
    """A worker process: serve ``listener`` until terminated."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(root, latency, counters), sock=listener, backlog=1024
        )
        ready.set()
        await server.serve_forever()

    asyncio.run(serve())


class LatencyServer:
    """Static files of ``root`` over HTTP on 127.0.0.1, each answer ``latency`` seconds late,
    from ``workers`` processes sharing one port and one count of requests.

    Parameters
    ----------
    root
        The directory whose files are served.
    latency
        Seconds every request waits before it is answered (a timer; no thread is held).
    workers
        How many processes serve (each an asyncio event loop).
    """

    def __init__(self, root: str | os.PathLike[str], latency: float, workers: int = 1) -> None:
        if latency < 0 or workers < 1:
            raise ValueError(f"need latency >= 0 and workers >= 1, got {latency}, {workers}")
        self.root = Path(root).resolve()
        self.latency = latency
        self.workers = workers
        ctx = multiprocessing.get_context("spawn")
        self._ctx = ctx
        self._values = ctx.RawArray("q", 3)
        self._lock = ctx.Lock()
        self._processes: list[Any] = []
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError("the latency server has not been started")
        return f"http://{HOST}:{self._port}"

    def start(self) -> None:
        """Start the workers; raise ``RuntimeError`` if one is not serving within 20 s."""
        listener = socket.create_server((HOST, 0), backlog=1024)
        self._port = listener.getsockname()[1]
        counters = _Counters(self._values, self._lock)
        try:
            for i in range(self.workers):
                ready = self._ctx.Event()
                process = self._ctx.Process(
                    target=_worker,
                    args=(listener, str(self.root), self.latency, counters, ready),
                    name=f"latency-server-{i}",
                    daemon=True,
                )
                process.start()
                self._processes.append(process)
                if not ready.wait(START_TIMEOUT):
                    raise RuntimeError(f"latency server worker {i} did not start")
        except BaseException:
            self.stop()
            raise
        finally:
            listener.close()

    def reset_stats(self) -> None:
        """Zero the request count; the most in flight restarts from those in flight now."""
        with self._lock:
            self._values[_REQUESTS] = 0
            self._values[_MAX_IN_FLIGHT] = self._values[_IN_FLIGHT]

    def stats(self) -> tuple[int, int]:
        """``(requests, most in flight)`` since the start or the last :meth:`reset_stats`."""
        with self._lock:
            return self._values[_REQUESTS], self._values[_MAX_IN_FLIGHT]

    def stop(self) -> None:
        """Stop the workers."""
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            process.join(5)
        self._processes = []

    def __enter__(self) -> LatencyServer:
        if not self._processes:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_latency_server(
    root: str | os.PathLike[str], latency: float, workers: int = 1
) -> LatencyServer:
    """A started :class:`LatencyServer` (see it for the parameters)."""
    server = LatencyServer(root, latency, workers)
    server.start()
    return server
