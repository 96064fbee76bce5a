"""``ReferenceStore``: a read-only store over a Kerchunk JSON reference file.

Version 0 documents are a flat ``{key: value}`` object; version 1 documents are
``{"version": 1, "templates": {...}, "gen": [...], "refs": {...}}``. A value is inline text,
``"base64:..."`` inline bytes, a JSON object (a metadata document), ``[url]`` (a whole target
file) or ``[url, offset, length]``. ``{{name}}`` in target URLs is replaced by the template of
that name; ``gen`` entries are expanded over the product of their dimensions. Template
expressions are evaluated by a small safe evaluator (names, numbers, strings, arithmetic and
calls of templates with keyword arguments), never by a template engine that could run code.
"""

from __future__ import annotations

import ast
import base64
import itertools
import json
import operator
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from xzaro.errors import MetadataError, NodeNotFoundError, StoreError
from xzaro.stores.fsspec_store import FsspecStore
from xzaro.stores.targets import (
    Reference,
    ReferenceStoreBase,
    TargetResolver,
)

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: Parsed reference documents kept per process (they are re-read by a freshly opened store).
_CACHE_SIZE = 8
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_MAX_TEXT = 65536
_MAX_DEPTH = 16


class _Templates:
    """Renders ``{{ expression }}`` text with the reference document's templates.

    Parameters
    ----------
    templates
        The document's ``templates`` object (``name -> text``); a template containing
        ``{{...}}`` is rendered with the variables in scope where it is used, or with the
        keyword arguments it is called with (``{{f(c='x')}}``).
    url
        The reference URL, for messages.
    """

    def __init__(self, templates: Mapping[str, Any], url: str) -> None:
        self.templates = {str(k): str(v) for k, v in templates.items()}
        self.url = url

    def render(self, text: str, scope: Mapping[str, Any] | None = None, _depth: int = 0) -> str:
        """``text`` with every ``{{ expression }}`` replaced by its value."""
        if "{{" not in text:
            return text
        if _depth > _MAX_DEPTH:
            raise self._error(f"templates nest deeper than {_MAX_DEPTH} levels in {text!r}")
        scope = scope or {}

        def substitute(match: re.Match[str]) -> str:
            return str(self.evaluate(match.group(1), scope, _depth))

        return _TEMPLATE.sub(substitute, text)

    def evaluate(self, expression: str, scope: Mapping[str, Any], depth: int = 0) -> Any:
        """The value of one template expression."""
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError as exc:
            raise self._error(f"unsupported template expression {expression!r}") from exc
        return self._eval(tree.body, scope, depth, expression)

    def _eval(self, node: ast.AST, scope: Mapping[str, Any], depth: int, source: str) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, str):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in scope:
                return scope[node.id]
            if node.id in self.templates:
                return self.render(self.templates[node.id], scope, depth + 1)
            raise self._error(f"template expression {source!r} names an undefined {node.id!r}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self._eval(node.operand, scope, depth, source)
            if not isinstance(value, (int, float)):
                raise self._error(f"cannot negate a non-number in {source!r}")
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left = self._eval(node.left, scope, depth, source)
            right = self._eval(node.right, scope, depth, source)
            if isinstance(node.op, ast.Mult) and any(isinstance(v, str) for v in (left, right)):
                count = right if isinstance(left, str) else left
                if not isinstance(count, int) or abs(count) > _MAX_TEXT:
                    raise self._error(f"string repetition out of bounds in {source!r}")
            try:
                value = _BINOPS[type(node.op)](left, right)
            except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
                raise self._error(f"cannot evaluate {source!r}: {exc}") from exc
            if isinstance(value, str) and len(value) > _MAX_TEXT:
                raise self._error(f"template expression {source!r} makes too long a text")
            return value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in self.templates
            and not node.args
            and all(k.arg is not None for k in node.keywords)
        ):
            kwargs = {str(k.arg): self._eval(k.value, scope, depth, source) for k in node.keywords}
            return self.render(self.templates[node.func.id], {**scope, **kwargs}, depth + 1)
        raise self._error(f"unsupported template expression {source!r}")

    def _error(self, message: str) -> MetadataError:
        return MetadataError(message, url=self.url, field="templates")


def _gen_dimension(spec: Any, name: str, url: str) -> Sequence[Any]:
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict) and "stop" in spec:
        try:
            return range(int(spec.get("start", 0)), int(spec["stop"]), int(spec.get("step", 1)))
        except (TypeError, ValueError) as exc:
            raise MetadataError(
                f"invalid gen dimension {name!r}: {spec!r}", url=url, field="gen"
            ) from exc
    raise MetadataError(
        f"gen dimension {name!r} must be a list or {{start, stop, step}}, got {spec!r}",
        url=url,
        field="gen",
    )


def expand_gen(gens: Any, templates: _Templates, url: str) -> dict[str, Any]:
    """The references that the ``gen`` entries of a version 1 document stand for.

    Each entry has ``key`` and ``url`` templates, optional ``offset`` and ``length`` templates
    (both or neither) and ``dimensions`` (name to a list of values or ``{start, stop, step}``);
    one reference is made per element of the product of the dimensions (last one fastest).

    Parameters
    ----------
    gens
        The document's ``gen`` list.
    templates
        The document's templates.
    url
        The reference URL, for messages.

    Returns
    -------
    dict
        ``{key: [url]}`` or ``{key: [url, offset, length]}``.
    """
    if not isinstance(gens, list):
        raise MetadataError("gen must be a list", url=url, field="gen")
    out: dict[str, Any] = {}
    for n, gen in enumerate(gens):
        field = f"gen[{n}]"
        if not isinstance(gen, dict) or "key" not in gen or "url" not in gen:
            raise MetadataError(f"{field} needs 'key' and 'url'", url=url, field=field)
        if ("offset" in gen) != ("length" in gen):
            raise MetadataError(
                f"{field} needs both 'offset' and 'length', or neither", url=url, field=field
            )
        dims = gen.get("dimensions") or {}
        if not isinstance(dims, dict):
            raise MetadataError(f"{field}.dimensions must be an object", url=url, field=field)
        names = list(dims)
        axes = [_gen_dimension(dims[name], name, url) for name in names]
        for values in itertools.product(*axes):
            scope = dict(zip(names, values))
            key = templates.render(str(gen["key"]), scope)
            target = templates.render(str(gen["url"]), scope)
            if "offset" in gen:
                try:
                    offset = int(templates.render(str(gen["offset"]), scope))
                    length = int(templates.render(str(gen["length"]), scope))
                except ValueError as exc:
                    raise MetadataError(
                        f"{field}: offset and length must render as integers: {exc}",
                        url=url,
                        field=field,
                    ) from exc
                out[key] = [target, offset, length]
            else:
                out[key] = [target]
    return out


def parse_references(doc: Any, url: str = "<references>") -> dict[str, Any]:
    """The flat ``{key: value}`` mapping a Kerchunk reference document stands for.

    Version 1 templates are substituted into target URLs and ``gen`` entries are expanded
    (they override ``refs`` entries of the same key, as in fsspec). JSON object values become
    their JSON text. Inline values are left as written (text or ``"base64:..."``).

    Parameters
    ----------
    doc
        The parsed JSON document.
    url
        Where it came from, for messages.

    Returns
    -------
    dict
    """
    if not isinstance(doc, dict):
        raise MetadataError("a reference document must be a JSON object", url=url)
    version = doc.get("version")
    if version is None:
        refs_in: dict[str, Any] = doc
        templates = _Templates({}, url)
        gens: list[Any] = []
    elif version == 1:
        refs_in = doc.get("refs") or {}
        raw_templates = doc.get("templates") or {}
        if not isinstance(refs_in, dict) or not isinstance(raw_templates, dict):
            raise MetadataError("refs and templates must be JSON objects", url=url)
        templates = _Templates(raw_templates, url)
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
    """One reference value as inline bytes or ``(target URL, offset, length or None)``."""
    if isinstance(value, str):
        if value.startswith("base64:"):
            try:
                return base64.b64decode(value[7:], validate=False)
            except ValueError as exc:
                raise StoreError(f"invalid base64 reference: {exc}", url=url, key=key) from exc
        return value.encode()
    if isinstance(value, bytes):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        if len(value) == 1:
            return (value[0], 0, None)
        if (
            len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:])
            and value[1] >= 0
            and value[2] >= 0
        ):
            return (value[0], int(value[1]), int(value[2]))
    raise StoreError(
        f"invalid reference value {value!r} (expected text, [url] or [url, offset, length])",
        url=url,
        key=key,
    )


def decompress_if_zstd(data: bytes, url: str) -> bytes:
    """Decompress Zstandard-compressed reference data (recognised by its magic number)."""
    if not data.startswith(_ZSTD_MAGIC):
        return data
    try:
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(data) as reader:
            return reader.read()
    except ImportError:
        pass
    try:
        from numcodecs import Zstd

        return bytes(Zstd().decode(data))
    except Exception as exc:
        raise StoreError(f"could not decompress the zstd reference file: {exc}", url=url) from exc


def read_reference_bytes(url: str, storage_options: Mapping[str, Any]) -> bytes:
    """Read a reference file (any fsspec URL), raising if it does not exist."""
    data = FsspecStore(url, storage_options).get("")
    if data is None:
        raise NodeNotFoundError("the reference file does not exist", url=url)
    return decompress_if_zstd(bytes(data), url)


_loaded: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
_loaded_lock = threading.Lock()


def _load(url: str, storage_options: Mapping[str, Any]) -> dict[str, Any]:
    data = read_reference_bytes(url, storage_options)
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise MetadataError(f"the reference file is not valid JSON: {exc}", url=url) from exc
    return parse_references(doc, url)


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
        fsspec options for reading the reference file.
    remote_protocol
        Protocol of target paths written without one (fsspec's ``remote_protocol``). By
        default such paths are relative to the reference file's location (or absolute local
        paths) and every other target's protocol is taken from its URL.
    remote_options
        fsspec options for the target file systems (fsspec's ``remote_options``). By default
        targets on the reference file's own protocol reuse ``storage_options``.
    allowed_protocols
        Protocols that targets may use. Default: a reference file on a remote protocol may
        reach ``http``, ``https``, ``s3``, ``gs``/``gcs``, ``az``/``abfs`` only; a local one may
        also reach local files; an explicit ``remote_protocol`` is allowed too. Every link of a
        chained target URL (``simplecache::s3://...``) must be allowed.
    max_gap
        Ranges of one target file at most this many bytes apart are read as one request.
    max_concurrency
        Requests in flight at once (async file systems).

    Notes
    -----
    A key without a reference reads as missing (``None``: fill value). A reference whose target
    is refused, missing or unreadable raises :class:`~xzaro.errors.StoreError` naming the key
    and the target.
    """

    def _forget_loaded(self) -> None:
        with _loaded_lock:
            _loaded.pop(self._cache_key, None)

    def _init(
        self,
        url: str,
        storage_options: dict[str, Any],
        remote_protocol: str | None,
        remote_options: dict[str, Any] | None,
        allowed_protocols: list[str] | None,
        max_gap: int,
        max_concurrency: int,
    ) -> None:
        self.resolver = TargetResolver(
            url,
            storage_options,
            remote_protocol=remote_protocol,
            remote_options=remote_options,
            allowed_protocols=allowed_protocols,
        )
        self.url = self.resolver.reference_url
        self.storage_options = storage_options
        self.remote_protocol = remote_protocol
        self.remote_options = remote_options
        self.allowed_protocols = allowed_protocols
        self.max_gap = max_gap
        self.max_concurrency = max_concurrency
        self._cache_key = (self.url, json.dumps(storage_options, sort_keys=True, default=repr))
        self._refs_cache: dict[str, Any] | None = None
        self._refs_pid = -1
        self._fetcher_cache = None

    @property
    def references(self) -> dict[str, Any]:
        """The flat reference mapping (read on first access, once per process)."""
        refs = self._refs_cache
        if refs is not None and self._refs_pid == os.getpid():
            return refs
        with _loaded_lock:
            refs = _loaded.get(self._cache_key)
            if refs is not None:
                _loaded.move_to_end(self._cache_key)
        if refs is None:
            refs = _load(self.url, self.storage_options)
            with _loaded_lock:
                _loaded[self._cache_key] = refs
                while len(_loaded) > _CACHE_SIZE:
                    _loaded.popitem(last=False)
        self._refs_cache, self._refs_pid = refs, os.getpid()
        return refs

    def _lookup_many(self, keys: Sequence[str]) -> list[Reference | None]:
        refs = self.references
        out: list[Reference | None] = []
        for key in keys:
            value = refs.get(key)
            out.append(None if value is None else reference_value(key, value, self.url))
        return out

    def _keys(self, prefix: str) -> Iterable[str]:
        return self.references.keys()
