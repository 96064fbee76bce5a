"""Writing multiscale pyramids: level 0 at full resolution, each further level coarsened by 2.

Levels are groups ``0``, ``1``, … of one store, each a dataset whose coordinates are coarsened
consistently with its data (:func:`coarsen_dataset`). The root carries OME-NGFF ``multiscales``
metadata (0.4 for V2; 0.5 under ``ome`` for V3; see :mod:`xzaro.writers.ome`) with one entry per
image variable. The plan (levels, chunks, shards) is :mod:`xzaro.writers.pyramid`'s; every level is
written by :func:`~xzaro.writers.dataset.prepare_store`, all in one Dask computation.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from xzaro.errors import NodeExistsError
from xzaro.hierarchy import NodeIndex
from xzaro.log import info
from xzaro.meta import GroupMeta
from xzaro.paths import check_group_path, join
from xzaro.stores import Store, SupportsTransactions, open_store
from xzaro.writers.coarsen import COARSENINGS, coarsen_array
from xzaro.writers.compute import compute_writes, delayed_after
from xzaro.writers.dataset import (
    PreparedWrite,
    commit_message,
    prepare_store,
    write_in_transaction,
)
from xzaro.writers.encoding import check_call_sizes, check_user_encoding
from xzaro.writers.ome import dataset_multiscales, ome_attributes
from xzaro.writers.options import WriteOptions
from xzaro.writers.pyramid import (
    Layout,
    Multiscale,
    default_dims,
    level_count,
    level_encoding,
    one_chunk_sizes,
    pyramid_layouts,
    warn_if_short,
    with_layout,
)
from xzaro.writers.store_array import (
    delete_below,
    existing_index,
    write_consolidated,
    write_metadata,
)


def coarsen_dataset(dataset: Any, dims: tuple[str, ...], method: str) -> Any:
    """One pyramid step of a dataset: every variable along ``dims`` reduced 2x.

    Data variables are reduced with ``method``, coordinates as the method says (see
    :data:`~xzaro.writers.coarsen.COARSENINGS`), times and strings by decimation.
    """
    import dask.array as da
    import xarray as xr

    out = {}
    for name, var in dataset.variables.items():
        axes = tuple(i for i, d in enumerate(var.dims) if d in dims)
        if not axes:
            out[name] = var
            continue
        how = COARSENINGS[method].coordinates if name in dataset.coords else method
        if var.dtype.kind in "mM" or var.dtype.kind in "OSU":
            how = "decimate"
        data = var.data
        if hasattr(data, "dask"):
            # Blocks of even size along the reduced axes pair cells within blocks; only the
            # array's last block may be odd, and its edge reduces the cells that exist.
            even = data.rechunk(
                tuple(
                    _even_chunks(chunks, data.shape[i]) if i in axes else chunks
                    for i, chunks in enumerate(data.chunks)
                )
            )
            new_chunks = tuple(
                tuple(math.ceil(c / 2) for c in chunks) if i in axes else chunks
                for i, chunks in enumerate(even.chunks)
            )
            reduced = da.map_blocks(
                coarsen_array, even, axes=axes, method=how, chunks=new_chunks, dtype=var.dtype
            )
        else:
            reduced = coarsen_array(np.asarray(data), axes, how)
        out[name] = xr.Variable(var.dims, reduced, var.attrs, var.encoding)
    coords = [n for n in dataset.coords if n in out]
    return xr.Dataset(
        {n: v for n, v in out.items() if n not in coords},
        coords={n: out[n] for n in coords},
        attrs=dataset.attrs,
    )


def _even_chunks(chunks: tuple[int, ...], size: int) -> tuple[int, ...]:
    """Dask chunks along one axis of even length (but the last), about as long as ``chunks``."""
    step = max(2, max(chunks) + max(chunks) % 2)
    return tuple(min(step, size - i) for i in range(0, size, step))


def _checked_request(
    dataset: Any, multiscale: Any, options: WriteOptions
) -> tuple[Multiscale, tuple[str, ...], str]:
    """The pyramid asked for, the dimensions it coarsens and the write mode, once checked."""
    spec = Multiscale() if multiscale is True else multiscale
    if not isinstance(spec, Multiscale):
        raise TypeError(f"multiscale must be True or a Multiscale, got {multiscale!r}")
    dims = spec.dims or default_dims(dataset)
    missing = [d for d in dims if d not in dataset.dims]
    if missing:
        raise ValueError(f"multiscale dims {missing} are not dimensions of the dataset")
    for unsupported, value in (("region", options.region), ("append_dim", options.append_dim)):
        if value is not None:
            raise ValueError(f"{unsupported} cannot be combined with multiscale")
    mode = options.mode or "w-"
    if mode not in ("w-", "w"):
        raise ValueError("a multiscale pyramid is written with mode 'w-' or 'w'")
    return spec, dims, mode


def _pyramid(
    dataset: Any, spec: Multiscale, dims: tuple[str, ...], layouts: dict[Hashable, Layout]
) -> list[Any]:
    """The datasets of every level, level 0 first (lazily coarsened where Dask-backed)."""
    stop = one_chunk_sizes(dataset, dims, layouts)
    sizes = {d: dataset.sizes[d] for d in dims}
    count = level_count(spec, sizes, stop)
    warn_if_short(spec, dims, sizes, stop, count)
    info("multiscale: %d levels along %s (%s)", count, dims, spec.method)
    levels = [dataset]
    while len(levels) < count:
        levels.append(coarsen_dataset(levels[-1], dims, spec.method))
    return levels


def _prepare_levels(
    levels: list[Any],
    layouts: dict[Hashable, Layout],
    encoding: Mapping[str, Mapping[str, Any]],
    store: Store,
    group: str,
    mode: str,
    options: WriteOptions,
) -> list[PreparedWrite]:
    """Every level's planned write into group ``<group>/<level>`` (level 0 replaces what is
    below ``group`` with ``mode="w"``, once it has checked every name and encoding)."""
    plans = []
    for i, level in enumerate(levels):
        level = with_layout(level, layouts)
        # An encoding= entry replaces what its variable carries, so it gets the layout too.
        level_enc = {
            name: {**enc, **level_encoding(layouts[name], level.variables[name].shape)}
            for name, enc in encoding.items()
        }
        level_options = replace(
            options,
            group=join(group, str(i)),
            mode="w" if i == 0 else "w-",
            consolidated=False,
            chunks=None,
            shards=None,
        )
        plans.append(prepare_store(level, store, level_options, encoding=level_enc))
        if i == 0 and mode == "w":
            delete_below(store, group)
    return plans


def _root_attributes(
    dataset: Any, spec: Multiscale, dims: tuple[str, ...], n_levels: int, zarr_format: int
) -> dict[str, Any]:
    """The pyramid group's attributes: the dataset's, and the OME-NGFF metadata of the
    variables OME can describe."""
    method = spec.method
    entries = dataset_multiscales(
        dataset, dims, method, COARSENINGS[method].half_cell_shift, n_levels, zarr_format
    )
    attrs = dict(dataset.attrs)
    if entries:
        attrs.update(ome_attributes(entries, zarr_format))
    return attrs


def to_multiscale_store(
    dataset: Any,
    url: Any,
    multiscale: Any,
    options: WriteOptions,
    *,
    encoding: Mapping[Hashable, Mapping] | None = None,
) -> Any:
    """Write a pyramid of ``dataset`` (see :meth:`DatasetAccessor.to_store`): the number of
    stored objects written, or a ``dask.delayed`` object with ``compute=False``."""
    spec, dims, mode = _checked_request(dataset, multiscale, options)
    zarr_format = options.zarr_format or 3
    store = open_store(url, options.storage_options, mode="w")
    group = check_group_path(options.group, url=store.url)
    checked = check_user_encoding(encoding, list(dataset.variables), url=store.url)
    check_call_sizes(options.chunks, dataset.sizes, "chunks")
    check_call_sizes(options.shards, dataset.sizes, "shards")
    layouts = pyramid_layouts(dataset, dims, options.chunks, options.shards, checked, zarr_format)
    if mode == "w-" and existing_index(store, group, None) is not None:
        raise NodeExistsError(
            "mode 'w-' refuses to overwrite existing data (use mode='w')",
            url=store.url,
            key=group or "/",
        )
    levels = _pyramid(dataset, spec, dims, layouts)
    # One graph for all levels, so each coarsening step is computed once and shared by the
    # level that stores it and the level built from it.
    plans = _prepare_levels(levels, layouts, checked, store, group, mode, options)
    sizes = [len(plan.tasks) for plan in plans]
    tasks = [task for plan in plans for task in plan.tasks]

    def finalize(*written: Any) -> int:
        start = 0
        for plan, n in zip(plans, sizes):
            plan.finalize(*written[start : start + n])
            start += n
        attrs = _root_attributes(dataset, spec, dims, len(levels), zarr_format)
        write_metadata(store, group, GroupMeta(zarr_format, attrs))
        if options.consolidated:
            write_consolidated(store, group, NodeIndex(store, consolidated=False))
        return int(sum(written))

    # Unoptimized, in one call: blockwise fusion would copy a coarsening step into every level
    # built on it and compute it again there.
    message = commit_message(store, url, options)
    if isinstance(store, SupportsTransactions):
        return write_in_transaction(store, message, plans, finalize, options, optimize_graph=False)
    if not options.compute:
        return delayed_after(finalize, tasks)
    return finalize(*compute_writes(*tasks, progress=options.progress, optimize_graph=False))
