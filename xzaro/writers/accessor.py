"""The ``.zaro`` accessors on ``Dataset``, ``DataArray`` and ``DataTree``, registered on import."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import xarray as xr

from xzaro.writers.dataset import to_store
from xzaro.writers.encoding import UNSET
from xzaro.writers.layout import Compressor, Sizes

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
        progress: bool = False,
        region: Mapping[str, slice | str] | str | None = None,
        append_dim: str | None = None,
        write_empty_chunks: bool = False,
        safe_chunks: bool = True,
        align_chunks: bool = True,
    ) -> Any:
        """Write the dataset as a Zarr V2 or V3 (sharded) store.

        Every name, argument and encoding is checked before the first byte is written.

        Parameters
        ----------
        url
            Where to write: a local path or any URL :func:`xzaro.open_store` understands.
        group
            The group to write the dataset into (``a/b`` for a nested group).
        zarr_format
            3 (the default for a new store) or 2; writes into an existing group keep its format.
        mode
            ``"w-"`` fail if anything exists; ``"w"`` replace (old keys removed); ``"a"`` add
            variables, overwrite stored ones, or grow them along ``append_dim``; ``"r+"`` write
            into existing arrays only. Default: ``"a"`` with ``append_dim``, ``"r+"`` with
            ``region``, else ``"w-"``.
        chunks, shards
            Stored chunk (and, for V3, shard) sizes by dimension name, as a tuple, or one
            integer for every dimension; ``-1`` is the whole dimension. They win over the
            chunks a variable carries from being read; per-variable ``encoding`` wins over
            them. By default the chunks the data was read with, its Dask chunks, or about
            4 MiB.
        compressor
            A :class:`~xzaro.writers.BloscCompressionParams`, a codec object (or list of them)
            from :mod:`xzaro.codecs`, or ``None``. Default: the codecs a variable was read with,
            else Blosc zstd level 5 with shuffle.
        encoding
            Per-variable encoding: ``chunks``, ``shards``, ``compressor``/``compressors``,
            ``filters``, ``serializer``, ``fill_value`` (V3; V2 stores ``_FillValue``),
            ``write_empty_chunks``,
            ``chunk_key_encoding`` and xarray's CF encodings (``dtype``, ``scale_factor``,
            ``add_offset``, ``_FillValue``, ``missing_value``, ``units``, ``calendar``). An
            unknown key is an error. Stored variables keep their encoding: giving one for them
            is an error.
        multiscale
            ``True`` or a :class:`~xzaro.writers.multiscale.Multiscale` to write a pyramid.
        storage_options
            fsspec options for remote stores.
        consolidated
            Write consolidated metadata (``.zmetadata`` / inline in the root ``zarr.json``).
        compute
            ``False`` writes the metadata (and the variables held in memory) at once and returns
            a ``dask.delayed`` object that writes the Dask-backed data when computed: a
            template to fill region by region.
        progress
            Show a progress bar while writing (threads, processes or a distributed client).
        region
            Where the data goes in the stored arrays: slices by dimension name, ``"auto"`` for
            a dimension (found from its stored coordinate) or ``"auto"`` for all. A region that
            starts or ends inside a stored object rewrites that object with its stored values,
            from one task. Index coordinates are not written by a region write.
        append_dim
            The dimension to grow stored arrays along (``mode="a"``). An append that was
            interrupted is finished, not repeated, by running it again.
        write_empty_chunks
            Write stored objects that hold only the fill value (by default they are left out,
            and removed where a write into a stored array leaves them holding only fill).
        align_chunks
            Rechunk Dask blocks that do not line up with the stored objects (the default), so
            no two tasks write one object; ``False`` refuses such blocks instead, as
            ``to_zarr`` does by default.
        safe_chunks
            Accepted as ``to_zarr`` takes it. xzaro never lets two tasks write one stored
            object: a region or append that starts or ends inside a stored object has that
            object read, merged and rewritten by the one task that owns it. Writing such a
            region from several processes at once is not safe (as with ``to_zarr``); with
            ``align_chunks=False`` and ``safe_chunks=False`` misaligned blocks are still
            refused, with the reason.

        Returns
        -------
        The number of stored objects written (or removed), or a ``dask.delayed`` object with
        ``compute=False``.
        """
        kwargs: dict[str, Any] = dict(
            group=group,
            zarr_format=zarr_format,
            mode=mode,
            chunks=chunks,
            shards=shards,
            compressor=compressor,
            encoding=encoding,
            storage_options=storage_options,
            consolidated=consolidated,
            compute=compute,
            progress=progress,
            region=region,
            append_dim=append_dim,
            write_empty_chunks=write_empty_chunks,
            safe_chunks=safe_chunks,
            align_chunks=align_chunks,
        )
        if multiscale:
            from xzaro.writers.multiscale import to_multiscale_store

            return to_multiscale_store(self._obj, url, multiscale, **kwargs)
        return to_store(self._obj, url, **kwargs)


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
        group: str = "",
        zarr_format: int | None = None,
        mode: str | None = None,
        chunks: Sizes = None,
        shards: Sizes = None,
        compressor: Compressor = UNSET,
        encoding: Mapping[str, Mapping[Hashable, Mapping]] | None = None,
        write_inherited_coords: bool = False,
        storage_options: dict | None = None,
        consolidated: bool = True,
        compute: bool = True,
        progress: bool = False,
        region: Mapping[str, slice | str] | str | None = None,
        append_dim: str | None = None,
        write_empty_chunks: bool = False,
        safe_chunks: bool = True,
        align_chunks: bool = True,
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
        group
            The group the node this is called on is written to.
        zarr_format
            3 (the default for a new store) or 2; a write into an existing tree (``"a"``,
            ``"r+"``) keeps its format, for new child groups too.
        mode
            ``"w-"`` fail if ``group`` exists; ``"w"`` remove everything below ``group`` (once,
            after every node has been checked), then write; ``"a"`` and ``"r+"`` apply to every
            node as :meth:`DatasetAccessor.to_store` does to one dataset. Default: ``"a"`` with
            ``append_dim``, ``"r+"`` with ``region``, else ``"w-"``.
        chunks, shards, compressor, storage_options, region
            As :meth:`DatasetAccessor.to_store`, for every node.
        write_empty_chunks, safe_chunks, align_chunks
            As :meth:`DatasetAccessor.to_store`, for every node.
        append_dim
            The dimension to grow stored arrays along (``mode="a"``), in every node that has
            it; the nodes without it are written again in full, as ``mode="a"`` writes a
            dataset's variables without it. It must be a dimension of at least one node.
        encoding
            Per-node, per-variable encoding keyed by node path as ``DataTree.to_zarr`` takes it:
            ``{"/": {"var": {...}}, "/child": {"v": {...}}}``. The keys are the nodes' ``path``
            (``dt.groups``), so for a sub-tree they start with the sub-tree's own path.
        write_inherited_coords
            Also write the coordinates a node inherits from its ancestors into its group. The
            node this is called on is always written with the coordinates it inherits.
        consolidated
            Write consolidated metadata for the whole store, once.
        compute
            ``False`` writes every node's metadata (and the variables held in memory) at once
            and returns one ``dask.delayed`` object that writes the Dask-backed data of the
            whole tree when computed.
        progress
            Show a progress bar while writing.

        Returns
        -------
        The number of stored objects written (or removed), or a ``dask.delayed`` object with
        ``compute=False``.

        Raises
        ------
        MetadataError
            ``encoding`` names a node path that is not in the tree, or a variable that is not
            in that node; ``append_dim`` is in no node.
        """

        from xzaro.hierarchy import NodeIndex
        from xzaro.paths import check_group_path, check_name
        from xzaro.stores import open_store
        from xzaro.writers.compute import compute_writes, delayed_after
        from xzaro.writers.dataset import checked_mode
        from xzaro.writers.store_array import delete_below, existing_index, write_consolidated

        mode = checked_mode(
            mode,
            zarr_format,
            append_dim,
            region,
            compute=compute,
            consolidated=consolidated,
            write_empty_chunks=write_empty_chunks,
            safe_chunks=safe_chunks,
            align_chunks=align_chunks,
            write_inherited_coords=write_inherited_coords,
        )
        store = open_store(url, storage_options, mode="w")
        root = check_group_path(group, url=store.url)
        nodes = self._node_datasets(write_inherited_coords)
        for rel, _, _ in nodes[1:]:
            check_name(rel.rsplit("/", 1)[-1], "group", url=store.url, group=root)
        self._check_encoding(encoding or {}, nodes, store.url, root)
        if append_dim is not None and not any(append_dim in ds.dims for _, _, ds in nodes):
            from xzaro.errors import MetadataError

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
        options: dict[str, Any] = dict(
            zarr_format=zarr_format,
            mode="w-" if mode == "w" else mode,  # children are new groups of the new tree
            chunks=chunks,
            shards=shards,
            compressor=compressor,
            storage_options=storage_options,
            consolidated=False,
            region=region,
            append_dim=append_dim,
            write_empty_chunks=write_empty_chunks,
            safe_chunks=safe_chunks,
            align_chunks=align_chunks,
        )
        if mode == "w":
            # Plan the whole tree into an empty scratch store first, so that nothing is removed
            # unless every node can be written; then remove the old tree once.
            self._prepare(self._scratch_store(store.url), root, nodes, encoding, options)
            delete_below(store, root)
        prepared = self._prepare(store, root, nodes, encoding, options)
        sizes = [len(p.tasks) for p in prepared]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        # Deepest nodes first, the root last: a group appears after everything below it.
        last_first = list(reversed(list(zip(prepared, starts, sizes))))

        def finalize(*written: Any) -> int:
            for node, start, n in last_first:
                node.finalize(*written[start : start + n])
            if consolidated:
                write_consolidated(store, "", NodeIndex(store, consolidated=False))
            return int(sum(int(w) for w in written))

        if not compute:
            left = {id(node): node.write_template() for node, _, _ in last_first}
            if consolidated:
                write_consolidated(store, "", NodeIndex(store, consolidated=False))
            return delayed_after(finalize, [t for node in prepared for t in left[id(node)]])
        for node in prepared:
            node.begin()
        tasks = [task for node in prepared for task in node.tasks]
        return finalize(*compute_writes(*tasks, progress=progress))

    @staticmethod
    def _prepare(
        store: Any,
        root: str,
        nodes: list[tuple[str, str, xr.Dataset]],
        encoding: Mapping[str, Any] | None,
        options: dict[str, Any],
    ) -> list[Any]:
        """Plan every node's write into ``store`` (nothing is written yet). With
        ``append_dim``, a node without that dimension is written as ``mode="a"`` writes a
        dataset's variables that lack it: in full, over the stored ones."""
        from xzaro.paths import join
        from xzaro.writers.dataset import prepare_store

        append_dim = options.get("append_dim")
        return [
            prepare_store(
                dataset,
                store,
                group=join(root, rel),
                encoding=(encoding or {}).get(path),
                **{
                    **options,
                    "append_dim": append_dim if append_dim in dataset.dims else None,
                },
            )
            for rel, path, dataset in nodes
        ]

    def _node_datasets(self, write_inherited_coords: bool) -> list[tuple[str, str, xr.Dataset]]:
        """Each node's path relative to this one (``""`` for this one), its ``path`` in its
        tree (the key of its ``encoding``) and the dataset to write, breadth-first as
        ``DataTree.to_zarr``: this node always with the coordinates it inherits, the others
        with them only if ``write_inherited_coords``."""
        out = []
        for rel, node in self._obj.subtree_with_keys:
            at_root = node is self._obj
            dataset = node.to_dataset(inherit=write_inherited_coords or at_root)
            out.append(("" if at_root else str(rel), node.path, dataset))
        return out

    @staticmethod
    def _check_encoding(
        encoding: Mapping[str, Any],
        nodes: list[tuple[str, str, xr.Dataset]],
        url: str | None,
        root: str,
    ) -> None:
        """Refuse encoding for node paths or variables the tree does not have."""
        from xzaro.errors import MetadataError
        from xzaro.paths import join

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
                raise MetadataError(
                    f"encoding for node {path!r} must map variable names to encodings, "
                    f"got {type(node_encoding).__name__}",
                    url=url,
                    key=join(root, rel) or "/",
                    field="encoding",
                )
            missing = [name for name in node_encoding if name not in dataset.variables]
            if missing:
                raise MetadataError(
                    f"encoding for node {path!r} names variables that are not in it: "
                    f"{missing} (it has {sorted(map(str, dataset.variables))})",
                    url=url,
                    key=join(root, rel) or "/",
                    field="encoding",
                )

    @staticmethod
    def _scratch_store(url: str | None) -> Any:
        """An empty in-memory store that names ``url`` in the errors of a trial plan."""
        from xzaro.stores import MemoryStore

        scratch = MemoryStore()
        scratch.url = url
        return scratch


def register() -> None:
    """Register the ``.zaro`` accessors (done once when xzaro is imported)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # re-registration on module reload is harmless
        xr.register_dataset_accessor("zaro")(DatasetAccessor)
        xr.register_dataarray_accessor("zaro")(DataArrayAccessor)
        xr.register_datatree_accessor("zaro")(DataTreeAccessor)
