"""``xzaro refs``: make Kerchunk references (JSON or Parquet) to NetCDF4/HDF5 files."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from xzaro.errors import ZaroError
from xzaro.stores.references.write import DEFAULT_RECORD_SIZE, write_references
from xzaro.virtual.combine import concat_extent
from xzaro.virtual.scan import DEFAULT_INLINE_THRESHOLD, scan


def add_refs_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``refs`` sub-command to an ``argparse`` sub-parser collection.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers()`` returned.

    Returns
    -------
    argparse.ArgumentParser
        The ``refs`` parser (its ``func`` default runs the command and returns an exit code).
    """
    parser = subparsers.add_parser(
        "refs",
        help="scan NetCDF4/HDF5 files into Kerchunk references (JSON or Parquet)",
        description=(
            "Scan NetCDF4/HDF5 files with kerchunk and write references that read like a Zarr "
            "store: xr.open_dataset(OUT, engine='zaro')."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="NetCDF4/HDF5 files or URLs")
    parser.add_argument(
        "-o", "--out", required=True, help="output: *.json, *.json.zst or *.parq (a directory)"
    )
    parser.add_argument(
        "--concat-dim",
        default=None,
        help=(
            "dimension to combine several files along: the files are ordered by its decoded "
            "values (CF times), which must not overlap"
        ),
    )
    parser.add_argument(
        "--inline-threshold",
        type=int,
        default=DEFAULT_INLINE_THRESHOLD,
        help=f"store chunks up to this many bytes inline (default {DEFAULT_INLINE_THRESHOLD})",
    )
    parser.add_argument(
        "--record-size",
        type=int,
        default=DEFAULT_RECORD_SIZE,
        help=f"rows per Parquet record file (default {DEFAULT_RECORD_SIZE})",
    )
    parser.add_argument("--storage-options", default=None, help="fsspec options as JSON")
    parser.set_defaults(func=cmd_refs)
    return parser


def cmd_refs(args: argparse.Namespace) -> int:
    """Run ``xzaro refs`` with parsed arguments; returns the exit status."""
    if len(args.files) > 1 and not args.concat_dim:
        print("xzaro refs: several files need --concat-dim", file=sys.stderr)
        return 2
    options = json.loads(args.storage_options) if args.storage_options else None
    t0 = time.perf_counter()
    try:
        refs = scan(
            args.files,
            concat_dim=args.concat_dim,
            inline_threshold=args.inline_threshold,
            storage_options=options,
        )
        write_references(refs, args.out, record_size=args.record_size, storage_options=options)
        extent = (
            concat_extent(refs, args.concat_dim, storage_options=options)
            if args.concat_dim
            else None
        )
    except (ImportError, ValueError, OSError, ZaroError) as exc:
        print(f"xzaro refs: error: {exc}", file=sys.stderr)
        return 2
    count = len(refs.get("refs", refs))
    print(
        f"wrote {count} references to {len(args.files)} file(s) into {args.out} "
        f"in {time.perf_counter() - t0:.2f}s"
    )
    if extent is not None:
        print(extent)
    return 0
