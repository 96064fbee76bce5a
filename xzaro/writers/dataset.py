"""``to_store``: write xarray datasets (Dask-backed or not) as Zarr V2 or V3 stores.

CF encoding is xarray's own. Every Dask task writes whole stored objects (chunks for V2,
shards for V3): blocks that do not line up with them are rechunked first, so no two tasks ever
write the same object. Array metadata, group metadata and consolidated metadata are written by a
final task that runs after every data task: a store never promises data that is not there.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xzaro.errors import MetadataError, MetadataTypeError, NodeExistsError, NodeNotFoundError
from xzaro.hierarchy import NodeIndex
from xzaro.meta import (
    GroupMeta,
    ZaroMeta,
    dumps,
)
from xzaro.paths import check_group_path, check_name, join
from xzaro.stores import Store, open_store
from xzaro.writers.blocks import as_dask, check_alignment, store_block
from xzaro.writers.cf import encode_variables, fill_and_attrs, with_stored_encoding
from xzaro.writers.compute import compute_writes, delayed_after
from xzaro.writers.encoding import (
    UNSET,
    call_sizes,
    check_call_sizes,
    check_user_encoding,
    chunk_key_encoding_for,
    chunk_shape_for,
    codec_kwargs,
    shard_shape_for,
    storage_encoding,
)
from xzaro.writers.journal import clear_journal, read_journal, resumed_lengths, write_journal
from xzaro.writers.layout import array_meta
from xzaro.writers.region import region_offset, resolve_region, with_stored_edges
from xzaro.writers.store_array import (
    delete_below,
    existing_index,
    write_consolidated,
    write_metadata,
)
from xzaro.writers.writer import writer_for

MODES = ("w-", "w", "a", "a-", "r+")
#: How xarray stores a variable named ``None`` (its reader gives the name back).
NONE_VARIABLE_NAME = "__values__"


@dataclass
class PlannedArray:
    """One variable to write: where, its metadata, its data and the offset of that data.

    ``stored_shape`` is set for a write into a stored array (the shape whose values are stored
    now); ``options`` are the :class:`~xzaro.writers.writer.Writer` options.
    """

    name: str
    path: str
    meta: ZaroMeta
    data: Any
    offset: tuple[int, ...]
    stored_shape: tuple[int, ...] | None = None
    options: dict[str, bool] = field(default_factory=dict)


def _check_append_dtype(name: str, old: ZaroMeta, new: np.dtype, url: str, path: str) -> None:
    """Fixed-width strings must keep their width: a longer one would be cut (xarray refuses
    any change, as it does)."""
    if new.kind in "SU" and old.dtype.kind in "SU" and new != old.dtype:
        raise MetadataError(
            f"Mismatched dtypes for variable {name!r} between the stored array and the data "
            f"to write: the store has dtype {old.dtype}, the data {new}; fixed-width strings "
            "are stored with one width (cast the data, or store it as variable-length strings)",
            url=url,
            key=path,
            field="dtype",
        )


def _check_attributes(group: GroupMeta, plans: list[PlannedArray], url: str) -> None:
    """Every attribute must become JSON before anything is written (xarray's message)."""
    for key, meta in [("/", group), *((plan.path, plan.meta) for plan in plans)]:
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


def _stored_dims(old: ZaroMeta, path: str, url: str) -> tuple[str, ...]:
    if old.dimension_names is None or any(d is None for d in old.dimension_names):
        raise MetadataError(
            "the stored array has no dimension names, so xarray data cannot be written into it",
            url=url,
            key=path,
            field="dimension_names",
        )
    return tuple(str(d) for d in old.dimension_names)


def _into_stored(
    name: str,
    var: Any,
    old: ZaroMeta,
    path: str,
    url: str,
    append_dim: str | None,
    where: Mapping[str, slice],
) -> tuple[Any, ZaroMeta, tuple[int, ...], tuple[int, ...] | None]:
    """A variable written into its stored array: the variable (transposed to the stored order),
    the array's metadata after the write, where the data starts, and the shape whose values are
    stored now (``None`` when the write replaces the whole array)."""
    dims = tuple(str(d) for d in var.dims)
    old_dims = _stored_dims(old, path, url)
    if old_dims != dims:
        if set(old_dims) != set(dims) or len(old_dims) != len(dims):
            raise MetadataError(
                f"variable {name!r} already exists with different dimension names "
                f"{old_dims} != {dims}; a write cannot change a variable's dimensions",
                url=url,
                key=path,
                field="dimension_names",
            )
        var = var.transpose(*old_dims)
        dims = old_dims
    shape = tuple(int(n) for n in var.shape)
    if append_dim is not None and append_dim in dims:
        axis = dims.index(append_dim)
        for i, (a, b) in enumerate(zip(old.shape, shape)):
            if i != axis and a != b:
                raise MetadataError(
                    f"variable {name!r} already exists with different dimension sizes: "
                    f"{dims[i]!r} has size {b}, the stored array {a}; only {append_dim!r} "
                    "can grow",
                    url=url,
                    key=path,
                )
        offset = tuple(old.shape[i] if i == axis else 0 for i in range(len(shape)))
        grown = tuple(n + (shape[i] if i == axis else 0) for i, n in enumerate(old.shape))
        return var, replace(old, shape=grown), offset, old.shape
    if where:
        return var, old, region_offset(old, dims, shape, where, url=url, path=path), old.shape
    if shape != old.shape:
        raise MetadataError(
            f"variable {name!r} already exists with different dimension sizes "
            f"{old.shape} != {shape}; to grow it use append_dim, to write part of it use region",
            url=url,
            key=path,
        )
    return var, old, (0,) * len(shape), None  # it keeps its attributes, as with to_zarr


def _new_array_meta(
    name: str,
    var: Any,
    enc: Mapping[str, Any],
    strict: bool,
    path: str,
    url: str,
    fmt: int,
    chunks: dict[str, int],
    shards: dict[str, int],
    compressor: Any,
) -> ZaroMeta:
    """The metadata of a new array for a CF-encoded variable; errors name the URL and key."""
    dims = tuple(str(d) for d in var.dims)
    fill, var_attrs = fill_and_attrs(var, fmt)
    if "fill_value" in enc and fmt == 3:
        fill = enc["fill_value"]
    elif "fill_value" in enc and strict:
        # A V2 reader takes the stored fill value for missing data (_FillValue).
        raise MetadataError(
            "Zarr V2 stores the fill value as the variable's _FillValue: give encoding "
            "_FillValue instead of fill_value",
            url=url,
            key=path,
            field="fill_value",
        )
    try:
        chunk_shape = chunk_shape_for(var, dims, enc, strict, chunks)
        shard_shape = None
        if fmt == 3:
            shard_shape = shard_shape_for(
                var, dims, enc, strict, shards, chunk_shape, name=name, url=url
            )
        meta = array_meta(
            shape=tuple(int(n) for n in var.shape),
            dtype=var.dtype,
            dims=dims,
            chunk_shape=chunk_shape,
            shard_shape=shard_shape,
            zarr_format=fmt,
            fill_value=fill,
            attributes=var_attrs,
            **codec_kwargs(
                enc,
                strict=strict,
                compressor=compressor,
                zarr_format=fmt,
                dtype=var.dtype,
                name=name,
            ),
        )
        if enc.get("chunk_key_encoding") is not None:
            meta = replace(
                meta, chunk_key_encoding=chunk_key_encoding_for(enc["chunk_key_encoding"], fmt)
            )
    except MetadataError as err:
        if err.url is None:
            err = type(err)(err.message, url=url, key=path, field=err.field)
        raise err from None
    except ValueError as err:
        raise MetadataError(str(err), url=url, key=path) from None
    return meta


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

    def write_template(self) -> list[Any]:
        """Write every array's metadata now, and the variables held in memory; returns what
        is left to compute (each task, or the count of objects an in-memory one wrote)."""
        self.write_meta()
        lazy = [hasattr(plan.data, "dask") for plan in self.plans]
        eager = [task for task, is_lazy in zip(self.tasks, lazy) if not is_lazy]
        done = iter(compute_writes(*eager) if eager else ())
        return [task if is_lazy else next(done) for task, is_lazy in zip(self.tasks, lazy)]


def checked_mode(
    mode: str | None,
    zarr_format: Any,
    append_dim: str | None,
    region: Any,
    **flags: Any,
) -> str:
    """The write mode (xarray's default when ``None``), once the arguments agree with it."""
    if mode is None:
        mode = "a" if append_dim is not None else "r+" if region is not None else "w-"
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if zarr_format not in (None, 2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    if append_dim is not None and mode not in ("a", "a-"):
        raise ValueError(
            f"cannot set append_dim unless mode='a', mode='a-' or mode=None (got {mode!r})"
        )
    if region is not None and mode not in ("r+", "a", "a-"):
        raise ValueError(
            f"cannot set region unless mode='a', mode='a-', mode='r+' or mode=None (got {mode!r})"
        )
    for flag, value in flags.items():
        if not isinstance(value, (bool, np.bool_)) and value is not None:
            raise TypeError(f"{flag} must be True or False, got {value!r}")
    return mode


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
    data = as_dask(plan.data, plan.meta.storage_shape, plan.offset)
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
        return None, {}, zarr_format
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


def _plan_variables(
    variables: Mapping[Hashable, Any],
    store: Store,
    group: str,
    stored: Mapping[str, ZaroMeta],
    *,
    mode: str,
    fmt: int,
    user_encoding: Mapping[str, Any],
    append_dim: str | None,
    where: Mapping[str, slice],
    chunks: Any,
    shards: Any,
    compressor: Any,
    write_empty_chunks: bool,
    safe_chunks: bool,
    align_chunks: bool,
) -> tuple[list[PlannedArray], dict[str, tuple[int, int]]]:
    """Every CF-encoded variable's plan (new arrays and writes into stored ones), and the
    length before and after of each array an append grows."""
    plans: list[PlannedArray] = []
    appended: dict[str, tuple[int, int]] = {}
    for name, var in variables.items():
        name = str(name)
        path = join(group, name)
        dims = tuple(str(d) for d in var.dims)
        strict = name in user_encoding
        enc = storage_encoding(var.encoding, strict=strict, url=store.url, key=path)
        empty = enc.get("write_empty_chunks", write_empty_chunks)
        if not isinstance(empty, (bool, np.bool_)):
            raise MetadataError(
                f"write_empty_chunks must be True or False, got {empty!r}",
                url=store.url,
                key=path,
                field="write_empty_chunks",
            )
        old = stored.get(name)
        offset = (0,) * var.ndim
        stored_shape: tuple[int, ...] | None = None
        if old is not None and mode == "a-" and (append_dim is None or append_dim not in dims):
            continue  # mode "a-" leaves stored variables without the append dimension alone
        if old is not None:
            var, meta, offset, stored_shape = _into_stored(
                name, var, old, path, store.url, append_dim, where
            )
            if meta.shape != old.shape:
                axis = tuple(str(d) for d in var.dims).index(str(append_dim))
                appended[path] = (old.shape[axis], meta.shape[axis])
        elif where:
            raise NodeNotFoundError(
                f"region writes go into existing arrays; {name!r} is not stored",
                url=store.url,
                key=path,
            )
        else:
            meta = _new_array_meta(
                name,
                var,
                enc,
                strict,
                path,
                store.url,
                fmt,
                call_sizes(chunks, dims, var.shape, "chunks"),
                call_sizes(shards, dims, var.shape, "shards"),
                compressor,
            )
        if not align_chunks and hasattr(var.data, "dask"):
            check_alignment(
                var.data.chunks, meta.storage_shape, offset, name, store.url, safe_chunks
            )
        plans.append(
            PlannedArray(
                name,
                path,
                meta,
                var.data,
                offset,
                stored_shape,
                {"write_empty_chunks": bool(empty), "overwrite": old is not None},
            )
        )

    return plans, appended


def prepare_store(
    dataset: Any,
    url: Any,
    *,
    group: str = "",
    zarr_format: int | None = None,
    mode: str | None = None,
    chunks: Any = None,
    shards: Any = None,
    compressor: Any = UNSET,
    encoding: Mapping[Hashable, Mapping] | None = None,
    storage_options: dict | None = None,
    consolidated: bool = True,
    region: Any = None,
    append_dim: str | None = None,
    write_empty_chunks: bool = False,
    safe_chunks: bool = True,
    align_chunks: bool = True,
) -> PreparedWrite:
    """Plan a write of one dataset into one group; nothing is written until every name,
    argument and encoding has been checked. See :meth:`DatasetAccessor.to_store`."""
    import xarray as xr

    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"to_store writes an xarray Dataset, got {type(dataset).__name__}")
    mode = checked_mode(
        mode,
        zarr_format,
        append_dim,
        region,
        consolidated=consolidated,
        write_empty_chunks=write_empty_chunks,
        safe_chunks=safe_chunks,
        align_chunks=align_chunks,
    )
    store = open_store(url, storage_options, mode="w")
    group = check_group_path(group, url=store.url)
    if None in dataset.variables:
        dataset = dataset.rename_vars({None: NONE_VARIABLE_NAME})  # type: ignore[dict-item]
        if encoding is not None and None in encoding:
            encoding = {NONE_VARIABLE_NAME if k is None else k: v for k, v in encoding.items()}
    for name in dataset.variables:
        check_name(name, "variable", url=store.url, group=group)
    for dim in dataset.dims:
        check_name(dim, "dimension", url=store.url, group=group)
    user_encoding = check_user_encoding(encoding, list(dataset.variables), url=store.url)
    check_call_sizes(chunks, dataset.sizes, "chunks")
    check_call_sizes(shards, dataset.sizes, "shards")

    existing, stored, zarr_format = _stored_group(store, group, mode, zarr_format)
    fmt = 3 if zarr_format is None else int(zarr_format)

    in_store = [name for name in dataset.variables if name in stored]
    given_for_stored = [name for name in in_store if name in user_encoding]
    if given_for_stored:
        raise MetadataError(
            f"variables {given_for_stored} already exist, but encoding was provided for them; "
            "a stored array keeps the encoding it was created with",
            url=store.url,
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
    where: dict[str, slice] = {}
    if region is not None:
        where = resolve_region(region, dataset, stored, store, group)
        if append_dim is not None:
            raise ValueError(
                "cannot list the same dimension in both append_dim and region"
                if append_dim in where
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
        dataset = dataset.drop_vars(list(dataset.indexes))
        in_store = [name for name in dataset.variables if name in stored]

    if mode == "r+":
        new_names = [name for name in dataset.variables if name not in stored]
        if new_names:
            raise MetadataError(
                f"dataset contains non-pre-existing variables {new_names}, which mode 'r+' "
                "does not allow (it writes into existing arrays only; use mode='a' to add "
                "variables)",
                url=store.url,
                key=group or "/",
            )
    journal = read_journal(store, group) if mode in ("a", "a-", "r+") and stored else None
    if journal is not None and mode == "r+":
        resumed_lengths(journal, None, {}, {}, url=store.url, group=group)

    # Variables written into stored arrays are CF-encoded exactly as the stored data was.
    if in_store:
        dataset = with_stored_encoding(dataset, existing, group)  # type: ignore[arg-type]
        for name in in_store:
            _check_append_dtype(
                str(name), stored[name], dataset[name].dtype, store.url, join(group, name)
            )
    if user_encoding:
        dataset = dataset.copy()
        for name, enc in user_encoding.items():
            if name in dataset.variables:  # a region write leaves the indexes out
                dataset[name].encoding = dict(enc)
    variables, attrs = encode_variables(dataset, fmt)

    plans, appended = _plan_variables(
        variables,
        store,
        group,
        stored,
        mode=mode,
        fmt=fmt,
        user_encoding=user_encoding,
        append_dim=append_dim,
        where=where,
        chunks=chunks,
        shards=shards,
        compressor=compressor,
        write_empty_chunks=write_empty_chunks,
        safe_chunks=safe_chunks,
        align_chunks=align_chunks,
    )

    if appended and journal is not None:
        lengths = {p: new - old for p, (old, new) in appended.items()}
        stored_now = {p: old for p, (old, _) in appended.items()}
        starts = resumed_lengths(
            journal, append_dim, lengths, stored_now, url=store.url, group=group
        )
        plans = [_resumed(plan, starts, append_dim) for plan in plans]  # type: ignore[arg-type]
        appended = {p: (starts[p], starts[p] + n) for p, n in lengths.items()}
    elif journal is not None:
        resumed_lengths(journal, append_dim, {}, {}, url=store.url, group=group)

    group_attrs = attrs
    if mode in ("a", "a-", "r+") and existing is not None:
        old_attrs = existing.get(group).attributes  # type: ignore[union-attr]
        # mode "r+" writes data only: the group and its arrays keep their metadata.
        group_attrs = dict(old_attrs) if mode == "r+" else {**old_attrs, **attrs}
    group_meta = GroupMeta(fmt, group_attrs)
    _check_attributes(group_meta, plans, store.url)

    if mode == "w" and existing is not None:
        delete_below(store, group)  # only once everything above has been checked
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
                write_metadata(store, parent, GroupMeta(fmt, {}))
        if consolidated:
            write_consolidated(store, "", NodeIndex(store, consolidated=False))

    def finalize(*written: Any) -> int:
        write_meta()
        if appended:
            clear_journal(store, group)
        return int(sum(int(w) for w in written))

    return PreparedWrite(
        counts,
        finalize,
        store,
        plans,
        write_meta,
        (str(append_dim), appended) if appended else None,
        group,
    )


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


def to_store(
    dataset: Any, url: Any, *, compute: bool = True, progress: bool = False, **kwargs: Any
) -> Any:
    """Write a dataset to a Zarr store; see :meth:`DatasetAccessor.to_store`."""

    if not isinstance(compute, (bool, np.bool_)):
        raise TypeError(f"compute must be True or False, got {compute!r}")
    prepared = prepare_store(dataset, url, **kwargs)
    if not compute:
        return delayed_after(prepared.finalize, prepared.write_template())
    prepared.begin()
    # One computation of every variable's task: work they share runs once.
    return prepared.finalize(*compute_writes(*prepared.tasks, progress=progress))
