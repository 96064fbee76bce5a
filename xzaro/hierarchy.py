"""Finding node metadata in a store, groups, and the ``open_array`` / ``open_group`` functions.

Lookup order for a store: the root's consolidated V3 metadata, then consolidated V2
``.zmetadata``, then per-node documents. ``consolidated=True`` requires consolidated metadata,
``False`` ignores it, ``None`` (the default) uses it when present, as xarray's zarr engine does.
The root documents are fetched in one batched request.

A document's name says what it must hold: a ``.zarray`` is a V2 array, a ``.zgroup`` a V2 group
and a ``zarr.json`` (alone or inside consolidated metadata) a V3 node, so no broken document is
read as a node of another kind or format. The node paths consolidated metadata names are checked
as node names are checked on writing (:mod:`xzaro.paths`): none can reach outside the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from xzaro.array import ZaroArray
from xzaro.errors import MetadataError, NodeNotFoundError, UnsupportedError
from xzaro.log import VerboseFlag, info, verbose_call
from xzaro.meta import (
    V2_ARRAY,
    V2_ATTRS,
    V2_CONSOLIDATED,
    V2_GROUP,
    V3_NODE,
    GroupMeta,
    ZaroMeta,
    loads,
    node_from_json,
)
from xzaro.paths import InvalidNameError, check_group_path, join
from xzaro.stores import Store, SupportsListDir, open_store

Node = ZaroMeta | GroupMeta
_NODE_DOCS = frozenset({V3_NODE, V2_ARRAY, V2_GROUP, V2_ATTRS, V2_CONSOLIDATED})


class NodeIndex:
    """The metadata of a store's nodes, looked up once and then served by path.

    Parameters
    ----------
    store
        The store.
    consolidated
        ``True``: consolidated metadata must exist; ``False``: never use it; ``None``: use it
        when present.
    zarr_format
        Restrict the lookup to V2 or V3 documents (``None``: either).
    allow_unsafe_codecs
        Accept codecs (such as pickle) that can run code while decoding.
    verbose
        The arrays found here log their reads (``verbose=True`` on the open).
    """

    def __init__(
        self,
        store: Store,
        *,
        consolidated: bool | None = None,
        zarr_format: int | None = None,
        allow_unsafe_codecs: bool = False,
        verbose: bool = False,
    ) -> None:
        #: Whether the arrays of this open log their reads (see :mod:`xzaro.log`).
        self.verbose = VerboseFlag(verbose)
        if zarr_format not in (None, 2, 3):
            raise ValueError(f"zarr_format must be 2, 3 or None, got {zarr_format!r}")
        self.store = store
        self.zarr_format = zarr_format
        self.allow_unsafe = allow_unsafe_codecs
        self._cache: dict[str, Node] = {}
        #: Consolidated node documents by path: ``(document, attributes, where, name)``, parsed
        #: on use; ``name`` is the document the node would have on its own (``.zarray``...).
        self.consolidated: dict[str, tuple[Any, dict[str, Any] | None, str, str]] | None = None
        self.source = "per-node"
        self._children: dict[str, list[str]] | None = None
        self._load_root(consolidated)

    # ------------------------------------------------------------------ root and consolidated
    def _parse(self, doc_bytes: bytes, key: str, attrs: dict[str, Any] | None = None) -> Node:
        """Parse the document stored at ``key`` (whose last part names the document)."""
        doc = loads(doc_bytes, url=self.store.url, key=key)
        return self._node(doc, attrs, key.rpartition("/")[2], key)

    def _node(self, doc: Any, attrs: dict[str, Any] | None, name: str, key: str) -> Node:
        """The node a document ``name`` (``zarr.json``, ``.zarray`` or ``.zgroup``) describes.

        ``key`` says where the document is, for errors. The document must be of the format and
        kind its name says.
        """
        url = self.store.url
        if not isinstance(doc, dict):
            raise MetadataError(
                f"{name} must hold a JSON object, got {type(doc).__name__}", url=url, key=key
            )
        fmt, found = (3 if name == V3_NODE else 2), doc.get("zarr_format")
        if found != fmt:
            error = MetadataError if found in (2, 3) else UnsupportedError
            raise error(
                f"a {name} document must have zarr_format {fmt}, got {found!r}",
                url=url,
                key=key,
                field="zarr_format",
            )
        kwargs: dict[str, Any] = {"allow_unsafe_codecs": self.allow_unsafe, "url": url, "key": key}
        if name == V2_ARRAY:
            return ZaroMeta.from_json(doc, attrs, **kwargs)
        if name == V2_GROUP:
            return GroupMeta.from_json(doc, attrs, **kwargs)
        return node_from_json(doc, attrs, **kwargs)

    def _node_path(self, path: str, key: str, field: str) -> str:
        """``path``, a node path named by the consolidated metadata at ``key``, if it is one.

        Raises
        ------
        MetadataError
            If ``path`` is absolute, has empty, ``.`` or ``..`` components, a backslash or NUL,
            or a name Zarr reserves: a node there could be outside the store.
        """
        try:
            if path != path.strip("/"):
                raise InvalidNameError("a node path is relative, without outer '/'")
            return check_group_path(path)
        except InvalidNameError as e:
            raise MetadataError(
                f"consolidated metadata names the node {path!r}, which is not a node path: "
                f"{e.message}",
                url=self.store.url,
                key=key,
                field=field,
            ) from e

    def _load_root(self, consolidated: bool | None) -> None:
        want3 = self.zarr_format in (None, 3)
        want2 = self.zarr_format in (None, 2)
        keys = ([V3_NODE] if want3 else []) + (
            [V2_CONSOLIDATED, V2_ARRAY, V2_GROUP, V2_ATTRS] if want2 else []
        )
        docs = dict(zip(keys, self.store.get_many(keys)))
        self._root_docs = docs
        root_doc = docs.get(V3_NODE)
        if root_doc is not None:
            root = self._parse(root_doc, V3_NODE)
            self._cache[""] = root
            if consolidated is not False and isinstance(root, GroupMeta) and root.consolidated:
                field = "consolidated_metadata.metadata[{!r}]"
                for stored in root.raw["consolidated_metadata"]["metadata"]:
                    self._node_path(stored, V3_NODE, field.format(stored))
                self.consolidated = {
                    path: (doc, None, f"{V3_NODE} consolidated_metadata[{path!r}]", V3_NODE)
                    for path, doc in root.consolidated.items()
                }
                self.source = "V3 consolidated"
        raw = docs.get(V2_CONSOLIDATED)
        if raw is not None and consolidated is not False and "" not in self._cache:
            self._load_v2_consolidated(raw)
        if consolidated is True and self.consolidated is None:
            raise NodeNotFoundError(
                "consolidated=True but the store has no consolidated metadata "
                "(no consolidated_metadata in zarr.json, no .zmetadata)",
                url=self.store.url,
            )
        info("metadata of %s: %s", self.store.url, self.source)

    def _load_v2_consolidated(self, raw: bytes) -> None:
        url = self.store.url
        doc = loads(raw, url=url, key=V2_CONSOLIDATED)
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        if not isinstance(meta, dict):
            raise MetadataError(
                ".zmetadata has no 'metadata' object",
                url=url,
                key=V2_CONSOLIDATED,
                field="metadata",
            )
        nodes: dict[str, tuple[Any, dict[str, Any] | None, str, str]] = {}
        for key, value in meta.items():
            path, _, name = key.rpartition("/")
            if name not in (V2_ARRAY, V2_GROUP, V2_ATTRS):
                continue
            path = self._node_path(path, V2_CONSOLIDATED, f"metadata[{key!r}]")
            if name == V2_ATTRS:
                if not isinstance(value, dict):
                    raise MetadataError(
                        f"{V2_ATTRS} must hold a JSON object, got {type(value).__name__}",
                        url=url,
                        key=V2_CONSOLIDATED,
                        field=f"metadata[{key!r}]",
                    )
                continue
            attrs = meta.get(join(path, V2_ATTRS))
            nodes[path] = (value, attrs, f"{V2_CONSOLIDATED}[{key!r}]", name)
        self.consolidated = nodes
        self.source = "V2 consolidated"

    # ------------------------------------------------------------------ lookups
    def get(self, path: str = "") -> Node:
        """The metadata of the node at ``path``; raises NodeNotFoundError if there is none."""
        path = path.strip("/")
        if path in self._cache:
            return self._cache[path]
        if self.consolidated is not None and path in self.consolidated:
            doc, attrs, where, name = self.consolidated[path]
            node = self._node(doc, attrs, name, where)
            self._cache[path] = node
            return node
        node = self._read_node(path)
        self._cache[path] = node
        return node

    def group_at(self, path: str) -> GroupMeta | None:
        """The group at ``path``, or ``None`` where there is no node or an array."""
        try:
            node = self.get(path)
        except NodeNotFoundError:
            return None
        return node if isinstance(node, GroupMeta) else None

    def _doc_names(self) -> list[str]:
        want3 = self.zarr_format in (None, 3)
        want2 = self.zarr_format in (None, 2)
        return ([V3_NODE] if want3 else []) + ([V2_ARRAY, V2_GROUP, V2_ATTRS] if want2 else [])

    def _fetch_nodes(self, paths: list[str]) -> None:
        """Read the documents of many nodes in one batch and cache what they describe."""
        names = self._doc_names()
        todo = [p for p in paths if p not in self._cache and p != ""]
        blobs = self.store.get_many([join(p, n) for p in todo for n in names])
        for i, path in enumerate(todo):
            docs = dict(zip(names, blobs[i * len(names) : (i + 1) * len(names)]))
            if any(d is not None for d in docs.values()):
                self._cache[path] = self._read_node(path, docs)

    def _read_node(self, path: str, docs: dict[str, bytes | None] | None = None) -> Node:
        names = self._doc_names()
        if docs is None and path == "":
            docs = {n: self._root_docs.get(n) for n in names}
        elif docs is None:
            docs = dict(zip(names, self.store.get_many([join(path, n) for n in names])))
        node_doc = docs.get(V3_NODE)
        if node_doc is not None:
            return self._parse(node_doc, join(path, V3_NODE))
        attrs = None
        attrs_doc = docs.get(V2_ATTRS)
        if attrs_doc is not None:
            attrs = loads(attrs_doc, url=self.store.url, key=join(path, V2_ATTRS))
            if not isinstance(attrs, dict):
                raise MetadataError(
                    ".zattrs must hold a JSON object", url=self.store.url, key=join(path, V2_ATTRS)
                )
        for name in (V2_ARRAY, V2_GROUP):
            doc = docs.get(name)
            if doc is not None:
                return self._parse(doc, join(path, name), attrs)
        formats = {None: "zarr.json, .zarray or .zgroup", 2: ".zarray or .zgroup", 3: "zarr.json"}[
            self.zarr_format
        ]
        raise NodeNotFoundError(
            f"no Zarr array or group here (looked for {formats})",
            url=self.store.url,
            key=path or "/",
        )

    def _consolidated_children(self, path: str) -> list[str]:
        """The paths of the consolidated nodes directly below ``path``, sorted; the map of
        every group's children is built on the first call (a tree of n groups is then walked in
        O(n), not O(n^2))."""
        assert self.consolidated is not None
        if self._children is None:
            below: dict[str, list[str]] = {}
            for p in sorted(self.consolidated):
                if p:
                    below.setdefault(p.rpartition("/")[0], []).append(p)
            self._children = below
        return self._children.get(path, [])

    def children(self, path: str = "") -> dict[str, Node]:
        """The direct children of the group at ``path``, by name."""
        path = path.strip("/")
        prefix = f"{path}/" if path else ""
        if self.consolidated is not None:
            return {p[len(prefix) :]: self.get(p) for p in self._consolidated_children(path)}
        if isinstance(self.store, SupportsListDir):
            candidates = [n for n in self.store.list_dir(path) if n not in _NODE_DOCS]
        else:
            below = [k[len(prefix) :] for k in self.store.list(path)]
            candidates = sorted({k.split("/")[0] for k in below if "/" in k})
        self._fetch_nodes([join(path, name) for name in candidates])
        children: dict[str, Node] = {}
        for name in candidates:
            try:
                children[name] = self.get(join(path, name))
            except NodeNotFoundError:
                continue  # a prefix that is not a node, such as V3's "c" chunk prefix
        return children


class ZaroGroup:
    """A Zarr group: attributes and children (arrays and groups), V2 or V3."""

    def __init__(self, index: NodeIndex, meta: GroupMeta, path: str = "") -> None:
        self.index = index
        self.meta = meta
        self.path = path.strip("/")

    @property
    def store(self) -> Store:
        return self.index.store

    @property
    def attrs(self) -> dict[str, Any]:
        return self.meta.attributes

    def _node(self, path: str, meta: Node) -> ZaroArray | ZaroGroup:
        if isinstance(meta, ZaroMeta):
            return ZaroArray(self.store, meta, path, verbose=self.index.verbose)
        return ZaroGroup(self.index, meta, path)

    def __getitem__(self, name: str) -> ZaroArray | ZaroGroup:
        path = join(self.path, name)
        try:
            meta = self.index.get(path)
        except NodeNotFoundError:
            raise KeyError(name) from None
        return self._node(path, meta)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.index.get(join(self.path, name))
        except NodeNotFoundError:
            return False
        return True

    def members(self) -> dict[str, ZaroArray | ZaroGroup]:
        """The direct children by name."""
        return {
            name: self._node(join(self.path, name), meta)
            for name, meta in self.index.children(self.path).items()
        }

    def arrays(self) -> dict[str, ZaroArray]:
        """The direct child arrays by name."""
        return {k: v for k, v in self.members().items() if isinstance(v, ZaroArray)}

    def groups(self) -> dict[str, ZaroGroup]:
        """The direct child groups by name."""
        return {k: v for k, v in self.members().items() if isinstance(v, ZaroGroup)}

    def __iter__(self) -> Iterator[str]:
        return iter(self.members())

    def walk(self) -> Iterator[tuple[str, ZaroArray | ZaroGroup]]:
        """Every node below this group, depth first, with its path relative to the group."""
        for name, node in self.members().items():
            yield name, node
            if isinstance(node, ZaroGroup):
                for sub, child in node.walk():
                    yield f"{name}/{sub}", child

    def __repr__(self) -> str:
        return f"<ZaroGroup {self.store.url}#{self.path or '/'} v{self.meta.zarr_format}>"


def open_index(
    url_or_store: Any,
    storage_options: dict[str, Any] | None,
    consolidated: bool | None,
    zarr_format: int | None,
    verbose: bool,
    allow_unsafe_codecs: bool,
) -> NodeIndex:
    """Open a store (URL, path, ``os.PathLike`` or Store) and its node index."""
    if isinstance(url_or_store, os.PathLike):
        url_or_store = os.fspath(url_or_store)
    store = open_store(url_or_store, storage_options)
    return NodeIndex(
        store,
        consolidated=consolidated,
        zarr_format=zarr_format,
        allow_unsafe_codecs=allow_unsafe_codecs,
        verbose=verbose,
    )


def _log_array(array: ZaroArray) -> None:
    m = array.meta
    info(
        "array %s: dtype=%s shape=%s chunks=%s shards=%s codecs=%s dims=%s",
        array.path or "/",
        m.dtype,
        m.shape,
        m.chunk_grid.describe(),
        m.storage_grid.describe() if m.shard_shape else None,
        m.describe_codecs(),
        m.dimension_names,
    )


@verbose_call
def open_array(
    url_or_store: Any,
    path: str = "",
    *,
    storage_options: dict[str, Any] | None = None,
    consolidated: bool | None = None,
    zarr_format: int | None = None,
    verbose: bool = False,
    allow_unsafe_codecs: bool = False,
) -> ZaroArray:
    """Open the array at ``path`` in a store (a URL, a local path or a Store object).

    Parameters
    ----------
    url_or_store
        A local path, a ``file://``, ``memory://``, ``s3://``, ``gs://``, ``http(s)://`` or other
        fsspec URL, a reference file or URL (Kerchunk JSON or Parquet), an ``os.PathLike``, or a
        store object (an xzaro store, an fsspec mapper, an obstore store, an Icechunk session's
        store).
    path
        The array's path inside the store (``""``: the store's root is the array).
    storage_options
        Options for the store's client (``{"anon": True}`` for a public S3 bucket, credentials,
        ``endpoint_url``, ...).
    consolidated
        ``True``: consolidated metadata must exist; ``False``: never use it; ``None``: use it
        when present.
    zarr_format
        Read only V2 (``2``) or V3 (``3``) metadata; ``None``: whichever the store has.
    verbose
        Log, on stderr as ``[zaro] ...`` lines, what this call finds and one summary per read
        of the returned array (see :mod:`xzaro.log`).
    allow_unsafe_codecs
        Accept codecs (such as pickle) that can run code while decoding.

    Raises
    ------
    NodeNotFoundError
        If there is no array (or only a group) at ``path``.
    MetadataError
        If the metadata is invalid; :class:`~xzaro.errors.UnsupportedError` if it names a
        codec, data type, chunk grid or extension xzaro does not implement.
    """
    index = open_index(
        url_or_store, storage_options, consolidated, zarr_format, verbose, allow_unsafe_codecs
    )
    meta = index.get(path)
    if not isinstance(meta, ZaroMeta):
        raise NodeNotFoundError(
            "this node is a group, not an array", url=index.store.url, key=path or "/"
        )
    array = ZaroArray(index.store, meta, path, verbose=index.verbose)
    _log_array(array)
    return array


@verbose_call
def open_group(
    url_or_store: Any,
    path: str = "",
    *,
    storage_options: dict[str, Any] | None = None,
    consolidated: bool | None = None,
    zarr_format: int | None = None,
    verbose: bool = False,
    allow_unsafe_codecs: bool = False,
) -> ZaroGroup:
    """Open the group at ``path`` in a store (``""``: the root group).

    The parameters are those of :func:`open_array`; the arrays and groups below the group are
    reached by path (``group["a/b"]``) with the same options.

    Raises
    ------
    NodeNotFoundError
        If there is no group (or only an array) at ``path``.
    MetadataError
        If the metadata is invalid.
    """
    index = open_index(
        url_or_store, storage_options, consolidated, zarr_format, verbose, allow_unsafe_codecs
    )
    meta = index.get(path)
    if not isinstance(meta, GroupMeta):
        raise NodeNotFoundError(
            "this node is an array, not a group", url=index.store.url, key=path or "/"
        )
    return ZaroGroup(index, meta, path)
