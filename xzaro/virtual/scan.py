"""Scanning NetCDF4/HDF5 files into Kerchunk references, with kerchunk.

The references read like a Zarr store through :func:`xzaro.stores.open_store` (and
``xr.open_dataset(url, engine="zaro")``) and through fsspec's ``reference://`` file system.
Scanning needs the optional packages ``kerchunk``, ``h5py`` and ``h5netcdf``
(``pip install 'xzaro[refs]'``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from xzaro.stores.references.allowlist import url_protocols
from xzaro.virtual.combine import combine_references

#: Chunks up to this many bytes are stored inline in the references (kerchunk's meaning).
DEFAULT_INLINE_THRESHOLD = 500


def _kerchunk() -> Any:
    try:
        import kerchunk.hdf
    except ImportError as exc:
        raise ImportError(
            "scanning NetCDF4/HDF5 files needs kerchunk and h5py: pip install 'xzaro[refs]'"
        ) from exc
    return kerchunk


def _absolute(url: str) -> str:
    if "::" not in url and url_protocols(url)[-1] == "file":
        return os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
    return url


def scan(
    urls: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    concat_dim: str | None = None,
    inline_threshold: int = DEFAULT_INLINE_THRESHOLD,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Kerchunk references to one or more NetCDF4/HDF5 files.

    Each file is scanned with kerchunk; several files are then joined along ``concat_dim`` by
    :func:`combine_references` (ordered by the decoded coordinate values, CF times re-encoded
    in one unit, the result checked). The extent written is logged on the ``xzaro`` logger;
    :func:`concat_extent` returns it.

    Parameters
    ----------
    urls
        A file, or several files to combine along ``concat_dim`` (local paths or fsspec URLs),
        in any order. Local paths are written as absolute paths.
    concat_dim
        The dimension to concatenate several files along (required for more than one file).
        Every file must hold a coordinate variable of that name.
    inline_threshold
        Chunks of at most this many bytes are stored inline in the references.
    storage_options
        fsspec options for reading the files.

    Returns
    -------
    dict
        A version 1 reference document (``{"version": 1, "refs": {...}}``).

    Raises
    ------
    ImportError
        kerchunk or h5py is not installed.
    ValueError
        No file, or several files without ``concat_dim``.
    MetadataError
        The files cannot be combined exactly (see :func:`combine_references`).
    """
    items = [urls] if isinstance(urls, (str, os.PathLike)) else list(urls)
    names = [_absolute(os.fspath(u)) for u in items]
    if not names:
        raise ValueError("no files to scan")
    if len(names) > 1 and concat_dim is None:
        raise ValueError("several files need concat_dim= to be combined")
    kerchunk = _kerchunk()
    options = dict(storage_options or {})
    singles = [
        kerchunk.hdf.SingleHdf5ToZarr(
            name, storage_options=options or None, inline_threshold=inline_threshold
        ).translate()
        for name in names
    ]
    if len(singles) == 1:
        return singles[0]
    assert concat_dim is not None  # checked above
    return combine_references(singles, concat_dim, names=names, storage_options=options)
