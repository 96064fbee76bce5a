"""Reading target files: byte ranges grouped per file, coalesced, fetched concurrently.

The ranges of one call are grouped by target file system, nearby ranges of one file are
coalesced (:mod:`xzaro.stores.coalesce`, gap limit :data:`DEFAULT_MAX_GAP`) and the requests of
each file system run at once with bounded concurrency, through the stores' own machinery: a
:class:`~xzaro.stores.local.LocalStore` for local files (positional reads), an
:class:`~xzaro.stores.fsspec_store.FsspecStore` for the rest (async batches, checked ranges,
error mapping), each with full paths as keys.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xzaro.errors import StoreError, ZaroError
from xzaro.stores.base import RangeRequest
from xzaro.stores.coalesce import MAX_GAP, MAX_REQUEST, plan
from xzaro.stores.fsspec_store import FsspecStore, options_token
from xzaro.stores.local import LocalStore
from xzaro.stores.references.allowlist import canonical_protocol
from xzaro.stores.references.targets import Target, TargetResolver

#: Ranges of one target file at most this far apart are fetched as one request (the gap is read
#: and discarded): :data:`xzaro.stores.coalesce.MAX_GAP`, 1 MiB, which costs an object store
#: about as much time as one more round trip. The chunks of one HDF5 variable usually lie closer
#: together than that. A merged request never exceeds :data:`~xzaro.stores.coalesce.MAX_REQUEST`.
DEFAULT_MAX_GAP = MAX_GAP


#: A reference after lookup: inline bytes, or ``(target URL, offset, length or None)``.
Reference = bytes | tuple[str, int, int | None]


class LocalTargetFiles(LocalStore):
    """A :class:`~xzaro.stores.local.LocalStore` whose keys are absolute paths of local files."""

    def local_path(self, key: str) -> str:
        """``key`` itself: the resolver made it an absolute path."""
        return key


class RemoteTargetFiles(FsspecStore):
    """An :class:`~xzaro.stores.fsspec_store.FsspecStore` whose keys are full paths in its file
    system."""

    def path_of(self, key: str) -> str:
        """``key`` itself: the resolver made it a path of the file system."""
        return key


_files: dict[tuple[str, str], LocalTargetFiles | RemoteTargetFiles] = {}
_files_lock = threading.Lock()


def target_files(
    protocol: str, options: Mapping[str, Any], max_concurrency: int
) -> LocalTargetFiles | RemoteTargetFiles:
    """The store that reads the files of a target file system (one per protocol, options and
    concurrency, kept for the process).

    Parameters
    ----------
    protocol
        The fsspec protocol (chain) of the file system, as in :attr:`Target.protocol`.
    options
        Its fsspec options.
    max_concurrency
        Requests in flight at once (async file systems).
    """
    cache_key = (protocol, options_token(options))
    with _files_lock:
        files = _files.get(cache_key)
        if files is None or (
            isinstance(files, RemoteTargetFiles) and files.max_concurrency != max_concurrency
        ):
            if "::" not in protocol and canonical_protocol(protocol) == "file":
                files = LocalTargetFiles("/")
            else:
                files = RemoteTargetFiles(
                    f"{protocol}://", options, max_concurrency=max_concurrency
                )
            _files[cache_key] = files
    return files


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
        files = target_files(first.protocol, self.resolver.options_for(first), self.max_concurrency)
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
