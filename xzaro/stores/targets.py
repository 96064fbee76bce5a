"""What Kerchunk JSON and Parquet reference stores share: target files and the read-only store.

A reference maps a Zarr key either to inline bytes or to a byte range of a *target* file
(``[url]`` for the whole file, ``[url, offset, length]`` for a range). This module

* resolves target URLs (relative paths against the reference file, ``remote_protocol`` for
  protocol-less paths) and checks them against the protocol allow-list;
* scopes credentials: the reference file's own options go only to targets on its host or in its
  bucket;
* reads reference documents with a ceiling on their size, compressed or not
  (:func:`read_bounded`, :func:`decompress_if_zstd`);
* fetches target ranges through :class:`~xzaro.stores.fsspec_store.FsspecStore` machinery: the
  ranges of one call are grouped by target file, nearby ones are coalesced
  (:mod:`xzaro.stores.coalesce`, gap limit :data:`DEFAULT_MAX_GAP`) and all requests run
  concurrently with bounded concurrency;
* implements the read-only :class:`~xzaro.stores.base.Store` protocol on top of a
  ``_lookup_many`` that each reference format provides (:class:`ReferenceStoreBase`).

Security: a reference document decides which files the reader opens. By default a reference
file on a remote protocol may only reach :data:`REMOTE_PROTOCOLS`; a local (or in-memory) one may
also reach local files. A relative target path resolves against the reference file's directory
and may not climb out of its host (``http``/``https``: scheme, host and port) or bucket (object
stores). The options given for the reference file (``storage_options``: an ``Authorization``
header, S3 keys) go only to targets at that same location; targets elsewhere are read with no
options (anonymously) unless the caller gives ``remote_options`` for targets. A refused target
raises :class:`~xzaro.errors.StoreError` naming the key and the target.
"""

from __future__ import annotations

import builtins
import os
import posixpath
import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from xzaro.errors import MetadataError, NodeNotFoundError, StoreError, ZaroError
from xzaro.stores.base import BytesLike, RangeRequest
from xzaro.stores.coalesce import MAX_GAP, MAX_REQUEST, plan
from xzaro.stores.fsspec_store import FsspecStore, _Backend, _options_token

#: Ranges of one target file at most this far apart are fetched as one request (the gap is read
#: and discarded): :data:`xzaro.stores.coalesce.MAX_GAP`, 1 MiB, which costs an object store
#: about as much time as one more round trip. The chunks of one HDF5 variable usually lie closer
#: together than that. A merged request never exceeds :data:`~xzaro.stores.coalesce.MAX_REQUEST`.
DEFAULT_MAX_GAP = MAX_GAP

#: The default ceiling on a reference document (a Kerchunk JSON file, decompressed, or a Parquet
#: directory's ``.zmetadata``) and on one Parquet record file's uncompressed columns: 2 GiB. A
#: JSON document that large takes several times as much memory to parse; raise it with the
#: stores' ``max_reference_bytes``.
DEFAULT_MAX_REFERENCE_BYTES = 2 * 2**30
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: Decompressed bytes read at a time.
_ZSTD_STEP = 64 * 2**20

LOCAL_PROTOCOLS = frozenset({"file"})
#: The protocols a reference file on a remote location may reach by default.
REMOTE_PROTOCOLS = frozenset({"http", "https", "s3", "gs", "abfs"})
#: Spellings of the same file system, mapped to the name used in allow-lists.
_ALIASES = {"local": "file", "gcs": "gs", "s3a": "s3", "abfss": "abfs", "az": "abfs"}


def canonical_protocol(protocol: str | None) -> str:
    """The allow-list name of a protocol (``None``, a plain path, is ``"file"``)."""
    if not protocol:
        return "file"
    protocol = protocol.lower()
    return _ALIASES.get(protocol, protocol)


def url_protocols(url: str) -> list[str]:
    """The canonical protocol of every link of a (possibly chained) URL."""
    from fsspec.core import split_protocol

    return [canonical_protocol(split_protocol(link)[0]) for link in url.split("::")]


def default_allowed_protocols(reference_url: str) -> frozenset[str]:
    """The targets a reference file at ``reference_url`` may reach when nothing is said.

    Parameters
    ----------
    reference_url
        Where the reference file (or Parquet reference directory) is.

    Returns
    -------
    frozenset of str
        :data:`REMOTE_PROTOCOLS`, plus ``file`` for a local reference file and ``file`` and
        ``memory`` for an in-memory one.
    """
    where = url_protocols(reference_url)[-1]
    if where == "file":
        return REMOTE_PROTOCOLS | LOCAL_PROTOCOLS
    if where == "memory":
        return REMOTE_PROTOCOLS | LOCAL_PROTOCOLS | {"memory"}
    return REMOTE_PROTOCOLS


def _absolute_reference_url(url: str) -> str:
    if url_protocols(url)[-1] == "file" and "::" not in url:
        from fsspec.core import split_protocol

        return os.path.abspath(os.path.expanduser(split_protocol(url)[1]))
    return url


def check_max_reference_bytes(value: Any) -> int:
    """``value`` if it is a valid ``max_reference_bytes`` (an integer >= 1)."""
    if type(value) is not int or value < 1:
        raise ValueError(f"max_reference_bytes must be an integer >= 1, got {value!r}")
    return value


def _too_large(what: str, max_bytes: int, url: str, key: str | None) -> MetadataError:
    return MetadataError(
        f"{what} holds more than max_reference_bytes={max_bytes} bytes; "
        "open the store with a larger max_reference_bytes to read it",
        url=url,
        key=key,
    )


def read_bounded(
    store: FsspecStore, key: str, max_bytes: int, what: str, url: str | None = None
) -> bytes:
    """The object at ``key`` of ``store``, reading at most ``max_bytes + 1`` bytes of it.

    Parameters
    ----------
    store
        Where the object is.
    key
        Its key (``""``: the store's URL itself).
    max_bytes
        The most bytes it may hold.
    what
        What it is, for messages (``"the reference file"``).
    url
        The URL to name in errors (default: the store's).

    Raises
    ------
    NodeNotFoundError
        It does not exist.
    MetadataError
        It holds more than ``max_bytes`` bytes.
    """
    url = store.url if url is None else url
    data = store.get_ranges([(key, 0, max_bytes + 1)])[0]
    if data is None:
        raise NodeNotFoundError(f"{what} does not exist", url=url, key=key or None)
    if len(data) > max_bytes:
        raise _too_large(what, max_bytes, url, key or None)
    return bytes(data)


def decompress_if_zstd(
    data: bytes, url: str, max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES, key: str | None = None
) -> bytes:
    """Decompress Zstandard-compressed reference data (recognised by its magic number).

    Decompression streams and stops after ``max_bytes + 1`` bytes, so a small compressed
    document can never expand without bound. Concatenated frames are read as one stream.

    Raises
    ------
    MetadataError
        The decompressed data holds more than ``max_bytes`` bytes.
    StoreError
        The data is not valid Zstandard, or the ``zstandard`` package is missing.
    """
    if not data.startswith(_ZSTD_MAGIC):
        return data
    try:
        import zstandard
    except ImportError as exc:
        raise StoreError(
            "reading a Zstandard-compressed reference document needs the zstandard package "
            "(pip install 'xzaro[refs]')",
            url=url,
            key=key,
        ) from exc
    parts: list[bytes] = []
    total = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
            while True:
                part = reader.read(min(max_bytes + 1 - total, _ZSTD_STEP))
                if not part:
                    break
                parts.append(part)
                total += len(part)
                if total > max_bytes:
                    raise _too_large("the decompressed reference document", max_bytes, url, key)
    except zstandard.ZstdError as exc:
        raise StoreError(
            f"could not decompress the zstd reference document: {exc}", url=url, key=key
        ) from exc
    return b"".join(parts)


def _location(url: str) -> tuple[str, ...] | None:
    """Where credentials given for ``url`` belong: ``(scheme, host, port)`` for ``http(s)``,
    ``(protocol, bucket)`` for other remote file systems, ``None`` for local paths."""
    link = url.split("::")[-1]
    if "://" not in link:
        return None
    head, _, rest = link.partition("://")
    protocol = canonical_protocol(head)
    if protocol in ("http", "https"):
        try:
            parts = urlsplit(link)
            port = parts.port or (443 if protocol == "https" else 80)
        except ValueError:
            return (protocol, link)  # unparsable: matches only itself
        return (protocol, (parts.hostname or "").lower(), str(port))
    return (protocol, rest.split("/", 1)[0])


@dataclass(frozen=True)
class Target:
    """A resolved target file: how to open its file system and its path in it."""

    url: str
    #: fsspec protocol (chain) of the file system, e.g. ``"file"``, ``"s3"``.
    protocol: str
    #: The path inside the file system, as the file system expects it.
    path: str
    options_token: str
    allowed: bool


class TargetResolver:
    """Turns the URLs written in references into :class:`Target` objects.

    Parameters
    ----------
    reference_url
        Where the references are (relative target paths resolve against its directory).
    storage_options
        The options used for the reference file; reused for targets at the same location (on
        the same host for ``http``/``https``, in the same bucket for object stores) when
        ``remote_options`` is not given. Targets elsewhere get no options.
    remote_protocol
        The protocol of protocol-less target paths (as with fsspec's ``ReferenceFileSystem``);
        by default such paths are relative to the reference file (or absolute local paths).
    remote_options
        fsspec options for the target file systems.
    allowed_protocols
        The protocols targets may use; default: :func:`default_allowed_protocols` of the
        reference URL, plus ``remote_protocol`` when given.
    """

    def __init__(
        self,
        reference_url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        remote_protocol: str | None = None,
        remote_options: Mapping[str, Any] | None = None,
        allowed_protocols: Collection[str] | None = None,
    ) -> None:
        self.reference_url = _absolute_reference_url(reference_url)
        self.storage_options = dict(storage_options or {})
        self.remote_protocol = remote_protocol
        self.remote_options = None if remote_options is None else dict(remote_options)
        if allowed_protocols is None:
            allowed = set(default_allowed_protocols(self.reference_url))
            if remote_protocol:
                allowed.add(canonical_protocol(remote_protocol))
        else:
            if isinstance(allowed_protocols, str):
                allowed_protocols = [allowed_protocols]
            allowed = {canonical_protocol(p) for p in allowed_protocols}
        self.allowed = frozenset(allowed)
        self._base_protocol = url_protocols(self.reference_url)[-1]
        self._base_location = _location(self.reference_url)
        self._cache: dict[str, Target] = {}
        self._options_by_token: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _absolute(self, url: str, key: str | None = None) -> str:
        """The full URL of a target as written in a reference.

        A relative path is joined to the reference file's directory; on a remote file system
        it may not climb out of the reference file's host or bucket.
        """
        from fsspec.core import split_protocol

        if split_protocol(url)[0] is not None:
            return url
        if self.remote_protocol:
            if canonical_protocol(self.remote_protocol) == "file":
                return os.path.abspath(url)
            return f"{self.remote_protocol}://{url.lstrip('/')}"
        if url.startswith("/") or url.startswith("~"):
            return os.path.abspath(os.path.expanduser(url))
        base = self.reference_url.split("::")[-1]  # a caching wrapper is not the location
        if "://" not in base:  # a local path
            return os.path.normpath(os.path.join(os.path.dirname(base), url))
        head, _, rest = base.partition("://")
        root, _, path = rest.split("?")[0].split("#")[0].partition("/")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), url))
        if joined == ".." or joined.startswith("../"):
            where = "host" if canonical_protocol(head) in ("http", "https") else "bucket"
            raise StoreError(
                f"the reference of {key!r} points to the relative path {url!r}, which leaves the "
                f"{where} {root!r} of the reference file; relative targets stay on it",
                url=self.reference_url,
                key=key,
            )
        return f"{head}://{root}/{joined}"

    def _options(self, protocol: str, full: str) -> dict[str, Any]:
        canonical = canonical_protocol(protocol.split("::")[-1])
        if self.remote_options is not None and (
            not self.remote_protocol or canonical_protocol(self.remote_protocol) == canonical
        ):
            return self.remote_options
        if (
            canonical == self._base_protocol
            and canonical != "file"
            and _location(full) == self._base_location
        ):
            return self.storage_options
        return {}

    def resolve(self, url: str, key: str | None = None) -> Target:
        """The :class:`Target` for a URL as written in a reference (cached per URL).

        Parameters
        ----------
        url
            The target URL or path as written.
        key
            The key whose reference it is, for messages.

        Raises
        ------
        StoreError
            A relative path leaves the reference file's host or bucket, or no file system
            implements the target's protocol.
        """
        target = self._cache.get(url)
        if target is not None:
            return target
        import fsspec
        from fsspec.core import split_protocol

        full = self._absolute(url, key)
        links = full.split("::")
        protocols = url_protocols(full)
        allowed = all(p in self.allowed for p in protocols)
        last_protocol, _ = split_protocol(links[-1])
        chain = "::".join([*links[:-1], last_protocol or "file"])
        if protocols[-1] == "file":
            path = os.path.abspath(split_protocol(links[-1])[1])
        else:
            try:
                cls = fsspec.get_filesystem_class(last_protocol)
            except (ValueError, ImportError) as exc:
                raise StoreError(
                    f"no fsspec implementation for the target protocol {last_protocol!r}: {exc}",
                    url=self.reference_url,
                    key=key,
                ) from exc
            path = cls._strip_protocol(links[-1])
        options = self._options(chain, full) if protocols[-1] != "file" else {}
        target = Target(full, chain, path, _options_token(options), allowed)
        with self._lock:
            self._cache[url] = target
            self._options_by_token[target.options_token] = options
        return target

    def options_for(self, target: Target) -> dict[str, Any]:
        """The fsspec options of a resolved target's file system."""
        return self._options_by_token.get(target.options_token, {})

    def refuse(self, key: str, target: Target) -> StoreError:
        """The error for a target whose protocol is not allowed."""
        return StoreError(
            f"the reference of {key!r} points to {target.url!r}, whose protocol is not allowed "
            f"(allowed: {sorted(self.allowed)}; widen with allowed_protocols=...)",
            url=self.reference_url,
            key=key,
        )


class _TargetFiles(FsspecStore):
    """An :class:`FsspecStore` whose keys are full paths in its file system.

    It reuses the store's lazy per-process file system, local ``pread`` path, bounded async
    batching and error mapping for reads of arbitrary target files.
    """

    def _path(self, backend: _Backend, key: str) -> str:
        return key


_files: dict[tuple[str, str], _TargetFiles] = {}
_files_lock = threading.Lock()


def _target_files(protocol: str, options: Mapping[str, Any], max_concurrency: int) -> _TargetFiles:
    cache_key = (protocol, _options_token(options))
    with _files_lock:
        files = _files.get(cache_key)
        if files is None or files.max_concurrency != max_concurrency:
            files = _TargetFiles(f"{protocol}://", options, max_concurrency=max_concurrency)
            _files[cache_key] = files
    return files


#: A reference after lookup: inline bytes, or ``(target URL, offset, length or None)``.
Reference = bytes | tuple[str, int, int | None]


@dataclass(slots=True)
class _Request:
    key: str
    target: Target
    offset: int
    length: int | None  # None: to the end of the file
    exact: bool  # a shorter answer means the target is shorter than its reference


class TargetFetcher:
    """Fetches byte ranges of target files: grouped per file, coalesced, concurrent.

    Parameters
    ----------
    resolver
        Resolves target URLs and holds the allow-list.
    url
        The reference store's URL, for messages.
    max_gap
        Ranges of one target file at most this many bytes apart are read as one request.
    max_concurrency
        Requests in flight at once per file system (async file systems).
    """

    def __init__(
        self,
        resolver: TargetResolver,
        url: str,
        *,
        max_gap: int = DEFAULT_MAX_GAP,
        max_concurrency: int = 64,
    ) -> None:
        self.resolver = resolver
        self.url = url
        self.max_gap = max_gap
        self.max_concurrency = max_concurrency

    def fetch(
        self,
        requests: Sequence[tuple[str, str, int, int | None]],
        *,
        may_be_short: Collection[int] = (),
    ) -> list[bytes]:
        """Read ``(key, target URL, offset, length)`` ranges; results in request order.

        ``length=None`` reads to the end of the file; a negative ``offset`` (with
        ``length=None``) reads the last ``-offset`` bytes. The requests whose indices are in
        ``may_be_short`` may return fewer bytes than asked (ranges of whole-file references);
        any other short answer is an error.

        Raises
        ------
        StoreError
            A target is refused by the allow-list, does not exist, is shorter than the
            reference says, or cannot be read; the message names the key and the target.
        """
        reqs = []
        targets: dict[str, Target] = {}
        short = set(may_be_short)
        for n, (key, url, offset, length) in enumerate(requests):
            target = targets.get(url)
            if target is None:
                target = targets[url] = self.resolver.resolve(url, key)
            if not target.allowed:
                raise self.resolver.refuse(key, target)
            reqs.append(_Request(key, target, offset, length, n not in short))
        by_fs: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, r in enumerate(reqs):
            by_fs[(r.target.protocol, r.target.options_token)].append(i)
        results: list[bytes | None] = [None] * len(reqs)
        for idxs in by_fs.values():
            self._fetch_one_fs(reqs, idxs, results)
        return results  # type: ignore[return-value]

    def _fetch_one_fs(
        self, reqs: list[_Request], idxs: list[int], results: list[bytes | None]
    ) -> None:
        first = reqs[idxs[0]].target
        files = _target_files(
            first.protocol, self.resolver.options_for(first), self.max_concurrency
        )
        bounded = [i for i in idxs if reqs[i].length is not None and reqs[i].offset >= 0]
        merged = plan(
            [(reqs[i].target.path, reqs[i].offset, reqs[i].length or 0) for i in bounded],
            self.max_gap,
            MAX_REQUEST,
        )
        calls: list[RangeRequest] = [(path, off, n) for path, off, n, _ in merged]
        members: list[list[int]] = [[bounded[m] for m in mem] for *_, mem in merged]
        for i in idxs:
            if reqs[i].length is None or reqs[i].offset < 0:
                calls.append((reqs[i].target.path, reqs[i].offset, None))
                members.append([i])
        try:
            datas = files.get_ranges(calls)
        except ZaroError as exc:
            failed = next((reqs[m] for mem in members for m in mem), reqs[idxs[0]])
            for mem, call in zip(members, calls):
                if call[0] == exc.key:
                    failed = reqs[mem[0]]
                    break
            raise StoreError(
                f"could not read the target {failed.target.url!r} of {failed.key!r}: {exc.message}",
                url=self.url,
                key=failed.key,
            ) from exc
        for call, mem, data in zip(calls, members, datas):
            if data is None:
                r = reqs[mem[0]]
                raise StoreError(
                    f"the target file {r.target.url!r} of {r.key!r} does not exist",
                    url=self.url,
                    key=r.key,
                )
            if len(mem) == 1 and call[1] == reqs[mem[0]].offset:
                self._check(reqs[mem[0]], data)
                results[mem[0]] = bytes(data)
                continue
            view = memoryview(data)
            for m in mem:
                r = reqs[m]
                rel = r.offset - call[1]
                part = view[rel : rel + (r.length or 0)]
                self._check(r, part)
                results[m] = bytes(part)

    def _check(self, r: _Request, data: bytes | memoryview) -> None:
        if r.exact and r.length is not None and r.offset >= 0 and len(data) < r.length:
            raise StoreError(
                f"the target file {r.target.url!r} of {r.key!r} is shorter than the reference "
                f"says (wanted {r.length} bytes at offset {r.offset}, got {len(data)})",
                url=self.url,
                key=r.key,
            )


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

    Subclasses provide ``_lookup_many(keys)``, returning for each key ``None`` (no such key),
    inline bytes, or ``(target URL, offset, length or None)``, and ``_keys()`` for listing.
    """

    url: str
    resolver: TargetResolver
    storage_options: dict[str, Any]
    remote_protocol: str | None
    remote_options: dict[str, Any] | None
    allowed_protocols: list[str] | None
    max_gap: int
    max_concurrency: int
    max_reference_bytes: int
    _fetcher_cache: TargetFetcher | None = None

    def __init__(
        self,
        url: str | os.PathLike[str],
        storage_options: Mapping[str, Any] | None = None,
        *,
        remote_protocol: str | None = None,
        remote_options: Mapping[str, Any] | None = None,
        allowed_protocols: Collection[str] | None = None,
        max_gap: int = DEFAULT_MAX_GAP,
        max_concurrency: int = 64,
        max_reference_bytes: int = DEFAULT_MAX_REFERENCE_BYTES,
    ) -> None:
        self._init(
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

    def _init(
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
        raise NotImplementedError

    def _forget_loaded(self) -> None:
        """Drop this store's references from the per-process cache."""

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
        self._init(**state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _make_fetcher(self) -> TargetFetcher:
        return TargetFetcher(
            self.resolver, self.url, max_gap=self.max_gap, max_concurrency=self.max_concurrency
        )

    @property
    def fetcher(self) -> TargetFetcher:
        """The :class:`TargetFetcher` of this store (created on first use)."""
        fetcher = self._fetcher_cache
        if fetcher is None:
            fetcher = self._fetcher_cache = self._make_fetcher()
        return fetcher

    def _lookup_many(self, keys: Sequence[str]) -> list[Reference | None]:
        raise NotImplementedError

    def _keys(self, prefix: str) -> Iterable[str]:
        raise NotImplementedError

    # --- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """Return the bytes the reference of ``key`` points to, or ``None`` if it has none.

        Parameters
        ----------
        key
            A Zarr key.

        Returns
        -------
        bytes or None
        """
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
        for key, _, length in requests:
            if length is not None and length < 0:
                raise ValueError(f"range length must be >= 0 or None, got {length} for {key!r}")
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
        """Whether ``key`` has a reference.

        Parameters
        ----------
        key
            A Zarr key.

        Returns
        -------
        bool
        """
        return self._lookup_many([key])[0] is not None

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key with a reference at or below the path ``prefix``, sorted.

        Parameters
        ----------
        prefix
            A key path; ``""`` lists every key.

        Returns
        -------
        list of str
        """
        prefix = prefix.strip("/")
        below = prefix + "/"
        return sorted(
            k for k in self._keys(prefix) if not prefix or k == prefix or k.startswith(below)
        )

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (keys and sub-prefixes), sorted.

        Parameters
        ----------
        prefix
            A key path.

        Returns
        -------
        list of str
        """
        prefix = prefix.strip("/")
        below = prefix + "/" if prefix else ""
        return sorted(
            {k[len(below) :].split("/", 1)[0] for k in self._keys(prefix) if k.startswith(below)}
        )

    # --- writes: refused -------------------------------------------------------------------

    def _read_only(self, key: str | None) -> StoreError:
        return StoreError("reference stores are read-only", url=self.url, key=key)

    def set(self, key: str, value: BytesLike) -> None:
        """Refused: reference stores are read-only.

        Raises
        ------
        StoreError
            Always.
        """
        raise self._read_only(key)

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Refused: reference stores are read-only.

        Raises
        ------
        StoreError
            Always.
        """
        raise self._read_only(None)

    def delete(self, key: str) -> None:
        """Refused: reference stores are read-only.

        Raises
        ------
        StoreError
            Always.
        """
        raise self._read_only(key)
