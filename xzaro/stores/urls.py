"""URLs as users paste them, turned into the URLs and options a store opens.

People copy object-store URLs from browsers, catalogues and papers: the web address of an S3 object
(``https://bucket.s3.us-west-2.amazonaws.com/key``), a path-style one
(``https://s3.amazonaws.com/bucket/key``), a Google Cloud Storage link
(``https://storage.googleapis.com/bucket/key``), a bucket browser's page
(``https://bucket.s3.amazonaws.com/index.html#key/``), a console page, or the URL of a metadata
file inside the store. :func:`normalize_url` turns each into the ``s3://``/``gs://`` URL of the
store, with the region (where the URL says it) as a storage option, so reads go through the
object-store client with its listing, retries and credentials. Other hosts, custom endpoints
and signed URLs are left as they are.

:func:`public_bucket_options` says which well-known public buckets open anonymously when the caller
gave no credentials of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

#: Metadata documents inside a store: a URL naming one means the node that holds it.
METADATA_NAMES = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata")

#: Buckets whose owners publish them for anonymous reading (``protocol -> names``); a name ending
#: in ``*`` is a prefix. Opened with ``anon=True`` (S3) or ``token="anon"`` (GCS) unless the caller
#: gives credentials or says otherwise.
PUBLIC_BUCKETS: dict[str, tuple[str, ...]] = {
    "s3": (
        "aodn-cloud-optimised",
        "imos-data",
        "mur-sst",
        "era5-pds",
        "noaa-*",
        "nasanex",
        "sentinel-cogs",
        "sentinel-s2-l2a-cogs",
        "hrrrzarr",
        "cmip6-pds",
        "nex-gddp-cmip6",
        "gcm-sst",
        "its-live-data",
        "ooi-data",
        "coiled-datasets",
        "pangeo-data-uswest2",
        "zarr-demo",
    ),
    "gs": (
        "cmip6",
        "gcp-public-data-arco-era5",
        "weatherbench2",
        "pangeo-cmems-duacs",
        "pangeo-ecco-llc4320",
        "gcp-public-data-*",
    ),
}
#: Storage options by which a caller says how to authenticate; any of them turns off the
#: anonymous default.
CREDENTIAL_OPTIONS = (
    "anon",
    "key",
    "secret",
    "token",
    "profile",
    "session",
    "username",
    "password",
    "requester_pays",
    "aws_access_key_id",
    "aws_secret_access_key",
    "skip_signature",
)

_AWS = r"amazonaws\.com(?:\.cn)?"
#: ``bucket.s3.amazonaws.com``, ``bucket.s3.region.amazonaws.com``, ``bucket.s3-region...``,
#: ``bucket.s3.dualstack.region.amazonaws.com``.
_VIRTUAL_HOSTED = re.compile(
    rf"^(?P<bucket>[a-z0-9][a-z0-9.\-]*?)\.s3(?:[.-](?:dualstack\.)?(?P<region>[a-z0-9\-]+))?\.{_AWS}$"
)
#: ``s3.amazonaws.com``, ``s3.region.amazonaws.com``, ``s3-region.amazonaws.com``.
_PATH_STYLE = re.compile(rf"^s3(?:[.-](?:dualstack\.)?(?P<region>[a-z0-9\-]+))?\.{_AWS}$")
_GCS_PATH_HOSTS = ("storage.googleapis.com", "storage.cloud.google.com")
_GCS_VIRTUAL = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9._\-]*)\.storage\.googleapis\.com$")
_S3_CONSOLE = re.compile(r"^(?:[a-z0-9\-]+\.)?console\.aws\.amazon\.com$")
#: Query parameters that make a URL signed: it is then only valid as it is.
_SIGNED = ("x-amz-signature", "signature", "x-goog-signature", "sig")


@dataclass(frozen=True)
class NormalizedURL:
    """What :func:`normalize_url` made of a URL.

    Attributes
    ----------
    url
        The URL to open.
    storage_options
        Options the URL implies (an S3 region), to be merged under the caller's own.
    changed
        Whether ``url`` differs from the URL given (worth a log line).
    """

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    changed: bool = False


def normalize_url(url: str) -> NormalizedURL:
    """The store URL that a pasted URL means.

    * ``https://<bucket>.s3[.<region>].amazonaws.com/<key>`` and the path-style
      ``https://s3[.<region>].amazonaws.com/<bucket>/<key>`` become ``s3://<bucket>/<key>``, the
      region kept as ``storage_options={"client_kwargs": {"region_name": ...}}``;
    * ``https://storage.googleapis.com/<bucket>/<key>`` (and ``storage.cloud.google.com``,
      ``<bucket>.storage.googleapis.com``) become ``gs://<bucket>/<key>``;
    * bucket-browser and console pages (``.../index.html#<key>``, the S3 console's
      ``?prefix=<key>``, the GCS console's ``storage/browser/<bucket>/<key>``) become the URL of
      the prefix they show;
    * a query string or fragment that is not part of the key is dropped, and a trailing metadata
      document (``zarr.json``, ``.zarray``, ``.zgroup``, ``.zattrs``, ``.zmetadata``) names the
      node that holds it.

    Signed URLs, other hosts (custom endpoints included), local paths, chained and reference
    URLs are returned unchanged.
    """
    text = url.strip()
    if "::" in text or not text.lower().startswith(("http://", "https://", "s3://", "gs://")):
        return NormalizedURL(url)
    parts = urlsplit(text)
    query = {k.lower(): v for k, v in parse_qs(parts.query).items()}
    if any(name in query for name in _SIGNED):
        return NormalizedURL(url)
    host = (parts.hostname or "").lower()
    scheme = parts.scheme.lower()
    found: tuple[str, str, str | None] | None
    if scheme in ("s3", "gs"):
        found = scheme, f"{parts.netloc}{parts.path}", None
    else:
        found = _cloud_location(host, unquote(parts.path), parts.fragment, query)
    if found is None:
        return NormalizedURL(url)
    protocol, location, region = found
    location = _store_root(location)
    normalized = f"{protocol}://{location}"
    options = {"client_kwargs": {"region_name": region}} if region else {}
    return NormalizedURL(normalized, options, changed=normalized != url.strip().rstrip("/"))


def _cloud_location(
    host: str, path: str, fragment: str, query: Mapping[str, list[str]]
) -> tuple[str, str, str | None] | None:
    """``(protocol, bucket/key, region)`` of an S3 or GCS web URL, or ``None`` for other hosts."""
    path = path.lstrip("/")
    if path.endswith("index.html") and fragment:  # a bucket browser page: the key is the fragment
        path = path[: -len("index.html")] + unquote(fragment).lstrip("/")
    virtual = _VIRTUAL_HOSTED.match(host)
    if virtual:
        return "s3", _join(virtual["bucket"], path), _region(virtual["region"])
    path_style = _PATH_STYLE.match(host)
    if path_style and path:
        return "s3", path, _region(path_style["region"])
    if _S3_CONSOLE.match(host):
        match = re.match(r"^s3/(?:buckets|object)/(?P<bucket>[^/?#]+)", path)
        if match:
            prefix = (query.get("prefix") or [""])[0]
            region = (query.get("region") or [""])[0]
            return "s3", _join(match["bucket"], prefix), region or None
        return None
    if host in _GCS_PATH_HOSTS and path:
        return "gs", path, None
    gcs_virtual = _GCS_VIRTUAL.match(host)
    if gcs_virtual:
        return "gs", _join(gcs_virtual["bucket"], path), None
    if host == "console.cloud.google.com":
        match = re.match(r"^storage/browser/(?:_details/)?(?P<rest>.+)$", path)
        return ("gs", match["rest"], None) if match else None
    return None


def _region(found: str | None) -> str | None:
    """The region an S3 host names (``dualstack`` and the global endpoint name none)."""
    if found in (None, "external-1", "dualstack"):
        return None
    return found


def _join(bucket: str, key: str) -> str:
    return f"{bucket}/{key.lstrip('/')}" if key.strip("/") else bucket


def _store_root(location: str) -> str:
    """``bucket/key`` without a trailing metadata document name or slashes."""
    location = location.rstrip("/")
    head, _, last = location.rpartition("/")
    if head and last in METADATA_NAMES:
        location = head
    return location.rstrip("/")


def is_public_bucket(protocol: str, bucket: str) -> bool:
    """Whether ``bucket`` is on the list of well-known public buckets for ``protocol``."""
    protocol = {"s3a": "s3", "gcs": "gs"}.get(protocol, protocol)
    for name in PUBLIC_BUCKETS.get(protocol, ()):
        if bucket == name or (name.endswith("*") and bucket.startswith(name[:-1])):
            return True
    return False


def public_bucket_options(url: str, storage_options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The options that open ``url`` anonymously if it is in a well-known public bucket and the
    caller gave no credentials, endpoint or anonymity setting of their own; else ``None``."""
    match = re.match(r"^(?P<protocol>s3a?|gs|gcs)://(?P<bucket>[^/?#]+)", url.strip().lower())
    if match is None or not is_public_bucket(match["protocol"], match["bucket"]):
        return None
    if any(name in storage_options for name in CREDENTIAL_OPTIONS):
        return None
    client = storage_options.get("client_kwargs") or {}
    if "endpoint_url" in storage_options or "endpoint_url" in client:
        return None
    if match["protocol"] in ("gs", "gcs"):
        return {"token": "anon"}
    return {"anon": True}
