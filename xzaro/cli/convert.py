"""``xzaro convert``: rewrite any store xzaro reads (Zarr V2/V3, references) through Dask with
``ds.zaro.to_store``: another format, chunks, shards, compressor, or a multiscale pyramid."""

from __future__ import annotations

import argparse
import time
from typing import Any

from xzaro.cli.options import (
    UsageError,
    add_storage_options,
    as_dict,
    compressor,
    json_object,
    size_item,
)

UNTIL_ONE_CHUNK = object()  # --multiscale without N (argparse converts a string const)


def add_command(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``convert`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "convert",
        parents=parents,
        help="rewrite a store: format, chunks, shards, compressor, pyramid",
        description="Read SRC (any store xzaro reads: Zarr V2 or V3, Kerchunk or VirtualiZarr "
        "references) lazily and write it to DST through Dask, one task per stored object, as "
        "ds.zaro.to_store does: V2 to V3 sharded, rechunking, recompressing, or building a "
        "multiscale pyramid (OME-NGFF). Unless given, chunks and codecs are those SRC was "
        "stored with. A group with child groups is converted as a tree, every group of it; "
        "with --multiscale, only the group's own variables are (choose the group with "
        "--group). A progress bar is shown when stderr is a terminal.",
    )
    p.add_argument("src", help="the store to read (URL or local path)")
    p.add_argument("dst", help="the store to write (URL or local path)")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=None, help="default 3")
    p.add_argument(
        "--chunks", action="append", type=size_item, metavar="DIM=N", help="repeatable; -1: whole"
    )
    p.add_argument(
        "--shards", action="append", type=size_item, metavar="DIM=N", help="V3; repeatable"
    )
    p.add_argument(
        "--compressor",
        type=compressor,
        default=argparse.SUPPRESS,
        metavar="CNAME[:LEVEL[:SHUFFLE]]",
        help="Blosc compressor (zstd, lz4, lz4hc, blosclz, zlib), level 0-9, shuffle "
        "(noshuffle, shuffle, bitshuffle), e.g. zstd:3:shuffle; or none",
    )
    p.add_argument(
        "--multiscale",
        nargs="?",
        const=UNTIL_ONE_CHUNK,
        type=int,
        default=None,
        metavar="N",
        help="write a pyramid of N levels (without N: until a level fits in one chunk)",
    )
    p.add_argument("--group", default="", help="convert only this group of SRC")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    add_storage_options(p)
    p.add_argument(
        "--dst-storage-options", type=json_object, default=None, metavar="JSON", help="for DST"
    )
    p.set_defaults(func=cmd_convert)


def write_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of ``to_store`` the options give."""
    kwargs: dict[str, Any] = {"mode": "w" if args.overwrite else "w-"}
    if args.zarr_format is not None:
        kwargs["zarr_format"] = args.zarr_format
    if args.chunks:
        kwargs["chunks"] = as_dict(args.chunks, "--chunks")
    if args.shards:
        if args.zarr_format == 2:
            raise UsageError("--shards needs Zarr V3 (--zarr-format 3)")
        kwargs["shards"] = as_dict(args.shards, "--shards")
    if "compressor" in vars(args):  # --compressor none is None: no compression
        kwargs["compressor"] = args.compressor
    if args.dst_storage_options:
        kwargs["storage_options"] = args.dst_storage_options
    if args.multiscale is not None:
        from xzaro.writers.pyramid import Multiscale

        if args.multiscale is UNTIL_ONE_CHUNK:
            kwargs["multiscale"] = Multiscale()
        elif args.multiscale < 1:
            raise UsageError(f"--multiscale: N must be at least 1, got {args.multiscale}")
        else:
            kwargs["multiscale"] = Multiscale(levels=args.multiscale)
    return kwargs


def open_source(args: argparse.Namespace, *, tree: bool) -> Any:
    """SRC as a lazy ``DataTree`` when its group has child groups and ``tree``, else as a
    lazy ``Dataset`` of the group's own variables."""
    import xarray as xr

    from xzaro.cli.source import open_dataset
    from xzaro.hierarchy import open_group

    group = open_group(args.src, args.group, storage_options=args.storage_options)
    if tree and group.groups():
        kwargs: dict[str, Any] = {"engine": "zaro", "chunks": {}}
        if args.group:
            kwargs["group"] = args.group
        if args.storage_options:
            kwargs["storage_options"] = args.storage_options
        return xr.open_datatree(args.src, **kwargs)
    dataset = open_dataset(args.src, group=args.group, storage_options=args.storage_options)
    if not dataset.variables:
        raise UsageError(f"{args.src!r} holds no variables to convert")
    return dataset


def cmd_convert(args: argparse.Namespace) -> int:
    """Run ``xzaro convert`` with parsed arguments; returns the exit status."""
    import xarray as xr

    from xzaro.errors import NodeExistsError

    kwargs = write_options(args)
    source = open_source(args, tree="multiscale" not in kwargs)

    t0 = time.perf_counter()
    try:
        # "auto": the writers' progress bar, shown only when stderr is a terminal
        written = source.zaro.to_store(
            args.dst, progress=False if args.no_progress else "auto", **kwargs
        )
    except NodeExistsError as e:
        raise NodeExistsError(
            "the destination exists (--overwrite replaces it)", url=e.url, key=e.key
        ) from e
    kind = "tree" if isinstance(source, xr.DataTree) else "dataset"
    print(
        f"converted the {kind} {args.src} -> {args.dst}: wrote {written} objects "
        f"in {time.perf_counter() - t0:.2f}s"
    )
    return 0
