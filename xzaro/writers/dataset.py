"""``to_store``: write xarray datasets (Dask-backed or not) as Zarr V2 or V3 stores.

CF encoding is xarray's own. Every Dask task writes whole stored objects (chunks for V2,
shards for V3): blocks that do not line up with them are rechunked first, so no two tasks ever
write the same object. Array metadata, group metadata and consolidated metadata are written by a
final task that runs after every data task: a store never promises data that is not there.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from xzaro.errors import MetadataError, MetadataTypeError, NodeExistsError, NodeNotFoundError
from xzaro.hierarchy import NodeIndex
from xzaro.log import info
from xzaro.meta import GroupMeta, ZaroMeta, dumps
from xzaro.paths import check_group_path, check_name, join
from xzaro.stores import Store, SupportsTransactions, open_store
from xzaro.writers.blocks import as_dask, store_block
from xzaro.writers.cf import encode_variables, with_stored_encoding
from xzaro.writers.compute import compute_writes, delayed_after
from xzaro.writers.encoding import check_call_sizes, check_user_encoding
from xzaro.writers.journal import clear_journal, read_journal, resumed_lengths, write_journal
from xzaro.writers.options import WriteOptions
from xzaro.writers.region import resolve_region, with_stored_edges
from xzaro.writers.store_array import (
    delete_below,
    existing_index,
    write_consolidated,
    write_metadata,
)
from xzaro.writers.variables import PlannedArray, check_append_dtype, plan_variables
from xzaro.writers.writer import writer_for

#: How xarray stores a variable named ``None`` (its reader gives the name back).
NONE_VARIABLE_NAME = "__values__"


def _check_attributes(group: GroupMeta, plans: list[PlannedArray], url: str) -> None:
    """Every attribute must become JSON before anything is written (xarray's message)."""
    nodes: list[tuple[str, GroupMeta | ZaroMeta]] = [("/", group)]
    nodes += [(plan.path, plan.meta) for plan in plans]
    for key, meta in nodes:
        try:
            dumps(dict(meta.attributes) if isinstance(meta, GroupMeta) else meta.attributes_json())
        except (TypeError, ValueError) as err:
            where = "" if key == "/" else f" (variable {key!r})"
            raise MetadataTypeError(
                f"Invalid attribute in Dataset.attrs.{where} {err}. Attributes must be JSON: "
                "strings, numbers, booleans, lists and mappings of them",
                url=url,
                key=key,
                field="attributes",
            ) from None


@dataclass
class PreparedWrite:
    """A planned write: Dask arrays whose computation writes the data (each sums the objects
    it wrote) and ``finalize(*results)``, which writes the metadata afterwards.

    Unpacks as ``tasks, finalize``. :meth:`begin` must run before the tasks (it records an
    append); :meth:`write_template` writes the metadata and the in-memory variables at once,
    for ``compute=False``.
    """

    tasks: list[Any]
    finalize: Any
    store: Store
    plans: list[PlannedArray]
    write_meta: Any
    journal: tuple[str, dict[str, tuple[int, int]]] | None = None
    group: str = ""

    def __iter__(self) -> Any:
        return iter((self.tasks, self.finalize))

    def begin(self) -> None:
        """Record an append in its journal before any of its data is written."""
        if self.journal is not None:
            write_journal(self.store, self.group, *self.journal)

    def write_template(self, **compute_kwargs: Any) -> list[Any]:
        """Write every array's metadata now, and the variables held in memory (computed with
        ``compute_kwargs``); returns what is left to compute (each task, or the count of
        objects an in-memory one wrote)."""
        self.write_meta()
        lazy = [hasattr(plan.data, "dask") for plan in self.plans]
        eager = [task for task, is_lazy in zip(self.tasks, lazy) if not is_lazy]
        done = iter(compute_writes(*eager, **compute_kwargs) if eager else ())
        return [task if is_lazy else next(done) for task, is_lazy in zip(self.tasks, lazy)]


def _write_task(plan: PlannedArray, store: Store) -> Any:
    """The Dask array whose computation writes one planned array (its sum: objects written).

    Data that starts or ends inside a stored object is first completed with that object's
    stored values, so every block covers whole objects."""
    if plan.stored_shape is not None:
        data, start = with_stored_edges(
            plan.data, store, plan.path, plan.meta, plan.stored_shape, plan.offset
        )
        plan = replace(plan, data=data, offset=start)
    writer = writer_for(store, plan.path, plan.meta, **plan.options)
    data = as_dask(plan.data, plan.meta.storage_grid, plan.offset)
    return data.map_blocks(
        store_block,
        writer=writer,
        offset=plan.offset,
        dtype=np.int64,
        chunks=tuple((1,) * len(c) for c in data.chunks),
    ).sum()


def _stored_group(
    store: Store, group: str, mode: str, zarr_format: int | None
) -> tuple[NodeIndex | None, dict[str, ZaroMeta], int | None]:
    """What the mode finds at ``group``: the store's node index (``None`` when nothing is
    there), the stored arrays of the group by name (for modes that write into them) and the
    Zarr format to write."""
    existing = existing_index(store, group, None)
    if existing is None:
        if mode == "r+":
            raise NodeNotFoundError(
                "mode 'r+' needs an existing store", url=store.url, key=group or "/"
            )
        return None, {}, _new_group_format(store, group, zarr_format)
    if mode == "w-":
        raise NodeExistsError(
            "mode 'w-' refuses to overwrite existing data (use mode='w')",
            url=store.url,
            key=group or "/",
        )
    if mode == "w":
        return existing, {}, zarr_format
    group_node = existing.get(group)
    if not isinstance(group_node, GroupMeta):
        raise NodeExistsError(
            "the path holds an array, not a group", url=store.url, key=group or "/"
        )
    if zarr_format is not None and zarr_format != group_node.zarr_format:
        raise MetadataError(
            f"the stored group is Zarr V{group_node.zarr_format}, "
            f"zarr_format={zarr_format} was asked for",
            url=store.url,
            key=group or "/",
            field="zarr_format",
        )
    stored = {
        name: meta for name, meta in existing.children(group).items() if isinstance(meta, ZaroMeta)
    }
    return existing, stored, group_node.zarr_format


def _new_group_format(store: Store, group: str, zarr_format: int | None) -> int | None:
    """The Zarr format of a new ``group``: that of the nearest stored group above it (a group
    of the other format would be invisible to its hierarchy's readers), else ``zarr_format``.

    Raises
    ------
    MetadataError
        Naming ``zarr_format``, when it asks for the other format than the hierarchy's.
    """
    if not group:  # the root has no ancestor
        return zarr_format
    parts = group.split("/")
    try:
        index = NodeIndex(store, consolidated=False)  # one index for every ancestor
    except NodeNotFoundError:
        return zarr_format
    for depth in range(len(parts) - 1, -1, -1):
        ancestor = "/".join(parts[:depth])
        node = index.group_at(ancestor)
        if node is None:
            continue
        if zarr_format is not None and zarr_format != node.zarr_format:
            raise MetadataError(
                f"the group {ancestor or '/'!r} above is Zarr V{node.zarr_format}; a "
                f"V{zarr_format} group in it would be invisible to its readers and its "
                "consolidated metadata (write it with the hierarchy's format, or into a "
                "store of its own)",
                url=store.url,
                key=group,
                field="zarr_format",
            )
        return node.zarr_format
    return zarr_format


def _checked_names(
    dataset: Any, encoding: Mapping[Any, Mapping] | None, url: str, group: str
) -> tuple[Any, Mapping[Any, Mapping] | None]:
    """The dataset (a variable named ``None`` renamed as xarray stores it) and its encoding,
    once every variable and dimension name is a valid node name."""
    if None in dataset.variables:
        dataset = dataset.rename_vars({None: NONE_VARIABLE_NAME})
        if encoding is not None and None in encoding:
            encoding = {NONE_VARIABLE_NAME if k is None else k: v for k, v in encoding.items()}
    for name in dataset.variables:
        check_name(name, "variable", url=url, group=group)
    for dim in dataset.dims:
        check_name(dim, "dimension", url=url, group=group)
    return dataset, encoding


def _check_against_stored(
    dataset: Any,
    stored: Mapping[str, ZaroMeta],
    user_encoding: Mapping[str, Any],
    append_dim: str | None,
    url: str,
    group: str,
) -> None:
    """Stored variables keep their encoding, and ``append_dim`` must be a stored dimension."""
    in_store = [name for name in dataset.variables if name in stored]
    given_for_stored = [name for name in in_store if name in user_encoding]
    if given_for_stored:
        raise MetadataError(
            f"variables {given_for_stored} already exist, but encoding was provided for them; "
            "a stored array keeps the encoding it was created with",
            url=url,
            key=group or "/",
            field="encoding",
        )
    if append_dim is not None:
        stored_dims = {d for meta in stored.values() for d in (meta.dimension_names or ())}
        if append_dim not in dataset.dims or (stored and append_dim not in stored_dims):
            raise ValueError(
                f"append_dim={append_dim!r} does not match any existing dataset dimensions "
                f"(stored: {sorted(str(d) for d in stored_dims)}, "
                f"written: {sorted(str(d) for d in dataset.dims)})"
            )


def _region_dataset(
    dataset: Any,
    options: WriteOptions,
    stored: Mapping[str, ZaroMeta],
    store: Store,
    group: str,
) -> tuple[Any, dict[str, slice]]:
    """A region write's dataset (without its indexes, which a region write leaves alone) and
    where it goes, by dimension."""
    where = resolve_region(options.region, dataset, stored, store, group)
    if options.append_dim is not None:
        raise ValueError(
            "cannot list the same dimension in both append_dim and region"
            if options.append_dim in where
            else "append_dim and region cannot be combined in one write"
        )
    if where:
        unrelated = [k for k, v in dataset.variables.items() if not set(where) & set(v.dims)]
        # Indexes are not rewritten by a region write (xarray drops them too).
        unrelated = [k for k in unrelated if k not in dataset.indexes]
        if unrelated:
            raise ValueError(
                "when writing a region, all variables in the dataset to write must have at "
                f"least one dimension in common with the region's dimensions {list(where)}; "
                f"drop {unrelated} first (ds.drop_vars({unrelated!r}))"
            )
    return dataset.drop_vars(list(dataset.indexes)), where


def _check_only_stored(dataset: Any, stored: Mapping[str, ZaroMeta], url: str, group: str) -> None:
    """Mode ``"r+"`` writes into stored arrays only."""
    new_names = [name for name in dataset.variables if name not in stored]
    if new_names:
        raise MetadataError(
            f"dataset contains non-pre-existing variables {new_names}, which mode 'r+' "
            "does not allow (it writes into existing arrays only; use mode='a' to add "
            "variables)",
            url=url,
            key=group or "/",
        )


def _encoded(
    dataset: Any,
    user_encoding: Mapping[str, Any],
    existing: NodeIndex | None,
    stored: Mapping[str, ZaroMeta],
    url: str,
    group: str,
    fmt: int,
) -> tuple[dict[Hashable, Any], dict]:
    """The CF-encoded variables and attributes: variables written into stored arrays encoded
    exactly as the stored data was, the others with the ``encoding=`` the call gives."""
    in_store = [name for name in dataset.variables if name in stored]
    if in_store:
        dataset = with_stored_encoding(dataset, existing, group)  # type: ignore[arg-type]
        for name in in_store:
            check_append_dtype(str(name), stored[name], dataset[name].dtype, url, join(group, name))
    if user_encoding:
        dataset = dataset.copy()
        for name, enc in user_encoding.items():
            if name in dataset.variables:  # a region write leaves the indexes out
                dataset[name].encoding = dict(enc)
    return encode_variables(dataset, fmt)


def _resumed_appends(
    journal: dict[str, Any] | None,
    plans: list[PlannedArray],
    appended: dict[str, tuple[int, int]],
    append_dim: str | None,
    url: str,
    group: str,
) -> tuple[list[PlannedArray], dict[str, tuple[int, int]]]:
    """The plans and appended lengths of an append that an interrupted one recorded in its
    journal: planned again from where that append started, so it is finished, not repeated."""
    if appended and journal is not None:
        lengths = {p: new - old for p, (old, new) in appended.items()}
        stored_now = {p: old for p, (old, _) in appended.items()}
        starts = resumed_lengths(journal, append_dim, lengths, stored_now, url=url, group=group)
        plans = [_resumed(plan, starts, append_dim) for plan in plans]  # type: ignore[arg-type]
        appended = {p: (starts[p], starts[p] + n) for p, n in lengths.items()}
    elif journal is not None:
        resumed_lengths(journal, append_dim, {}, {}, url=url, group=group)
    return plans, appended


def _resumed(plan: PlannedArray, starts: dict[str, int], append_dim: str) -> PlannedArray:
    """An appended array planned again from the length its interrupted append started at."""
    if plan.path not in starts or plan.stored_shape is None:
        return plan
    dims = tuple(str(d) for d in plan.meta.dimension_names or ())
    axis = dims.index(append_dim)
    start = starts[plan.path]
    added = plan.meta.shape[axis] - plan.offset[axis]
    shape = tuple(start + added if i == axis else n for i, n in enumerate(plan.meta.shape))
    stored_shape = tuple(start if i == axis else n for i, n in enumerate(plan.stored_shape))
    offset = tuple(start if i == axis else o for i, o in enumerate(plan.offset))
    return replace(
        plan, meta=replace(plan.meta, shape=shape), stored_shape=stored_shape, offset=offset
    )


def _group_meta(
    mode: str, existing: NodeIndex | None, group: str, attrs: dict, fmt: int
) -> GroupMeta:
    """The group's metadata after the write: its attributes, merged into the stored ones by
    ``"a"``/``"a-"``, the stored ones unchanged by ``"r+"``."""
    group_attrs = attrs
    if mode in ("a", "a-", "r+") and existing is not None:
        old_attrs = existing.get(group).attributes
        # mode "r+" writes data only: the group and its arrays keep their metadata.
        group_attrs = dict(old_attrs) if mode == "r+" else {**old_attrs, **attrs}
    return GroupMeta(fmt, group_attrs)


def _prepared(
    store: Store,
    group: str,
    mode: str,
    plans: list[PlannedArray],
    group_meta: GroupMeta,
    appended: dict[str, tuple[int, int]],
    existing: NodeIndex | None,
    options: WriteOptions,
) -> PreparedWrite:
    """The write of checked plans: the old group removed (mode ``"w"``), a task per array, and
    the metadata written afterwards (with the group's missing parents)."""
    if mode == "w":
        # Only once everything has been checked; also when no document describes the group,
        # since an interrupted write leaves chunks there that this write may not replace.
        delete_below(store, group)
    parts = group.split("/") if group else []
    ancestors = ["/".join(parts[:i]) for i in range(len(parts))]
    missing_parents = [p for p in ancestors if existing_index(store, p, None) is None]

    counts = [_write_task(plan, store) for plan in plans]

    def write_meta() -> None:
        if mode == "r+":
            return  # data only: shapes do not change and the metadata stays as it is
        for plan in plans:
            write_metadata(store, plan.path, plan.meta)
        write_metadata(store, group, group_meta)
        for parent in missing_parents:  # a group written into a new store gets its parents
            if existing_index(store, parent, None) is None:
                write_metadata(store, parent, GroupMeta(group_meta.zarr_format, {}))
        if options.consolidated:
            write_consolidated(store, "", NodeIndex(store, consolidated=False))

    def finalize(*written: Any) -> int:
        write_meta()
        if appended:
            clear_journal(store, group)
        return int(sum(int(w) for w in written))

    journal = (str(options.append_dim), appended) if appended else None
    return PreparedWrite(counts, finalize, store, plans, write_meta, journal, group)


def prepare_store(
    dataset: Any,
    url: Any,
    options: WriteOptions | None = None,
    *,
    encoding: Mapping[Any, Mapping] | None = None,
) -> PreparedWrite:
    """Plan a write of one dataset into one group; nothing is written until every name,
    argument and encoding has been checked. See :meth:`DatasetAccessor.to_store`."""
    import xarray as xr

    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"to_store writes an xarray Dataset, got {type(dataset).__name__}")
    options = WriteOptions() if options is None else options
    mode = options.checked_mode()
    store = open_store(url, options.storage_options, mode="w")
    group = check_group_path(options.group, url=store.url)
    dataset, encoding = _checked_names(dataset, encoding, store.url, group)
    user_encoding = check_user_encoding(encoding, list(dataset.variables), url=store.url)
    check_call_sizes(options.chunks, dataset.sizes, "chunks")
    check_call_sizes(options.shards, dataset.sizes, "shards")

    existing, stored, zarr_format = _stored_group(store, group, mode, options.zarr_format)
    fmt = 3 if zarr_format is None else int(zarr_format)
    _check_against_stored(dataset, stored, user_encoding, options.append_dim, store.url, group)
    where: dict[str, slice] = {}
    if options.region is not None:
        dataset, where = _region_dataset(dataset, options, stored, store, group)
    if mode == "r+":
        _check_only_stored(dataset, stored, store.url, group)
    journal = read_journal(store, group) if mode in ("a", "a-", "r+") and stored else None
    if journal is not None and mode == "r+":
        resumed_lengths(journal, None, {}, {}, url=store.url, group=group)

    variables, attrs = _encoded(dataset, user_encoding, existing, stored, store.url, group, fmt)
    plans, appended = plan_variables(
        variables,
        store,
        group,
        stored,
        mode=mode,
        fmt=fmt,
        user_encoding=user_encoding,
        where=where,
        options=options,
    )
    plans, appended = _resumed_appends(
        journal, plans, appended, options.append_dim, store.url, group
    )
    group_meta = _group_meta(mode, existing, group, attrs, fmt)
    _check_attributes(group_meta, plans, store.url)
    return _prepared(store, group, mode, plans, group_meta, appended, existing, options)


def commit_message(store: Store, url: Any, options: WriteOptions) -> str | None:
    """The message of the commit a write ends with, or ``None`` for none.

    Raises
    ------
    ValueError
        ``commit`` is given for a store without commits, or with ``compute=False`` (the write
        is not over when ``to_store`` returns).
    """
    if not isinstance(store, SupportsTransactions):
        if options.commit is not None:
            raise ValueError(f"commit= is for Icechunk sessions; {store.url} has no commits")
        return None
    if options.commit is not None and not options.compute:
        raise ValueError("commit= needs compute=True: commit after computing the write instead")
    opened_here = isinstance(url, str) and url.strip().lower().startswith("icechunk://")
    if options.commit is None and opened_here:
        return "xzaro to_store"
    return options.commit


def write_in_transaction(
    store: SupportsTransactions,
    message: str | None,
    prepared: list[PreparedWrite],
    finalize: Any,
    options: WriteOptions,
    **compute_kwargs: Any,
) -> Any:
    """Compute a write that readers see only when committed, then commit it with ``message``
    (if any): the arrays' metadata first, since such a store holds chunks only of arrays it
    knows, and no append journal, since an uncommitted write leaves nothing behind.

    The data is written from this process's threads, into this very session, whatever
    scheduler is in force: a copy of the session in another process would be lost (see
    :meth:`~xzaro.stores.icechunk.IcechunkStore.fork` for Icechunk's distributed writes).
    """
    tasks = [task for plan in prepared for task in plan.write_template(scheduler="threads")]
    if not options.compute:
        return delayed_after(finalize, tasks)
    written = compute_writes(
        *tasks, progress=options.progress, scheduler="threads", **compute_kwargs
    )
    count = finalize(*written)
    if message is not None:
        store.commit(message)
        info("committed the write to %s: %s", prepared[0].store.url, message)
    return count


def to_store(
    dataset: Any,
    url: Any,
    options: WriteOptions | None = None,
    *,
    encoding: Mapping[Hashable, Mapping] | None = None,
) -> Any:
    """Write a dataset to a Zarr store; see :meth:`DatasetAccessor.to_store`."""
    options = WriteOptions() if options is None else options
    if not isinstance(options.compute, (bool, np.bool_)):
        raise TypeError(f"compute must be True or False, got {options.compute!r}")
    prepared = prepare_store(dataset, url, options, encoding=encoding)
    message = commit_message(prepared.store, url, options)
    if isinstance(prepared.store, SupportsTransactions):
        return write_in_transaction(prepared.store, message, [prepared], prepared.finalize, options)
    if not options.compute:
        return delayed_after(prepared.finalize, prepared.write_template())
    prepared.begin()
    # One computation of every variable's task: work they share runs once.
    return prepared.finalize(*compute_writes(*prepared.tasks, progress=options.progress))
