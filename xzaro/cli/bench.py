"""``xzaro bench``: a small built-in benchmark of xzaro, and, in a source checkout, the full
benchmark scripts of ``benchmarks/`` that compare it with its peers."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from xzaro.cli.options import UsageError

DESCRIPTION = """\
Without a script name: a small built-in benchmark that runs in a few seconds with no network.
It generates a smooth float32 field with noise, shape (SIZE, 512, 512) (a plane is 1 MiB;
SIZE is 16 by default), and times, best of --repeat runs, writing it as Zarr V2 (chunks
16x256x256, Blosc lz4) and V3 (the same chunks in 64x512x512 shards, Blosc zstd), then
reading each store whole and a region of about a tenth of it that lines up with no chunk.
It times xzaro alone, on this machine, from the page cache; MB/s is uncompressed megabytes
(1e6 B) per second. It is a quick check on a small array, not a substitute for the full
benchmarks.

In a source checkout of xzaro, the scripts benchmarks/bench_*.py are the full benchmarks:
xzaro side by side with zarr-python, tensorstore, zarrs and the other peers (larger data,
network cases against servers on 127.0.0.1; minutes, not seconds). --list shows them;
'xzaro bench read -- --size-mib 64' runs benchmarks/bench_read.py with the arguments after --,
and prints its own tables."""


def add_command(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "bench",
        parents=parents,
        help="run a small built-in benchmark, or the full ones of a source checkout",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "case",
        nargs="?",
        default=None,
        help="a built-in case (default: all of them), or a script of benchmarks/ in a source "
        "checkout (read for bench_read.py); --list shows them",
    )
    p.add_argument("script_args", nargs="*", metavar="-- ARGS", help="arguments for a script")
    p.add_argument("--size-mib", type=int, default=16, help="the data size in MiB (default 16)")
    p.add_argument("--repeat", type=int, default=3, help="runs per case, best kept (default 3)")
    p.add_argument("--list", action="store_true", help="list the cases and scripts")
    p.add_argument(
        "--plot",
        default=None,
        metavar="FILE.png",
        help="also save a bar chart of the MB/s (needs matplotlib)",
    )
    p.set_defaults(func=cmd_bench)


def scripts() -> dict[str, Path]:
    """The benchmark scripts of a source checkout by short name (``read`` for
    ``benchmarks/bench_read.py``); empty for an installed package."""
    import xzaro

    folder = Path(xzaro.__file__).resolve().parent.parent / "benchmarks"
    if not (folder / "README.md").is_file():
        return {}
    return {p.stem.removeprefix("bench_"): p for p in sorted(folder.glob("bench_*.py"))}


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``xzaro bench`` with parsed arguments; returns the exit status."""
    from xzaro.cli.benchcases import CASES

    found = scripts()
    if args.list:
        for name, (what, _) in CASES.items():
            print(f"{name:14} built-in: {what}")
        for name, path in found.items():
            print(f"{name:14} script: {path}")
        if not found:
            print("(no benchmarks/ folder: the scripts come with a source checkout)")
        return 0
    if args.case in found:
        command = [sys.executable, str(found[args.case]), *args.script_args]
        return subprocess.run(command, check=False).returncode
    if args.script_args:
        raise UsageError("arguments after the case are for benchmark scripts only")
    if args.case is not None and args.case not in CASES:
        known = ", ".join([*CASES, *found])
        raise UsageError(f"no benchmark {args.case!r} (known: {known})")
    if args.size_mib < 1 or args.repeat < 1:
        raise UsageError("--size-mib and --repeat must be at least 1")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise UsageError(f"--plot must end in .png, got {args.plot!r}")
    return run_builtin([args.case] if args.case else list(CASES), args)


def run_builtin(names: list[str], args: argparse.Namespace) -> int:
    """Run the built-in cases ``names``, print the table and save the plot."""
    import contextlib

    from xzaro.cli import progress
    from xzaro.cli.benchcases import measure

    if args.plot:
        from xzaro.quicklook import pyplot

        pyplot()  # fail before measuring when matplotlib is missing
    runs = len(names) * args.repeat
    show = progress.wanted()
    bar: Any = progress.counter_bar(runs, "xzaro bench") if show else contextlib.nullcontext()
    with bar:
        step = bar.update if show else None
        results = measure(names, args.size_mib, args.repeat, step=step)
    print(results.text())
    if args.plot:
        from xzaro.quicklook import save_bars

        series = {"xzaro": [results.mb_per_second(c) for c in results.seconds]}
        title = f"xzaro bench: {args.size_mib} MiB float32, best of {args.repeat}"
        save_bars(list(results.seconds), series, args.plot, xlabel="MB/s", title=title)
        print(f"wrote {args.plot}")
    return 0
