"""An in-process dictionary store for tests and demonstrations."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xzaro.stores import prefetched
from xzaro.stores.base import (
    BytesLike,
    RangeRequest,
    check_key,
    check_range_lengths,
    keys_at_or_below,
    names_below,
    to_bytes,
)


class MemoryStore:
    """A store that keeps every object in a plain ``dict`` of this process.

    It pickles together with its data, so a copy sent to another process is a snapshot: writes
    there are not seen here. Keys with ``.`` or ``..`` components are refused as every store
    refuses them (:func:`~xzaro.stores.base.check_key`).

    Parameters
    ----------
    data
        Initial contents, ``{key: bytes}``; copied.
    """

    def __init__(self, data: Mapping[str, bytes] | None = None) -> None:
        self.data: dict[str, bytes] = {k: bytes(v) for k, v in (data or {}).items()}
        self.url = f"memory-dict://{id(self):x}"
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"data": self.data}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["data"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self.data)} keys>)"

    def get(self, key: str) -> bytes | None:
        """Return the object at ``key``, or ``None`` if it does not exist."""
        return self.data.get(check_key(key, self.url))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Return the objects at ``keys``, in order, ``None`` for missing ones."""
        return [self.data.get(check_key(key, self.url)) for key in keys]

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        """Return byte ranges, in order; ``None`` where the key is missing."""
        check_range_lengths(requests)
        out: list[bytes | None] = []
        for key, offset, length in requests:
            value = self.data.get(check_key(key, self.url))
            if value is None:
                out.append(None)
            elif offset < 0 or length is None:
                out.append(value[offset:])
            else:
                out.append(value[offset : offset + length])
        return out

    def get_size(self, key: str) -> int | None:
        """Return the size of the object at ``key``, or ``None`` if it does not exist."""
        value = self.data.get(check_key(key, self.url))
        return None if value is None else len(value)

    def set(self, key: str, value: BytesLike) -> None:
        """Store a copy of ``value`` at ``key``."""
        self.data[check_key(key, self.url)] = to_bytes(value)
        prefetched.forget(self.url, [key])

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Store many objects."""
        pairs = [(check_key(key, self.url), value) for key, value in items]
        with self._lock:
            for key, value in pairs:
                self.data[key] = to_bytes(value)
        prefetched.forget(self.url, [key for key, _ in pairs])

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self.data.pop(check_key(key, self.url), None)
        prefetched.forget(self.url, [key])

    def list(self, prefix: str = "") -> list[str]:
        """Every key at or below the path ``prefix``, sorted (``"c/0"`` excludes ``"c/01"``)."""
        prefix = check_key(prefix.strip("/"), self.url)
        return keys_at_or_below(list(self.data), prefix)

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix``, sorted."""
        return names_below(list(self.data), check_key(prefix.strip("/"), self.url))

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return check_key(key, self.url) in self.data
