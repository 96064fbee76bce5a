"""Opening an Icechunk repository at a path or URL, and a store on one of its versions.

The URL form is ``icechunk://<repository location>[?branch=NAME | ?tag=NAME | ?snapshot=ID]``:
the location is spelled as everywhere else in xzaro (a local path, ``file://``, ``s3://bucket/
prefix``, ``gs://bucket/prefix``) and ``storage_options`` apply to it, as they apply to the
reference file of ``reference+json://<url>``. The version is not part of the location, so it
goes in the query.

Virtual chunks are read only from the virtual chunk containers whose URL prefix the target
allow-list admits (:mod:`xzaro.stores.references.allowlist`, the same protocols a reference
file at the repository's location may reach); Icechunk itself refuses to read a chunk of any
other container, and that refusal is a :class:`~xzaro.errors.StoreError` naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from xzaro.errors import NodeExistsError, NodeNotFoundError, StoreError
from xzaro.stores.icechunk.store import IcechunkStore, icechunk_message
from xzaro.stores.references.allowlist import (
    REMOTE_PROTOCOLS,
    absolute_reference_url,
    default_allowed_protocols,
    url_protocols,
)

if TYPE_CHECKING:
    from icechunk import Repository, Storage

#: The URL scheme of an Icechunk repository.
SCHEME = "icechunk://"
MODES = ("r", "r+", "a", "w", "w-")
#: fsspec's names of S3 options, and Icechunk's.
_S3_NAMES = {
    "key": "access_key_id",
    "secret": "secret_access_key",
    "token": "session_token",
    "anon": "anonymous",
    "region_name": "region",
}
_S3_OPTIONS = (
    "region",
    "endpoint_url",
    "allow_http",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "anonymous",
    "force_path_style",
    "requester_pays",
)
_GCS_OPTIONS = (
    "service_account_file",
    "service_account_key",
    "application_credentials",
    "bearer_token",
    "anonymous",
    "config",
)


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """``(repository location, {"branch"|"tag"|"snapshot": value})`` of an ``icechunk://`` URL.

    Raises
    ------
    ValueError
        Not an ``icechunk://`` URL, an unknown or repeated query parameter, or two versions.
    """
    if not url.lower().startswith(SCHEME):
        raise ValueError(f"not an {SCHEME} URL: {url!r}")
    location, _, query = url[len(SCHEME) :].partition("?")
    fields = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    unknown = sorted(set(fields) - {"branch", "tag", "snapshot"})
    if unknown:
        raise ValueError(f"unknown {SCHEME} URL parameter(s) {unknown}: {url!r}")
    if any(len(v) != 1 for v in fields.values()) or len(fields) > 1:
        raise ValueError(f"an {SCHEME} URL names at most one branch, tag or snapshot: {url!r}")
    if not location:
        raise ValueError(f"an {SCHEME} URL names the repository's location: {url!r}")
    return location, {k: v[0] for k, v in fields.items()}


def _split_bucket(location: str) -> tuple[str, str | None]:
    rest = location.split("://", 1)[1]
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/") or None


def _s3_options(options: dict[str, Any]) -> dict[str, Any]:
    """fsspec-style S3 options (``key``, ``secret``, ``client_kwargs``...) as Icechunk's."""
    client = dict(options.pop("client_kwargs", None) or {})
    for name in ("endpoint_url", "region_name"):
        if name in client:
            options.setdefault(name, client.pop(name))
    if client:
        raise ValueError(f"unknown S3 client_kwargs for an Icechunk repository: {sorted(client)}")
    out = {_S3_NAMES.get(name, name): value for name, value in options.items()}
    unknown = sorted(set(out) - set(_S3_OPTIONS))
    if unknown:
        raise ValueError(f"unknown storage_options for an S3 Icechunk repository: {unknown}")
    endpoint = out.get("endpoint_url")
    if endpoint and str(endpoint).startswith("http://"):
        out.setdefault("allow_http", True)
        out.setdefault("force_path_style", True)
    return out


def storage_for(location: str, storage_options: Mapping[str, Any] | None = None) -> Storage:
    """The Icechunk ``Storage`` of a repository location (local path, ``s3://``, ``gs://``).

    Raises
    ------
    ValueError
        An option the storage does not take (never ignored), or a protocol Icechunk has no
        storage for here.
    """
    import icechunk

    options = dict(storage_options or {})
    protocol = url_protocols(location)[-1]
    if "::" in location:
        raise ValueError(f"a chained URL is not an Icechunk repository location: {location!r}")
    if protocol == "file":
        if options:
            raise ValueError(f"a local Icechunk repository takes no storage_options: {options}")
        return icechunk.local_filesystem_storage(absolute_reference_url(location))
    if protocol == "s3":
        bucket, prefix = _split_bucket(location)
        return icechunk.s3_storage(bucket=bucket, prefix=prefix, **_s3_options(options))
    if protocol == "gs":
        unknown = sorted(set(options) - set(_GCS_OPTIONS))
        if unknown:
            raise ValueError(f"unknown storage_options for a GCS Icechunk repository: {unknown}")
        bucket, prefix = _split_bucket(location)
        return icechunk.gcs_storage(bucket=bucket, prefix=prefix, **options)
    raise ValueError(
        f"no Icechunk storage for protocol {protocol!r} (local paths, s3:// and gs:// are "
        "known; pass an icechunk Storage or Repository for others)"
    )


def authorized_containers(
    storage: Storage,
    allowed: Iterable[str],
    credentials: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The virtual chunk containers of the repository that the allow-list admits, with
    their credentials (``None``: Icechunk's defaults) for ``Repository.open``.

    Raises
    ------
    ValueError
        ``credentials`` are given for a container the repository does not have, or one the
        allow-list refuses (they would be ignored).
    """
    import icechunk

    allowed = frozenset(allowed)
    config = icechunk.Repository.fetch_config(storage)
    prefixes = list((config.virtual_chunk_containers or {}) if config is not None else {})
    admitted = [p for p in prefixes if set(url_protocols(p)) <= allowed]
    credentials = dict(credentials or {})
    refused = sorted(set(credentials) - set(admitted))
    if refused:
        raise ValueError(
            f"virtual_credentials for containers that are not read: {refused} (the repository's "
            f"containers: {sorted(prefixes)}; allowed protocols: {sorted(allowed)})"
        )
    return {prefix: credentials.get(prefix) for prefix in admitted}


def _session(repo: Repository, mode: str, versions: dict[str, str | None], url: str) -> Any:
    """The session of ``repo`` the mode and version ask for."""
    branch, tag, snapshot = versions.get("branch"), versions.get("tag"), versions.get("snapshot")
    given = [name for name in ("branch", "tag", "snapshot") if versions.get(name)]
    if len(given) > 1:
        raise ValueError(f"give one of branch, tag or snapshot_id, not {given}")
    if mode == "r":
        if tag or snapshot:
            return repo.readonly_session(tag=tag, snapshot_id=snapshot)
        return repo.readonly_session(branch or "main")
    if tag or snapshot:
        raise ValueError(f"mode {mode!r} writes to a branch; a tag or snapshot is read-only")
    return repo.writable_session(branch or "main")


def open_repository(
    storage: Storage, mode: str, allowed: Iterable[str], credentials: Any, url: str
) -> Repository:
    """Open (or, by mode, create) the repository in ``storage``."""
    import icechunk

    exists = icechunk.Repository.exists(storage)
    if mode in ("r", "r+") and not exists:
        raise NodeNotFoundError("no Icechunk repository here", url=url)
    if mode == "w-" and exists:
        raise NodeExistsError("mode 'w-' refuses an existing Icechunk repository", url=url)
    if not exists:
        return icechunk.Repository.create(storage)
    auth = authorized_containers(storage, allowed, credentials)
    return icechunk.Repository.open(storage, authorize_virtual_chunk_access=auth)


def _location(url_or_storage: Any, versions: dict[str, str | None]) -> str | None:
    """The repository location of a path or URL (``None`` for objects); the version an
    ``icechunk://`` URL names goes into ``versions``."""
    if not isinstance(url_or_storage, str | os.PathLike):
        return None
    location = os.fspath(url_or_storage).strip()
    if location.lower().startswith(SCHEME):
        location, from_url = parse_url(location)
        for name, value in from_url.items():
            if versions[name] not in (None, value):
                raise ValueError(f"{name} is given twice: {versions[name]!r} and {value!r}")
            versions[name] = value
    return absolute_reference_url(location)


def open_error(exc: BaseException, url: str) -> StoreError | NodeNotFoundError:
    """The xzaro error of Icechunk's failure to open a repository or one of its versions."""
    text = icechunk_message(exc)
    error = NodeNotFoundError if "not found" in text.lower() else StoreError
    return error(f"could not open the Icechunk repository: {text}", url=url)


def _allowed(location: str | None, allowed_protocols: Iterable[str] | None) -> frozenset[str]:
    """The protocols of the virtual chunk containers that may be read."""
    if allowed_protocols is not None:
        return frozenset(allowed_protocols)
    # a Storage object's location is unknown: remote targets only
    return default_allowed_protocols(location) if location else REMOTE_PROTOCOLS


def open_icechunk(
    url_or_storage: str | os.PathLike[str] | Any,
    *,
    branch: str | None = None,
    tag: str | None = None,
    snapshot_id: str | None = None,
    mode: str = "r",
    storage_options: Mapping[str, Any] | None = None,
    allowed_protocols: Iterable[str] | None = None,
    virtual_credentials: Mapping[str, Any] | None = None,
) -> IcechunkStore:
    """A store on one version of an Icechunk repository.

    Parameters
    ----------
    url_or_storage
        An ``icechunk://`` URL (which may name the version), a repository location (local
        path, ``file://``, ``s3://bucket/prefix``, ``gs://bucket/prefix``), an
        ``icechunk.Storage`` or an ``icechunk.Repository`` (used as opened).
    branch, tag, snapshot_id
        The version: at most one (the URL's counts too); ``branch="main"`` when none is given.
    mode
        ``"r"`` reads; the others open a writable session on the branch, written to the branch
        only by :meth:`IcechunkStore.commit`: ``"r+"`` needs an existing repository, ``"a"``
        and ``"w"`` create one if there is none, ``"w-"`` needs there to be none.
    storage_options
        Options of the location: fsspec's S3 names (``key``, ``secret``, ``endpoint_url``,
        ``client_kwargs={"region_name": ...}``, ``anon``) or Icechunk's ``s3_storage`` and
        ``gcs_storage`` names; an option that does not apply is an error.
    allowed_protocols
        Protocols of the virtual chunk containers that may be read (default: those a
        reference file at the same location may reach).
    virtual_credentials
        Icechunk credentials by container URL prefix (``icechunk.containers_credentials``),
        for admitted containers only.

    Raises
    ------
    NodeNotFoundError
        No repository there (modes ``"r"``, ``"r+"``), or no such branch, tag or snapshot.
    NodeExistsError
        Mode ``"w-"`` and a repository exists.
    StoreError
        Icechunk could not open the repository or the version (its message says why).

    Notes
    -----
    A user's own session (:func:`~xzaro.stores.icechunk.icechunk_store_for`) is used as is: the
    containers it may read were decided when its repository was opened.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    import icechunk

    versions: dict[str, str | None] = {"branch": branch, "tag": tag, "snapshot": snapshot_id}
    location = _location(url_or_storage, versions)
    url = f"{SCHEME}{location or '<storage>'}"
    try:
        if isinstance(url_or_storage, icechunk.Repository):
            if storage_options or allowed_protocols is not None or virtual_credentials:
                raise ValueError(
                    "an opened Repository takes no storage_options, allowed_protocols or "
                    "virtual_credentials (they were given when it was opened)"
                )
            repo = url_or_storage
        else:
            storage = (
                url_or_storage
                if isinstance(url_or_storage, icechunk.Storage)
                else storage_for(location or "", storage_options)
            )
            allowed = _allowed(location, allowed_protocols)
            repo = open_repository(storage, mode, allowed, virtual_credentials, url)
        session = _session(repo, mode, versions, url)
    except (ValueError, TypeError, NodeNotFoundError, NodeExistsError):
        raise
    except Exception as exc:
        raise open_error(exc, url) from exc
    read_at = None if versions["tag"] or versions["snapshot"] else versions["branch"] or "main"
    return IcechunkStore(session, location=location, branch=read_at)
