"""The ``Store`` protocol that every layer above the stores is written against.

A store maps string keys (``"a/b/.zarray"``, ``"c/0/1"``) to bytes. ``None`` from a read means
exactly one thing: the key does not exist. Every other failure raises
:class:`~xzaro.errors.StoreError` (or a subclass) naming the store URL and the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable
from urllib.parse import unquote

from xzaro.errors import StoreError

#: A byte-range request: ``(key, offset, length)``. ``offset >= 0`` asks for ``length`` bytes from
#: ``offset`` (fewer if the object is shorter); ``offset < 0`` asks for the last ``-offset`` bytes
#: (``length`` is then ignored). A length of ``None`` means "to the end of the object".
RangeRequest = tuple[str, int, int | None]


class Parts(tuple):
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
