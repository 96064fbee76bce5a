"""``xzaro read``: a variable, or a selection of it, summarized or saved as ``.npy``, ``.nc``
or a quick-look ``.png``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from xzaro.cli.options import UsageError, add_storage_options, as_dict, isel_item
from xzaro.cli.text import human_bytes

SUFFIXES = (".npy", ".nc", ".png")


def add_command(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``read`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "read",
        parents=parents,
        help="read a variable (or a selection of it): summary, .npy, .nc or .png",
        description="Read a variable, or the part of it --isel selects, from any store xzaro "
        "reads (Zarr V2/V3, references). Without --out, print its dimensions, coordinates and "
        "a summary of its values (min, max, mean, missing). --out FILE.npy saves the values "
        "with numpy, FILE.nc the variable with its coordinates as NetCDF, FILE.png a "
        "quick-look picture of a 2-d slice with a colour bar and axes labelled from the "
        "coordinates, north up (PNG needs matplotlib: pip install 'xzaro[plot]').",
    )
    p.add_argument("url", help="store URL or local path")
    p.add_argument("var", help="variable name; GROUP/NAME for one in a sub-group")
    p.add_argument(
        "--isel",
        action="append",
        type=isel_item,
        metavar="DIM=I|A:B[:S]",
        help="select by position along a dimension (0-based, negative from the end, "
        "A:B excludes B); repeat for several dimensions",
    )
    p.add_argument("--out", "-o", default=None, help="write to FILE.npy, FILE.nc or FILE.png")
    add_storage_options(p)
    p.set_defaults(func=cmd_read)


def cmd_read(args: argparse.Namespace) -> int:
    """Run ``xzaro read`` with parsed arguments; returns the exit status."""
    from xzaro.cli.source import open_variable, select

    isel = as_dict(args.isel, "--isel")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in SUFFIXES:
        raise UsageError(f"--out must end in {', '.join(SUFFIXES)}, got {args.out!r}")
    array = select(open_variable(args.url, args.var, args.storage_options), isel)
    if out is None:
        print(summary(array))
    elif out.suffix.lower() == ".png":
        from xzaro.quicklook import save_map

        try:
            save_map(array, str(out))
        except ValueError as e:
            raise UsageError(str(e)) from None
        print(f"wrote {out}")
    elif out.suffix.lower() == ".npy":
        import numpy as np

        values = np.asarray(array.values)
        np.save(out, values)
        print(f"wrote {out}: {values.dtype} {values.shape}")
    else:
        array.load().to_netcdf(out)
        print(f"wrote {out}: {array.name} {dict(array.sizes)}")
    return 0


def summary(array: Any) -> str:
    """What ``xzaro read`` prints without ``--out``: the variable, its coordinates and its
    values' statistics (and the values themselves when there are few)."""
    import numpy as np

    values = np.asarray(array.values)
    dims = ", ".join(f"{d}: {n}" for d, n in array.sizes.items())
    lines = [f"{array.name}  {values.dtype} ({dims})  {human_bytes(values.nbytes)}"]
    for name, coord in array.coords.items():
        lines.append(f"  {name}: {coordinate_text(coord)}")
    for key in ("long_name", "units"):
        if key in array.attrs:
            lines.append(f"  @{key}: {array.attrs[key]}")
    lines.append("  " + statistics(values))
    if values.size <= 100:
        with np.printoptions(precision=6, suppress=True, linewidth=96):
            lines.append(str(values))
    return "\n".join(lines)


def coordinate_text(coord: Any) -> str:
    """``first .. last (n values)`` of a 1-d coordinate, the value of a scalar one."""
    import numpy as np

    from xzaro.quicklook import value_text

    values = np.asarray(coord.values)
    if values.ndim == 0:
        return value_text(values)
    if values.ndim == 1 and values.size:
        first, last = value_text(values[0]), value_text(values[-1])
        return f"{first} .. {last} ({values.size} values)"
    return f"{values.dtype} {values.shape}"


def statistics(values: Any) -> str:
    """``min, max, mean, missing`` of numeric values; the count of others."""
    import numpy as np

    if values.dtype.kind not in "iufcb" or values.size == 0:
        return f"{values.size} values"
    numbers = values.astype(np.float64) if values.dtype.kind == "b" else values
    missing = int(np.count_nonzero(np.isnan(numbers))) if values.dtype.kind in "fc" else 0
    if missing == values.size:
        return f"all {values.size} values are missing (NaN)"
    return (
        f"min={np.nanmin(numbers):.6g} max={np.nanmax(numbers):.6g} "
        f"mean={np.nanmean(numbers):.6g} missing={missing} of {values.size}"
    )
