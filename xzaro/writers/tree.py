"""Writing an xarray ``DataTree``: every node a group, planned together, written in one go.

Every node is planned (names, arguments and encodings checked) before anything is written or
removed; the data of all nodes is computed in one Dask computation, so work shared between
nodes runs once; then each node's metadata is written, the root's last, and consolidated
metadata once for the whole store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from xzaro.errors import MetadataError
from xzaro.hierarchy import NodeIndex
from xzaro.paths import check_group_path, check_name, join
from xzaro.stores import MemoryStore, Store, SupportsTransactions, open_store
from xzaro.writers.compute import compute_writes, delayed_after
from xzaro.writers.dataset import (
    PreparedWrite,
    commit_message,
    prepare_store,
    write_in_transaction,
)
from xzaro.writers.options import WriteOptions, checked_mode
from xzaro.writers.store_array import delete_below, existing_index, write_consolidated

#: One node to write: its path relative to the node written at the group, its ``path`` in
#: its tree (the key of its ``encoding``) and its dataset.
Node = tuple[str, str, Any]


def node_datasets(tree: Any, write_inherited_coords: bool) -> list[Node]:
    """Every node of ``tree``'s subtree, breadth-first as ``DataTree.to_zarr``: ``tree`` itself
    always with the coordinates it inherits, the others with them only if
    ``write_inherited_coords``."""
    out = []
    for rel, node in tree.subtree_with_keys:
        at_root = node is tree
        dataset = node.to_dataset(inherit=write_inherited_coords or at_root)
        out.append(("" if at_root else str(rel), node.path, dataset))
    return out


def check_tree_encoding(
    encoding: Mapping[str, Any], nodes: list[Node], url: str | None, root: str
) -> None:
    """Refuse encoding for node paths or variables the tree does not have."""
    groups = [path for _, path, _ in nodes]
    unknown = set(encoding) - set(groups)
    if unknown:
        raise MetadataError(
            f"unexpected encoding group name(s) provided: {sorted(map(str, unknown))}; "
            f"encoding is keyed by node path, one of {groups}",
            url=url,
            key=root or "/",
            field="encoding",
        )
    for rel, path, dataset in nodes:
        node_encoding = encoding.get(path) or {}
        if not isinstance(node_encoding, Mapping):
            problem = f"must map variable names to encodings, got {type(node_encoding).__name__}"
        else:
            missing = [name for name in node_encoding if name not in dataset.variables]
            if not missing:
                continue
            problem = (
                f"names variables that are not in it: {missing} "
                f"(it has {sorted(map(str, dataset.variables))})"
            )
        raise MetadataError(
            f"encoding for node {path!r} {problem}",
            url=url,
            key=join(root, rel) or "/",
            field="encoding",
        )


def _prepare_nodes(
    store: Store,
    root: str,
    nodes: list[Node],
    encoding: Mapping[str, Any] | None,
    options: WriteOptions,
) -> list[PreparedWrite]:
    """Plan every node's write into ``store`` (nothing is written yet). With ``append_dim``, a
    node without that dimension is written as ``mode="a"`` writes a dataset's variables that
    lack it: in full, over the stored ones."""
    append_dim = options.append_dim
    return [
        prepare_store(
            dataset,
            store,
            replace(
                options,
                group=join(root, rel),
                append_dim=append_dim if append_dim in dataset.dims else None,
            ),
            encoding=(encoding or {}).get(path),
        )
        for rel, path, dataset in nodes
    ]


def _scratch_store(url: str) -> MemoryStore:
    """An empty in-memory store that names ``url`` in the errors of a trial plan."""
    scratch = MemoryStore()
    scratch.url = url
    return scratch


def _node_options(
    store: Store, root: str, nodes: list[Node], options: WriteOptions, mode: str
) -> WriteOptions:
    """The options every node is planned with, once the tree agrees with them: new child
    groups of a stored tree take its format, and a replaced tree is written as a new one."""
    append_dim, zarr_format = options.append_dim, options.zarr_format
    if append_dim is not None and not any(append_dim in ds.dims for _, _, ds in nodes):
        raise MetadataError(
            f"append_dim={append_dim!r} is not a dimension of any node of the tree",
            url=store.url,
            key=root or "/",
            field="append_dim",
        )
    if mode in ("a", "r+") and zarr_format is None:
        existing = existing_index(store, root, None)
        if existing is not None:  # new child groups take the stored tree's format
            zarr_format = existing.get(root).zarr_format
    return replace(
        options,
        zarr_format=zarr_format,
        mode="w-" if mode == "w" else mode,  # children are new groups of the new tree
        consolidated=False,
    )


def to_tree_store(
    tree: Any,
    url: Any,
    options: WriteOptions,
    *,
    encoding: Mapping[str, Mapping] | None = None,
    write_inherited_coords: bool = False,
) -> Any:
    """Write ``tree`` (see :meth:`DataTreeAccessor.to_store`): the number of stored objects
    written (or removed), or a ``dask.delayed`` object with ``compute=False``."""
    mode = checked_mode(
        options.mode,
        options.zarr_format,
        options.append_dim,
        options.region,
        compute=options.compute,
        **options.flags,
        write_inherited_coords=write_inherited_coords,
    )
    store = open_store(url, options.storage_options, mode="w")
    root = check_group_path(options.group, url=store.url)
    nodes = node_datasets(tree, write_inherited_coords)
    for rel, _, _ in nodes[1:]:
        check_name(rel.rsplit("/", 1)[-1], "group", url=store.url, group=root)
    check_tree_encoding(encoding or {}, nodes, store.url, root)
    node_options = _node_options(store, root, nodes, options, mode)
    if mode == "w":
        # Plan the whole tree into an empty scratch store first, so that nothing is removed
        # unless every node can be written; then remove the old tree once.
        _prepare_nodes(_scratch_store(store.url), root, nodes, encoding, node_options)
        delete_below(store, root)
    prepared = _prepare_nodes(store, root, nodes, encoding, node_options)
    return _write_nodes(store, prepared, options, commit_message(store, url, options))


def _write_nodes(
    store: Store, prepared: list[PreparedWrite], options: WriteOptions, message: str | None
) -> Any:
    """Compute every node's tasks in one go (or return them delayed), then write the nodes'
    metadata, deepest first, and the store's consolidated metadata."""
    sizes = [len(p.tasks) for p in prepared]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    # Deepest nodes first, the root last: a group appears after everything below it.
    last_first = list(reversed(list(zip(prepared, starts, sizes))))

    def finalize(*written: Any) -> int:
        for node, start, n in last_first:
            node.finalize(*written[start : start + n])
        if options.consolidated:
            write_consolidated(store, "", NodeIndex(store, consolidated=False))
        return int(sum(int(w) for w in written))

    if isinstance(store, SupportsTransactions):
        return write_in_transaction(store, message, prepared, finalize, options)
    if not options.compute:
        left = {id(node): node.write_template() for node, _, _ in last_first}
        if options.consolidated:
            write_consolidated(store, "", NodeIndex(store, consolidated=False))
        return delayed_after(finalize, [t for node in prepared for t in left[id(node)]])
    for node in prepared:
        node.begin()
    tasks = [task for node in prepared for task in node.tasks]
    return finalize(*compute_writes(*tasks, progress=options.progress))
