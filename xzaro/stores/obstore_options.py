"""fsspec-style ``storage_options`` and :class:`~xzaro.stores.network.NetworkOptions` as obstore
configuration; what a user's own obstore store is (:func:`is_obstore_object`, :func:`url_of`);
what obstore's errors say (:func:`obstore_message`, :func:`bucket_missing`, :func:`obstore_status`,
:func:`obstore_error_code`, :func:`obstore_http_kind`; :mod:`xzaro.stores.retry` judges them).

:func:`translate_options` turns the options a user would give s3fs, gcsfs, adlfs or fsspec's HTTP
file system into the keyword arguments of an obstore store. An option obstore cannot honour is
never dropped: the translation then has no configuration, only the reason, and the caller opens
the store with fsspec instead.

====================  ===============================================================
scheme                options understood
====================  ===============================================================
``s3://``             ``key``, ``secret``, ``token``, ``anon``, ``endpoint_url``,
                      ``region``, ``requester_pays``, ``client_kwargs`` (``endpoint_url``,
                      ``region_name``)
``gs://``, ``gcs://``  ``token="anon"``, ``endpoint_url``/``endpoint``, ``project``
                      (object reads and writes do not use it)
``az://``, ``abfs://``  ``account_name``, ``account_key``, ``sas_token``, ``anon``
``http(s)://``        ``headers``, ``client_kwargs={"headers": ...}``
====================  ===============================================================
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from xzaro.stores.network import NetworkOptions

#: The longest a whole request may take; obstore's own default (30 s) would cut off large
#: objects. Stalled requests are caught sooner, by ``NetworkOptions.read_timeout``.
REQUEST_TIMEOUT = timedelta(hours=1)

#: Where obstore's message ends and its debug dump of the error begins.
DEBUG_MARKER = "\n\nDebug source:"
_STATUS = re.compile(r"non-2xx status code: (\d{3})|\bstatus: (\d{3})\b")
_CODE = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")
_KIND = re.compile(r"HttpError\s*\{\s*kind:\s*(\w+)")
#: obstore's messages of the kinds of failure below HTTP, for an error without its debug dump.
_KIND_WORDS = (
    ("request or response body error", "Interrupted"),
    ("error sending request", "Request"),
    ("error decoding response body", "Decode"),
)

#: URL schemes obstore opens, and the family of options each one takes.
SCHEMES = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "azure": "azure",
    "http": "http",
    "https": "http",
}

#: What to check when a server refuses access, per scheme family.
ACCESS_HINTS = {
    "s3": "check the credentials (storage_options key/secret/token or the AWS_* variables); "
    'a public bucket needs storage_options={"anon": True}; check the region '
    '(storage_options={"region": ...})',
    "gcs": "check the credentials (GOOGLE_APPLICATION_CREDENTIALS); a public bucket needs "
    'storage_options={"token": "anon"}',
    "azure": "check the credentials (storage_options account_key or sas_token); a public "
    'container needs storage_options={"anon": True}',
    "http": 'the server refused the request; pass credentials as storage_options={"headers": '
    '{"Authorization": ...}}',
}


@dataclass(frozen=True)
class Translation:
    """What :func:`translate_options` made of the options.

    ``config`` is ``None`` exactly when obstore cannot honour them; ``reason`` then says why
    (for the log line of the fallback to fsspec).
    """

    config: dict[str, Any] | None
    client_options: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def scheme_of(url: str) -> str | None:
    """The family of ``url`` (``"s3"``, ``"gcs"``, ``"azure"``, ``"http"``) or ``None``."""
    scheme, sep, _ = url.partition("://")
    return SCHEMES.get(scheme.lower()) if sep else None


def refuse(reason: str) -> Translation:
    """A translation that cannot be honoured, for ``reason``."""
    return Translation(None, {}, reason)


def _endpoint(value: Any, client: dict[str, Any]) -> str:
    endpoint = str(value)
    if endpoint.startswith("http://"):
        client["allow_http"] = True
    return endpoint


def _s3(options: dict[str, Any]) -> Translation:
    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    kwargs = dict(options.pop("client_kwargs", None) or {})
    for name in ("endpoint_url", "region_name"):
        if name in kwargs:
            options.setdefault("region" if name == "region_name" else name, kwargs.pop(name))
    if kwargs:
        return refuse(f"client_kwargs {sorted(kwargs)} have no obstore equivalent")
    names = {"key": "access_key_id", "secret": "secret_access_key", "token": "session_token"}
    for name, target in names.items():
        if options.get(name) is not None:
            config[target] = str(options.pop(name))
        options.pop(name, None)
    if options.pop("anon", False):
        config["skip_signature"] = True
    endpoint = options.pop("endpoint_url", None) or _aws_endpoint_from_environment()
    if endpoint:
        config["endpoint"] = _endpoint(endpoint, client)
    if options.get("region"):
        config["region"] = str(options.pop("region"))
    if options.pop("requester_pays", False):
        config["request_payer"] = True
    if options:
        return refuse(f"options {sorted(options)} have no obstore equivalent")
    if not config.keys() & {"access_key_id", "skip_signature"} and _aws_profile_in_use():
        return refuse("credentials come from an AWS profile, which obstore does not read")
    return Translation(config, client)


def _aws_endpoint_from_environment() -> str | None:
    """The S3 endpoint botocore would take from the environment (``AWS_ENDPOINT_URL_S3``, else
    ``AWS_ENDPOINT_URL``): given to obstore explicitly, so that both clients reach the same
    server, and an ``http://`` one is allowed."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _aws_profile_in_use() -> bool:
    """Whether S3 credentials would come from a profile (s3fs reads profiles, obstore not)."""
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return False
    if os.environ.get("AWS_PROFILE"):
        return True
    home = os.path.expanduser("~/.aws")
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", os.path.join(home, "credentials"))
    return os.path.exists(shared) or os.path.exists(
        os.environ.get("AWS_CONFIG_FILE", os.path.join(home, "config"))
    )


def _gcs(options: dict[str, Any]) -> Translation:
    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    token = options.pop("token", None)
    if token == "anon":
        config["skip_signature"] = True
    elif token is not None:
        return refuse("a gcsfs token other than 'anon' has no obstore equivalent")
    endpoint = options.pop("endpoint_url", None) or options.pop("endpoint", None)
    options.pop("endpoint", None)
    if endpoint:
        config["base_url"] = _endpoint(endpoint, client)
    options.pop("project", None)  # names who is billed for creating buckets; objects ignore it
    if options:
        return refuse(f"options {sorted(options)} have no obstore equivalent")
    return Translation(config, client)


def _azure(options: dict[str, Any]) -> Translation:
    config: dict[str, Any] = {}
    for name in ("account_name", "account_key", "sas_token"):
        if options.get(name) is not None:
            config[name] = str(options.pop(name))
        options.pop(name, None)
    if options.pop("anon", False):
        config["skip_signature"] = True
    if options:
        return refuse(f"options {sorted(options)} have no obstore equivalent")
    return Translation(config, {})


def _http(options: dict[str, Any]) -> Translation:
    kwargs = dict(options.pop("client_kwargs", None) or {})
    headers = {
        **dict(kwargs.pop("headers", None) or {}),
        **dict(options.pop("headers", None) or {}),
    }
    if kwargs:
        return refuse(f"client_kwargs {sorted(kwargs)} have no obstore equivalent")
    if options:
        return refuse(f"options {sorted(options)} have no obstore equivalent")
    client: dict[str, Any] = {}
    if headers:
        client["default_headers"] = {str(k): str(v) for k, v in headers.items()}
    return Translation({}, client)


_FAMILIES: dict[str, Callable[[dict[str, Any]], Translation]] = {
    "s3": _s3,
    "gcs": _gcs,
    "azure": _azure,
    "http": _http,
}


def translate_options(url: str, storage_options: Mapping[str, Any] | None) -> Translation:
    """fsspec-style ``storage_options`` for ``url`` as obstore configuration.

    Parameters
    ----------
    url
        The store URL; its scheme chooses the option family.
    storage_options
        The options s3fs, gcsfs, adlfs or fsspec's HTTP file system would take.

    Returns
    -------
    Translation
        ``config`` (the store's configuration keys) and ``client_options`` (HTTP client
        settings such as ``allow_http`` and ``default_headers``), or ``config=None`` and the
        ``reason`` when an option cannot be honoured or the scheme is not obstore's.
    """
    family = scheme_of(url)
    if family is None:
        scheme, sep, _ = url.partition("://")
        return refuse(f"obstore does not open {scheme + ':// URLs' if sep else 'local paths'}")
    translation = _FAMILIES[family](dict(storage_options or {}))
    if family == "http" and url.lower().startswith("http://") and translation.config is not None:
        translation.client_options["allow_http"] = True
    return translation


def obstore_config(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The obstore keyword arguments (``config``, ``client_options``) for fsspec-style
    ``storage_options``, or ``None`` when obstore cannot honour them (see
    :func:`translate_options` for the reason)."""
    translation = translate_options(url, storage_options)
    if translation.config is None:
        return None
    return {"config": translation.config, "client_options": translation.client_options}


def client_options(network: NetworkOptions) -> dict[str, Any]:
    """obstore's ``ClientConfig`` timeouts from ``network``."""
    return {
        "connect_timeout": timedelta(seconds=network.connect_timeout),
        "read_timeout": timedelta(seconds=network.read_timeout),
        "timeout": REQUEST_TIMEOUT,
    }


def retry_config(network: NetworkOptions) -> dict[str, Any]:
    """obstore's ``RetryConfig``: no retries of its own.

    xzaro's runner (:mod:`xzaro.stores.retry`) makes every attempt, so that retries, backoff,
    the limit of requests in flight and the counts of :func:`~xzaro.stores.network.request_stats`
    are those of every other network store; obstore retrying underneath would multiply the
    attempts and hide them. ``retry_timeout`` bounds nothing then; it is one attempt's longest
    pauses.
    """
    return {
        "max_retries": 0,
        "backoff": {
            "init_backoff": timedelta(seconds=network.backoff),
            "max_backoff": timedelta(seconds=network.max_backoff),
            "base": 2.0,
        },
        "retry_timeout": timedelta(seconds=network.connect_timeout + network.read_timeout),
    }


def is_obstore_object(obj: object) -> bool:
    """Whether ``obj`` is an obstore store (S3, GCS, Azure, HTTP, local or in-memory)."""
    if "obstore.store" not in sys.modules:  # then no obstore store exists in this process
        return False
    from obstore import store as obstore_stores

    kinds = (
        obstore_stores.S3Store,
        obstore_stores.GCSStore,
        obstore_stores.AzureStore,
        obstore_stores.HTTPStore,
        obstore_stores.LocalStore,
        obstore_stores.MemoryStore,
    )
    return isinstance(obj, kinds)


def url_of(obj: Any) -> str:
    """A URL naming an obstore store (for messages and ``Store.url``)."""
    from obstore import store as obstore_stores

    if isinstance(obj, obstore_stores.HTTPStore):
        return str(obj.url).rstrip("/")
    if isinstance(obj, obstore_stores.LocalStore):
        return f"file://{obj.prefix or '/'}"
    if isinstance(obj, obstore_stores.MemoryStore):
        return f"memory://obstore-{id(obj):x}"
    config = obj.config
    if isinstance(obj, obstore_stores.S3Store):
        root = f"s3://{config.get('bucket', '')}"
    elif isinstance(obj, obstore_stores.GCSStore):
        root = f"gs://{config.get('bucket', '')}"
    else:
        root = f"az://{config.get('container_name', '')}"
    return f"{root}/{obj.prefix}" if obj.prefix else root


def obstore_message(exc: BaseException, limit: int = 600) -> str:
    """obstore's message without its debug dump, at most ``limit`` characters (and " ...")."""
    text = " ".join(str(exc).split(DEBUG_MARKER, 1)[0].split())
    return text if len(text) <= limit else text[:limit] + " ..."


def is_obstore_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of obstore's own exception types (``obstore.exceptions``)."""
    return type(exc).__module__.split(".")[0] == "obstore"


def obstore_status(exc: BaseException) -> int | None:
    """The HTTP status of the answer an obstore error reports, if it reports one."""
    found = _STATUS.search(str(exc))
    return int(found.group(1) or found.group(2)) if found else None


def obstore_error_code(exc: BaseException) -> str | None:
    """The ``<Code>`` of the S3-style XML error body an obstore error quotes, if any."""
    found = _CODE.search(str(exc))
    return found.group(1) if found else None


def obstore_http_kind(exc: BaseException) -> str | None:
    """What kind of failure below HTTP an obstore error reports (``object_store``'s
    ``HttpErrorKind``: ``"Connect"``, ``"Request"``, ``"Timeout"``, ``"Interrupted"``,
    ``"Decode"``, ``"Unknown"``), from its debug dump or, without one, its message."""
    text = str(exc)
    found = _KIND.search(text)
    if found:
        return found.group(1)
    for words, kind in _KIND_WORDS:
        if words in text:
            return kind
    return None


def bucket_missing(exc: BaseException) -> bool:
    """Whether an obstore error says that the bucket (or container) does not exist."""
    text = str(exc)
    return "NoSuchBucket" in text or "ContainerNotFound" in text or "bucket does not exist" in text
