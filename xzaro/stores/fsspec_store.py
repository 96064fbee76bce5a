"""A :class:`~xzaro.stores.base.Store` over any fsspec file system.

Local files are read and written with plain ``os`` calls (the benchmark-critical path); async file
systems (s3fs, gcsfs, HTTP) are driven through fsspec's event loop with a bounded number of requests
in flight; other sync file systems (memory, chained caches) run on the shared thread pool.

What a read may return is checked here, whatever the file system:

* every key stays below the root (:func:`~xzaro.stores.base.check_key`);
* only regular local files are read (a FIFO would block the reader forever, a device would never
  end), and never memory-mapped: a mapped file that another program truncates kills the reader
  with ``SIGBUS``, so local reads are positional reads into memory of their own (large whole
  objects into pooled buffers, which cost no page faults once warm);
* a byte-range answer covers exactly the range asked for: HTTP ``206`` answers are checked against
  their ``Content-Range``, and an answer of another length from any file system is accepted only
  where the object's size explains it (its end, or a server that sent the whole object);
* HTTP reads have timeouts of their own (:data:`HTTP_TIMEOUT`) unless the caller gives
  ``client_kwargs={"timeout": aiohttp.ClientTimeout(...)}``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import json
import os
import re
import stat
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from xzaro.concurrency import concurrent_map, default_workers
from xzaro.errors import NodeNotFoundError, StoreError, ZaroError
from xzaro.stores.base import BytesLike, Parts, RangeRequest, check_key, to_bytes

T = TypeVar("T")

#: Suffix of the temporary files a local ``set`` writes before renaming them into place.
TMP_SUFFIX = ".xzaro-tmp"

DEFAULT_MAX_CONCURRENCY = 64

#: aiohttp timeouts, in seconds, of HTTP(S) stores whose ``storage_options`` give none: a
#: connection must be made within ``sock_connect``, no answer may pause longer than
#: ``sock_read``, and no request may last longer than ``total`` (aiohttp's own default).
HTTP_TIMEOUT = {"total": 300.0, "sock_connect": 30.0, "sock_read": 60.0}
_HTTP_PROTOCOLS = ("http", "https")


@dataclass
class _Backend:
    """What a store opens once per process: the file system and how to talk to it."""

    fs: Any
    root: str
    local: bool
    is_async: bool
    cat_kwargs: dict[str, Any] = field(default_factory=dict)
    #: fsspec's HTTP file system: ranges are fetched here, to check ``Content-Range``.
    http: bool = False
    pid: int = field(default_factory=os.getpid)


_backends: dict[tuple[str, str], _Backend] = {}
_backends_lock = threading.Lock()


def _options_token(options: Mapping[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=repr)


def _open_backend(url: str, options: Mapping[str, Any]) -> _Backend:
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(url, **_with_http_timeout(url, options))
    local = isinstance(fs, LocalFileSystem)
    if local:
        root = os.path.abspath(root)
    is_async = bool(getattr(fs, "async_impl", False)) and not local
    cat_kwargs: dict[str, Any] = {}
    if is_async and "max_concurrency" in inspect.signature(fs._cat_file).parameters:
        # s3fs splits whole-object reads into parallel ranges after a HEAD request; our
        # parallelism comes from fetching many keys at once, so one GET per key is cheaper.
        cat_kwargs["max_concurrency"] = 1
    http = False
    if is_async:
        from fsspec.implementations.http import HTTPFileSystem

        http = isinstance(fs, HTTPFileSystem)
    return _Backend(
        fs=fs, root=root, local=local, is_async=is_async, cat_kwargs=cat_kwargs, http=http
    )


def _with_http_timeout(url: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``options`` with :data:`HTTP_TIMEOUT` added for an HTTP(S) URL that has no timeout.

    The caller's own ``client_kwargs["timeout"]`` is kept as it is. In a chained URL
    (``simplecache::https://...``) the HTTP options are those under the protocol's name.
    """
    from fsspec.core import split_protocol

    links = url.split("::")
    protocol = (split_protocol(links[-1])[0] or "").lower()
    if protocol not in _HTTP_PROTOCOLS:
        return options
    out = dict(options)
    if len(links) == 1:
        target = out
    else:
        target = out[protocol] = dict(out.get(protocol) or {})
    client = dict(target.get("client_kwargs") or {})
    if "timeout" in client:
        return options
    import aiohttp

    client["timeout"] = aiohttp.ClientTimeout(**HTTP_TIMEOUT)
    target["client_kwargs"] = client
    return out


def _bucket_missing(exc: BaseException) -> bool:
    """Whether an error from an object store says the bucket itself does not exist."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") == "NoSuchBucket":
            return True
        if "bucket does not exist" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _really_missing(exc: FileNotFoundError) -> bool:
    """Whether a ``FileNotFoundError`` from fsspec means the object does not exist.

    fsspec's HTTP ``info`` turns every failure (500, 403, connection refused) into
    ``FileNotFoundError``; the aiohttp error it chains tells a real 404 apart. A missing bucket is
    not a missing key either.
    """
    if _bucket_missing(exc):
        return False
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.split(".")[0] == "aiohttp":
        return getattr(cause, "status", None) in (404, 410)
    return True


def _limits(offset: int, length: int | None) -> tuple[int | None, int | None]:
    """Translate a :data:`RangeRequest` into fsspec's ``start``/``end`` (end exclusive)."""
    if offset < 0:
        return offset, None
    if length is None:
        return (offset or None), None
    return offset, offset + length


def _range_fits(data: bytes, start: int | None, end: int | None) -> bool:
    """Whether an answer has the length the range asks for (any length for an open end)."""
    if start is None or (start >= 0 and end is None):
        return True
    if start < 0:
        return len(data) == -start
    return end is not None and len(data) == end - start


def _fit_to_size(data: bytes, start: int, end: int | None, size: int | None) -> bytes | None:
    """The range asked for out of an answer whose length did not fit it, given the object's
    ``size``; ``None`` if the size does not explain the answer.

    A shorter answer fits when the object ends inside the range; a longer one only when it is
    the whole object (a server that ignored the ``Range`` header).
    """
    if size is None:
        return None
    if len(data) == size:  # the whole object
        return data[start:] if start < 0 else data[start:end]
    first = max(0, size + start) if start < 0 else min(start, size)
    stop = size if end is None else min(end, size)
    if len(data) == max(0, stop - first):
        return data
    return None


def _length_problem(data: bytes, start: int, end: int | None, size: int | None) -> str:
    asked = f"the last {-start} bytes" if start < 0 else f"bytes {start} to {end}"
    known = "unknown" if size is None else f"{size} bytes"
    return (
        f"a read of {asked} was answered with {len(data)} bytes, which the object's size "
        f"({known}) does not explain"
    )


#: ``Content-Range: bytes first-last/size`` (the size may be ``*``).
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def _range_header(start: int, end: int | None) -> str:
    """The HTTP ``Range`` header for :func:`_limits`' ``start`` and ``end``."""
    if start < 0:
        return f"bytes={start}"
    if end is None:
        return f"bytes={start}-"
    return f"bytes={start}-{end - 1}"


def _content_range_problem(
    header: str | None, start: int, end: int | None
) -> tuple[str | None, int]:
    """Check the ``Content-Range`` of a 206 answer against the range asked for.

    Returns what is wrong (``None`` if nothing) and how many body bytes the header announces.
    """
    if header is None:
        return "a 206 answer to a range request has no Content-Range", 0
    match = _CONTENT_RANGE.match(header)
    if match is None:
        return f"a 206 answer has an unreadable Content-Range {header!r}", 0
    first, last = int(match[1]), int(match[2])
    size = None if match[3] == "*" else int(match[3])
    if last < first or (size is not None and last >= size):
        return f"a 206 answer has an impossible Content-Range {header!r}", 0
    length = last - first + 1
    if start < 0 and size is None:
        good = length == -start
    elif start < 0:
        good = (first, last) == (max(0, size + start), size - 1)
    elif first != start:
        good = False
    elif end is None:
        good = size is None or last == size - 1
    else:
        good = last == (end if size is None else min(end, size)) - 1
    if not good:
        asked = _range_header(start, end)
        return f"asked for {asked!r} but the answer's Content-Range is {header!r}", length
    return None, length


async def _http_get_range(fs: Any, url: str, start: int, end: int | None) -> bytes:
    """GET a byte range over HTTP(S), checking the answer against the range asked for.

    A ``206`` answer must carry a ``Content-Range`` that covers exactly the range (up to the
    object's end) and a body of that length, which is never read beyond it; a ``200`` answer is
    the whole object (a server that ignores ``Range``) and is cut here. fsspec's own range read
    cannot be used for this: it does not show the answer's headers.
    """
    kwargs = dict(fs.kwargs)
    headers = dict(kwargs.pop("headers", None) or {})
    headers["Range"] = _range_header(start, end)
    if not any(name.lower() == "accept-encoding" for name in headers):
        # a range of a compressed answer is not a range of the object
        headers["Accept-Encoding"] = "identity"
    session = await fs.set_session()
    async with session.get(fs.encode_url(url), headers=headers, **kwargs) as response:
        if response.status == 404:
            raise FileNotFoundError(url)
        response.raise_for_status()
        status = response.status
        if status == 200:
            data = await response.read()
            return data[start:] if start < 0 else data[start:end]
        if status != 206:
            raise StoreError(f"unexpected HTTP status {status} for a range request")
        announced = response.headers.get("Content-Range")
        problem, length = _content_range_problem(announced, start, end)
        if problem is None and response.content_length not in (None, length):
            problem = (
                f"the answer's Content-Length {response.content_length} differs from its "
                f"Content-Range {announced!r}"
            )
        if problem is not None:
            raise StoreError(problem)
        data = await _read_at_most(response, length)
        if len(data) != length:
            raise StoreError(
                f"the answer's body has {len(data)} bytes, its Content-Range {announced!r} "
                f"announces {length}"
            )
        return data


async def _read_at_most(response: Any, limit: int) -> bytes:
    """The body of an aiohttp ``response``, reading at most ``limit + 1`` bytes of it."""
    parts: list[bytes] = []
    done = 0
    while done <= limit:
        part = await response.content.read(limit + 1 - done)
        if not part:
            break
        parts.append(part)
        done += len(part)
    return b"".join(parts)


def _read_into(fd: int, view: memoryview) -> int:
    """Fill ``view`` from the start of the file; the bytes read (fewer if the file was cut
    short meanwhile)."""
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], done)
        if n == 0:
            break
        done += n
    return done


def _pread(fd: int, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) == size or not data:
        return data
    parts = [data]
    done = len(data)
    while done < size:
        chunk = os.pread(fd, size - done, offset + done)
        if not chunk:
            break
        parts.append(chunk)
        done += len(chunk)
    return b"".join(parts)


#: Opening never blocks: a FIFO opens at once (and is then refused), a regular file reads as ever.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK

_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(mode: int, path: str) -> None:
    """Raise ``OSError`` unless ``mode`` (from ``stat``) is a regular file's."""
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "Is a directory", path)
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "a special file")
    raise OSError(f"{path} is {kind}, not a regular file; only regular files are read")


@contextlib.contextmanager
def _open_regular(path: str) -> Iterator[tuple[int, int] | None]:
    """Open a regular local file for reading: ``(fd, size)``, or ``None`` if it does not exist.

    Anything else (a directory, a FIFO, a device) raises ``OSError``.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        # ENOTDIR: a parent of the key is a file, so the key cannot exist
        yield None
        return
    try:
        st = os.fstat(fd)
        _check_regular(st.st_mode, path)
        yield fd, st.st_size
    finally:
        os.close(fd)


def _read_local(path: str, offset: int, length: int | None) -> bytes | None:
    """Read a local file (or a range of it); ``None`` if it does not exist."""
    with _open_regular(path) as opened:
        if opened is None:
            return None
        fd, size = opened
        if offset < 0:
            start, stop = max(0, size + offset), size
        else:
            start = min(offset, size)
            stop = size if length is None else min(size, offset + length)
        return _pread(fd, stop - start, start)


_reuse = threading.local()
#: Largest buffer a thread keeps for reuse.
_REUSE_LIMIT = 128 * 2**20


def _read_local_reused(path: str) -> memoryview | None:
    """Read a whole local file into this thread's reusable buffer; ``None`` if it is missing.

    The buffer is allocated once per thread (and grown when needed), so hot read loops do not
    pay for fresh memory on every object. The returned view is valid until the thread's next call.
    A file costs four system calls (open, fstat, read, close): this is the path that reads
    hundreds of thousands of tiny chunks. Only regular files are read.
    """
    import numpy as np

    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        st = os.fstat(fd)
        _check_regular(st.st_mode, path)
        size = st.st_size
        buf = getattr(_reuse, "buffer", None)
        if buf is None or len(buf) < size:
            buf = np.empty(max(size, 1 << 20), dtype=np.uint8)
            if len(buf) <= _REUSE_LIMIT:  # larger objects get a buffer of their own
                _reuse.buffer = buf
        view = memoryview(buf)[:size]  # type: ignore[arg-type]
        return view[: _read_into(fd, view)]
    finally:
        os.close(fd)


class _BufferPool:
    """Large buffers for whole-object reads, reused once nothing refers to them any more.

    Reading a shard into fresh memory costs a page fault per page, about as much again as
    copying it from the page cache. Each buffer is handed out as an array with a finalizer: it
    returns to the pool only when the last view into it is gone, so a reader never sees it
    overwritten. At most ``limit`` bytes of idle buffers are kept.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # a forked child starts afresh: the parent's lock may have been held at the fork
        self._free: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def take(self, size: int) -> Any:
        """A ``uint8`` array of ``size`` bytes (contents undefined), owned by the caller."""
        import numpy as np

        with self._lock:
            best = None  # the smallest idle buffer that fits without wasting half of it
            for i, free in enumerate(self._free):
                if size <= len(free) <= 2 * size and (
                    best is None or len(free) < len(self._free[best])
                ):
                    best = i
            buf = None if best is None else self._free.pop(best)
        if buf is None:
            buf = np.empty(size, dtype=np.uint8)
        out = buf[:size]
        weakref.finalize(out, self._give, buf, os.getpid())
        return out

    def _give(self, buf: Any, pid: int) -> None:
        with self._lock:
            idle = sum(len(b) for b in self._free)
            if pid == self._pid and idle + len(buf) <= self.limit:
                self._free.append(buf)


#: Whole objects at least this large are read into pooled buffers (:meth:`FsspecStore.get_mapped`).
_POOLED_BYTES = 1 << 20
_pool = _BufferPool(256 * 2**20)


def _read_local_pooled(path: str) -> memoryview | bytes | None:
    """Read a whole local file into memory of its own; ``None`` if it is missing.

    Large files go into a pooled buffer (see :class:`_BufferPool`), smaller ones into ``bytes``.
    """
    with _open_regular(path) as opened:
        if opened is None:
            return None
        fd, size = opened
        if size < _POOLED_BYTES:
            return _pread(fd, size, 0)
        view = memoryview(_pool.take(size))
        return view[: _read_into(fd, view)]


#: Objects of many parts at least this large are written by several threads at once.
PARALLEL_WRITE_BYTES = 64 * 2**20


def _write_all(fd: int, value: memoryview | Parts) -> None:
    if isinstance(value, Parts):
        views = [_as_bytes_view(p) for p in value]
        total = sum(v.nbytes for v in views)
        if total >= PARALLEL_WRITE_BYTES and len(views) > 1:
            # Copying into the page cache is CPU-bound: large shards go out on all threads.
            groups, start = [], 0
            for group in _balanced(views, default_workers()):
                groups.append((group, start))
                start += sum(v.nbytes for v in group)
            concurrent_map(lambda g: _pwrite_all(fd, *g), groups)
            return
        _pwrite_all(fd, views, 0)
        return
    done = 0
    while done < len(value):
        done += os.write(fd, value[done:])


def _pwrite_all(fd: int, views: list[memoryview], offset: int) -> None:
    """Write ``views`` back to back at ``offset``, finishing short writes."""
    done = os.pwritev(fd, views, offset) if views else 0
    total = sum(v.nbytes for v in views)
    if done == total:
        return
    rest = memoryview(b"".join(views))
    while done < total:  # a short write: finish the rest plainly
        done += os.pwrite(fd, rest[done:], offset + done)


def _balanced(views: list[memoryview], n: int) -> list[list[memoryview]]:
    """``views`` cut into at most ``n`` consecutive groups of about equal size."""
    total = sum(v.nbytes for v in views)
    groups: list[list[memoryview]] = [[]]
    size = 0
    for view in views:
        if groups[-1] and size >= total * len(groups) / n and len(groups) < n:
            groups.append([])
        groups[-1].append(view)
        size += view.nbytes
    return groups


def _write_local(path: str, value: memoryview | Parts) -> None:
    """Write ``value`` to a temporary file beside ``path`` and rename it into place."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:16]}{TMP_SUFFIX}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        try:
            _write_all(fd, value)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _as_bytes_view(value: Any) -> memoryview:
    view = memoryview(value)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class FsspecStore:
    """A store on any fsspec file system (local, memory, s3, gs, http, chained URLs ...).

    The file system is opened on first use, once per process, so the store pickles as just its URL
    and options and reopens in a worker process.

    Parameters
    ----------
    url
        Where the store's root is: a local path or any URL fsspec understands.
    storage_options
        Keyword arguments for the fsspec file system (credentials, endpoint, ...).
    max_concurrency
        At most this many requests are in flight per batched call on async file systems
        (s3fs, gcsfs, HTTP).

    Notes
    -----
    Reads return ``None`` only when the key does not exist. A bucket that does not exist raises
    :class:`~xzaro.errors.NodeNotFoundError` (so that no read of it turns into fill values); any
    other failure raises :class:`~xzaro.errors.StoreError` naming the URL and the key.
    """

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.url = _strip_trailing_slash(str(url))
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self.max_concurrency = max_concurrency
        self._backend_cache: _Backend | None = None

    # --- pickling and opening ------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "max_concurrency": self.max_concurrency,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["url"], state["storage_options"], max_concurrency=state["max_concurrency"]
        )

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"

    def _backend(self) -> _Backend:
        backend = self._backend_cache
        if backend is not None and backend.pid == os.getpid():
            return backend
        cache_key = (self.url, _options_token(self.storage_options))
        with _backends_lock:
            backend = _backends.get(cache_key)
            if backend is None or backend.pid != os.getpid():
                try:
                    backend = _open_backend(self.url, self.storage_options)
                except ZaroError:
                    raise
                except Exception as exc:
                    raise StoreError(f"could not open file system: {exc}", url=self.url) from exc
                _backends[cache_key] = backend
        self._backend_cache = backend
        return backend

    @property
    def fs(self) -> Any:
        """The fsspec file system (opened on first access)."""
        return self._backend().fs

    @property
    def root(self) -> str:
        """The store's root path inside the file system, without protocol."""
        return self._backend().root

    @property
    def is_local(self) -> bool:
        """Whether the store is on the local file system (read with plain ``os`` calls)."""
        return self._backend().local

    def _path(self, backend: _Backend, key: str) -> str:
        """The file system path of ``key``; a key that would leave the root is refused."""
        if not key:
            return backend.root
        return f"{backend.root.rstrip('/')}/{check_key(key, self.url)}"

    def _fail(self, key: str | None, what: str, exc: BaseException) -> ZaroError:
        """The xzaro error for a failed operation on ``key`` (caller raises it ``from exc``)."""
        if isinstance(exc, ZaroError):
            if exc.url is None and exc.key is None:  # raised below, where the key is not known
                return type(exc)(exc.message, url=self.url, key=key, field=exc.field)
            return exc
        if _bucket_missing(exc):
            return NodeNotFoundError(f"the bucket does not exist: {exc}", url=self.url, key=key)
        detail = str(exc) or type(exc).__name__
        return StoreError(
            f"could not {what}: {type(exc).__name__}: {detail}", url=self.url, key=key
        )

    def _raise_unless_missing(self, key: str, what: str, exc: FileNotFoundError) -> None:
        """Raise the xzaro error for ``exc`` unless it means that ``key`` does not exist."""
        if not _really_missing(exc):
            raise self._fail(key, what, exc) from exc

    # --- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """Return the object at ``key``, or ``None`` if it does not exist.

        Parameters
        ----------
        key
            The key relative to the store root.

        Returns
        -------
        bytes or None
        """
        return self._read_all([(key, 0, None)])[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Fetch many keys concurrently, in order; ``None`` for each missing key.

        Parameters
        ----------
        keys
            Keys relative to the store root.

        Returns
        -------
        list of bytes or None
        """
        return self._read_all([(key, 0, None) for key in keys])

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        """Fetch many byte ranges concurrently, in order; ``None`` where the key is missing.

        Parameters
        ----------
        requests
            ``(key, offset, length)`` tuples, see :data:`~xzaro.stores.base.RangeRequest`.

        Returns
        -------
        list of bytes or None
        """
        return self._read_all(list(requests))

    def get_mapped(self, key: str) -> memoryview | bytes | None:
        """Like :meth:`get`, for large objects read whole once, such as whole shards.

        A local file is read with positional reads into a pooled buffer that stays valid as long
        as the returned view (or any view of it) lives. It is no longer memory-mapped, as the
        name says: a mapped file that another program truncates kills the process with
        ``SIGBUS`` when a page past its new end is touched. Non-local stores return plain
        :meth:`get` results.
        """
        backend = self._backend()
        if not backend.local:
            return self.get(key)
        try:
            return _read_local_pooled(self._path(backend, key))
        except Exception as exc:
            raise self._fail(key, "read", exc) from exc

    def get_reused(self, key: str) -> memoryview | bytes | None:
        """Like :meth:`get`, but a local file is read into a per-thread reusable buffer.

        The result is only valid until the calling thread's next ``get_reused``; callers decode
        it at once. Non-local stores return plain :meth:`get` results.
        """
        backend = self._backend()
        if not backend.local:
            return self.get(key)
        try:
            return _read_local_reused(self._path(backend, key))
        except Exception as exc:
            raise self._fail(key, "read", exc) from exc

    def get_size(self, key: str) -> int | None:
        """Return the size in bytes of the object at ``key``, or ``None`` if it does not exist.

        Parameters
        ----------
        key
            The key relative to the store root.

        Returns
        -------
        int or None
        """
        backend = self._backend()
        path = self._path(backend, key)
        try:
            if backend.local:
                try:
                    st = os.stat(path)
                except (FileNotFoundError, NotADirectoryError):
                    return None
                _check_regular(st.st_mode, path)
                return st.st_size
            info = backend.fs.info(path)
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "get the size", exc)
            return None
        except Exception as exc:
            raise self._fail(key, "get the size", exc) from exc
        if info.get("type") == "directory":
            raise self._fail(key, "get the size", IsADirectoryError(path))
        size = info.get("size")
        return None if size is None else int(size)

    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key`` (a directory or prefix is not an object).

        Parameters
        ----------
        key
            The key relative to the store root.

        Returns
        -------
        bool
        """
        backend = self._backend()
        path = self._path(backend, key)
        try:
            if backend.local:
                try:
                    return stat.S_ISREG(os.stat(path).st_mode)
                except (FileNotFoundError, NotADirectoryError):
                    return False
            return backend.fs.info(path).get("type") != "directory"
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "check existence", exc)
            return False
        except Exception as exc:
            raise self._fail(key, "check existence", exc) from exc

    def _read_all(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        if not requests:
            return []
        for key, _, length in requests:
            if length is not None and length < 0:
                raise ValueError(f"range length must be >= 0 or None, got {length} for {key!r}")
        backend = self._backend()
        if backend.local:
            return concurrent_map(lambda r: self._read_local(backend, *r), requests)
        if backend.is_async:
            jobs = [partial(self._aread, backend, *r) for r in requests]
            return self._run_async(backend, jobs)
        return concurrent_map(lambda r: self._read_sync(backend, *r), requests)

    def _read_local(
        self, backend: _Backend, key: str, offset: int, length: int | None
    ) -> bytes | None:
        try:
            return _read_local(self._path(backend, key), offset, length)
        except Exception as exc:
            raise self._fail(key, "read", exc) from exc

    def _read_sync(
        self, backend: _Backend, key: str, offset: int, length: int | None
    ) -> bytes | None:
        start, end = _limits(offset, length)
        path = self._path(backend, key)
        fs = backend.fs
        try:
            if start is not None and start == end:
                return b"" if fs.isfile(path) else None
            data = fs.cat_file(path, start=start, end=end)
            if start is None or _range_fits(data, start, end):
                return data
            size = fs.info(path).get("size")
            fitted = _fit_to_size(data, start, end, size)
            if fitted is None:
                raise StoreError(_length_problem(data, start, end, size))
            return fitted
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "read", exc)
            return None
        except Exception as exc:
            raise self._fail(key, "read", exc) from exc

    async def _aread(
        self, backend: _Backend, key: str, offset: int, length: int | None
    ) -> bytes | None:
        start, end = _limits(offset, length)
        fs = backend.fs
        path = self._path(backend, key)
        try:
            if start is not None and start == end:
                await fs._info(path)
                return b""
            if start is None and end is None:
                return await fs._cat_file(path, **backend.cat_kwargs)
            if backend.http:
                return await _http_get_range(fs, path, start, end)
            data = await fs._cat_file(path, start=start, end=end, **backend.cat_kwargs)
            if _range_fits(data, start, end):
                return data
            size = (await fs._info(path)).get("size")
            fitted = _fit_to_size(data, start, end, size)
            if fitted is None:
                raise StoreError(_length_problem(data, start, end, size))
            return fitted
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "read", exc)
            return None
        except Exception as exc:
            if start is not None and start > 0 and await self._past_end(fs, path, start):
                return b""
            raise self._fail(key, "read", exc) from exc

    @staticmethod
    async def _past_end(fs: Any, path: str, start: int) -> bool:
        """Whether a failed range read failed only because it starts past the object's end.

        Servers answer such reads with 416 and each library raises its own error for that; asking
        for the size afterwards costs a request only on this rare path.
        """
        try:
            size = (await fs._info(path)).get("size")
        except Exception:
            return False
        return size is not None and start >= size

    def _run_async(self, backend: _Backend, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        from fsspec.asyn import sync

        return sync(backend.fs.loop, _bounded_gather, jobs, self.max_concurrency)

    # --- writes --------------------------------------------------------------------------

    def set(self, key: str, value: BytesLike) -> None:
        """Write ``value`` at ``key``; a local object appears atomically (write, then rename).

        Parameters
        ----------
        key
            The key relative to the store root.
        value
            The bytes (or any contiguous buffer) to store.
        """
        self.set_many([(key, value)])

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Write many objects concurrently.

        Parameters
        ----------
        items
            ``(key, value)`` pairs.
        """
        pairs = list(items)
        if not pairs:
            return
        backend = self._backend()
        if backend.local:
            concurrent_map(lambda kv: self._write_local(backend, *kv), pairs)
        elif backend.is_async:
            self._run_async(backend, [partial(self._awrite, backend, k, v) for k, v in pairs])
        else:
            concurrent_map(lambda kv: self._write_sync(backend, *kv), pairs)

    def _write_local(self, backend: _Backend, key: str, value: BytesLike) -> None:
        try:
            view = value if isinstance(value, Parts) else _as_bytes_view(value)
            _write_local(self._path(backend, key), view)
        except Exception as exc:
            raise self._fail(key, "write", exc) from exc

    def _write_sync(self, backend: _Backend, key: str, value: BytesLike) -> None:
        try:
            backend.fs.pipe_file(self._path(backend, key), to_bytes(value))
        except Exception as exc:
            raise self._fail(key, "write", exc) from exc

    async def _awrite(self, backend: _Backend, key: str, value: BytesLike) -> None:
        try:
            await backend.fs._pipe_file(self._path(backend, key), to_bytes(value))
        except Exception as exc:
            raise self._fail(key, "write", exc) from exc

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error.

        Parameters
        ----------
        key
            The key relative to the store root.
        """
        backend = self._backend()
        path = self._path(backend, key)
        try:
            if backend.local:
                os.remove(path)
            else:
                backend.fs.rm_file(path)
        except NotADirectoryError:
            return
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "delete", exc)
        except Exception as exc:
            raise self._fail(key, "delete", exc) from exc

    # --- listing -------------------------------------------------------------------------

    def list(self, prefix: str = "") -> list[str]:
        """Every key at or below ``prefix``, relative to the store root, sorted.

        ``prefix`` is a path: ``"c/0"`` matches ``"c/0"`` and ``"c/0/1"`` but not ``"c/01"``.

        Parameters
        ----------
        prefix
            A key path; ``""`` lists the whole store.

        Returns
        -------
        list of str
        """
        backend = self._backend()
        prefix = prefix.strip("/")
        path = self._path(backend, prefix)
        fs = backend.fs
        try:
            if not backend.local:
                fs.invalidate_cache()  # see writes made since the last listing
            found = fs.find(path)
        except FileNotFoundError as exc:
            self._raise_unless_missing(prefix, "list", exc)
            return []
        except Exception as exc:
            raise self._fail(prefix, "list", exc) from exc
        base = backend.root.rstrip("/") + "/"
        keys = []
        for name in found:
            if not name.startswith(base) or name.endswith("/"):
                continue
            key = name[len(base) :]
            if backend.local and key.endswith(TMP_SUFFIX):
                continue
            if not prefix or key == prefix or key.startswith(prefix + "/"):
                keys.append(key)
        return sorted(keys)

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (objects and sub-prefixes), sorted; ``[]`` if none.

        Cheaper than :meth:`list` for finding a group's children: chunk keys are not walked.
        """
        backend = self._backend()
        prefix = prefix.strip("/")
        path = self._path(backend, prefix)
        try:
            if not backend.local:
                backend.fs.invalidate_cache(path)
            entries = backend.fs.ls(path, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except Exception as exc:
            raise self._fail(prefix, "list", exc) from exc
        names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries}
        return sorted(n for n in names if n and not n.endswith(TMP_SUFFIX))


async def _bounded_gather(jobs: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run the coroutine functions ``jobs`` with at most ``limit`` at once, in order.

    On the first failure the other jobs are cancelled and the failure is raised.
    """
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    tasks = [asyncio.ensure_future(run(job)) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _strip_trailing_slash(url: str) -> str:
    """Drop trailing slashes, but never past a bare root (``/``, ``file:///``, ``memory://``)."""
    stripped = url.rstrip("/")
    if not stripped or stripped.endswith(":"):
        return url
    return stripped
