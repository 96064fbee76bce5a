"""A store over a file system, chosen by URL: a local directory or file, or an fsspec URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xzaro.stores.fsspec_store import DEFAULT_MAX_CONCURRENCY, FsspecStore
from xzaro.stores.local import LocalStore, is_local_url


def open_file_store(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> LocalStore | FsspecStore:
    """A :class:`~xzaro.stores.local.LocalStore` for a local path or ``file://`` URL, else an
    :class:`~xzaro.stores.fsspec_store.FsspecStore` (chained URLs included).

    Parameters
    ----------
    url
        The store's root (the key ``""`` reads the root itself, when it is a file).
    storage_options
        fsspec options.
    max_concurrency
        Requests in flight at once (async file systems).
    """
    if is_local_url(url):
        return LocalStore(url, storage_options)
    return FsspecStore(url, storage_options, max_concurrency=max_concurrency)
