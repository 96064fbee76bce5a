"""Open benchmark: an ERA5-shaped consolidated store, opened with ``engine="zaro"`` and ``"zarr"``.

Usage::

    python benchmarks/bench_open.py [--repeat 3] [--workdir DIR] [--quick] [--skip-slow]
                                    [--zarr-format 2|3] [--json out.json]

Store (written once, reused while ``DIR/bench-params.json`` matches): a consolidated Zarr group
shaped like ARCO-ERA5 on 37 pressure levels, metadata only: no data variable has a chunk file,
so only the open is measured. The coordinates ``time`` (int64 hours since 1959-01-01),
``level``, ``latitude`` and ``longitude`` do have data, as xarray reads them at open.

* 16 pressure-level variables ``(time, level, latitude, longitude)`` = (100000, 37, 721, 1440)
  float32, chunks (1, 3, 721, 1440): 1,300,000 chunks each;
* 257 single-level variables ``(time, latitude, longitude)``, chunks (1, 721, 1440): 100,000
  chunks each;

273 data variables in all. ``--quick``: 10,000 time steps, 4 + 20 variables.

Cases, each open in a fresh child process (best wall time of ``--repeat`` processes, and the
peak resident memory of that process, ``ru_maxrss``; the imports are done before the clock
starts and their RSS is shown apart):

* ``zaro chunks={}``, ``zaro chunks={} read_unit={"time": 24}`` (Dask blocks of 24 stored
  chunks along time), ``zaro chunks=None``, ``zarr chunks=None``, ``zarr chunks={}`` (slow:
  minutes and gigabytes; ``--skip-slow`` leaves it out; it runs once).

Every ``chunks={}`` open is checked to give Dask arrays with the stored chunks on every data
variable; ``chunks=None`` opens must give none. Target (issue 15): ``zaro chunks={}`` at most 2x
the time of ``zarr chunks=None``. The timed section holds an exclusive lock on
``/tmp/xzaro-bench.lock`` so two benchmarks never time at once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Benchmark the working tree's xzaro, not whatever may be installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    ERR,
    NA,
    WRONG,
    MiB,
    bench_lock,
    clear_marker,
    dump_json,
    environment,
    format_table,
    marker_matches,
    package_versions,
    write_marker,
)

GENERATOR_VERSION = 1  # bump whenever the store layout changes, to invalidate cached stores
LEVELS = 37
LAT, LON = 721, 1440
PL_CHUNKS = (1, 3, LAT, LON)
SL_CHUNKS = (1, LAT, LON)
#: The pseudo-engine of the floor row: Dask's ``from_array`` alone on each variable.
FLOOR = "dask from_array alone"


@dataclass(frozen=True)
class Layout:
    """The shape of the benchmark store."""

    n_time: int
    n_pressure: int
    n_single: int
    zarr_format: int

    @property
    def pressure_chunks(self) -> int:
        """Chunks of one pressure-level variable."""
        shape = (self.n_time, LEVELS, LAT, LON)
        return math.prod(math.ceil(s / c) for s, c in zip(shape, PL_CHUNKS))

    @property
    def single_chunks(self) -> int:
        """Chunks of one single-level variable."""
        return self.n_time

    def params(self) -> dict[str, Any]:
        """Everything that determines the bytes on disk (compared against the workdir marker)."""
        return {
            "generator_version": GENERATOR_VERSION,
            "n_time": self.n_time,
            "n_pressure": self.n_pressure,
            "n_single": self.n_single,
            "zarr_format": self.zarr_format,
            "pressure_chunks": list(PL_CHUNKS),
            "single_chunks": list(SL_CHUNKS),
        }


@dataclass(frozen=True)
class Case:
    """One open to time."""

    engine: str
    chunks: str  # "{}" or "None"
    slow: bool = False
    read_unit: dict[str, int] | None = None

    @property
    def label(self) -> str:
        """Row label."""
        if self.engine == FLOOR:
            return FLOOR
        extra = "" if self.read_unit is None else f" read_unit={self.read_unit}"
        return f"{self.engine} chunks={self.chunks}{extra}"


CASES = (
    Case("zaro", "{}"),
    Case("zaro", "{}", read_unit={"time": 24}),
    Case("zaro", "None"),
    Case("zarr", "None"),
    Case("zarr", "{}", slow=True),
    Case(FLOOR, "{}"),
)
TARGET = ("zaro chunks={}", "zarr chunks=None", 2.0)


# --------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------


def store_path(workdir: Path, layout: Layout) -> Path:
    """Where the store of ``layout`` lives."""
    return workdir / f"era5_v{layout.zarr_format}.zarr"


def _coordinate(group: Any, name: str, values: np.ndarray, dims: str, attrs: dict) -> None:
    arr = group.create_array(
        name,
        shape=values.shape,
        dtype=values.dtype,
        chunks=values.shape,
        fill_value=None,
        **_dims_kwargs(group, [dims], attrs),
    )
    arr[...] = values


def _dims_kwargs(group: Any, dims: list[str], attrs: dict) -> dict[str, Any]:
    if group.metadata.zarr_format == 2:
        return {"attributes": {"_ARRAY_DIMENSIONS": dims, **attrs}}
    return {"dimension_names": dims, "attributes": attrs}


def prepare_store(workdir: Path, layout: Layout) -> Path:
    """Write the metadata-only store unless the workdir already holds it for ``layout``."""
    import zarr

    path = store_path(workdir, layout)
    params = layout.params()
    workdir.mkdir(parents=True, exist_ok=True)
    if marker_matches(workdir, params) and path.is_dir():
        print(f"reusing store {path}")
        return path
    print(f"writing store {path} ...", flush=True)
    t0 = time.perf_counter()
    clear_marker(workdir)
    shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    root = zarr.open_group(str(path), mode="w", zarr_format=layout.zarr_format)
    root.attrs.update({"title": "ERA5-shaped benchmark store (metadata only)"})
    hours = np.arange(layout.n_time, dtype=np.int64)
    _coordinate(
        root,
        "time",
        hours,
        "time",
        {"units": "hours since 1959-01-01", "calendar": "proleptic_gregorian"},
    )
    _coordinate(root, "level", np.linspace(1, 1000, LEVELS).astype(np.int64), "level", {})
    _coordinate(root, "latitude", np.linspace(90, -90, LAT, dtype=np.float32), "latitude", {})
    _coordinate(root, "longitude", np.arange(LON, dtype=np.float32) * 0.25, "longitude", {})
    variables = [(f"pl_{i:03d}", True) for i in range(layout.n_pressure)]
    variables += [(f"sl_{i:03d}", False) for i in range(layout.n_single)]
    for name, pressure in variables:
        dims = (
            ["time", "level", "latitude", "longitude"]
            if pressure
            else ["time", "latitude", "longitude"]
        )
        shape = (layout.n_time, LEVELS, LAT, LON) if pressure else (layout.n_time, LAT, LON)
        root.create_array(
            name,
            shape=shape,
            dtype="float32",
            chunks=PL_CHUNKS if pressure else SL_CHUNKS,
            fill_value=float("nan"),
            **_dims_kwargs(root, dims, {"long_name": name, "units": "K"}),
        )
    zarr.consolidate_metadata(str(path))
    write_marker(workdir, params)
    print(f"  wrote in {time.perf_counter() - t0:.1f} s")
    return path


# --------------------------------------------------------------------------------------------
# Child: one open
# --------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """The current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def dask_alone(lazy: Any) -> dict[str, Any]:
    """A Dask array of its stored chunks for every data variable of ``lazy`` (opened with
    ``chunks=None``), made by ``dask.array.from_array`` alone, named (so the data is never
    tokenized) and with a numpy ``meta`` (so nothing is read), as xarray calls it: the part of
    a ``chunks={}`` open that Dask does whatever engine the metadata came from."""
    import dask.array as da

    arrays = {}
    for name, var in lazy.data_vars.items():
        stored = var.encoding["preferred_chunks"]
        chunks = tuple(stored[d] for d in var.dims)
        arrays[name] = da.from_array(var.variable._data, chunks, name=name, meta=np.ndarray)
    return arrays


def child(
    path: str, engine: str, chunks_text: str, read_unit: str | None, profile: str | None
) -> dict[str, Any]:
    """Open ``path`` once and describe the result (runs in a fresh process)."""
    import dask.array  # noqa: F401  (imported before the clock, as by any Dask user)
    import xarray as xr
    import zarr  # noqa: F401

    import xzaro  # noqa: F401

    # A third-party engine is found through xarray's entry points, which imports every installed
    # backend's module on the first open of the process: an import, so it happens here.
    xr.backends.list_engines()
    chunks = {} if chunks_text == "{}" else None
    kwargs: dict[str, Any] = {"consolidated": True}
    if read_unit:
        kwargs["read_unit"] = json.loads(read_unit)
    floor = engine == FLOOR
    if floor:  # the lazy dataset is made before the clock; only Dask's part is timed
        lazy = xr.open_dataset(path, engine="zaro", chunks=None, **kwargs)
    import_rss = rss_bytes()
    import_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def open_it() -> Any:
        if floor:
            return dask_alone(lazy)
        return xr.open_dataset(path, engine=engine, chunks=chunks, **kwargs)

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    t0 = time.perf_counter()
    ds = open_it()
    elapsed = time.perf_counter() - t0
    if floor:  # the Dask arrays go into a dataset after the clock
        ds = lazy.assign({name: lazy[name].copy(data=data) for name, data in ds.items()})
    if profiler is not None:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    dask_vars = 0
    blocks = 0
    wrong: list[str] = []
    for name, var in ds.data_vars.items():
        if var.chunks is not None:
            dask_vars += 1
            blocks += math.prod(len(c) for c in var.chunks)
            want = var.encoding.get("chunks")
            if want is not None and read_unit:  # whole stored chunks per block
                unit = kwargs["read_unit"]
                want = [c * math.ceil(unit.get(d, c) / c) for d, c in zip(var.dims, want)]
            got = tuple(c[0] for c in var.chunks)
            if want is not None and tuple(want) != got:
                wrong.append(f"{name}: Dask chunks {got}, expected {tuple(want)}")
    return {
        "seconds": elapsed,
        "peak_rss": peak,
        "import_rss": import_rss,
        "import_peak_rss": import_peak,
        "rss_after": rss_bytes(),
        "data_vars": len(ds.data_vars),
        "dask_vars": dask_vars,
        "dask_blocks": blocks,
        "wrong": wrong,
    }


def run_child(path: Path, case: Case, profile: str | None = None) -> dict[str, Any]:
    """Run one open in a fresh interpreter and return its report (or a ``status`` on failure)."""
    cmd = [sys.executable, __file__, "--child", str(path), case.engine, case.chunks]
    if case.read_unit:
        cmd += ["--read-unit", json.dumps(case.read_unit)]
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"status": ERR, "message": " | ".join(tail)}
    return {"status": "ok", **json.loads(lines[-1])}


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def check(case: Case, res: dict[str, Any]) -> None:
    """Mark ``res`` WRONG when the open did not give what ``case`` asks for."""
    if res["status"] != "ok":
        return
    if case.chunks == "{}":
        problem = (
            f"{res['dask_vars']} of {res['data_vars']} data variables are Dask arrays"
            if res["dask_vars"] != res["data_vars"]
            else "; ".join(res["wrong"][:2])
        )
    else:
        problem = f"{res['dask_vars']} Dask variables" if res["dask_vars"] else ""
    if problem:
        res["status"], res["message"] = WRONG, problem


def fmt_bytes(n: float | None) -> str:
    """MiB or GiB text."""
    if n is None:
        return NA
    return f"{n / MiB / 1024:.2f} GiB" if n >= 1024 * MiB else f"{n / MiB:.0f} MiB"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line interface."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="processes per fast case (best kept)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "xzaro-bench-open",
        help="where the store lives (reused when the parameters match)",
    )
    p.add_argument("--quick", action="store_true", help="10,000 time steps, 24 variables")
    p.add_argument("--skip-slow", action="store_true", help="leave out zarr chunks={}")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=2)
    p.add_argument(
        "--profile-dir",
        type=Path,
        default=None,
        help="also profile each zaro open (pyinstrument) into this directory",
    )
    p.add_argument("--json", type=Path, default=None, help="also dump all numbers to this file")
    p.add_argument("--child", nargs=3, metavar=("PATH", "ENGINE", "CHUNKS"), help=argparse.SUPPRESS)
    p.add_argument("--profile", default=None, help=argparse.SUPPRESS)
    p.add_argument("--read-unit", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if an open erred or gave the wrong arrays."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.read_unit, args.profile)))
        return 0
    t_start = time.perf_counter()
    layout = (
        Layout(10_000, 4, 20, args.zarr_format)
        if args.quick
        else Layout(100_000, 16, 257, args.zarr_format)
    )
    workdir = args.workdir.resolve()
    with bench_lock():
        path = prepare_store(workdir, layout)
    n_vars = layout.n_pressure + layout.n_single
    print(
        f"{n_vars} data variables: {layout.n_pressure} pressure-level with "
        f"{layout.pressure_chunks:,} chunks each, {layout.n_single} single-level with "
        f"{layout.single_chunks:,} chunks each; Zarr V{layout.zarr_format}, consolidated"
    )
    print(f"cpus={os.cpu_count()} repeat={args.repeat} (best of, fresh process each)")
    cases = [c for c in CASES if not (c.slow and args.skip_slow)]
    results: dict[str, dict[str, Any]] = {}
    with bench_lock():
        for case in cases:
            runs = []
            for i in range(1 if case.slow else args.repeat):
                profile = None
                if args.profile_dir and case.engine == "zaro" and not case.read_unit and i == 0:
                    args.profile_dir.mkdir(parents=True, exist_ok=True)
                    name = f"zaro_chunks_{'dict' if case.chunks == '{}' else 'none'}.txt"
                    profile = str(args.profile_dir / name)
                res = run_child(path, case, profile)
                check(case, res)
                runs.append(res)
                if res["status"] != "ok":
                    break
                print(f"  {case.label}: {res['seconds']:.2f} s", flush=True)
            bad = [r for r in runs if r["status"] != "ok"]
            results[case.label] = (
                bad[0] if bad else {**min(runs, key=lambda r: r["seconds"]), "runs": runs}
            )

    base = results.get("zarr chunks=None", {})
    headers = ["case", "open s", "vs zarr None", "peak RSS", "after imports", "Dask blocks"]
    body = []
    failed = False
    for case in cases:
        res = results[case.label]
        if res["status"] != "ok":
            failed = True
            print(f"  {case.label}: {res['status']}: {res['message']}")
            body.append([case.label, res["status"], NA, NA, NA, NA])
            continue
        ratio = f"{res['seconds'] / base['seconds']:.2f}x" if base.get("status") == "ok" else NA
        body.append(
            [
                case.label,
                f"{res['seconds']:.2f}",
                ratio,
                fmt_bytes(res["peak_rss"]),
                fmt_bytes(res["import_rss"]),
                f"{res['dask_blocks']:,}",
            ]
        )
    print()
    print(format_table(headers, body))
    num, den, limit = TARGET
    a, b = results.get(num, {}), results.get(den, {})
    if a.get("status") == "ok" and b.get("status") == "ok":
        ratio = a["seconds"] / b["seconds"]
        verdict = "met" if ratio <= limit else "NOT met"
        print(f"\ntarget: {num} <= {limit:g}x {den}: {ratio:.2f}x, {verdict}")
    total = time.perf_counter() - t_start
    print(f"total {total:.1f} s")
    if args.json:
        dump_json(
            args.json,
            {
                "params": {**layout.params(), "repeat": args.repeat},
                "environment": environment(),
                "versions": package_versions(["xzaro", "xarray", "dask", "zarr", "numpy"]),
                "cases": results,
                "total_seconds": total,
            },
        )
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
