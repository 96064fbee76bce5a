"""Target files of references: their full URLs, their file systems and their credentials.

A reference maps a Zarr key either to inline bytes or to a byte range of a *target* file
(``[url]`` for the whole file, ``[url, offset, length]`` for a range). :class:`TargetResolver`
turns the URL written in a reference into a :class:`Target`: relative paths resolve against the
reference file's directory and may not climb out of its host (``http``/``https``: scheme, host
and port) or bucket (object stores); protocol-less paths take ``remote_protocol``; the
reference file's own options go only to targets at its location, targets elsewhere are read
with ``remote_options`` or with no options (anonymously); and every link of the target's URL is
checked against the allow-list (:mod:`xzaro.stores.references.allowlist`). A refused target
raises :class:`~xzaro.errors.StoreError` naming the key and the target.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from xzaro.errors import StoreError
from xzaro.stores.fsspec_store import options_token
from xzaro.stores.references.allowlist import (
    absolute_reference_url,
    canonical_protocol,
    chain_links,
    default_allowed_protocols,
    location,
    url_protocols,
)


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
        self.reference_url = absolute_reference_url(reference_url)
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
        self._base_location = location(self.reference_url)
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
        base = chain_links(self.reference_url)[-1]  # a caching wrapper is not the location
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
        canonical = canonical_protocol(chain_links(protocol)[-1])
        if self.remote_options is not None and (
            not self.remote_protocol or canonical_protocol(self.remote_protocol) == canonical
        ):
            return self.remote_options
        if (
            canonical == self._base_protocol
            and canonical != "file"
            and location(full) == self._base_location
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
        links = chain_links(full)
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
        target = Target(full, chain, path, options_token(options), allowed)
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
