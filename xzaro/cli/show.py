"""``xzaro show``: thumbnails of every level of a multiscale pyramid side by side, or of the
variables of a store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from xzaro.cli.options import UsageError, add_storage_options, as_dict, isel_item

MAX_PANELS = 12


def add_command(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``show`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "show",
        parents=parents,
        help="save thumbnails of a pyramid's levels, or of a store's variables, as a PNG",
        description="Save a PNG with a thumbnail of every level of a multiscale pyramid "
        "(OME-Zarr, or xzaro's level groups 0, 1, ...) side by side on one colour scale, "
        "or, for any other store, "
        f"of each variable (up to {MAX_PANELS}). Each thumbnail is a 2-d slice: the last two "
        "dimensions, at index 0 of the others unless --isel says otherwise. Needs matplotlib "
        "(pip install 'xzaro[plot]').",
    )
    p.add_argument("url", help="store URL or local path")
    p.add_argument("-o", "--out", default=None, help="the PNG to write (default: NAME.png here)")
    p.add_argument("--var", default=None, help="the variable to show (default: every one)")
    p.add_argument("--group", default="", help="the group holding the image or variables")
    p.add_argument(
        "--isel",
        action="append",
        type=isel_item,
        metavar="DIM=I",
        help="the index to show along a dimension that is not drawn; repeatable",
    )
    add_storage_options(p)
    p.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    """Run ``xzaro show`` with parsed arguments; returns the exit status."""
    from xzaro.quicklook import pyplot, save_thumbnails

    pyplot()  # fail before reading anything when matplotlib is missing
    out = Path(args.out) if args.out else Path(default_name(args.url))
    if out.suffix.lower() != ".png":
        raise UsageError(f"-o must end in .png, got {str(out)!r}")
    isel = as_dict(args.isel, "--isel")
    pyramid = is_pyramid(args.url, args.group, args.storage_options)
    panels = level_panels(args, isel) if pyramid else variable_panels(args, isel)
    what = f"{len(panels)} levels" if pyramid else f"{len(panels)} variable(s)"
    arrays, titles = [a for _, a in panels], [t for t, _ in panels]
    save_thumbnails(arrays, titles, str(out), shared_scale=pyramid)
    print(f"wrote {out}: {what}")
    return 0


def default_name(url: str) -> str:
    """``.../air.zarr`` -> ``air.png``."""
    stem = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "xzaro"
    return Path(stem).stem + ".png"


def is_pyramid(url: str, group: str, storage_options: dict | None) -> bool:
    """Whether the group holds OME multiscale metadata or xzaro's level groups ``0``, ``1``."""
    from xzaro.backends.ome import read_multiscales
    from xzaro.hierarchy import open_group

    node = open_group(url, group, storage_options=storage_options)
    return bool(read_multiscales(node.index, node.path, node.meta)) or "0" in node.groups()


def level_panels(args: argparse.Namespace, isel: dict[str, Any]) -> list[tuple[str, Any]]:
    """(title, 2-d slice) of the chosen variable at every level of the pyramid."""
    import xzaro

    kwargs: dict[str, Any] = {"chunks": {}, "group": args.group}
    if args.storage_options:
        kwargs["storage_options"] = args.storage_options
    levels = xzaro.open_multiscale(args.url, **kwargs)
    name = args.var or main_variable(levels[0])
    panels = []
    for i, level in enumerate(levels):
        if name not in level.data_vars:
            raise UsageError(f"--var: level {i} has no variable {name!r}")
        array = flat(level[name], isel)
        panels.append((f"level {i}: {name} {'x'.join(map(str, array.shape))}", array))
    return panels


def variable_panels(args: argparse.Namespace, isel: dict[str, Any]) -> list[tuple[str, Any]]:
    """(title, 2-d slice) of the chosen variable, else of every variable of 2 or more
    dimensions."""
    from xzaro.cli.source import open_dataset, open_variable

    if args.var:
        name = f"{args.group}/{args.var}" if args.group else args.var
        arrays = [open_variable(args.url, name, args.storage_options)]
    else:
        ds = open_dataset(args.url, group=args.group, storage_options=args.storage_options)
        arrays = [v for v in ds.data_vars.values() if v.ndim >= 2][:MAX_PANELS]
        if not arrays:
            raise UsageError("no variable has two or more dimensions to draw")
    return [(f"{a.name} {' x '.join(map(str, a.dims[-2:]))}", flat(a, isel)) for a in arrays]


def main_variable(dataset: Any) -> str:
    """The largest data variable of two or more dimensions."""
    candidates = [v for v in dataset.data_vars.values() if v.ndim >= 2]
    if not candidates:
        raise UsageError("no variable has two or more dimensions to draw")
    return str(max(candidates, key=lambda v: v.size).name)


def flat(array: Any, isel: dict[str, Any]) -> Any:
    """The 2-d slice of ``array`` drawn: its last two dimensions, at the ``isel`` index (else
    0) of the others."""
    from xzaro.cli.source import select

    if array.ndim < 2:
        raise UsageError(f"{array.name!r} has fewer than two dimensions to draw")
    drawn = array.dims[-2:]
    chosen = {d: i for d, i in isel.items() if d in array.dims}
    if any(d in drawn for d in chosen):
        raise UsageError(f"--isel: {', '.join(map(str, drawn))} are drawn, not selected")
    rest = {d: chosen.get(str(d), 0) for d in array.dims[:-2]}
    return select(array, rest)
