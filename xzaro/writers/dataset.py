"""``to_store``: write xarray datasets (Dask-backed or not) as Zarr V2 or V3 stores.

CF encoding is xarray's own. Every Dask task writes whole stored objects (chunks for V2,
shards for V3): blocks that do not line up with them are rechunked first, so no two tasks ever
write the same object. Array metadata, group metadata and consolidated metadata are written by a
final task that runs after every data task: a store never promises data that is not there.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.errors import MetadataError, MetadataTypeError, NodeExistsError, NodeNotFoundError
from xzaro.hierarchy import NodeIndex
from xzaro.meta import (
    V2_ARRAY,
    V2_ATTRS,
    V2_CONSOLIDATED,
    V2_GROUP,
    V3_NODE,
    GroupMeta,
    ZaroMeta,
    dumps,
)
from xzaro.paths import check_group_path, check_name, join
from xzaro.stores import Store, open_store
from xzaro.writers.cf import encode_variables, fill_and_attrs, with_stored_encoding
from xzaro.writers.codec_spec import CODEC_KEYS, codec_encoding
from xzaro.writers.compute import compute_writes
from xzaro.writers.encoding import (
    call_sizes,
    check_call_sizes,
    check_user_encoding,
    parse_sizes,
    storage_encoding,
)
from xzaro.writers.journal import clear_journal, read_journal, resumed_lengths, write_journal
from xzaro.writers.layout import DEFAULT_COMPRESSOR, array_meta, auto_chunks
from xzaro.writers.region import region_offset, resolve_region, with_stored_edges
from xzaro.writers.store_array import write_metadata
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


def _aligned_dask(data: Any, unit: tuple[int, ...], offset: tuple[int, ...]) -> Any:
    """Rechunk a Dask array so every block boundary falls on a stored-object boundary."""
    chunks = []
    changed = False
    for dim_chunks, u, o, n in zip(data.chunks, unit, offset, data.shape):
        bounds = np.cumsum((0, *dim_chunks))[1:-1] + o
        if not any(b % u for b in bounds) and o % u == 0:
            chunks.append(dim_chunks)
            continue
        changed = True
        first = (-o) % u
        size = max(u, round(max(dim_chunks) / u) * u)
        sizes = [first] if first else []
        rest = n - first
        sizes += [size] * (rest // size) + ([rest % size] if rest % size else [])
        chunks.append(tuple(s for s in sizes if s))
    return data.rechunk(tuple(chunks)) if changed else data


def _as_dask(data: Any, unit: tuple[int, ...], offset: tuple[int, ...]) -> Any:
    import dask.array as da

    if hasattr(data, "dask"):
        return _aligned_dask(data, unit, offset)
    arr = np.asarray(data)
    # ~64 MiB blocks of whole stored objects, split along the slowest dimensions
    target = 64 * 2**20
    block = list(unit)
    for dim in range(arr.ndim):
        nbytes = math.prod(block) * max(1, arr.dtype.itemsize)
        full = math.ceil(arr.shape[dim] / unit[dim]) if arr.shape[dim] else 1
        mult = max(1, min(full, target // max(1, nbytes)))
        block[dim] = unit[dim] * mult
        if mult < full:
            break
    return _aligned_dask(da.from_array(arr, chunks=tuple(block)), unit, offset)


def _store_block(
    block: np.ndarray, writer: Any, offset: tuple[int, ...], block_info: Any = None
) -> np.ndarray:
    location = block_info[0]["array-location"] if block_info else [(0, 0)] * block.ndim
    origin = tuple(start + o for (start, _), o in zip(location, offset))
    written = writer.write_block(block, origin)
    return np.full((1,) * block.ndim, written, dtype=np.int64)


def write_consolidated(store: Store, root: str, index: NodeIndex) -> None:
    """Write consolidated metadata of every node below ``root`` (V2 ``.zmetadata`` or the
    ``consolidated_metadata`` of the root ``zarr.json``)."""
    from xzaro.hierarchy import ZaroGroup

    root_meta = index.get(root)
    if not isinstance(root_meta, GroupMeta):
        return
    nodes: dict[str, ZaroMeta | GroupMeta] = {}
    for rel, node in ZaroGroup(index, root_meta, root).walk():
        nodes[rel] = node.meta
    if root_meta.zarr_format == 2:
        metadata: dict[str, Any] = {V2_GROUP: root_meta.to_json()}
        if root_meta.attributes:
            metadata[V2_ATTRS] = dict(root_meta.attributes)
        for rel, meta in nodes.items():
            doc_name = V2_ARRAY if isinstance(meta, ZaroMeta) else V2_GROUP
            metadata[f"{rel}/{doc_name}"] = meta.to_json()
            attrs = meta.attributes_json() if isinstance(meta, ZaroMeta) else meta.attributes
            if attrs:
                metadata[f"{rel}/{V2_ATTRS}"] = attrs
        store.set(
            join(root, V2_CONSOLIDATED),
            dumps({"metadata": metadata, "zarr_consolidated_format": 1}),
        )
        return
    doc = root_meta.to_json()
    doc["consolidated_metadata"] = {
        "kind": "inline",
        "must_understand": False,
        "metadata": {rel: meta.to_json() for rel, meta in nodes.items()},
    }
    store.set(join(root, V3_NODE), dumps(doc))


def existing_index(store: Store, path: str, zarr_format: int | None) -> NodeIndex | None:
    """The store's node index (documents, not consolidated metadata) when ``path`` holds a
    node, else ``None``."""
    try:
        index = NodeIndex(store, consolidated=False, zarr_format=zarr_format)
        index.get(path)
    except NodeNotFoundError:
        return None
    return index


def delete_below(store: Store, path: str) -> None:
    """Remove every key below ``path`` (the whole store for ``""``)."""
    from xzaro.concurrency import concurrent_map

    keys = store.list(path)
    concurrent_map(store.delete, keys)


class _Unset:
    """The default of an argument the caller did not give."""

    def __repr__(self) -> str:
        return "UNSET"


#: ``compressor=`` not given: the variable's own encoding, else the default, decides.
UNSET: Any = _Unset()


def _codec_kwargs(
    enc: Mapping[str, Any],
    *,
    strict: bool,
    compressor: Any,
    zarr_format: int,
    dtype: np.dtype,
    name: str,
) -> dict[str, Any]:
    """The codecs of a new array: from the caller's encoding, else the ``compressor=``
    argument, else the encoding the variable carries, else the default."""
    given = {k: enc[k] for k in CODEC_KEYS if k in enc}
    kwargs: dict[str, Any] = {}
    if given and (strict or compressor is UNSET):
        kwargs = codec_encoding(
            given, zarr_format=zarr_format, dtype=dtype, name=name, strict=strict
        )
    if "compressor" not in kwargs:
        kwargs["compressor"] = DEFAULT_COMPRESSOR if compressor is UNSET else compressor
    return kwargs


def _chunk_shape(
    var: Any,
    dims: tuple[str, ...],
    enc: Mapping[str, Any],
    strict: bool,
    call: dict[str, int],
) -> tuple[int, ...]:
    """Stored chunk shape: the caller's encoding, then ``chunks=``, then the chunks the
    variable was read with, then its Dask chunks, then about 4 MiB."""
    shape = tuple(int(n) for n in var.shape)
    from_enc = parse_sizes(enc.get("chunks"), shape, dims, "chunks", strict=strict)
    if strict and from_enc is not None:
        base = list(from_enc)
    else:
        base = list(auto_chunks(shape, var.dtype.itemsize))
        dask_chunks = var.data.chunks if hasattr(var.data, "dask") else None
        if from_enc is not None:
            base = list(from_enc)
        elif dask_chunks is not None:
            base = [max(1, c[0]) if c else 1 for c in dask_chunks]
        for i, dim in enumerate(dims):
            if dim in call:
                base[i] = call[dim]
    return tuple(max(1, min(c, max(1, n))) for c, n in zip(base, shape))


def _shard_shape(
    var: Any,
    dims: tuple[str, ...],
    enc: Mapping[str, Any],
    strict: bool,
    call: dict[str, int],
    chunk_shape: tuple[int, ...],
    *,
    name: str,
    url: str,
) -> tuple[int, ...] | None:
    """Stored shard shape (V3): the caller's encoding, then ``shards=`` (capped at the array's
    extent in whole chunks), then the shards the variable was read with when they still hold
    whole chunks."""
    shape = tuple(int(n) for n in var.shape)
    from_enc = parse_sizes(enc.get("shards"), shape, dims, "shards", strict=strict)
    if strict and from_enc is not None:
        return from_enc
    if call:
        return tuple(
            min(call.get(d, c), -(-max(1, n) // c) * c) for d, c, n in zip(dims, chunk_shape, shape)
        )
    if from_enc is None:
        return None
    if all(s % c == 0 for s, c in zip(from_enc, chunk_shape)):
        return from_enc
    enc_chunks = parse_sizes(enc.get("chunks"), shape, dims, "chunks", strict=False)
    if enc_chunks is not None and tuple(min(c, max(1, n)) for c, n in zip(enc_chunks, shape)) == (
        chunk_shape
    ):
        # The variable's own encoding pairs these shards with these chunks: a contradiction.
        raise MetadataError(
            f"encoding shards {from_enc} are not whole multiples of the chunks {chunk_shape}",
            url=url,
            key=name,
            field="shards",
        )
    return None  # chunks chosen by the call: the carried shards no longer fit them


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


def _check_dask_alignment(
    chunks: tuple[tuple[int, ...], ...],
    unit: tuple[int, ...],
    offset: tuple[int, ...],
    name: str,
    url: str,
    safe_chunks: bool,
) -> None:
    """With ``align_chunks=False``: refuse Dask blocks that would share a stored object.

    ``to_zarr(safe_chunks=False)`` would write such blocks and may lose data; xzaro refuses
    them either way and says why."""
    for axis, (sizes, u, o) in enumerate(zip(chunks, unit, offset)):
        bounds = np.cumsum((0, *sizes))[1:-1] + o
        if any(b % u for b in bounds):
            unsafe = (
                " (safe_chunks=False does not make this safe: two tasks writing one object "
                "lose one of the writes)"
                if not safe_chunks
                else ""
            )
            raise MetadataError(
                f"Specified Zarr chunks of {u} along axis {axis} of {name!r} would overlap "
                f"multiple Dask chunks {sizes}: two tasks would write one stored object"
                f"{unsafe}. Pass align_chunks=True (the default) to let xzaro rechunk the "
                "data, or rechunk it yourself",
                url=url,
                key=name,
                field="chunks",
            )


def _stored_dims(old: ZaroMeta, path: str, url: str) -> tuple[str, ...]:
    if old.dimension_names is None or any(d is None for d in old.dimension_names):
        raise MetadataError(
            "the stored array has no dimension names, so xarray data cannot be written into it",
            url=url,
            key=path,
            field="dimension_names",
        )
    return tuple(str(d) for d in old.dimension_names)


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
    flags = {
        "consolidated": consolidated,
        "write_empty_chunks": write_empty_chunks,
        "safe_chunks": safe_chunks,
        "align_chunks": align_chunks,
    }
    for flag, value in flags.items():
        if not isinstance(value, (bool, np.bool_)) and value is not None:
            raise TypeError(f"{flag} must be True or False, got {value!r}")
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

    existing = existing_index(store, group, None)
    stored: dict[str, ZaroMeta] = {}
    if existing is not None:
        group_node = existing.get(group)
        if mode == "w-":
            raise NodeExistsError(
                "mode 'w-' refuses to overwrite existing data (use mode='w')",
                url=store.url,
                key=group or "/",
            )
        if mode in ("a", "a-", "r+"):
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
            zarr_format = group_node.zarr_format
            stored = {
                name: meta
                for name, meta in existing.children(group).items()
                if isinstance(meta, ZaroMeta)
            }
    elif mode == "r+":
        raise NodeNotFoundError(
            "mode 'r+' needs an existing store", url=store.url, key=group or "/"
        )
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
            old_dims = _stored_dims(old, path, store.url)
            if old_dims != dims:
                if set(old_dims) != set(dims) or len(old_dims) != len(dims):
                    raise MetadataError(
                        f"variable {name!r} already exists with different dimension names "
                        f"{old_dims} != {dims}; a write cannot change a variable's dimensions",
                        url=store.url,
                        key=path,
                        field="dimension_names",
                    )
                var = var.transpose(*old_dims)
                dims = old_dims
            shape = tuple(int(n) for n in var.shape)
            meta = old
            if append_dim is not None and append_dim in dims:
                axis = dims.index(append_dim)
                for i, (a, b) in enumerate(zip(old.shape, shape)):
                    if i != axis and a != b:
                        raise MetadataError(
                            f"variable {name!r} already exists with different dimension "
                            f"sizes: {dims[i]!r} has size {b}, the stored array {a}; only "
                            f"{append_dim!r} can grow",
                            url=store.url,
                            key=path,
                        )
                appended[path] = (old.shape[axis], old.shape[axis] + shape[axis])
                stored_shape = old.shape
                offset = tuple(old.shape[i] if i == axis else 0 for i in range(len(shape)))
                meta = replace(
                    old,
                    shape=tuple(
                        n + (shape[i] if i == axis else 0) for i, n in enumerate(old.shape)
                    ),
                )
            elif where:
                offset = region_offset(old, dims, shape, where, url=store.url, path=path)
                stored_shape = old.shape
            else:
                if shape != old.shape:
                    raise MetadataError(
                        f"variable {name!r} already exists with different dimension sizes "
                        f"{old.shape} != {shape}; to grow it use append_dim, to write part "
                        "of it use region",
                        url=store.url,
                        key=path,
                    )
                # A stored variable keeps its attributes, as with to_zarr.
        else:
            if where:
                raise NodeNotFoundError(
                    f"region writes go into existing arrays; {name!r} is not stored",
                    url=store.url,
                    key=path,
                )
            fill, var_attrs = fill_and_attrs(var, fmt)
            if "fill_value" in enc and fmt == 3:
                fill = enc["fill_value"]
            elif "fill_value" in enc and strict:
                # A V2 reader takes the stored fill value for missing data (_FillValue).
                raise MetadataError(
                    "Zarr V2 stores the fill value as the variable's _FillValue: give "
                    "encoding _FillValue instead of fill_value",
                    url=store.url,
                    key=path,
                    field="fill_value",
                )
            try:
                chunk_shape = _chunk_shape(
                    var, dims, enc, strict, call_sizes(chunks, dims, var.shape, "chunks")
                )
                shard_shape = None
                if fmt == 3:
                    shard_shape = _shard_shape(
                        var,
                        dims,
                        enc,
                        strict,
                        call_sizes(shards, dims, var.shape, "shards"),
                        chunk_shape,
                        name=name,
                        url=store.url,
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
                    **_codec_kwargs(
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
                        meta,
                        chunk_key_encoding=_chunk_key_encoding(enc["chunk_key_encoding"], fmt),
                    )
            except MetadataError as err:
                if err.url is None:
                    err = type(err)(err.message, url=store.url, key=path, field=err.field)
                raise err from None
            except ValueError as err:
                raise MetadataError(str(err), url=store.url, key=path) from None
        if not align_chunks and hasattr(var.data, "dask"):
            _check_dask_alignment(
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

    counts = []
    for plan in plans:
        data = plan.data
        if plan.stored_shape is not None:
            data, start = with_stored_edges(
                data, store, plan.path, plan.meta, plan.stored_shape, plan.offset
            )
            plan = replace(plan, data=data, offset=start)
        writer = writer_for(store, plan.path, plan.meta, **plan.options)
        data = _as_dask(plan.data, plan.meta.storage_shape, plan.offset)
        counts.append(
            data.map_blocks(
                _store_block,
                writer=writer,
                offset=plan.offset,
                dtype=np.int64,
                chunks=tuple((1,) * len(c) for c in data.chunks),
            ).sum()
        )

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


def _chunk_key_encoding(value: Any, zarr_format: int) -> ChunkKeyEncoding:
    """A ``chunk_key_encoding`` encoding entry (V3 JSON, a name, or a mapping)."""
    ckey = ChunkKeyEncoding.from_json(value)
    if zarr_format == 2 and ckey.name != "v2":
        raise MetadataError(
            "Zarr V2 arrays use the 'v2' chunk key encoding", field="chunk_key_encoding"
        )
    return ckey


def to_store(
    dataset: Any, url: Any, *, compute: bool = True, progress: bool = False, **kwargs: Any
) -> Any:
    """Write a dataset to a Zarr store; see :meth:`DatasetAccessor.to_store`."""
    import dask

    if not isinstance(compute, (bool, np.bool_)):
        raise TypeError(f"compute must be True or False, got {compute!r}")
    prepared = prepare_store(dataset, url, **kwargs)
    if not compute:
        return dask.delayed(prepared.finalize)(*prepared.write_template())
    prepared.begin()
    task = dask.delayed(prepared.finalize)(*prepared.tasks)
    return compute_writes(task, progress=progress)[0]
