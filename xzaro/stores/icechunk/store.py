"""``IcechunkStore``: an Icechunk session (a branch, tag or snapshot of a repository) as a store.

Icechunk's own ``icechunk.IcechunkStore`` speaks zarr-python's store API (its buffers and byte
requests). Beneath it is Icechunk's Rust store, which takes and returns plain bytes and
``(start, end)`` ranges: xzaro talks to that one, so xzaro itself never imports zarr (importing
``icechunk`` does, as a dependency of Icechunk's own modules, and only when an Icechunk store is
used).

What Icechunk's store does not do the way xzaro needs is done here:

* a byte range is clamped to the object's size before it is asked for (Icechunk answers a range
  past the end of an object wrongly or not at all), and every answer is checked to have exactly
  the length asked for;
* a key an Icechunk repository cannot hold (Zarr V2 documents, any name that is not a Zarr V3
  document or chunk key) or a chunk of an array that does not exist reads as missing; writing
  one is an error naming the key;
* every other failure (an unauthorized virtual chunk container, a network failure, a read-only
  session) is a :class:`~xzaro.errors.StoreError` naming the store and the key.

Writes go into the session; nothing reaches the branch until :meth:`IcechunkStore.commit`. A
store on a read-only session, or on a fork (:meth:`IcechunkStore.fork`), pickles (Icechunk's
own session serialization); a store on a writable session does not: fork it for workers.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from xzaro.concurrency import bounded_gather
from xzaro.errors import StoreError, ZaroError
from xzaro.stores import prefetched
from xzaro.stores.base import (
    BytesLike,
    RangeRequest,
    check_key,
    check_range_lengths,
    keys_at_or_below,
    to_bytes,
)
from xzaro.stores.icechunk.runner import run
from xzaro.stores.network import network_options

if TYPE_CHECKING:
    from icechunk import ForkSession, Session

#: Texts of Icechunk errors that mean "no such object": a key an Icechunk repository cannot
#: hold, or a chunk of an array that does not exist. Icechunk raises one exception type for
#: every failure, so its message is what tells them apart.
MISSING_MESSAGES = ("invalid zarr key format", "node not found")


def icechunk_message(exc: BaseException) -> str:
    """The first line of an Icechunk error, without its drawing (``"  x what went wrong"``)."""
    for line in str(exc).splitlines():
        text = line.strip().removeprefix("x ").strip()
        if text:
            return text
    return type(exc).__name__


def is_missing(exc: BaseException) -> bool:
    """Whether an Icechunk failure of a read means that the object does not exist."""
    if isinstance(exc, KeyError):
        return True
    text = str(exc)
    return any(message in text for message in MISSING_MESSAGES)


def session_url(session: Session, location: str | None, branch: str | None = None) -> str:
    """``icechunk://<location>?branch=<name>`` (or ``?snapshot=<id>``) for messages; ``branch``
    names the branch a read-only session was opened at."""
    branch = session.branch or branch
    version = f"branch={branch}" if branch else f"snapshot={session.snapshot_id}"
    return f"icechunk://{location or '<session>'}?{version}"


def as_session(session: Any) -> Session:
    """The Icechunk session of ``session`` (a ``Session``, or Icechunk's zarr store).

    Raises
    ------
    TypeError
        ``session`` is neither.
    """
    from icechunk import IcechunkStore as ZarrIcechunkStore
    from icechunk import Session

    if isinstance(session, ZarrIcechunkStore):
        session = session.session
    if not isinstance(session, Session):
        raise TypeError(
            f"expected an icechunk Session or IcechunkStore, got {type(session).__name__}"
        )
    return session


class IcechunkStore:
    """A store on an Icechunk session: read-only (a branch, tag or snapshot) or writable.

    Parameters
    ----------
    session
        An ``icechunk.Session`` or ``ForkSession``, or Icechunk's own ``IcechunkStore`` (its
        session is used).
    location
        Where the repository is (for messages and :attr:`url`), when known.
    branch
        The branch a read-only session was opened at (for :attr:`url`), when known.
    """

    def __init__(
        self, session: Session | Any, *, location: str | None = None, branch: str | None = None
    ) -> None:
        self._session = as_session(session)
        self._location = location
        self._branch = branch
        self.url = session_url(self._session, location, branch)
        # Icechunk's Rust store: bytes in, bytes out (see the module's notes).
        self._rust = self._session._session.store

    def __getstate__(self) -> dict[str, Any]:
        from icechunk import ForkSession

        if not self._session.read_only and not isinstance(self._session, ForkSession):
            raise StoreError(
                "a store on a writable Icechunk session does not pickle: send "
                "store.fork() to workers and merge what they return (store.merge)",
                url=self.url,
            )
        return {"session": self._session, "location": self._location, "branch": self._branch}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["session"], location=state["location"], branch=state["branch"]
        )

    def __repr__(self) -> str:
        return f"IcechunkStore({self.url!r}{', read-only' if self.read_only else ''})"

    @property
    def session(self) -> Session:
        """The Icechunk session the store reads and writes."""
        return self._session

    @property
    def read_only(self) -> bool:
        """Whether the session is read-only."""
        return bool(self._session.read_only)

    # --- running calls ---------------------------------------------------------------------

    def _fail(self, key: str | None, what: str, exc: BaseException) -> ZaroError:
        if isinstance(exc, ZaroError):
            return exc
        return StoreError(f"could not {what}: {icechunk_message(exc)}", url=self.url, key=key)

    def _batch(self, jobs: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
        if not jobs:
            return []
        limit = network_options().requests_in_flight
        return run(lambda: bounded_gather(jobs, limit))

    # --- reads -------------------------------------------------------------------------------

    async def _get(self, key: str, first: int | None = None, stop: int | None = None) -> Any:
        try:
            return bytes(await self._rust.get(key, (first, stop)))
        except Exception as exc:
            if is_missing(exc):
                return None
            raise self._fail(key, "read the object", exc) from exc

    async def _size(self, key: str) -> int | None:
        try:
            size = int(await self._rust.getsize(key))
        except Exception as exc:
            if is_missing(exc):
                return None
            raise self._fail(key, "read the object's size", exc) from exc
        if size == 0:  # Icechunk says 0 for a chunk that is not there, too
            data = await self._get(key)
            return None if data is None else len(data)
        return size

    async def _range(self, key: str, offset: int, length: int | None) -> bytes | None:
        size = await self._size(key)
        if size is None:
            return None
        first = max(0, size + offset) if offset < 0 else min(offset, size)
        stop = size if offset < 0 or length is None else min(size, offset + length)
        if stop <= first:
            return b""
        data: bytes | None = await self._get(key, first, stop)
        if data is not None and len(data) != stop - first:
            raise StoreError(
                f"a read of bytes {first} to {stop} was answered with {len(data)} bytes",
                url=self.url,
                key=key,
            )
        return data

    def get(self, key: str) -> bytes | None:
        """Return the object at ``key``, or ``None`` if it does not exist."""
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Fetch many keys concurrently (bounded in-flight requests), in order."""
        keys = [check_key(key, self.url) for key in keys]
        return self._batch([partial(self._get, key) for key in keys])

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        """Fetch many byte ranges concurrently, in order; ``None`` where the key is missing."""
        check_range_lengths(requests)
        jobs = [
            partial(self._range, check_key(key, self.url), offset, length)
            for key, offset, length in requests
        ]
        return self._batch(jobs)

    def get_size(self, key: str) -> int | None:
        """The size of the object at ``key``, or ``None`` if it does not exist."""
        size: int | None = self._batch([partial(self._size, check_key(key, self.url))])[0]
        return size

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return self.get_size(key) is not None

    async def _names(self, listing: Any) -> builtins.list[str]:
        return [str(name) async for name in listing]

    async def _list(self, prefix: str) -> builtins.list[str]:
        keys = None
        if prefix:
            try:  # Icechunk lists below a group or array only
                keys = await self._names(self._rust.list_prefix(prefix))
            except Exception:
                keys = None
        try:
            if keys is None:
                keys = await self._names(self._rust.list())
        except Exception as exc:
            raise self._fail(prefix or None, "list the keys", exc) from exc
        return keys_at_or_below(keys, prefix)

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key at or below the path ``prefix``, sorted (``"c/0"`` excludes ``"c/01"``)."""
        prefix = check_key(prefix.strip("/"), self.url)
        keys: builtins.list[str] = self._batch([partial(self._list, prefix)])[0]
        return keys

    async def _list_dir(self, prefix: str) -> builtins.list[str]:
        try:
            names = await self._names(self._rust.list_dir(prefix))
        except Exception as exc:
            if is_missing(exc):
                return []
            raise self._fail(prefix or None, "list the names", exc) from exc
        return sorted({name.strip("/") for name in names if name.strip("/")})

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (objects and sub-prefixes), sorted."""
        prefix = check_key(prefix.strip("/"), self.url)
        names: builtins.list[str] = self._batch([partial(self._list_dir, prefix)])[0]
        return names

    # --- writes ------------------------------------------------------------------------------

    async def _set(self, key: str, value: bytes) -> None:
        try:
            await self._rust.set(key, value)
        except Exception as exc:
            text = str(exc)
            if "invalid zarr key format" in text or "V2 metadata" in text:
                message = (
                    "an Icechunk repository holds Zarr V3 documents and chunks only "
                    "(write zarr_format=3 data)"
                )
            elif is_missing(exc):
                message = "the chunk's array does not exist: write its metadata first"
            else:
                raise self._fail(key, "write the object", exc) from exc
            raise StoreError(message, url=self.url, key=key) from exc

    def set(self, key: str, value: BytesLike) -> None:
        """Write ``value`` at ``key`` into the session (seen by the branch at the commit)."""
        self.set_many([(key, value)])

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Write many objects concurrently into the session."""
        pairs = [(check_key(key, self.url), value) for key, value in items]
        try:
            self._batch([partial(self._set, key, to_bytes(value)) for key, value in pairs])
        finally:
            prefetched.forget(self.url, [key for key, _ in pairs])

    async def _delete(self, key: str) -> None:
        try:
            await self._rust.delete(key)
        except Exception as exc:
            if not is_missing(exc):  # a key that cannot exist is already removed
                raise self._fail(key, "delete the object", exc) from exc

    def delete(self, key: str) -> None:
        """Remove ``key`` from the session; removing a missing key is not an error. Removing a
        node's ``zarr.json`` removes the node with everything below it (Icechunk's rule)."""
        try:
            self._batch([partial(self._delete, check_key(key, self.url))])
        finally:
            prefetched.forget(self.url, [key])
            if key.rsplit("/", 1)[-1] == "zarr.json":
                prefetched.forget_below(self.url, key.rsplit("/", 1)[0] if "/" in key else "")

    # --- versions ------------------------------------------------------------------------------

    def commit(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Commit the session's writes to its branch, at once; returns the new snapshot's id.

        The session is read-only afterwards (on the new snapshot).

        Raises
        ------
        StoreError
            The session is read-only, has forks not merged back, or the branch moved on with
            conflicting changes (Icechunk's message says which).
        """
        from icechunk import ForkSession

        if isinstance(self._session, ForkSession):
            raise StoreError("a fork is merged into its session, not committed", url=self.url)
        try:
            snapshot = self._session.commit(message, metadata)
        except Exception as exc:
            raise self._fail(None, "commit", exc) from exc
        self._branch = None  # the session is on the new snapshot now
        self.url = session_url(self._session, self._location)
        return str(snapshot)

    def fork(self) -> IcechunkStore:
        """A store on a fork of the writable session, to send to workers (it pickles); each
        worker's copy is merged back with :meth:`merge`.

        Raises
        ------
        StoreError
            The session is read-only or already has writes (commit them first).
        """
        try:
            forked = self._session.fork()
        except Exception as exc:
            raise self._fail(None, "fork the session", exc) from exc
        return IcechunkStore(forked, location=self._location)

    def merge(self, *others: IcechunkStore | ForkSession) -> None:
        """Merge the writes of forks (stores or Icechunk fork sessions) into this session."""
        sessions = [o.session if isinstance(o, IcechunkStore) else o for o in others]
        try:
            self._session.merge(*sessions)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise StoreError(f"could not merge: {exc}", url=self.url) from exc
        except Exception as exc:
            raise self._fail(None, "merge", exc) from exc
