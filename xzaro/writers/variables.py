"""Each variable of a write planned: a new array's metadata, or its place in its stored array.

A variable whose array is stored already is written into it (transposed to the stored order,
grown along ``append_dim`` or placed by ``region``) and keeps its metadata; any other variable
gets the metadata of a new array from its encoding and the call's ``chunks``/``shards``/
``compressor``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xzaro.errors import MetadataError, NodeNotFoundError
from xzaro.meta import ZaroMeta
from xzaro.paths import join
from xzaro.stores import Store
from xzaro.writers.blocks import check_alignment
from xzaro.writers.cf import fill_and_attrs
from xzaro.writers.encoding import (
    call_grid_sizes,
    chunk_key_encoding_for,
    chunk_shape_for,
    codec_kwargs,
    shard_shape_for,
    storage_encoding,
)
from xzaro.writers.layout import DimSizes, array_meta
from xzaro.writers.options import WriteOptions
from xzaro.writers.region import region_offset


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


def check_append_dtype(name: str, old: ZaroMeta, new: np.dtype, url: str, path: str) -> None:
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
        meta = replace(old, shape=grown, storage_grid=old.storage_grid.grown_to(grown))
        return var, meta, offset, old.shape
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
    chunks: dict[str, DimSizes],
    shards: dict[str, DimSizes],
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


def _plan_variable(
    name: str,
    var: Any,
    store: Store,
    group: str,
    stored: Mapping[str, ZaroMeta],
    *,
    mode: str,
    fmt: int,
    strict: bool,
    where: Mapping[str, slice],
    options: WriteOptions,
) -> tuple[PlannedArray, tuple[int, int] | None] | None:
    """One CF-encoded variable's plan and, when an append grows its array, the length before
    and after; ``None`` when mode ``"a-"`` leaves it alone."""
    append_dim = options.append_dim
    path = join(group, name)
    dims = tuple(str(d) for d in var.dims)
    enc = storage_encoding(var.encoding, strict=strict, url=store.url, key=path)
    empty = enc.get("write_empty_chunks", options.write_empty_chunks)
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
    grown: tuple[int, int] | None = None
    if old is not None and mode == "a-" and (append_dim is None or append_dim not in dims):
        return None  # mode "a-" leaves stored variables without the append dimension alone
    if old is not None:
        var, meta, offset, stored_shape = _into_stored(
            name, var, old, path, store.url, append_dim, where
        )
        if meta.shape != old.shape:
            axis = tuple(str(d) for d in var.dims).index(str(append_dim))
            grown = (old.shape[axis], meta.shape[axis])
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
            call_grid_sizes(options.chunks, dims, var.shape, "chunks"),
            call_grid_sizes(options.shards, dims, var.shape, "shards"),
            options.compressor,
        )
    if not options.align_chunks and hasattr(var.data, "dask"):
        check_alignment(
            var.data.chunks, meta.storage_grid, offset, name, store.url, options.safe_chunks
        )
    writer_options = {"write_empty_chunks": bool(empty), "overwrite": old is not None}
    return PlannedArray(name, path, meta, var.data, offset, stored_shape, writer_options), grown


def plan_variables(
    variables: Mapping[Hashable, Any],
    store: Store,
    group: str,
    stored: Mapping[str, ZaroMeta],
    *,
    mode: str,
    fmt: int,
    user_encoding: Mapping[str, Any],
    where: Mapping[str, slice],
    options: WriteOptions,
) -> tuple[list[PlannedArray], dict[str, tuple[int, int]]]:
    """Every CF-encoded variable's plan (new arrays and writes into stored ones), and the
    length before and after of each array an append grows."""
    plans: list[PlannedArray] = []
    appended: dict[str, tuple[int, int]] = {}
    for name, var in variables.items():
        planned = _plan_variable(
            str(name),
            var,
            store,
            group,
            stored,
            mode=mode,
            fmt=fmt,
            strict=str(name) in user_encoding,
            where=where,
            options=options,
        )
        if planned is None:
            continue
        plan, grown = planned
        plans.append(plan)
        if grown is not None:
            appended[plan.path] = grown
    return plans, appended
