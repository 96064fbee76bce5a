"""``ReferenceStoreBase``: the read-only store over references, whatever their format.

A reference format (Kerchunk JSON, Parquet) provides a lookup of keys and a listing; this base
class turns it into the :class:`~xzaro.stores.base.Store` protocol: inline references are
answered at once, target ranges are fetched together (:class:`TargetFetcher`), and writes are
refused. It also holds what every reference store shares: its options, how it pickles (its URL
and options only) and how it loads its references lazily, once per process.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from xzaro.concurrency import ProcessLocal
from xzaro.errors import OutOfMemoryError, StoreError
from xzaro.stores.base import (
    BytesLike,
    RangeRequest,
    check_range_lengths,
    keys_at_or_below,
    names_below,
)
from xzaro.stores.fsspec_store import DEFAULT_MAX_CONCURRENCY, options_token
from xzaro.stores.references.documents import (
    DEFAULT_MAX_REFERENCE_BYTES,
    check_max_reference_bytes,
)
from xzaro.stores.references.fetch import DEFAULT_MAX_GAP, Reference, TargetFetcher
from xzaro.stores.references.targets import TargetResolver


def _subrange(offset: int, length: int | None, ref_off: int, ref_len: int) -> tuple[int, int]:
    """The absolute ``(offset, length)`` of a range request inside a referenced range."""
    end = ref_off + ref_len
    if offset < 0:
        start = max(ref_off, end + offset)
        return start, end - start
    start = min(ref_off + offset, end)
    stop = end if length is None else min(end, start + length)
    return start, stop - start


def _slice(data: bytes, offset: int, length: int | None) -> bytes:
    if offset < 0 or length is None:
        return data[offset:]
    return data[offset : offset + length]


class ReferenceStoreBase:
    """The read-only :class:`~xzaro.stores.base.Store` over references (JSON or Parquet).

    Subclasses provide ``_load()`` (what the store reads once per process: its references or
    its layout, see :meth:`loaded`), ``_lookup_many(keys)``, returning for each key ``None`` (no
    such key), inline bytes, or ``(target URL, offset, length or None)``, and ``_keys(prefix)``
    for listing. Parameters: see :class:`~xzaro.stores.references.kerchunk.ReferenceStore`.
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        storage_options: Mapping[str, Any] | None = None,
        *,
        remote_protocol: str | None = None,
        remote_options: Mapping[str, Any] | None = None,
        allowed_protocols: Collection[str] | None = None,
        max_gap: int = DEFAULT_MAX_GAP,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_reference_bytes: int = DEFAULT_MAX_REFERENCE_BYTES,
    ) -> None:
        _check_options(remote_protocol, remote_options, allowed_protocols, max_gap, max_concurrency)
        self._setup(
            os.fspath(url),
            dict(storage_options or {}),
            remote_protocol,
            None if remote_options is None else dict(remote_options),
            None if allowed_protocols is None else sorted(allowed_protocols),
            max_gap,
            max_concurrency,
            check_max_reference_bytes(max_reference_bytes),
        )
        self._forget_loaded()  # a fresh open re-reads the references

    def _setup(
        self,
        url: str,
        storage_options: dict[str, Any],
        remote_protocol: str | None,
        remote_options: dict[str, Any] | None,
        allowed_protocols: list[str] | None,
        max_gap: int,
        max_concurrency: int,
        max_reference_bytes: int,
    ) -> None:
        self.storage_options = storage_options
        self.remote_protocol = remote_protocol
        self.remote_options = remote_options
        self.allowed_protocols = allowed_protocols
        self.max_gap = max_gap
        self.max_concurrency = max_concurrency
        self.max_reference_bytes = max_reference_bytes
        self.resolver = TargetResolver(
            self._relative_to(url),
            storage_options,
            remote_protocol=remote_protocol,
            remote_options=remote_options,
            allowed_protocols=allowed_protocols,
        )
        self.url = self.resolver.reference_url
        self._cache_key = (self.url, options_token(storage_options), max_reference_bytes)
        self._loaded: ProcessLocal[Any] = ProcessLocal()
        self._load_lock = threading.Lock()
        self._fetcher: TargetFetcher | None = None

    def _relative_to(self, url: str) -> str:
        """Where relative target paths resolve: next to the references at ``url``."""
        return url

    def _load(self) -> Any:
        raise NotImplementedError

    def _forget_loaded(self) -> None:
        """Drop this store's references from the per-process caches."""

    def loaded(self) -> Any:
        """What ``_load`` returned in this process (read on first use, once per process)."""
        value = self._loaded.value
        if value is None:
            with self._load_lock:
                value = self._loaded.value
                if value is None:
                    try:
                        value = self._loaded.value = self._load()
                    except OutOfMemoryError:
                        raise
                    except MemoryError:
                        raise OutOfMemoryError(
                            "the references do not fit in memory (a Kerchunk gen entry may "
                            "stand for up to 10 million of them)",
                            url=self.url,
                        ) from None
        return value

    # A store pickles to its URL and options; references are reloaded lazily per process.
    def __getstate__(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "storage_options": self.storage_options,
            "remote_protocol": self.remote_protocol,
            "remote_options": self.remote_options,
            "allowed_protocols": self.allowed_protocols,
            "max_gap": self.max_gap,
            "max_concurrency": self.max_concurrency,
            "max_reference_bytes": self.max_reference_bytes,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(**state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def fetcher(self) -> TargetFetcher:
        """The :class:`TargetFetcher` of this store (created on first use)."""
        fetcher = self._fetcher
        if fetcher is None:
            fetcher = self._fetcher = TargetFetcher(
                self.resolver, self.url, max_gap=self.max_gap, max_concurrency=self.max_concurrency
            )
        return fetcher

    def _lookup_many(self, keys: Sequence[str]) -> list[Reference | None]:
        raise NotImplementedError

    def _keys(self, prefix: str) -> Iterable[str]:
        raise NotImplementedError

    # --- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The bytes the reference of ``key`` points to, or ``None`` if it has none."""
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[str]) -> builtins.list[bytes | None]:
        """Fetch many keys: target ranges grouped by file, coalesced and fetched concurrently.

        Parameters
        ----------
        keys
            Zarr keys.

        Returns
        -------
        list of bytes or None
            ``None`` where a key has no reference.
        """
        refs = self._lookup_many(keys)
        results: list[bytes | None] = [None] * len(keys)
        todo: list[tuple[str, str, int, int | None]] = []
        where: list[int] = []
        for i, (key, ref) in enumerate(zip(keys, refs)):
            if ref is None or isinstance(ref, bytes):
                results[i] = ref
            else:
                todo.append((key, *ref))
                where.append(i)
        for i, data in zip(where, self.fetcher.fetch(todo)):
            results[i] = data
        return results

    def get_ranges(self, requests: Sequence[RangeRequest]) -> builtins.list[bytes | None]:
        """Byte ranges of referenced objects (a range within the referenced range), in order.

        Parameters
        ----------
        requests
            ``(key, offset, length)`` tuples, see :data:`~xzaro.stores.base.RangeRequest`.

        Returns
        -------
        list of bytes or None
            ``None`` where a key has no reference.
        """
        check_range_lengths(requests)
        refs = self._lookup_many([r[0] for r in requests])
        results: list[bytes | None] = [None] * len(requests)
        todo: list[tuple[str, str, int, int | None]] = []
        where: list[int] = []
        short: list[int] = []
        for i, ((key, offset, length), ref) in enumerate(zip(requests, refs)):
            if ref is None:
                continue
            if isinstance(ref, bytes):
                results[i] = _slice(ref, offset, length)
                continue
            url, ref_off, ref_len = ref
            if ref_len is None:  # the whole file: the request applies to it directly
                short.append(len(todo))
                todo.append((key, url, offset, None if offset < 0 else length))
            else:
                todo.append((key, url, *_subrange(offset, length, ref_off, ref_len)))
            where.append(i)
        for i, data in zip(where, self.fetcher.fetch(todo, may_be_short=short)):
            results[i] = data
        return results

    def exists(self, key: str) -> bool:
        """Whether ``key`` has a reference."""
        return self._lookup_many([key])[0] is not None

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key with a reference at or below the path ``prefix`` (``""``: all), sorted."""
        prefix = prefix.strip("/")
        return keys_at_or_below(self._keys(prefix), prefix)

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (keys and sub-prefixes), sorted."""
        prefix = prefix.strip("/")
        return names_below(self._keys(prefix), prefix)

    # --- writes: refused -------------------------------------------------------------------

    def _read_only(self, key: str | None) -> StoreError:
        return StoreError("reference stores are read-only", url=self.url, key=key)

    def set(self, key: str, value: BytesLike) -> None:
        """Refused: reference stores are read-only (raises :class:`~xzaro.errors.StoreError`)."""
        raise self._read_only(key)

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Refused: reference stores are read-only (raises :class:`~xzaro.errors.StoreError`)."""
        raise self._read_only(None)

    def delete(self, key: str) -> None:
        """Refused: reference stores are read-only (raises :class:`~xzaro.errors.StoreError`)."""
        raise self._read_only(key)


def _check_options(
    remote_protocol: Any,
    remote_options: Any,
    allowed_protocols: Any,
    max_gap: Any,
    max_concurrency: Any,
) -> None:
    """Refuse reference-store options of the wrong kind, naming the option.

    Raises
    ------
    TypeError, ValueError
    """
    if remote_protocol is not None and not isinstance(remote_protocol, str):
        raise TypeError(f"remote_protocol must be a protocol's name, got {remote_protocol!r:.80}")
    if remote_options is not None and not isinstance(remote_options, Mapping):
        raise TypeError(f"remote_options must be a mapping, got {remote_options!r:.80}")
    if allowed_protocols is not None and (
        isinstance(allowed_protocols, str)
        or not isinstance(allowed_protocols, Collection)
        or not all(isinstance(p, str) for p in allowed_protocols)
    ):
        raise TypeError(
            f"allowed_protocols must be a list of protocol names, got {allowed_protocols!r:.80}"
        )
    for name, value, least in (("max_gap", max_gap, 0), ("max_concurrency", max_concurrency, 1)):
        if type(value) is not int or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r:.80}")
