"""``FsspecStore``: a store on any remote fsspec file system (S3, GCS, HTTP, memory, chains).

Async file systems (s3fs, gcsfs, HTTP) are driven through fsspec's event loop with a bounded
number of requests in flight; other file systems (memory, chained caches) run on the shared
thread pool. Local directories are :class:`~xzaro.stores.local.LocalStore`'s.

What a read may return is checked here, whatever the file system:

* every key stays below the root (:func:`~xzaro.stores.base.check_key`);
* a byte-range answer covers exactly the range asked for (:mod:`xzaro.stores.ranges`); HTTP
  ``206`` answers are checked against their ``Content-Range`` (:mod:`xzaro.stores.http`);
* a whole HTTP object has the length its ``Content-Length`` announces, and a body cut short is
  retried, never returned;
* a missing key reads as ``None``; a missing bucket, a server error or a refused connection
  raises an xzaro error naming the URL and the key.

Every request goes through :mod:`xzaro.stores.retry`: transient failures are retried with
backoff, at most ``requests_in_flight`` requests of the process are in flight at once, and
timeouts are set in the file system's own options (:func:`~xzaro.stores.network.library_options`),
all from the store's :class:`~xzaro.stores.network.NetworkOptions` or the process's.
"""

from __future__ import annotations

import builtins
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from xzaro.concurrency import ProcessLocal, after_fork, bounded_gather, concurrent_map
from xzaro.errors import StoreError, ZaroError
from xzaro.log import logger
from xzaro.stores import prefetched
from xzaro.stores.base import (
    BytesLike,
    RangeRequest,
    check_key,
    check_range_lengths,
    keys_at_or_below,
    store_error,
    to_bytes,
)
from xzaro.stores.files import TMP_SUFFIX
from xzaro.stores.http import get_range, get_whole
from xzaro.stores.local import is_local_url
from xzaro.stores.network import (
    NetworkOptions,
    library_options,
    library_retries_off,
    network_options,
)
from xzaro.stores.ranges import fitted, limits, range_fits
from xzaro.stores.retry import Missing, Request, attempt_async, attempt_sync, classify

T = TypeVar("T")

DEFAULT_MAX_CONCURRENCY = 128


@dataclass
class _Backend:
    """What a store opens once per process: the file system and how to talk to it."""

    fs: Any
    root: str
    is_async: bool
    cat_kwargs: dict[str, Any] = field(default_factory=dict)
    #: fsspec's HTTP file system: reads are made by :mod:`xzaro.stores.http`.
    http: bool = False
    #: The connect and read timeouts the file system was opened with.
    timeouts: tuple[float, float] = (0.0, 0.0)


_backends: dict[tuple[str, str, tuple[float, float]], _Backend] = {}
_backends_lock = threading.Lock()


@after_fork
def _forget_backends() -> None:
    global _backends_lock
    _backends.clear()
    _backends_lock = threading.Lock()


def options_token(options: Mapping[str, Any]) -> str:
    """A text that is equal for equal fsspec options (a cache key for opened file systems)."""
    return json.dumps(options, sort_keys=True, default=repr)


def _open_backend(url: str, options: Mapping[str, Any], network: NetworkOptions) -> _Backend:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **library_options(url, options, network))
    library_retries_off(fs)
    is_async = bool(getattr(fs, "async_impl", False))
    cat_kwargs: dict[str, Any] = {}
    http = False
    if is_async:
        from fsspec.implementations.http import HTTPFileSystem

        http = isinstance(fs, HTTPFileSystem)
        if "max_concurrency" in inspect.signature(fs._cat_file).parameters:
            # s3fs splits whole-object reads into parallel ranges after a HEAD request; our
            # parallelism comes from fetching many keys at once, so one GET per key is cheaper.
            cat_kwargs["max_concurrency"] = 1
    timeouts = (network.connect_timeout, network.read_timeout)
    return _Backend(fs, root, is_async, cat_kwargs, http, timeouts)


class FsspecStore:
    """A store on an fsspec file system (s3, gs, http, memory, chained URLs ...).

    The file system is opened on first use, once per process, so the store pickles as just its URL
    and options and reopens in a worker process.

    Parameters
    ----------
    url
        Where the store's root is: any URL fsspec understands except a local path (a local
        directory is a :class:`~xzaro.stores.local.LocalStore`, as
        :func:`~xzaro.stores.registry.open_store` opens it).
    storage_options
        Keyword arguments for the fsspec file system (credentials, endpoint, ...). Timeouts and
        retries given here are kept; those not given come from ``network``.
    max_concurrency
        At most this many requests of one batched call are in flight on async file systems
        (s3fs, gcsfs, HTTP); the process-wide limit ``requests_in_flight`` applies as well.
    network
        Retries, backoff, timeouts and the limit of requests in flight of this store (it
        pickles with the store); ``None`` for the options in force in the process at the time
        of each request (:func:`~xzaro.stores.network.network_options`).

    Raises
    ------
    StoreError
        ``url`` is a local path.

    Notes
    -----
    Reads return ``None`` only when the key does not exist. A bucket that does not exist raises
    :class:`~xzaro.errors.NodeNotFoundError` (so that no read of it turns into fill values); any
    other failure raises :class:`~xzaro.errors.StoreError` naming the URL and the key, after the
    retries of a transient failure, at once for a permanent one.
    """

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        network: NetworkOptions | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if network is not None and not isinstance(network, NetworkOptions):
            raise TypeError(f"network must be a NetworkOptions or None, got {network!r}")
        url = _strip_trailing_slash(str(url))
        if is_local_url(url):
            raise StoreError(
                "a local path is a LocalStore (xzaro.stores.open_store opens it as one), "
                "not an FsspecStore",
                url=url,
            )
        self.url = url
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self.max_concurrency = max_concurrency
        self.network = network
        self._cache_key = (self.url, options_token(self.storage_options))
        self._opened: ProcessLocal[_Backend] = ProcessLocal()

    # --- pickling and opening ------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "max_concurrency": self.max_concurrency,
            "network": self.network,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["url"],
            state["storage_options"],
            max_concurrency=state["max_concurrency"],
            network=state.get("network"),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def network_options(self) -> NetworkOptions:
        """The network options of the next request: the store's own, or the process's."""
        return self.network or network_options()

    def _backend(self) -> _Backend:
        options = self.network_options()
        timeouts = (options.connect_timeout, options.read_timeout)
        backend = self._opened.value
        if backend is not None and backend.timeouts == timeouts:
            return backend
        cache_key = (*self._cache_key, timeouts)
        with _backends_lock:
            backend = _backends.get(cache_key)
            if backend is None:
                try:
                    backend = _open_backend(self.url, self.storage_options, options)
                except ZaroError:
                    raise
                except Exception as exc:
                    raise StoreError(f"could not open file system: {exc}", url=self.url) from exc
                _backends[cache_key] = backend
        self._opened.value = backend
        return backend

    @property
    def fs(self) -> Any:
        """The fsspec file system (opened on first access)."""
        return self._backend().fs

    @property
    def root(self) -> str:
        """The store's root path inside the file system, without protocol."""
        return self._backend().root

    def path_of(self, key: str) -> str:
        """The file system path of ``key``; a key that would leave the root is refused.

        Raises
        ------
        StoreError
            If ``key`` has ``.`` or ``..`` components.
        """
        root = self._backend().root
        if not key:
            return root
        return f"{root.rstrip('/')}/{check_key(key, self.url)}"

    def _attempt(self, method: str, key: str, what: str, call: Callable[[], T]) -> T | Missing:
        """``call()`` (a blocking request about ``key``) under the retry rules."""
        request = Request(method, self.url, key, what)
        return attempt_sync(request, call, self.network_options())

    # --- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """Return the object at ``key``, or ``None`` if it does not exist."""
        return self._read_all([(key, 0, None)])[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Fetch many keys concurrently, in order; ``None`` for each missing key."""
        return self._read_all([(key, 0, None) for key in keys])

    def get_many_buffers(self, keys: Sequence[str]) -> list[bytes | None]:
        """:meth:`get_many` (fsspec's bodies are ``bytes`` already)."""
        return self.get_many(keys)

    def each_buffer(self, keys: Sequence[str], take: Callable[[int, Any], None]) -> None:
        """Fetch ``keys`` concurrently, calling ``take(i, body)`` (``None``: missing) as soon as
        each body is in: on fsspec's event loop for an async file system (``take`` must hand
        the body over, not decode it there), on a pool thread otherwise."""
        requests = [(key, 0, None) for key in keys]
        backend = self._backend()
        options = self.network_options()
        if not backend.is_async:
            concurrent_map(
                lambda i: take(i, self._read_sync(backend, options, *requests[i])),
                range(len(requests)),
            )
            return

        async def read(i: int) -> None:
            take(i, await self._aread(backend, options, *requests[i]))

        self._run_async(backend, "GET", [partial(read, i) for i in range(len(requests))])

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        """Fetch many byte ranges concurrently, in order; ``None`` where the key is missing.

        Parameters
        ----------
        requests
            ``(key, offset, length)`` tuples, see :data:`~xzaro.stores.base.RangeRequest`.
        """
        return self._read_all(list(requests))

    def _info(self, key: str, what: str) -> dict[str, Any] | Missing:
        path = self.path_of(key)
        fs = self._backend().fs
        return self._attempt("HEAD", key, what, partial(fs.info, path))

    def get_size(self, key: str) -> int | None:
        """Return the size in bytes of the object at ``key``, or ``None`` if it does not exist."""
        info = self._info(key, "get the size")
        if isinstance(info, Missing):
            return None
        if info.get("type") == "directory":
            raise store_error(self.url, key, "get the size", IsADirectoryError(key))
        size = info.get("size")
        return None if size is None else int(size)

    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key`` (a directory or prefix is not an object)."""
        info = self._info(key, "check existence")
        return not isinstance(info, Missing) and info.get("type") != "directory"

    def _read_all(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        if not requests:
            return []
        check_range_lengths(requests)
        backend = self._backend()
        options = self.network_options()
        if backend.is_async:
            jobs = [partial(self._aread, backend, options, *r) for r in requests]
            return self._run_async(backend, "GET", jobs)
        return concurrent_map(lambda r: self._read_sync(backend, options, *r), requests)

    def _read_sync(
        self, backend: _Backend, options: NetworkOptions, key: str, offset: int, length: int | None
    ) -> bytes | None:
        start, end = limits(offset, length)
        call = partial(_read_once_sync, backend.fs, self.path_of(key), start, end)
        data = attempt_sync(Request("GET", self.url, key, "read"), call, options)
        return None if isinstance(data, Missing) else data

    async def _aread(
        self, backend: _Backend, options: NetworkOptions, key: str, offset: int, length: int | None
    ) -> bytes | None:
        start, end = limits(offset, length)
        call = partial(_read_once, backend, self.path_of(key), start, end)
        data = await attempt_async(Request("GET", self.url, key, "read"), call, options)
        return None if isinstance(data, Missing) else data

    def _run_async(
        self, backend: _Backend, method: str, jobs: Sequence[Callable[[], Awaitable[T]]]
    ) -> list[T]:
        from fsspec.asyn import sync

        logger.debug("%s: a batch of %d requests to %s", method, len(jobs), self.url)
        results: list[T] = sync(backend.fs.loop, bounded_gather, jobs, self.max_concurrency)
        return results

    # --- writes --------------------------------------------------------------------------

    def set(self, key: str, value: BytesLike) -> None:
        """Write ``value`` at ``key``."""
        self.set_many([(key, value)])

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Write many objects concurrently (a failed write of a whole object is retried)."""
        pairs = list(items)
        if not pairs:
            return
        backend = self._backend()
        options = self.network_options()
        try:
            if backend.is_async:
                jobs = [partial(self._awrite, backend, options, k, v) for k, v in pairs]
                self._run_async(backend, "PUT", jobs)
            else:
                concurrent_map(lambda kv: self._write_sync(backend, *kv), pairs)
        finally:
            prefetched.forget(self.url, [key for key, _ in pairs])

    def _write_sync(self, backend: _Backend, key: str, value: BytesLike) -> None:
        call = partial(backend.fs.pipe_file, self.path_of(key), to_bytes(value))
        self._written(key, self._attempt("PUT", key, "write", call))

    async def _awrite(
        self, backend: _Backend, options: NetworkOptions, key: str, value: BytesLike
    ) -> None:
        call = partial(backend.fs._pipe_file, self.path_of(key), to_bytes(value))
        request = Request("PUT", self.url, key, "write")
        self._written(key, await attempt_async(request, call, options))

    def _written(self, key: str, outcome: object) -> None:
        if isinstance(outcome, Missing):  # a write cannot find its key missing
            raise StoreError(
                "could not write: the file system answered 'not found'", url=self.url, key=key
            )

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        path = self.path_of(key)
        try:
            self._attempt("DELETE", key, "delete", partial(_delete_once, self._backend().fs, path))
        finally:
            prefetched.forget(self.url, [key])

    # --- listing -------------------------------------------------------------------------

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key at or below the path ``prefix``, sorted (``"c/0"`` excludes ``"c/01"``)."""
        prefix = prefix.strip("/")
        path = self.path_of(prefix)
        backend = self._backend()
        found = self._attempt("LIST", prefix, "list", partial(_find_once, backend.fs, path))
        if isinstance(found, Missing):
            return []
        base = backend.root.rstrip("/") + "/"
        keys = (n[len(base) :] for n in found if n.startswith(base) and not n.endswith("/"))
        return keys_at_or_below(keys, prefix)

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (objects and sub-prefixes), sorted; ``[]`` if none.

        Cheaper than :meth:`list` for finding a group's children: chunk keys are not walked.
        """
        prefix = prefix.strip("/")
        path = self.path_of(prefix)
        fs = self._backend().fs
        entries = self._attempt("LIST", prefix, "list", partial(_ls_once, fs, path))
        if isinstance(entries, Missing):
            return []
        names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries}
        return sorted(n for n in names if n and not n.endswith(TMP_SUFFIX))


# --- one attempt of each request -------------------------------------------------------------


async def _read_once(backend: _Backend, path: str, start: int | None, end: int | None) -> bytes:
    """One attempt to read ``path`` (a range when ``start`` is not ``None``)."""
    fs = backend.fs
    try:
        if start is not None and start == end:
            await fs._info(path)
            return b""
        if start is None:  # the whole object (the end is open too)
            if backend.http:
                return await get_whole(fs, path)
            whole: bytes = await fs._cat_file(path, **backend.cat_kwargs)
            return whole
        if backend.http:
            return await get_range(fs, path, start, end)
        data: bytes = await fs._cat_file(path, start=start, end=end, **backend.cat_kwargs)
        if range_fits(data, start, end):
            return data
        return fitted(data, start, end, (await fs._info(path)).get("size"))
    except Exception as exc:
        # xzaro's own errors (a malformed answer) say what went wrong; only another library's
        # error may be its way of refusing a range past the end
        foreign = not isinstance(exc, ZaroError) and classify(exc).kind == "permanent"
        if foreign and start is not None and start > 0 and await _past_end(fs, path, start):
            return b""
        raise


def _read_once_sync(fs: Any, path: str, start: int | None, end: int | None) -> bytes:
    """:func:`_read_once` for a blocking file system."""
    if start is not None and start == end:
        if not fs.isfile(path):
            raise FileNotFoundError(path)
        return b""
    data: bytes = fs.cat_file(path, start=start, end=end)
    if start is None or range_fits(data, start, end):
        return data
    return fitted(data, start, end, fs.info(path).get("size"))


def _delete_once(fs: Any, path: str) -> None:
    try:
        fs.rm_file(path)
    except NotADirectoryError:
        return


def _find_once(fs: Any, path: str) -> builtins.list[str]:
    fs.invalidate_cache()  # see writes made since the last listing
    found: builtins.list[str] = fs.find(path)
    return found


def _ls_once(fs: Any, path: str) -> builtins.list[str]:
    fs.invalidate_cache(path)
    try:
        entries: builtins.list[str] = fs.ls(path, detail=False)
    except NotADirectoryError:
        return []
    return entries


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


def _strip_trailing_slash(url: str) -> str:
    """Drop trailing slashes, but never past a bare root (``/``, ``file:///``, ``memory://``)."""
    stripped = url.rstrip("/")
    if not stripped or stripped.endswith(":"):
        return url
    return stripped
