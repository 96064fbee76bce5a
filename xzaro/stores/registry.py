"""The scheme table: ``open_store`` turns a path or URL into a :class:`~xzaro.stores.base.Store`.

Local paths and ``file://`` URLs open a :class:`~xzaro.stores.local.LocalStore`; reference
URLs (``reference+json://``, ``reference+parquet://``, ``virtualizarr://``, and paths that
name a reference file or directory) a reference store (:mod:`xzaro.stores.references`); every
other URL, chained ones included, an :class:`~xzaro.stores.fsspec_store.FsspecStore`.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from xzaro.errors import NodeNotFoundError, StoreError
from xzaro.log import info
from xzaro.stores.base import Store
from xzaro.stores.fsspec_store import FsspecStore
from xzaro.stores.icechunk import SCHEME as ICECHUNK_SCHEME
from xzaro.stores.icechunk import icechunk_store_for, open_icechunk
from xzaro.stores.local import LocalStore, is_local_url
from xzaro.stores.obstore_options import is_obstore_object, scheme_of, translate_options
from xzaro.stores.obstore_store import ObstoreStore, from_obstore
from xzaro.stores.urls import normalize_url, public_bucket_options

if TYPE_CHECKING:
    from fsspec.mapping import FSMap

MODES = ("r", "r+", "a", "w", "w-")
#: The clients of remote stores (``storage_options={"client": ...}`` or ``XZARO_CLIENT``).
CLIENTS = ("auto", "obstore", "fsspec")
#: Whether ``"auto"`` picks obstore where it is installed and can serve the URL. It makes about
#: a third fewer CPU seconds per request than aiohttp through fsspec and reads thousands of small
#: objects over a 20 ms link in half the time; fsspec stays the path for every other URL.
AUTO_PREFERS_OBSTORE = True
#: URL schemes of reference stores, and which format each one means.
REFERENCE_SCHEMES = {
    "reference+json://": "json",
    "reference+parquet://": "parquet",
    "virtualizarr://": None,  # JSON for *.json / *.json.zst, else a Parquet directory
}
_JSON_SUFFIXES = (".json", ".json.zst")
#: ``storage_options`` entries that configure a reference store rather than fsspec.
_REFERENCE_OPTIONS = (
    "remote_protocol",
    "remote_options",
    "allowed_protocols",
    "max_gap",
    "max_reference_bytes",
)
_LOCAL_PROTOCOLS = ("file", "local")
# fsspec's own HTTP file system; what does the work underneath is aiohttp
_LIBRARY_NAMES = {"http": "aiohttp", "https": "aiohttp"}


def open_store(
    url_or_store: str | os.PathLike[str] | Store | FSMap,
    storage_options: Mapping[str, Any] | None = None,
    *,
    mode: str = "r",
) -> Store:
    """Open the store at a path or URL.

    Parameters
    ----------
    url_or_store
        A store (returned as is), a local path (relative, absolute or ``~``), or a URL:
        ``file://``, ``memory://``, ``s3://``, ``gs://``/``gcs://``, ``http(s)://``, any other
        fsspec protocol, or a chained fsspec URL such as ``simplecache::s3://bucket/x``.
        Reference stores (read-only): ``reference+json://<url>`` (Kerchunk JSON),
        ``reference+parquet://<url>`` (kerchunk/VirtualiZarr Parquet directory),
        ``virtualizarr://<url>`` (either: JSON if it ends in ``.json``/``.json.zst``), a plain
        path or URL ending in ``.json``/``.json.zst`` (not ``zarr.json``) or ``.parq``, or a
        local directory whose ``.zmetadata`` has a ``record_size``. An fsspec mapper
        (``fsspec.get_mapper(url)``, ``s3fs.S3Map``) opens the store at its URL with its file
        system's options. An Icechunk ``Session`` (or its store) reads and writes that session;
        ``icechunk://<location>[?branch=...|?tag=...|?snapshot=...]`` opens a repository
        (:func:`~xzaro.stores.icechunk.open_icechunk`). A pasted web URL of an S3 or GCS
        object, bucket browser or console page is read as the ``s3://``/``gs://`` URL it means
        (:func:`~xzaro.stores.urls.normalize_url`; logged).
    storage_options
        Options for the fsspec file system (credentials, endpoint, ...). For reference stores
        they apply to the reference file, except ``remote_protocol``, ``remote_options``,
        ``allowed_protocols`` and ``max_gap`` (see
        :class:`~xzaro.stores.references.kerchunk.ReferenceStore`); fsspec's ``target_options`` are
        merged in. A well-known public bucket (:data:`~xzaro.stores.urls.PUBLIC_BUCKETS`) is read
        anonymously unless these give credentials (logged). ``"client"``: ``"obstore"``,
        ``"fsspec"`` or ``"auto"`` (the default; see :func:`client_for`).
    mode
        ``"r"`` (read; a missing local path is an error), ``"r+"``, ``"a"``, ``"w"`` or ``"w-"``.

    Returns
    -------
    Store

    Raises
    ------
    NodeNotFoundError
        A local path does not exist and ``mode`` is ``"r"`` or ``"r+"``.
    StoreError
        No fsspec implementation is known (or installed) for the URL's protocol, or a mapper's
        file system wraps another one (pass the chained URL instead).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(url_or_store, Store):
        return url_or_store
    wrapped = icechunk_store_for(url_or_store)
    if wrapped is not None:
        return wrapped
    if is_obstore_object(url_or_store):
        return from_obstore(url_or_store)
    if not isinstance(url_or_store, str | os.PathLike):
        from fsspec.mapping import FSMap  # only now: importing fsspec takes a while

        if not isinstance(url_or_store, FSMap):
            raise TypeError(
                f"expected a path, URL, fsspec mapper or Store, got {type(url_or_store).__name__}"
            )
        url_or_store, mapper_options = mapper_url(url_or_store)
        storage_options = {**mapper_options, **(storage_options or {})}
    url = os.fspath(url_or_store)
    if not isinstance(url, str):
        raise TypeError(f"expected a str path, URL or Store, got {type(url_or_store).__name__}")
    if url.strip().lower().startswith(ICECHUNK_SCHEME):
        return open_icechunk(url.strip(), storage_options=storage_options, mode=mode)
    url, options = _normalized(url.strip(), dict(storage_options or {}), mode)

    kind, target = _reference_kind(url)
    if kind is not None:
        return _open_reference(kind, target, options, mode)

    if is_local_url(url):
        return _open_local(url, _split_protocol(url)[1], options, mode)
    return _open_remote(url, options)


def _open_remote(url: str, options: dict[str, Any]) -> Store:
    """An :class:`~xzaro.stores.obstore_store.ObstoreStore` where the client is obstore (see
    :func:`client_for`), else an :class:`~xzaro.stores.fsspec_store.FsspecStore`."""
    client = client_for(url, options)
    options.pop("client", None)
    if client == "obstore":
        store: Store = ObstoreStore(url, options)
        info("opened %s with obstore", store.url)
        return store
    backend = " over ".join(_backend_name(link.strip(), url) for link in url.split("::"))
    store = FsspecStore(url, options)
    info("opened %s with %s", store.url, backend)
    return store


def client_for(url: str, options: Mapping[str, Any]) -> str:
    """``"obstore"`` or ``"fsspec"``: the client that serves a remote ``url``.

    ``storage_options={"client": ...}`` chooses, else the ``XZARO_CLIENT`` environment variable,
    else (when :data:`AUTO_PREFERS_OBSTORE`) obstore when it is installed and can serve the URL
    with these options (``s3://``, ``gs://``, ``az://``, ``http(s)://``; not chained URLs, not a
    ``gs://`` emulator endpoint), else fsspec.

    Raises
    ------
    StoreError
        The choice is neither ``"obstore"``, ``"fsspec"`` nor ``"auto"``, or obstore is asked
        for and cannot serve the URL.
    """
    choice = str(options.get("client") or os.environ.get("XZARO_CLIENT") or "auto").lower()
    if choice not in CLIENTS:
        raise StoreError(f"client must be one of {CLIENTS}, got {choice!r}", url=url)
    if choice == "fsspec":
        return choice
    if choice == "auto" and not AUTO_PREFERS_OBSTORE:
        return "fsspec"
    family = None if "::" in url else scheme_of(url)
    rest = {k: v for k, v in options.items() if k != "client"}
    translation = translate_options(url, rest) if family else None
    if choice == "obstore":
        if translation is None or translation.config is None:
            reason = translation.reason if translation else "not an s3, gs, az or http(s) URL"
            raise StoreError(f"obstore cannot serve this store: {reason}", url=url)
        return choice
    if translation is None or importlib.util.find_spec("obstore") is None:
        return "fsspec"
    if translation.config is None:
        info("%s opens with fsspec: %s", url, translation.reason)
        return "fsspec"
    if family == "gcs" and ("endpoint_url" in rest or "endpoint" in rest):
        return "fsspec"  # GCS emulators speak the JSON API obstore does not use
    return "obstore"


def _normalized(url: str, options: dict[str, Any], mode: str) -> tuple[str, dict[str, Any]]:
    """``url`` as :func:`~xzaro.stores.urls.normalize_url` reads it, and the options to open it
    with: those the URL implies under the caller's own, and (for reading) anonymous access to a
    well-known public bucket when the caller gave no credentials."""
    normalized = normalize_url(url)
    if normalized.changed:
        info("reading %s as %s", url, normalized.url)
        options = merge_options(normalized.storage_options, options)
    anonymous = public_bucket_options(normalized.url, options) if mode == "r" else None
    if anonymous is not None:
        info("%s is a public bucket: opening it anonymously (%s)", normalized.url, anonymous)
        options = {**options, **anonymous}
    return normalized.url, options


def merge_options(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``override``; ``client_kwargs`` and ``config_kwargs`` are merged
    entry by entry, ``override`` winning."""
    merged = {**base, **override}
    for name in ("client_kwargs", "config_kwargs"):
        if isinstance(base.get(name), Mapping) and isinstance(override.get(name), Mapping):
            merged[name] = {**base[name], **override[name]}
    return merged


def mapper_url(mapper: FSMap) -> tuple[str, dict[str, Any]]:
    """The URL and file system options of an fsspec mapper's root.

    Raises
    ------
    StoreError
        The mapper's file system wraps another one (``simplecache::s3://...``), whose URL the
        mapper does not say.
    """
    fs = mapper.fs
    url = fs.unstrip_protocol(mapper.root)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    scheme, _ = _split_protocol(url)
    if scheme not in protocols:
        raise StoreError(
            f"the mapper's file system ({type(fs).__name__}, protocol {protocols[0]!r}) wraps "
            f"another one; open its chained URL ('{protocols[0]}::{url}') with storage_options "
            "instead",
            url=url,
        )
    return url, dict(fs.storage_options)


def glob(pattern: str, storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """The paths or URLs that a glob pattern matches, sorted.

    Stores are directories (``"s3://bucket/run-*.zarr"``), so directories match as well as
    files. Local patterns give absolute paths, others URLs with the pattern's protocol; each
    opens with :func:`open_store` and the same ``storage_options``.

    Raises
    ------
    StoreError
        The file system cannot be listed (network, credentials), or the pattern is a chained
        URL (``simplecache::s3://...``), which has no single file system to list.
    """
    if "::" in pattern:
        raise StoreError(
            "glob patterns in chained URLs are not supported; list the stores instead",
            url=pattern,
        )
    import fsspec

    local = is_local_url(pattern)
    path = _split_protocol(pattern)[1]
    if local:
        pattern = os.path.abspath(os.path.expanduser(path))
    try:
        fs, path = fsspec.core.url_to_fs(pattern, **dict(storage_options or {}))
        fs.invalidate_cache()  # see stores written since the last listing
        found = sorted(fs.glob(path))
    except Exception as exc:
        raise StoreError(f"could not list the matches of the pattern: {exc}", url=pattern) from exc
    return found if local else [fs.unstrip_protocol(p) for p in found]


def _reference_kind(url: str) -> tuple[str | None, str]:
    """``("json" | "parquet", url of the references)``, or ``(None, url)`` for other stores."""
    for scheme, kind in REFERENCE_SCHEMES.items():
        if url.lower().startswith(scheme):
            inner = url[len(scheme) :]
            if kind is None:
                kind = "json" if inner.lower().endswith(_JSON_SUFFIXES) else "parquet"
            return kind, inner
    last = url.split("::")[-1].split("?")[0].rstrip("/")
    name = last.rsplit("/", 1)[-1].lower()
    if name.endswith(_JSON_SUFFIXES) and name not in ("zarr.json", ".zmetadata"):
        return "json", url
    if name.endswith((".parq", ".parquet")):
        return "parquet", url
    if is_local_url(url) and _is_parquet_refs_dir(_split_protocol(url)[1]):
        return "parquet", url
    return None, url


def _is_parquet_refs_dir(path: str) -> bool:
    """Whether a local directory holds a Parquet reference ``.zmetadata`` (with record_size)."""
    local = os.path.abspath(os.path.expanduser(path))
    meta = os.path.join(local, ".zmetadata")
    if not os.path.isfile(meta) or os.path.exists(os.path.join(local, ".zgroup")):
        return False
    try:
        with open(meta, "rb") as f:
            data = f.read()
        return b'"record_size"' in data and "record_size" in json.loads(data)
    except (OSError, ValueError, TypeError):
        return False


def _open_reference(kind: str, url: str, options: dict[str, Any], mode: str) -> Store:
    from xzaro.stores.references import ParquetReferenceStore, ReferenceStore

    if mode != "r":
        raise StoreError(f"reference stores are read-only (mode={mode!r})", url=url)
    kwargs = {name: options.pop(name) for name in _REFERENCE_OPTIONS if name in options}
    options.update(options.pop("target_options", None) or {})
    options.pop("target_protocol", None)
    store: ReferenceStore | ParquetReferenceStore
    if kind == "json":
        store = ReferenceStore(url, options, **kwargs)
        backend = "Kerchunk JSON references"
    else:
        store = ParquetReferenceStore(url, options, **kwargs)
        backend = "Parquet references (kerchunk/VirtualiZarr)"
    info("opened %s with %s (%s)", store.url, backend, type(store).__name__)
    return store


def _split_protocol(url: str) -> tuple[str | None, str]:
    if "://" not in url and not url.startswith("data:"):
        return None, url  # fsspec's answer for a plain path, without importing fsspec
    from fsspec.core import split_protocol

    protocol, path = split_protocol(url)
    return (protocol.lower() if protocol else None), path


def _open_local(url: str, path: str, options: dict[str, Any], mode: str) -> LocalStore:
    local = os.path.abspath(os.path.expanduser(path))
    if mode in ("r", "r+") and not os.path.exists(local):
        raise NodeNotFoundError(f"no such local path (No such file or directory): {local}", url=url)
    store = LocalStore(local, options)
    info("opened %s with %s", store.url, "local")
    return store


def _backend_name(link: str, url: str) -> str:
    """``"s3 (s3fs)"``: the protocol and the library serving it, for verbose messages."""
    import fsspec

    protocol = link.lower() if "://" not in link and link.isidentifier() else None
    if protocol is None:
        protocol, _ = _split_protocol(link)
    if protocol is None or protocol in _LOCAL_PROTOCOLS:
        return "local"
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ValueError as exc:
        raise StoreError(f"no fsspec implementation for protocol {protocol!r}", url=url) from exc
    except ImportError as exc:
        raise StoreError(
            f"protocol {protocol!r} needs a package that is not installed: {exc}", url=url
        ) from exc
    library = _LIBRARY_NAMES.get(protocol, cls.__module__.split(".")[0])
    return f"{protocol} ({library})"
