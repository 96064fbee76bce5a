"""``FsspecStore``: a store on any remote fsspec file system (S3, GCS, HTTP, memory, chains).

Async file systems (s3fs, gcsfs, HTTP) are driven through fsspec's event loop with a bounded
number of requests in flight; other file systems (memory, chained caches) run on the shared
thread pool. Local directories are :class:`~xzaro.stores.local.LocalStore`'s.

What a read may return is checked here, whatever the file system:

* every key stays below the root (:func:`~xzaro.stores.base.check_key`);
* a byte-range answer covers exactly the range asked for (:mod:`xzaro.stores.ranges`); HTTP
  ``206`` answers are checked against their ``Content-Range`` (:mod:`xzaro.stores.http`);
* HTTP reads have timeouts of their own (:data:`~xzaro.stores.http.HTTP_TIMEOUT`) unless the
  caller gives ``client_kwargs={"timeout": aiohttp.ClientTimeout(...)}``;
* a missing key reads as ``None``; a missing bucket, a server error or a refused connection
  raises an xzaro error naming the URL and the key.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from xzaro.concurrency import ProcessLocal, after_fork, concurrent_map
from xzaro.errors import NodeNotFoundError, StoreError, ZaroError
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
from xzaro.stores.http import get_range, with_http_timeout
from xzaro.stores.local import is_local_url
from xzaro.stores.ranges import fit_to_size, length_problem, limits, range_fits

T = TypeVar("T")

DEFAULT_MAX_CONCURRENCY = 64


@dataclass
class _Backend:
    """What a store opens once per process: the file system and how to talk to it."""

    fs: Any
    root: str
    is_async: bool
    cat_kwargs: dict[str, Any] = field(default_factory=dict)
    #: fsspec's HTTP file system: ranges are fetched with :func:`~xzaro.stores.http.get_range`.
    http: bool = False


_backends: dict[tuple[str, str], _Backend] = {}
_backends_lock = threading.Lock()


@after_fork
def _forget_backends() -> None:
    global _backends_lock
    _backends.clear()
    _backends_lock = threading.Lock()


def options_token(options: Mapping[str, Any]) -> str:
    """A text that is equal for equal fsspec options (a cache key for opened file systems)."""
    return json.dumps(options, sort_keys=True, default=repr)


def _open_backend(url: str, options: Mapping[str, Any]) -> _Backend:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **with_http_timeout(url, options))
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
    return _Backend(fs=fs, root=root, is_async=is_async, cat_kwargs=cat_kwargs, http=http)


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
        Keyword arguments for the fsspec file system (credentials, endpoint, ...).
    max_concurrency
        At most this many requests are in flight per batched call on async file systems
        (s3fs, gcsfs, HTTP).

    Raises
    ------
    StoreError
        ``url`` is a local path.

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
        self._cache_key = (self.url, options_token(self.storage_options))
        self._opened: ProcessLocal[_Backend] = ProcessLocal()

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
        return f"{type(self).__name__}({self.url!r})"

    def _backend(self) -> _Backend:
        backend = self._opened.value
        if backend is not None:
            return backend
        with _backends_lock:
            backend = _backends.get(self._cache_key)
            if backend is None:
                try:
                    backend = _open_backend(self.url, self.storage_options)
                except ZaroError:
                    raise
                except Exception as exc:
                    raise StoreError(f"could not open file system: {exc}", url=self.url) from exc
                _backends[self._cache_key] = backend
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

    def _fail(self, key: str | None, what: str, exc: BaseException) -> ZaroError:
        """The xzaro error for a failed operation on ``key`` (caller raises it ``from exc``)."""
        if not isinstance(exc, ZaroError) and _bucket_missing(exc):
            return NodeNotFoundError(f"the bucket does not exist: {exc}", url=self.url, key=key)
        return store_error(self.url, key, what, exc)

    def _raise_unless_missing(self, key: str, what: str, exc: FileNotFoundError) -> None:
        """Raise the xzaro error for ``exc`` unless it means that ``key`` does not exist."""
        if not _really_missing(exc):
            raise self._fail(key, what, exc) from exc

    # --- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """Return the object at ``key``, or ``None`` if it does not exist."""
        return self._read_all([(key, 0, None)])[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Fetch many keys concurrently, in order; ``None`` for each missing key."""
        return self._read_all([(key, 0, None) for key in keys])

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        """Fetch many byte ranges concurrently, in order; ``None`` where the key is missing.

        Parameters
        ----------
        requests
            ``(key, offset, length)`` tuples, see :data:`~xzaro.stores.base.RangeRequest`.
        """
        return self._read_all(list(requests))

    def get_size(self, key: str) -> int | None:
        """Return the size in bytes of the object at ``key``, or ``None`` if it does not exist."""
        path = self.path_of(key)
        try:
            info = self._backend().fs.info(path)
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
        """Whether an object exists at ``key`` (a directory or prefix is not an object)."""
        path = self.path_of(key)
        try:
            return bool(self._backend().fs.info(path).get("type") != "directory")
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "check existence", exc)
            return False
        except Exception as exc:
            raise self._fail(key, "check existence", exc) from exc

    def _read_all(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        if not requests:
            return []
        check_range_lengths(requests)
        backend = self._backend()
        if backend.is_async:
            jobs = [partial(self._aread, backend, *r) for r in requests]
            return self._run_async(backend, jobs)
        return concurrent_map(lambda r: self._read_sync(backend, *r), requests)

    def _read_sync(
        self, backend: _Backend, key: str, offset: int, length: int | None
    ) -> bytes | None:
        start, end = limits(offset, length)
        path = self.path_of(key)
        fs = backend.fs
        try:
            if start is not None and start == end:
                return b"" if fs.isfile(path) else None
            data: bytes = fs.cat_file(path, start=start, end=end)
            if start is None or range_fits(data, start, end):
                return data
            return self._fitted(data, start, end, fs.info(path).get("size"))
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "read", exc)
            return None
        except Exception as exc:
            raise self._fail(key, "read", exc) from exc

    async def _aread(
        self, backend: _Backend, key: str, offset: int, length: int | None
    ) -> bytes | None:
        start, end = limits(offset, length)
        fs = backend.fs
        path = self.path_of(key)
        try:
            if start is not None and start == end:
                await fs._info(path)
                return b""
            if start is None:  # the whole object (the end is open too)
                whole: bytes = await fs._cat_file(path, **backend.cat_kwargs)
                return whole
            if backend.http:
                return await get_range(fs, path, start, end)
            data: bytes = await fs._cat_file(path, start=start, end=end, **backend.cat_kwargs)
            if range_fits(data, start, end):
                return data
            return self._fitted(data, start, end, (await fs._info(path)).get("size"))
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "read", exc)
            return None
        except Exception as exc:
            if start is not None and start > 0 and await _past_end(fs, path, start):
                return b""
            raise self._fail(key, "read", exc) from exc

    @staticmethod
    def _fitted(data: bytes, start: int, end: int | None, size: int | None) -> bytes:
        fitted = fit_to_size(data, start, end, size)
        if fitted is None:
            raise StoreError(length_problem(data, start, end, size))
        return fitted

    def _run_async(self, backend: _Backend, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        from fsspec.asyn import sync

        results: list[T] = sync(backend.fs.loop, _bounded_gather, jobs, self.max_concurrency)
        return results

    # --- writes --------------------------------------------------------------------------

    def set(self, key: str, value: BytesLike) -> None:
        """Write ``value`` at ``key``."""
        self.set_many([(key, value)])

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Write many objects concurrently."""
        pairs = list(items)
        if not pairs:
            return
        backend = self._backend()
        if backend.is_async:
            self._run_async(backend, [partial(self._awrite, backend, k, v) for k, v in pairs])
        else:
            concurrent_map(lambda kv: self._write_sync(backend, *kv), pairs)

    def _write_sync(self, backend: _Backend, key: str, value: BytesLike) -> None:
        try:
            backend.fs.pipe_file(self.path_of(key), to_bytes(value))
        except Exception as exc:
            raise self._fail(key, "write", exc) from exc

    async def _awrite(self, backend: _Backend, key: str, value: BytesLike) -> None:
        try:
            await backend.fs._pipe_file(self.path_of(key), to_bytes(value))
        except Exception as exc:
            raise self._fail(key, "write", exc) from exc

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        path = self.path_of(key)
        try:
            self._backend().fs.rm_file(path)
        except NotADirectoryError:
            return
        except FileNotFoundError as exc:
            self._raise_unless_missing(key, "delete", exc)
        except Exception as exc:
            raise self._fail(key, "delete", exc) from exc

    # --- listing -------------------------------------------------------------------------

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key at or below the path ``prefix``, sorted (``"c/0"`` excludes ``"c/01"``)."""
        prefix = prefix.strip("/")
        path = self.path_of(prefix)
        backend = self._backend()
        try:
            backend.fs.invalidate_cache()  # see writes made since the last listing
            found = backend.fs.find(path)
        except FileNotFoundError as exc:
            self._raise_unless_missing(prefix, "list", exc)
            return []
        except Exception as exc:
            raise self._fail(prefix, "list", exc) from exc
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
        try:
            fs.invalidate_cache(path)
            entries = fs.ls(path, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except Exception as exc:
            raise self._fail(prefix, "list", exc) from exc
        names = {str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries}
        return sorted(n for n in names if n and not n.endswith(TMP_SUFFIX))


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
