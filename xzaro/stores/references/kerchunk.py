"""``ReferenceStore``: a read-only store over a Kerchunk JSON reference file.

Version 0 documents are a flat ``{key: value}`` object; version 1 documents are
``{"version": 1, "templates": {...}, "gen": [...], "refs": {...}}`` (templates and ``gen``
entries: :mod:`xzaro.stores.references.templates`). A value is inline text, ``"base64:..."``
inline bytes, a JSON object (a metadata document), ``[url]`` (a whole target file) or
``[url, offset, length]``. The document, decompressed, holds at most ``max_reference_bytes``
bytes (:data:`~xzaro.stores.references.documents.DEFAULT_MAX_REFERENCE_BYTES`, 2 GiB).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xzaro.errors import MetadataError, StoreError
from xzaro.stores.references.base import ReferenceStoreBase
from xzaro.stores.references.documents import DEFAULT_MAX_REFERENCE_BYTES, read_reference_bytes
from xzaro.stores.references.fetch import Reference
from xzaro.stores.references.templates import Templates, expand_gen, shown

#: Parsed reference documents kept per process (they are re-read by a freshly opened store).
_CACHE_SIZE = 8


def parse_references(
    doc: Any, url: str = "<references>", *, max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES
) -> dict[str, Any]:
    """The flat ``{key: value}`` mapping a Kerchunk reference document stands for.

    Version 1 templates are substituted into target URLs and ``gen`` entries are expanded
    (they override ``refs`` entries of the same key, as in fsspec). JSON object values become
    their JSON text. Inline values are left as written (text or ``"base64:..."``), and so is a
    ``null`` value, which :func:`reference_value` refuses (only a key without a value is a
    missing chunk).

    Parameters
    ----------
    doc
        The parsed JSON document.
    url
        Where it came from, for messages.
    max_bytes
        The characters templates may build in all (``max_reference_bytes`` of the store).

    Returns
    -------
    dict

    Raises
    ------
    MetadataError
        The document is malformed or goes past one of the bounds of
        :mod:`~xzaro.stores.references.templates`.
    """
    if not isinstance(doc, dict):
        raise MetadataError("a reference document must be a JSON object", url=url)
    version = doc.get("version")
    if version is None:
        refs_in: dict[str, Any] = doc
        templates = Templates({}, url, max_bytes)
        gens: Any = []
    elif version == 1 and type(version) is int:
        refs_in = doc.get("refs") or {}
        raw_templates = doc.get("templates") or {}
        if not isinstance(refs_in, dict):
            raise MetadataError("refs must be a JSON object", url=url, field="refs")
        if not isinstance(raw_templates, dict):
            raise MetadataError("templates must be a JSON object", url=url, field="templates")
        templates = Templates(raw_templates, url, max_bytes)
        gens = doc.get("gen") or []
    else:
        raise MetadataError(
            f"unknown reference specification version {version!r}", url=url, field="version"
        )
    refs: dict[str, Any] = {}
    for key, value in refs_in.items():
        if isinstance(value, dict):
            value = json.dumps(value)
        elif (
            isinstance(value, list)
            and value
            and isinstance(value[0], str)
            and templates.templates
            and "{{" in value[0]
        ):
            value = [templates.render(value[0]), *value[1:]]
        refs[key] = value
    refs.update(expand_gen(gens, templates, url))
    return refs


def reference_value(key: str, value: Any, url: str) -> Reference:
    """One reference value as inline bytes or ``(target URL, offset, length or None)``.

    Raises
    ------
    MetadataError
        The value is ``null``: a missing chunk has no key at all.
    StoreError
        The value has none of the forms of a reference (text, ``[url]``,
        ``[url, offset, length]`` with integers from 0 to 2**63 - 1) or its base64 is invalid.
    """
    if value is None:
        raise MetadataError(
            f"the reference of {key!r} is null; a missing chunk is one without a key",
            url=url,
            key=key,
        )
    if isinstance(value, str):
        if value.startswith("base64:"):
            try:
                return base64.b64decode(value[7:], validate=True)
            except ValueError as exc:
                raise StoreError(f"invalid base64 reference: {exc}", url=url, key=key) from exc
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str) and value[0]:
        if len(value) == 1:
            return (value[0], 0, None)
        if len(value) == 3 and all(type(v) is int and 0 <= v < 2**63 for v in value[1:]):
            return (value[0], value[1], value[2])
    raise StoreError(
        f"invalid reference value {shown(repr(value))} (expected text, [url] or "
        "[url, offset, length] with integers from 0 to 2**63 - 1)",
        url=url,
        key=key,
    )


_documents: OrderedDict[tuple[str, str, int], dict[str, Any]] = OrderedDict()
_documents_lock = threading.Lock()


def _parse_file(url: str, storage_options: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    data = read_reference_bytes(url, storage_options, max_bytes)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MetadataError(f"the reference file is not valid JSON: {exc}", url=url) from exc
    return parse_references(doc, url, max_bytes=max_bytes)


class ReferenceStore(ReferenceStoreBase):
    """A read-only store over a Kerchunk JSON reference file (version 0 or 1).

    The references are read on first use, once per process; the store pickles as its URL and
    options only.

    Parameters
    ----------
    url
        The reference file: a local path or any fsspec URL (``s3://``, ``gs://``,
        ``http(s)://``, ...), optionally Zstandard-compressed (``.json.zst``).
    storage_options
        fsspec options for reading the reference file. They are credentials for the reference
        file's own location: targets on the same host (``http``/``https``: scheme, host and
        port) or bucket (object stores) get them too, targets elsewhere get none.
    remote_protocol
        Protocol of target paths written without one (fsspec's ``remote_protocol``). By
        default such paths are relative to the reference file's location (or absolute local
        paths) and every other target's protocol is taken from its URL.
    remote_options
        fsspec options for the target file systems (fsspec's ``remote_options``), given to
        every target (on ``remote_protocol`` when that is given), wherever it is: the way to
        send credentials to targets on other hosts or buckets.
    allowed_protocols
        Protocols that targets may use. Default: a reference file on a remote protocol may
        reach ``http``, ``https``, ``s3``, ``gs``/``gcs``, ``az``/``abfs`` only; a local one may
        also reach local files; an explicit ``remote_protocol`` is allowed too. Every link of a
        chained target URL (``simplecache::s3://...``) must be allowed.
    max_gap
        Ranges of one target file at most this many bytes apart are read as one request.
    max_concurrency
        Requests in flight at once (async file systems).
    max_reference_bytes
        The most bytes the reference document may hold once decompressed, and the most
        characters its templates may build (default
        :data:`~xzaro.stores.references.documents.DEFAULT_MAX_REFERENCE_BYTES`, 2 GiB).

    Notes
    -----
    A key without a reference reads as missing (``None``: fill value); a ``null`` reference
    raises :class:`~xzaro.errors.MetadataError`. A relative target path resolves against the
    reference file's directory and may not leave its host or bucket. A reference whose target
    is refused, missing or unreadable raises :class:`~xzaro.errors.StoreError` naming the key
    and the target.
    """

    def _forget_loaded(self) -> None:
        with _documents_lock:
            _documents.pop(self._cache_key, None)

    def _load(self) -> dict[str, Any]:
        with _documents_lock:
            refs = _documents.get(self._cache_key)
            if refs is not None:
                _documents.move_to_end(self._cache_key)
                return refs
        refs = _parse_file(self.url, self.storage_options, self.max_reference_bytes)
        with _documents_lock:
            _documents[self._cache_key] = refs
            while len(_documents) > _CACHE_SIZE:
                _documents.popitem(last=False)
        return refs

    @property
    def references(self) -> dict[str, Any]:
        """The flat reference mapping (read on first access, once per process)."""
        refs: dict[str, Any] = self.loaded()
        return refs

    def _lookup_many(self, keys: Sequence[str]) -> list[Reference | None]:
        refs = self.references
        return [reference_value(key, refs[key], self.url) if key in refs else None for key in keys]

    def _keys(self, prefix: str) -> Iterable[str]:
        return self.references.keys()
