"""The ``.zaro`` accessors on ``Dataset``, ``DataArray`` and ``DataTree``, registered on import."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import xarray as xr

from xzaro.writers.dataset import to_store
from xzaro.writers.layout import DEFAULT_COMPRESSOR, Compressor, Sizes

_DATAARRAY_NAME = "__xarray_dataarray_variable__"


class DatasetAccessor:
    """``ds.zaro``: write the dataset with xzaro."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def to_store(
        self,
        url: Any,
        *,
        group: str = "",
        zarr_format: int = 3,
        mode: str = "w-",
        chunks: Sizes = None,
        shards: Sizes = None,
        compressor: Compressor = DEFAULT_COMPRESSOR,
        encoding: Mapping[Hashable, Mapping] | None = None,
        multiscale: Any = None,
        storage_options: dict | None = None,
        consolidated: bool = True,
        compute: bool = True,
        progress: bool = False,
        region: Mapping[str, slice] | None = None,
        append_dim: str | None = None,
    ) -> Any:
        """Write the dataset as a Zarr V2 or V3 (sharded) store.

        Parameters
        ----------
        url
            Where to write: a local path or any URL :func:`xzaro.open_store` understands.
        group
            The group to write the dataset into.
        zarr_format
            3 (default) or 2.
        mode
            ``"w-"`` fail if anything exists; ``"w"`` replace (old keys removed); ``"a"`` add
            variables or grow along ``append_dim``; ``"r+"`` write into existing arrays at
            ``region``.
        chunks, shards
            Stored chunk (and, for V3, shard) sizes by dimension name or as tuples; per
            variable ``encoding`` entries win. By default the Dask chunks, or about 4 MiB.
        compressor
            A :class:`~xzaro.writers.BloscCompressionParams`, a codec object (or list of them)
            from :mod:`xzaro.codecs`, or ``None``. Default: Blosc zstd level 5 with shuffle.
        encoding
            Per-variable ``chunks``, ``shards``, ``compressor``, ``fill_value`` and xarray's
            CF encodings (``dtype``, ``scale_factor``, ``_FillValue``, ``units``...).
        multiscale
            ``True`` or a :class:`~xzaro.writers.multiscale.Multiscale` to write a pyramid.
        storage_options
            fsspec options for remote stores.
        consolidated
            Write consolidated metadata (``.zmetadata`` / inline in the root ``zarr.json``).
        compute
            ``False`` returns a ``dask.delayed`` object that writes when computed.
        progress
            Show a progress bar while writing.
        region, append_dim
            See ``mode``.

        Returns
        -------
        The number of stored objects written, or a ``dask.delayed`` object with
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
        """Write the array; keywords as :meth:`DatasetAccessor.to_store`."""
        name = self._obj.name if self._obj.name is not None else _DATAARRAY_NAME
        return DatasetAccessor(self._obj.to_dataset(name=name)).to_store(url, **kwargs)


class DataTreeAccessor:
    """``dt.zaro``: write every node of the tree as a group."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def to_store(
        self, url: Any, *, mode: str = "w-", consolidated: bool = True, **kwargs: Any
    ) -> Any:
        """Write each node's dataset into its group; keywords as
        :meth:`DatasetAccessor.to_store`."""
        results = []
        for i, node in enumerate(self._obj.subtree):
            path = node.path.strip("/")
            node_mode = mode if i == 0 else "a"
            results.append(
                to_store(
                    node.to_dataset(inherit=False),
                    url,
                    group=path,
                    mode=node_mode,
                    consolidated=consolidated,
                    **kwargs,
                )
            )
        return results if kwargs.get("compute") is False else sum(results)


def register() -> None:
    """Register the ``.zaro`` accessors (done once when xzaro is imported)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # re-registration on module reload is harmless
        xr.register_dataset_accessor("zaro")(DatasetAccessor)
        xr.register_dataarray_accessor("zaro")(DataArrayAccessor)
        xr.register_datatree_accessor("zaro")(DataTreeAccessor)
