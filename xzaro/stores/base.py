"""The ``Store`` protocol that every layer above the stores is written against, and the
capabilities a store may declare beyond it.

A store maps string keys (``"a/b/.zarray"``, ``"c/0/1"``) to bytes. ``None`` from a read means
exactly one thing: the key does not exist. Every other failure raises
:class:`~xzaro.errors.StoreError` (or a subclass) naming the store URL and the key.

A capability is a runtime-checkable protocol; a caller that can use one asks with
``isinstance(store, SupportsListDir)``, never by probing for methods:

* :class:`SupportsListDir`: the names directly below a prefix, without walking every key;
* :class:`SupportsLocalReads`: whole objects read with system calls that release the GIL, into
  a per-thread buffer or a pooled one (so callers read one key per worker thread), and objects
  opened once for several positional reads;
* :class:`SupportsLocalFiles`: every object is a file of this machine, which a writer may
  create in place;
* :class:`SupportsTransactions`: writes are seen by readers only once committed (Icechunk);
* :class:`SupportsBufferReads`: whole objects handed to decoders in the client's own buffers,
  each as soon as its body is in (obstore, fsspec).
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote

from xzaro.concurrency import concurrent_map, handed_to_pool, on_pool_thread
from xzaro.errors import StoreError, ZaroError

#: A byte-range request: ``(key, offset, length)``. ``offset >= 0`` asks for ``length`` bytes from
#: ``offset`` (fewer if the object is shorter); ``offset < 0`` asks for the last ``-offset`` bytes
#: (``length`` is then ignored). A length of ``None`` means "to the end of the object".
RangeRequest = tuple[str, int, int | None]


class Parts(tuple[bytes | memoryview, ...]):
    """An object given as consecutive byte parts (a shard: its chunks and its index).

    Local stores write the parts with one ``writev`` instead of joining them first.
    """

    def join(self) -> bytes:
        """The object as one ``bytes``."""
        return b"".join(self)


#: What a store writes: bytes, a byte view of them, or :class:`Parts`.
BytesLike = bytes | bytearray | memoryview | Parts


def to_bytes(value: BytesLike) -> bytes:
    """``value`` as ``bytes`` (for stores that need one object in memory)."""
    return value.join() if isinstance(value, Parts) else bytes(value)


_DOTS = (".", "..")


def check_key(key: str, url: str | None) -> str:
    """Return ``key`` if it names an object below the store's root, else raise.

    A key is a ``/``-separated path relative to the root; a ``.`` or ``..`` component (also
    percent-encoded, as a web server would decode it, or separated by a backslash) could reach
    outside the root and is refused, whoever built the key.

    Raises
    ------
    StoreError
        If a component of ``key`` is ``.`` or ``..``.
    """
    if "." not in key and "%" not in key:
        return key
    for part in key.replace("\\", "/").split("/"):
        if part in _DOTS or ("%" in part and unquote(part) in _DOTS):
            raise StoreError(
                "a store key cannot have '.' or '..' components: they would leave the store",
                url=url,
                key=key,
            )
    return key


def store_error(url: str, key: str | None, what: str, exc: BaseException) -> ZaroError:
    """The xzaro error for a failed operation ``what`` on ``key`` (the caller raises it ``from
    exc``): an xzaro error raised where the URL and key were not known gets them; any other
    exception becomes a :class:`~xzaro.errors.StoreError` naming its type and message."""
    if isinstance(exc, ZaroError):
        if exc.url is None and exc.key is None:
            return type(exc)(exc.message, url=url, key=key, field=exc.field)
        return exc
    detail = str(exc) or type(exc).__name__
    return StoreError(f"could not {what}: {type(exc).__name__}: {detail}", url=url, key=key)


def check_range_lengths(requests: Iterable[RangeRequest]) -> None:
    """Raise ``ValueError`` if a range request asks for a negative length."""
    for key, _, length in requests:
        if length is not None and length < 0:
            raise ValueError(f"range length must be >= 0 or None, got {length} for {key!r}")


def keys_at_or_below(keys: Iterable[str], prefix: str) -> builtins.list[str]:
    """The ``keys`` at or below the path ``prefix`` (no outer slashes), sorted: ``"c/0"``
    matches ``"c/0"`` and ``"c/0/1"`` but not ``"c/01"``; ``""`` matches every key."""
    below = prefix + "/"
    return sorted(k for k in keys if not prefix or k == prefix or k.startswith(below))


def names_below(keys: Iterable[str], prefix: str) -> builtins.list[str]:
    """The names directly below the path ``prefix`` (no outer slashes) among ``keys``: the
    objects and sub-prefixes one level down, sorted."""
    below = prefix + "/" if prefix else ""
    return sorted({k[len(below) :].split("/", 1)[0] for k in keys if k.startswith(below)})


@runtime_checkable
class Store(Protocol):
    """Key-value access to a Zarr store."""

    #: The URL the store was opened from (used in messages and when pickling).
    url: str

    def get(self, key: str) -> bytes | None:
        """Return the object at ``key``, or ``None`` if it does not exist."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Fetch many keys concurrently (bounded in-flight requests), in order."""
        ...

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        """Fetch many byte ranges concurrently, in order; ``None`` where the key is missing."""
        ...

    def set(self, key: str, value: BytesLike) -> None:
        """Write ``value`` at ``key`` (a local store makes the object appear atomically)."""
        ...

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Write many objects concurrently."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Every key below ``prefix`` (relative to the store root), sorted."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...


@runtime_checkable
class SupportsListDir(Protocol):
    """A store that lists the names directly below a prefix cheaply (a group's children)."""

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (objects and sub-prefixes), sorted."""
        ...


class OpenObject(Protocol):
    """An object open for positional reads (:meth:`SupportsLocalReads.open_object`)."""

    #: Its size in bytes when it was opened.
    size: int

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer at the end of the object)."""
        ...


@runtime_checkable
class SupportsLocalReads(Protocol):
    """A store whose reads are system calls on local files: cheap per key, and releasing the
    GIL, so a reader fetches one key per worker thread instead of batching requests."""

    def get_transient(self, key: str) -> memoryview | bytes | None:
        """The object at ``key`` in this thread's reusable buffer, or ``None`` if it does not
        exist; valid only until the thread's next ``get_transient`` (decode it at once)."""
        ...

    def get_pooled(self, key: str) -> memoryview | bytes | None:
        """The whole object at ``key`` (a shard, say) in memory of its own, or ``None``; large
        objects come in a pooled buffer that is reused once no view of it is left."""
        ...

    def open_object(self, key: str) -> contextlib.AbstractContextManager[OpenObject | None]:
        """The object at ``key`` open for several positional reads (a shard's index, then
        its inner chunks), or ``None`` if it does not exist."""
        ...


@runtime_checkable
class SupportsBufferReads(Protocol):
    """A store that hands whole objects to decoders as its client has them: in the client's
    own buffers (obstore's ``Bytes``) rather than copies in ``bytes``, and each one as soon as
    its body is in (:meth:`each_buffer`), so decoding overlaps the other transfers."""

    def get_many_buffers(self, keys: Sequence[str]) -> builtins.list[Any]:
        """:meth:`Store.get_many` answered with read-only objects of the buffer protocol (or
        ``None`` for a missing key), for decoders only: they need not be ``bytes``."""
        ...

    def each_buffer(self, keys: Sequence[str], take: Callable[[int, Any], None]) -> None:
        """Fetch ``keys`` concurrently as :meth:`get_many_buffers` does, calling ``take(i,
        body)`` (``None`` for a missing key) in the thread that fetched key ``i`` as soon as
        its body is in; on a failure, the first error once no request or ``take`` still runs."""
        ...


def object_reads(store: Store) -> Callable[[Sequence[str]], builtins.list[Any]]:
    """The store's batched read of whole objects for decoders: in its client's own buffers
    where it has them (:class:`SupportsBufferReads`), else :meth:`Store.get_many`. Ask once per
    reader: a runtime protocol check costs tens of microseconds."""
    if isinstance(store, SupportsBufferReads):
        return store.get_many_buffers
    return store.get_many


def object_deliveries(store: Store) -> Callable[[Sequence[str], Callable[[int, Any], None]], None]:
    """The store's batched read of whole objects that calls ``take(i, body)`` on the shared
    pool for each key (``None``: missing): as each body comes in where the store hands them
    over so (:meth:`SupportsBufferReads.each_buffer`: decoding overlaps the transfers, and each
    body can be freed once decoded), else once :func:`object_reads` has them all. A single key
    is read and taken in the calling thread, and so is a batch read from a pool thread."""
    reads = object_reads(store)
    each = store.each_buffer if isinstance(store, SupportsBufferReads) else None

    def deliver(keys: Sequence[str], take: Callable[[int, Any], None]) -> None:
        # a pool thread takes the batch whole: handed over as they come, the bodies would be
        # decoded in the client's own threads (fsspec's event loop), not on the pool
        if each is not None and len(keys) > 1 and not on_pool_thread():
            handed_to_pool(lambda hand: each(keys, hand), take)
            return
        datas = reads(keys)
        concurrent_map(lambda i: take(i, datas[i]), range(len(datas)))

    return deliver


@runtime_checkable
class SupportsLocalFiles(Protocol):
    """A store whose objects are files of this machine under one directory."""

    def local_path(self, key: str) -> str:
        """The file that holds (or will hold) ``key``; a key leaving the store is refused."""
        ...


@runtime_checkable
class SupportsTransactions(Protocol):
    """A store whose writes readers see only after a commit (an Icechunk session).

    A writer may therefore write metadata before the chunks it describes (nothing is seen
    half-written), and an interrupted write that is never committed leaves nothing behind.
    """

    def commit(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Make the writes so far visible as one new version; returns its identifier."""
        ...
