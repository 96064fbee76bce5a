"""Opening what a command reads: a dataset from any store xzaro reads (native, references),
a variable by name, a selection by ``--isel``; each failure a clear one-line error."""

from __future__ import annotations

from typing import Any

from xzaro.cli.options import UsageError


def open_dataset(url: str, *, group: str = "", storage_options: dict | None = None) -> Any:
    """``xr.open_dataset(url, engine="zaro", chunks={})``: lazy, one Dask block per stored
    chunk; a group with neither variables nor dimensions is a :class:`NodeNotFoundError`."""
    import warnings

    import xarray as xr

    kwargs: dict[str, Any] = {"engine": "zaro", "chunks": {}}
    if group:
        kwargs["group"] = group
    if storage_options:
        kwargs["storage_options"] = storage_options
    with warnings.catch_warnings():
        # a store without consolidated metadata is read as well, only slower to open
        warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated metadata")
        return xr.open_dataset(url, **kwargs)


def variable_path(name: str) -> tuple[str, str]:
    """``"group/sub/var"`` -> ``("group/sub", "var")``."""
    group, _, var = name.strip("/").rpartition("/")
    return group, var


def open_variable(url: str, name: str, storage_options: dict | None = None) -> Any:
    """The variable ``name`` (a path ``group/var`` for one in a sub-group) as a lazy
    ``DataArray``.

    Raises
    ------
    NodeNotFoundError
        If there is no such variable, naming the URL, the key and the variables there are.
    """
    from xzaro.errors import NodeNotFoundError

    group, var = variable_path(name)
    ds = open_dataset(url, group=group, storage_options=storage_options)
    if var not in ds.variables:
        there = ", ".join(map(str, ds.variables)) or "none"
        raise NodeNotFoundError(f"no variable {var!r} (variables: {there})", url=url, key=name)
    return ds[var]


def select(array: Any, isel: dict[str, int | slice]) -> Any:
    """``array.isel(isel)``; an unknown dimension or an index out of range is a
    :class:`UsageError` naming it."""
    unknown = [d for d in isel if d not in array.dims]
    if unknown:
        raise UsageError(
            f"--isel: {array.name!r} has no dimension {unknown[0]!r} "
            f"(dimensions: {', '.join(map(str, array.dims))})"
        )
    for dim, index in isel.items():
        size = array.sizes[dim]
        if isinstance(index, int) and not -size <= index < size:
            raise UsageError(f"--isel: index {index} is out of range for {dim!r} of size {size}")
    return array.isel(isel)
