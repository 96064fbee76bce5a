"""The keywords of a write, held and checked once for datasets, trees and pyramids."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.writers.encoding import UNSET
from xzaro.writers.layout import Compressor, Sizes

MODES = ("w-", "w", "a", "a-", "r+")


@dataclass(frozen=True, kw_only=True)
class WriteOptions:
    """How ``to_store`` writes: every keyword it takes besides the URL, ``encoding`` and
    ``multiscale`` (``ds.zaro.to_store``) or ``write_inherited_coords`` (``dt.zaro.to_store``).

    Parameters
    ----------
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
        The compression of every variable whose ``encoding`` names none, in any spelling
        ``encoding["compressor"]`` takes: a :class:`~xzaro.writers.BloscCompressionParams`,
        an xzaro, numcodecs or zarr-python codec, its V2 or V3 JSON, a codec name, a list
        of them, or ``None`` for none. Default: the codecs a variable was read with, else
        Blosc zstd level 5 with shuffle.
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
    safe_chunks
        Accepted as ``to_zarr`` takes it. xzaro never lets two tasks write one stored
        object: a region or append that starts or ends inside a stored object has that
        object read, merged and rewritten by the one task that owns it. Writing such a
        region from several processes at once is not safe (as with ``to_zarr``); with
        ``align_chunks=False`` and ``safe_chunks=False`` misaligned blocks are still
        refused, with the reason.
    align_chunks
        Rechunk Dask blocks that do not line up with the stored objects (the default), so
        no two tasks write one object; ``False`` refuses such blocks instead, as
        ``to_zarr`` does by default.
    commit
        For a store whose writes are seen only once committed (an Icechunk session): the
        message of the one commit made when everything is written. ``None`` leaves the commit
        to the caller who holds the session; a store opened here from an ``icechunk://`` URL
        is always committed (by default with the message ``"xzaro to_store"``). An error for
        other stores.
    """

    group: str = ""
    zarr_format: int | None = None
    mode: str | None = None
    chunks: Sizes = None
    shards: Sizes = None
    compressor: Compressor = UNSET
    storage_options: dict | None = None
    consolidated: bool = True
    compute: bool = True
    progress: bool = False
    region: Mapping[str, slice | str] | str | None = None
    append_dim: str | None = None
    write_empty_chunks: bool = False
    safe_chunks: bool = True
    align_chunks: bool = True
    commit: str | None = None

    @property
    def flags(self) -> dict[str, Any]:
        """The options that must be ``True`` or ``False``, by name (``compute`` aside: a
        dataset's write checks it before anything else)."""
        return {
            "consolidated": self.consolidated,
            "write_empty_chunks": self.write_empty_chunks,
            "safe_chunks": self.safe_chunks,
            "align_chunks": self.align_chunks,
        }

    def checked_mode(self) -> str:
        """The mode a dataset is written with (see :func:`checked_mode`)."""
        return checked_mode(self.mode, self.zarr_format, self.append_dim, self.region, **self.flags)


def checked_mode(
    mode: str | None,
    zarr_format: Any,
    append_dim: str | None,
    region: Any,
    **flags: Any,
) -> str:
    """The write mode (xarray's default when ``None``), once the arguments agree with it and
    every one of ``flags`` is ``True`` or ``False``."""
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
