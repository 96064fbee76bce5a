"""``LocalStore``: a store in a directory of the local file system, read and written with ``os``.

Reads are positional reads of regular files (:mod:`xzaro.stores.files`) run on the shared
thread pool, one key per task; they release the GIL, so the store declares
:class:`~xzaro.stores.base.SupportsLocalReads` and readers fetch one key per worker thread
instead of batching requests. Writes appear whole: each object is written beside its path and
renamed into place. The store declares :class:`~xzaro.stores.base.SupportsListDir` and
:class:`~xzaro.stores.base.SupportsLocalFiles` too.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from xzaro.concurrency import concurrent_map
from xzaro.errors import UnsupportedError, ZaroError
from xzaro.stores import prefetched
from xzaro.stores.base import (
    BytesLike,
    Parts,
    RangeRequest,
    check_key,
    check_range_lengths,
    keys_at_or_below,
    store_error,
)
from xzaro.stores.files import (
    OpenFile,
    as_byte_view,
    check_regular,
    find_files,
    list_names,
    open_regular,
    read_pooled,
    read_range,
    read_transient,
    write_file,
)

#: The URL prefixes that name a local path.
LOCAL_PREFIXES = ("file://", "local://")


def is_local_url(url: str) -> bool:
    """Whether ``url`` names a local path: a plain path, ``file://`` or ``local://`` (a chained
    URL such as ``simplecache::file://...`` is not one)."""
    if "::" in url or url.startswith("data:"):
        return False
    head, sep, _ = url.partition("://")
    if not sep or len(head) <= 1:  # no protocol (a Windows drive letter is none either)
        return True
    return (head.lower() + "://") in LOCAL_PREFIXES


def local_root(url: str | os.PathLike[str]) -> str:
    """The absolute path a local path or ``file://`` URL names (``~`` expanded)."""
    path = os.fspath(url)
    for prefix in LOCAL_PREFIXES:
        if path.lower().startswith(prefix):
            path = path[len(prefix) :]
            break
    return os.path.abspath(os.path.expanduser(path))


#: The ``storage_options`` a local store takes (fsspec's local file system's own).
LOCAL_OPTIONS = frozenset({"auto_mkdir"})


class LocalStore:
    """A store in a local directory (or, with the key ``""``, one local file).

    The store pickles as its path, so it reopens in a worker process at once.

    Parameters
    ----------
    url
        The directory: a path (relative, absolute or ``~``) or a ``file://`` URL.
    storage_options
        Only ``auto_mkdir`` (fsspec's local file system option; directories are always made);
        any other option raises :class:`~xzaro.errors.UnsupportedError` rather than being ignored.

    Notes
    -----
    Reads return ``None`` only when the key does not exist; a directory, a FIFO or a device where
    an object should be, and any other failure, raise :class:`~xzaro.errors.StoreError` naming
    the URL and the key. A key with ``.`` or ``..`` components is refused.
    """

    def __init__(
        self, url: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
    ) -> None:
        self.url = local_root(url)
        self.root = self.url
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        unused = sorted(set(self.storage_options) - LOCAL_OPTIONS)
        if unused:
            raise UnsupportedError(
                f"storage_options {unused} do not apply to a local path (only "
                f"{sorted(LOCAL_OPTIONS)} does); drop them or open a remote URL",
                url=self.url,
                field="storage_options",
            )
        self._base = self.root.rstrip("/")

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["storage_options"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def local_path(self, key: str) -> str:
        """The file of ``key`` (the root itself for ``""``); a key leaving the root is refused.

        Raises
        ------
        StoreError
            If ``key`` has ``.`` or ``..`` components.
        """
        if not key:
            return self.root
        return f"{self._base}/{check_key(key, self.url)}"

    # --- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """Return the object at ``key``, or ``None`` if it does not exist."""
        return self._read(key, 0, None)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read many keys concurrently, in order; ``None`` for each missing key."""
        return concurrent_map(lambda key: self._read(key, 0, None), keys)

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        """Read many byte ranges concurrently, in order; ``None`` where the key is missing.

        Parameters
        ----------
        requests
            ``(key, offset, length)`` tuples, see :data:`~xzaro.stores.base.RangeRequest`.
        """
        check_range_lengths(requests)
        return concurrent_map(lambda r: self._read(*r), requests)

    def get_transient(self, key: str) -> memoryview | bytes | None:
        """The object at ``key`` in this thread's reusable buffer, or ``None``.

        The result is valid only until the calling thread's next ``get_transient``; callers
        decode it at once.
        """
        try:
            return read_transient(self.local_path(key))
        except Exception as exc:
            raise store_error(self.url, key, "read", exc) from exc

    def get_pooled(self, key: str) -> memoryview | bytes | None:
        """The whole object at ``key`` in memory of its own, or ``None`` (for whole shards).

        Large objects are read into a pooled buffer that stays valid as long as the returned
        view (or any view of it) lives.
        """
        try:
            return read_pooled(self.local_path(key))
        except Exception as exc:
            raise store_error(self.url, key, "read", exc) from exc

    @contextlib.contextmanager
    def open_object(self, key: str) -> Iterator[OpenFile | None]:
        """The object at ``key`` open for positional reads while the block runs, or ``None``
        if it does not exist. A failure inside the block that is not an xzaro error is raised
        as a :class:`~xzaro.errors.StoreError` naming the key."""
        try:
            with open_regular(self.local_path(key)) as opened:
                yield opened
        except (ZaroError, MemoryError):
            raise
        except Exception as exc:
            raise store_error(self.url, key, "read", exc) from exc

    def get_size(self, key: str) -> int | None:
        """The size in bytes of the object at ``key``, or ``None`` if it does not exist."""
        path = self.local_path(key)
        try:
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                return None
            check_regular(st.st_mode, path)
            return st.st_size
        except Exception as exc:
            raise store_error(self.url, key, "get the size", exc) from exc

    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key`` (a directory is not an object)."""
        path = self.local_path(key)
        try:
            return stat.S_ISREG(os.stat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except Exception as exc:
            raise store_error(self.url, key, "check existence", exc) from exc

    def _read(self, key: str, offset: int, length: int | None) -> bytes | None:
        try:
            return read_range(self.local_path(key), offset, length)
        except Exception as exc:
            raise store_error(self.url, key, "read", exc) from exc

    # --- writes --------------------------------------------------------------------------

    def set(self, key: str, value: BytesLike) -> None:
        """Write ``value`` at ``key``; the object appears whole (written, then renamed)."""
        try:
            self._write(key, value)
        finally:
            prefetched.forget(self.url, [key])

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Write many objects concurrently."""
        pairs = list(items)
        try:
            concurrent_map(lambda kv: self._write(*kv), pairs)
        finally:
            prefetched.forget(self.url, [key for key, _ in pairs])

    def _write(self, key: str, value: BytesLike) -> None:
        try:
            view = value if isinstance(value, Parts) else as_byte_view(value)
            write_file(self.local_path(key), view)
        except Exception as exc:
            raise store_error(self.url, key, "write", exc) from exc

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        path = self.local_path(key)
        try:
            os.remove(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except Exception as exc:
            raise store_error(self.url, key, "delete", exc) from exc
        finally:
            prefetched.forget(self.url, [key])

    # --- listing -------------------------------------------------------------------------

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key at or below the path ``prefix``, sorted (``"c/0"`` excludes ``"c/01"``)."""
        prefix = prefix.strip("/")
        path = self.local_path(prefix)
        try:
            found = find_files(path)
        except Exception as exc:
            raise store_error(self.url, prefix, "list", exc) from exc
        base = self._base + "/"
        return keys_at_or_below((n[len(base) :] for n in found if n.startswith(base)), prefix)

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (objects and sub-prefixes), sorted; ``[]`` if none."""
        prefix = prefix.strip("/")
        path = self.local_path(prefix)
        try:
            return list_names(path)
        except Exception as exc:
            raise store_error(self.url, prefix, "list", exc) from exc
