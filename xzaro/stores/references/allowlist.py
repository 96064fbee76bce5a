"""Which files a reference file may point to, and where its credentials may go.

A reference document decides which files the reader opens. By default a reference file on a
remote protocol may only reach :data:`REMOTE_PROTOCOLS`; a local (or in-memory) one may also
reach local files. The options given for the reference file (an ``Authorization`` header, S3
keys) belong to its own location (:func:`location`): the same host for ``http``/``https``, the
same bucket for object stores.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

#: The protocols a local reference file may reach besides :data:`REMOTE_PROTOCOLS`.
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


def chain_links(url: str) -> list[str]:
    """The links of a chained fsspec URL (``simplecache::s3://b/k``), outermost first.

    ``::`` separates links except inside square brackets, where it belongs to an IPv6 host
    (``http://[::1]:8000/k`` is one link)."""
    return _CHAIN_SEPARATOR.split(url)


#: ``::`` not followed by a ``]`` before any ``[``: not inside an IPv6 host's brackets.
_CHAIN_SEPARATOR = re.compile(r"::(?![^\[]*\])")


def url_protocols(url: str) -> list[str]:
    """The canonical protocol of every link of a (possibly chained) URL.

    As in fsspec, a link before the last written without ``://`` is a protocol's name
    (``simplecache`` in ``simplecache::s3://b/k``); a last link without one is a local path.
    """
    from fsspec.core import split_protocol

    links = chain_links(url)
    out = []
    for i, link in enumerate(links):
        protocol = split_protocol(link)[0]
        if protocol is None and i < len(links) - 1 and _WRAPPER_NAME.fullmatch(link):
            protocol = link
        out.append(canonical_protocol(protocol))
    return out


#: What a link without ``://`` before the last must look like to be a protocol's name.
_WRAPPER_NAME = re.compile(r"[a-z][a-z0-9+.-]*")


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


def absolute_reference_url(url: str) -> str:
    """``url`` with a local path made absolute (other URLs as they are)."""
    if url_protocols(url)[-1] == "file" and len(chain_links(url)) == 1:
        from fsspec.core import split_protocol

        path: str = split_protocol(url)[1]
        return os.path.abspath(os.path.expanduser(path))
    return url


def location(url: str) -> tuple[str, ...] | None:
    """Where credentials given for ``url`` belong: ``(scheme, host, port)`` for ``http(s)``,
    ``(protocol, bucket)`` for other remote file systems, ``None`` for local paths."""
    link = chain_links(url)[-1]
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
