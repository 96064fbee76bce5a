"""A :class:`~xzaro.stores.base.Store` over any fsspec file system.

Local files are read and written with plain ``os`` calls (the benchmark-critical path); async file
systems (s3fs, gcsfs, HTTP) are driven through fsspec's event loop with a bounded number of requests
in flight; other sync file systems (memory, chained caches) run on the shared thread pool.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import json
import mmap
import os
import stat
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from xzaro.concurrency import concurrent_map, default_workers
from xzaro.errors import NodeNotFoundError, StoreError, ZaroError
from xzaro.stores.base import BytesLike, Parts, RangeRequest, to_bytes

T = TypeVar("T")

#: Suffix of the temporary files a local ``set`` writes before renaming them into place.
TMP_SUFFIX = ".xzaro-tmp"

DEFAULT_MAX_CONCURRENCY = 64


@dataclass
class _Backend:
    """What a store opens once per process: the file system and how to talk to it."""

    fs: Any
    root: str
    local: bool
    is_async: bool
    cat_kwargs: dict[str, Any] = field(default_factory=dict)
    pid: int = field(default_factory=os.getpid)


_backends: dict[tuple[str, str], _Backend] = {}
_backends_lock = threading.Lock()


def _options_token(options: Mapping[str, Any]) -> str:
    return json.dumps(options, sort_keys=True, default=repr)


def _open_backend(url: str, options: Mapping[str, Any]) -> _Backend:
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(url, **options)
    local = isinstance(fs, LocalFileSystem)
    if local:
        root = os.path.abspath(root)
    is_async = bool(getattr(fs, "async_impl", False)) and not local
    cat_kwargs: dict[str, Any] = {}
    if is_async and "max_concurrency" in inspect.signature(fs._cat_file).parameters:
        # s3fs splits whole-object reads into parallel ranges after a HEAD request; our
        # parallelism comes from fetching many keys at once, so one GET per key is cheaper.
        cat_kwargs["max_concurrency"] = 1
    return _Backend(fs=fs, root=root, local=local, is_async=is_async, cat_kwargs=cat_kwargs)


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


def _trim(data: bytes, start: int | None, end: int | None) -> bytes:
    """Cut a response down to the range asked for when a server ignored the ``Range`` header."""
    if start is not None and start < 0:
        return data[start:] if len(data) > -start else data
    if start is not None and end is not None and len(data) > end - start:
        return data[start:end]
    return data


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


@contextlib.contextmanager
def _open_regular(path: str) -> Iterator[tuple[int, int] | None]:
    """Open a local file for reading: ``(fd, size)``, or ``None`` if it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        # ENOTDIR: a parent of the key is a file, so the key cannot exist
        yield None
        return
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", path)
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
    Small files cost three system calls (open, read, close): this is the path that reads
    hundreds of thousands of tiny chunks.
    """
    import numpy as np

    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        buf = getattr(_reuse, "buffer", None)
        if buf is None:
            buf = _reuse.buffer = np.empty(1 << 20, dtype=np.uint8)
        view = memoryview(buf)  # type: ignore[arg-type]
        done = os.preadv(fd, [view], 0)  # a directory raises IsADirectoryError here
        if done < len(view):
            return view[:done]
        size = os.fstat(fd).st_size
        if size > len(view):
            bigger = np.empty(size, dtype=np.uint8)
            if size <= _REUSE_LIMIT:  # larger objects get a buffer of their own
                _reuse.buffer = bigger
            bigger[:done] = buf[:done]
            view = memoryview(bigger)  # type: ignore[arg-type]
        while done < size:
            n = os.preadv(fd, [view[done:size]], done)
            if n == 0:
                break
            done += n
        return view[:done]
    finally:
        os.close(fd)


def _map_local(path: str) -> memoryview | bytes | None:
    """Map a whole local file read-only (no copy); ``None`` if it is missing."""
    with _open_regular(path) as opened:
        if opened is None:
            return None
        fd, size = opened
        if size == 0:
            return b""
        return memoryview(mmap.mmap(fd, size, access=mmap.ACCESS_READ))


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
        if not key:
            return backend.root
        return f"{backend.root.rstrip('/')}/{key}"

    def _fail(self, key: str | None, what: str, exc: BaseException) -> ZaroError:
        """The xzaro error for a failed operation on ``key`` (caller raises it ``from exc``)."""
        if isinstance(exc, ZaroError):
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
        """Like :meth:`get`, but a local file is memory-mapped instead of copied.

        For large objects read once, such as whole shards: decoder threads read the page cache
        directly. The mapping lives as long as the returned view. Non-local stores return
        plain :meth:`get` results.
        """
        backend = self._backend()
        if not backend.local:
            return self.get(key)
        try:
            return _map_local(self._path(backend, key))
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
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(21, "Is a directory", path)
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
        try:
            if start is not None and start == end:
                return b"" if backend.fs.isfile(path) else None
            return _trim(backend.fs.cat_file(path, start=start, end=end), start, end)
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
                data = await fs._cat_file(path, **backend.cat_kwargs)
            else:
                data = await fs._cat_file(path, start=start, end=end, **backend.cat_kwargs)
            return _trim(data, start, end)
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
