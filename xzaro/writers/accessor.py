"""The ``.zaro`` accessors on ``Dataset``, ``DataArray`` and ``DataTree``, registered on import."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import xarray as xr

from xzaro.writers.compute import shows_progress
from xzaro.writers.dataset import to_store
from xzaro.writers.encoding import UNSET
from xzaro.writers.layout import Compressor, Sizes
from xzaro.writers.multiscale import to_multiscale_store
from xzaro.writers.options import WriteOptions
from xzaro.writers.tree import to_tree_store

_DATAARRAY_VARIABLE = "__xarray_dataarray_variable__"
_DATAARRAY_NAME = "__xarray_dataarray_name__"


class DatasetAccessor:
    """``ds.zaro``: write the dataset with xzaro."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def to_store(
        self,
        url: Any,
        *,
        group: str = "",
        zarr_format: int | None = None,
        mode: str | None = None,
        chunks: Sizes = None,
        shards: Sizes = None,
        compressor: Compressor = UNSET,
        encoding: Mapping[Hashable, Mapping] | None = None,
        multiscale: Any = None,
        storage_options: dict | None = None,
        consolidated: bool = True,
        compute: bool = True,
        progress: bool | str = False,
        region: Mapping[str, slice | str] | str | None = None,
        append_dim: str | None = None,
        write_empty_chunks: bool = False,
        safe_chunks: bool = True,
        align_chunks: bool = True,
        commit: str | None = None,
    ) -> Any:
        """Write the dataset as a Zarr V2 or V3 (sharded) store.

        Every name, argument and encoding is checked before the first byte is written.

        Parameters
        ----------
        url
            Where to write: a local path or any URL :func:`xzaro.open_store` understands.
        encoding
            Per-variable encoding: ``chunks``, ``shards``, ``compressor``/``compressors``,
            ``filters``, ``serializer``, ``fill_value`` (V3; V2 stores ``_FillValue``),
            ``write_empty_chunks``,
            ``chunk_key_encoding`` and xarray's CF encodings (``dtype``, ``scale_factor``,
            ``add_offset``, ``_FillValue``, ``missing_value``, ``units``, ``calendar``). An
            unknown key is an error. Stored variables keep their encoding: giving one for them
            is an error.
        multiscale
            ``True`` or a :class:`~xzaro.Multiscale` to write a pyramid.
        group, zarr_format, mode, chunks, shards, compressor, storage_options, consolidated
            See :class:`~xzaro.writers.WriteOptions`, which documents every one of them.
        progress
            ``True``: a progress bar on stderr, pyramids included; ``"auto"``: one only where
            stderr is a terminal; ``False``: none (see :mod:`xzaro.writers.compute`). Another
            value raises ``ValueError`` before anything is written.
        compute, region, append_dim, write_empty_chunks, safe_chunks, align_chunks
            See :class:`~xzaro.writers.WriteOptions`.
        commit
            The commit message for an Icechunk session (see :class:`~xzaro.writers.WriteOptions`).

        Returns
        -------
        The number of stored objects written (or removed), or a ``dask.delayed`` object with
        ``compute=False``.
        """
        options = WriteOptions(
            group=group,
            zarr_format=zarr_format,
            mode=mode,
            chunks=chunks,
            shards=shards,
            compressor=compressor,
            storage_options=storage_options,
            consolidated=consolidated,
            compute=compute,
            progress=shows_progress(progress),  # "auto" decided here, checked first
            region=region,
            append_dim=append_dim,
            write_empty_chunks=write_empty_chunks,
            safe_chunks=safe_chunks,
            align_chunks=align_chunks,
            commit=commit,
        )
        if multiscale:
            return to_multiscale_store(self._obj, url, multiscale, options, encoding=encoding)
        return to_store(self._obj, url, options, encoding=encoding)


class DataArrayAccessor:
    """``da.zaro``: write the array (as a one-variable dataset) with xzaro."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def to_store(self, url: Any, **kwargs: Any) -> Any:
        """Write the array; keywords as :meth:`DatasetAccessor.to_store`.

        As ``DataArray.to_zarr``: an unnamed array is stored as
        ``__xarray_dataarray_variable__``, and one named like one of its coordinates or
        dimensions under that name too, with its own name in the attribute
        ``__xarray_dataarray_name__``, so ``xr.open_dataarray`` gives it back.
        """
        da = self._obj
        if da.name is None:
            dataset = da.to_dataset(name=_DATAARRAY_VARIABLE)
        elif da.name in da.coords or da.name in da.dims:
            dataset = da.to_dataset(name=_DATAARRAY_VARIABLE)
            dataset.attrs[_DATAARRAY_NAME] = da.name
        else:
            dataset = da.to_dataset()
        return DatasetAccessor(dataset).to_store(url, **kwargs)


class DataTreeAccessor:
    """``dt.zaro``: write every node of the tree as a group, as ``DataTree.to_zarr`` does."""

    def __init__(self, obj: xr.DataTree) -> None:
        self._obj = obj

    def to_store(
        self,
        url: Any,
        *,
        encoding: Mapping[str, Mapping[Hashable, Mapping]] | None = None,
        write_inherited_coords: bool = False,
        **options: Any,
    ) -> Any:
        """Write the tree: the node this is called on at ``group`` (the store root by default),
        each descendant in the group at its path relative to that node.

        Every node is planned (names, arguments and encodings checked) before anything is
        written or removed; the data of all nodes is computed in one Dask computation, so work
        shared between nodes runs once; then each node's metadata is written, the root's last,
        and consolidated metadata once for the whole store.

        Parameters
        ----------
        url
            Where to write: a local path or any URL :func:`xzaro.open_store` understands.
        encoding
            Per-node, per-variable encoding keyed by node path as ``DataTree.to_zarr`` takes it:
            ``{"/": {"var": {...}}, "/child": {"v": {...}}}``. The keys are the nodes' ``path``
            (``dt.groups``), so for a sub-tree they start with the sub-tree's own path.
        write_inherited_coords
            Also write the coordinates a node inherits from its ancestors into its group. The
            node this is called on is always written with the coordinates it inherits.
        **options
            The keywords of :meth:`DatasetAccessor.to_store` (see
            :class:`~xzaro.writers.WriteOptions`) but ``multiscale``, for every node, with these
            meanings for a tree: ``group`` is the group the node this is called on is written
            to; ``zarr_format``: a write into an existing tree (``"a"``, ``"r+"``) keeps its
            format, for new child groups too; ``mode="w-"`` fails if ``group`` exists, ``"w"``
            removes everything below ``group`` (once, after every node has been checked);
            ``append_dim`` grows the stored arrays of every node that has it, the nodes without
            it are written again in full (as ``mode="a"`` writes a dataset's variables without
            it), and it must be a dimension of at least one node; ``consolidated`` writes
            consolidated metadata for the whole store, once; ``compute=False`` writes every
            node's metadata (and the variables held in memory) at once and returns one
            ``dask.delayed`` object that writes the Dask-backed data of the whole tree.

        Returns
        -------
        The number of stored objects written (or removed), or a ``dask.delayed`` object with
        ``compute=False``.

        Raises
        ------
        MetadataError
            ``encoding`` names a node path that is not in the tree, or a variable that is not
            in that node; ``append_dim`` is in no node.
        ValueError
            An option has a value it does not take (``progress="yes"``), naming it.
        """
        options["progress"] = shows_progress(options.get("progress", False))
        return to_tree_store(
            self._obj,
            url,
            WriteOptions(**options),
            encoding=encoding,
            write_inherited_coords=write_inherited_coords,
        )


def register() -> None:
    """Register the ``.zaro`` accessors (done by :mod:`xzaro.accessors` on the first use of
    ``.zaro``, which is registered as soon as both xzaro and xarray are imported)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # re-registration on module reload is harmless
        xr.register_dataset_accessor("zaro")(DatasetAccessor)
        xr.register_dataarray_accessor("zaro")(DataArrayAccessor)
        xr.register_datatree_accessor("zaro")(DataTreeAccessor)
