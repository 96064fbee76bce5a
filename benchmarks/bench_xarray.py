"""xarray engine benchmark: ``engine="zaro"`` vs ``engine="zarr"`` vs xarray-tensorstore.

Usage::

    python benchmarks/bench_xarray.py [--repeat 3] [--workdir DIR] [--only zaro,zarr,tensorstore]
                                      [--cases many,core,point] [--quick] [--full-zarr]
                                      [--json out.json]

Cases (stores are written once with zarr-python / xarray and reused while the parameters in
``DIR/<case>/bench-params.json`` match):

* ``many``: a consolidated Zarr V3 group of 200 variables ``v000..v199``, float32 (10000, 640),
  dims (time, x), chunks (1, 64): 100,000 storage chunks each, fill value 0. Only the first 5000
  time steps of ``v000`` are written; every other chunk is missing (reads as fill). Timed:
  ``xr.open_dataset(path, chunks={})``, ``v000.isel(time=slice(0, S)).sum()`` (S = 1000, i.e.
  10,000 chunks) and ``v000.sum()`` on the whole variable. zarr's full sum runs one Dask task per
  storage chunk and takes minutes, so unless ``--full-zarr`` its full time is *extrapolated* as
  ``10000 / S`` times its slice time and marked ``*``.
* ``core``: ``xr.open_dataset(path, chunks={}).compute()`` on dataset copies of the 512 MiB field
  of ``bench_read.py`` (same generator): V2 chunks 16x256x256 Blosc lz4, and V3 shards
  64x512x512 of 16x256x256 chunks Blosc zstd clevel 3. GB/s = uncompressed bytes / time.
* ``point``: a 1-point time series ``ds.v.isel(lat=i, lon=j).values`` from a float32
  (2000, 512, 512) field chunked in space (100, 64, 64), V2 and V3, with ``chunks=None`` and with
  ``chunks={}``; timed with and without the open.

xarray-tensorstore has no Dask: its rows use ``xarray_tensorstore.open_zarr`` (plus
``xarray_tensorstore.read`` before ``.compute()`` in ``core``), and its ``chunks={}`` rows are
``n/a``. Every result is checked against the reference (``np.array_equal``; ``np.allclose`` for
sums); a wrong result is shown as ``WRONG`` and makes the script exit with status 1.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Benchmark the working tree's xzaro, not whatever may be installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_read
from _common import (
    ERR,
    NA,
    WRONG,
    MiB,
    Timing,
    clear_marker,
    dump_json,
    environment,
    format_table,
    marker_matches,
    package_versions,
    run_interleaved,
    warm_page_cache,
    write_marker,
)
from bench_read import Unavailable, check_array

ENGINES = ("zaro", "zarr", "tensorstore")
CASES = ("many", "core", "point")
#: Ratio columns: (label, numerator engine, denominator engine); > 1 means zaro is faster.
RATIOS = (("zaro/zarr", "zaro", "zarr"), ("zaro/tensorstore", "zaro", "tensorstore"))
#: Engines whose Dask task counts are shown (xarray-tensorstore does not use Dask).
DASK_ENGINES = ("zaro", "zarr")
EXTRAPOLATED = "*"

# many
MANY_VARS = 200
MANY_SHAPE = (10000, 640)
MANY_CHUNKS = (1, 64)
MANY_WRITTEN = 5000  # time steps of v000 that are written; the rest is fill
MANY_SLICE = 1000  # time steps of the slice every engine sums (10,000 chunks)
MANY_SLICE_QUICK = 100
MANY_SPOT = (MANY_WRITTEN - 3, MANY_WRITTEN + 3)  # straddles the written / fill boundary
MANY_VERSION = 1

# core
CORE_N0 = 512
CORE_VAR = "field"
CORE_DIMS = ("z", "y", "x")
CORE_VERSION = 1

# point
POINT_SHAPE = (2000, 512, 512)
POINT_CHUNKS = (100, 64, 64)
POINT_DIMS = ("time", "lat", "lon")
POINT_VAR = "v"
POINT_IJ = (300, 123)  # inside a chunk on both axes
POINT_VERSION = 1

DTYPE = np.dtype("float32")


def quiet_zarr_warnings() -> None:
    """Silence zarr-python's notes about consolidated V3 metadata (not part of the spec)."""
    warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
    warnings.filterwarnings("ignore", message=".*not part of the Zarr format 3.*")


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------


def check_engine(engine: str) -> None:
    """Raise :class:`Unavailable` when ``engine`` cannot run here."""
    import xarray as xr

    if engine == "zaro":
        if "zaro" not in xr.backends.list_engines():
            raise Unavailable('xarray has no engine "zaro" (xzaro.backends.xarray not installed)')
    elif engine == "tensorstore":
        try:
            import xarray_tensorstore  # noqa: F401
        except Exception as exc:
            raise Unavailable(f"import xarray_tensorstore failed: {exc!r}") from exc


def open_ds(engine: str, path: Path, chunks: dict[str, int] | None) -> Any:
    """Open ``path`` as an ``xarray.Dataset`` with ``engine``.

    For ``tensorstore`` this is ``xarray_tensorstore.open_zarr`` (lazy, no Dask); asking it for
    Dask chunks raises :class:`Unavailable`.
    """
    if engine == "tensorstore":
        if chunks is not None:
            raise Unavailable("xarray-tensorstore does not use Dask (no chunks={})")
        import xarray_tensorstore

        return xarray_tensorstore.open_zarr(str(path))
    import xarray as xr

    return xr.open_dataset(str(path), engine=engine, chunks=chunks)


def dask_tasks(obj: Any) -> int | None:
    """Number of tasks Dask would run for ``obj`` (after ``dask.optimize``), ``None`` if no Dask."""
    import dask

    if not dask.is_dask_collection(obj):
        return None
    (optimized,) = dask.optimize(obj)
    return len(optimized.__dask_graph__())


# --------------------------------------------------------------------------------------------
# Measurements and tables
# --------------------------------------------------------------------------------------------

Fn = Callable[[], Any]
Verify = Callable[[Any], "str | None"]


@dataclass
class Row:
    """One table row: a timing and an optional Dask task count per engine."""

    timings: dict[str, Timing] = field(default_factory=dict)
    tasks: dict[str, int | None] = field(default_factory=dict)
    marked: set[str] = field(default_factory=set)  # engines whose cell is extrapolated

    def failed(self) -> bool:
        """Whether any engine raised or returned a wrong result."""
        return any(t.status in (ERR, WRONG) for t in self.timings.values())


def measure(
    setups: Mapping[str, Callable[[], tuple[Fn, Verify]]],
    repeat: int,
    nbytes: int = 0,
) -> dict[str, Timing]:
    """Time each engine's ``fn`` ``repeat`` times, interleaved; verify the first result.

    ``setups[engine]()`` (untimed) returns ``(fn, verify)`` or raises :class:`Unavailable`.
    """
    timings: dict[str, Timing] = {}
    fns: dict[str, tuple[Fn, Verify]] = {}
    for engine, setup in setups.items():
        timings[engine] = Timing(nbytes=nbytes)
        try:
            fns[engine] = setup()
        except Unavailable as exc:
            timings[engine].fail(NA, str(exc))
        except Exception as exc:
            timings[engine].fail(ERR, f"setup: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=4)
    run_interleaved(fns, timings, repeat)
    return timings


def fmt_time(seconds: float) -> str:
    """Seconds as ``12.3 ms`` / ``4.56 s``."""
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def cell_value(timing: Timing | None, unit: str) -> float | None:
    """The number shown for a cell: best seconds, or GB/s when ``unit == "GB/s"``."""
    if timing is None or not timing.ok:
        return None
    return timing.gbps if unit == "GB/s" else timing.best


def case_table(rows: Mapping[str, Row], unit: str, engines: Sequence[str] = ENGINES) -> str:
    """One table: a column per engine (best time or GB/s), ratio columns, Dask task counts.

    Ratios are speed ratios (> 1 means the numerator engine is faster), whatever the unit.
    Cells marked :data:`EXTRAPOLATED` are estimates, and so is every ratio that uses one.
    """
    headers = ["case", *(f"{e} {unit}" for e in engines), *(r[0] for r in RATIOS)]
    headers += [f"{e} tasks" for e in DASK_ENGINES]
    body = []
    for label, row in rows.items():
        cells = [label]
        for e in engines:
            t = row.timings.get(e)
            value = cell_value(t, unit)
            if value is None:
                cells.append(t.status if t is not None else NA)
            else:
                text = f"{value:.2f}" if unit == "GB/s" else fmt_time(value)
                cells.append(text + (EXTRAPOLATED if e in row.marked else ""))
        for _label, num, den in RATIOS:
            a = cell_value(row.timings.get(num), unit)
            b = cell_value(row.timings.get(den), unit)
            if a is None or b is None or a == 0 or b == 0:
                cells.append(NA)
                continue
            speed = a / b if unit == "GB/s" else b / a
            mark = EXTRAPOLATED if {num, den} & row.marked else ""
            cells.append(f"{speed:.2f}x{mark}")
        for e in DASK_ENGINES:
            n = row.tasks.get(e)
            cells.append(f"{n:,}" if n is not None else "-")
        body.append(cells)
    return format_table(headers, body)


def report_problems(rows: Mapping[str, Row]) -> None:
    """Print the reason for every non-ok cell (an ``n/a`` reason only once per engine)."""
    seen: set[tuple[str, str]] = set()
    for label, row in rows.items():
        for engine, t in row.timings.items():
            if t.status == "ok" or (t.status == NA and (engine, t.message) in seen):
                continue
            seen.add((engine, t.message))
            print(f"   {label} / {engine}: {t.status}: {t.message}")


def rows_json(rows: Mapping[str, Row]) -> dict[str, Any]:
    """JSON-serialisable form of a case's rows."""
    return {
        label: {
            "timings": {e: t.to_json() for e, t in row.timings.items()},
            "dask_tasks": row.tasks,
            "extrapolated": sorted(row.marked),
        }
        for label, row in rows.items()
    }


def count_tasks(
    row: Row, engines: Sequence[str], build: Callable[[str], Any], skip: bool = False
) -> None:
    """Fill ``row.tasks`` with the optimized task count of ``build(engine)`` (untimed)."""
    for e in DASK_ENGINES:
        t = row.timings.get(e)
        if skip or e not in engines or t is None or t.status in (NA, ERR):
            continue
        try:
            row.tasks[e] = dask_tasks(build(e))
        except Exception as exc:
            print(f"   could not count tasks for {e}: {type(exc).__name__}: {exc}")


def prepare_dir(directory: Path, params: Mapping[str, Any], names: Sequence[str]) -> bool:
    """Whether ``directory`` already holds stores ``names`` for ``params``; else clear them."""
    directory.mkdir(parents=True, exist_ok=True)
    if marker_matches(directory, params) and all((directory / n).is_dir() for n in names):
        return True
    clear_marker(directory)
    for n in names:
        if (directory / n).exists():
            shutil.rmtree(directory / n)
    return False


# --------------------------------------------------------------------------------------------
# Case "many": many small chunks, mostly missing
# --------------------------------------------------------------------------------------------


def many_data() -> np.ndarray:
    """The written part of ``v000``: (5000, 640) float32 multiples of 0.25 in [0.25, 100)."""
    rng = np.random.default_rng([bench_read.SEED, 2])
    values = rng.integers(1, 400, size=(MANY_WRITTEN, MANY_SHAPE[1]))
    return (values / 4).astype(DTYPE)


def many_params() -> dict[str, Any]:
    """Parameters that determine the ``many`` store."""
    return {
        "version": MANY_VERSION,
        "seed": bench_read.SEED,
        "vars": MANY_VARS,
        "shape": list(MANY_SHAPE),
        "chunks": list(MANY_CHUNKS),
        "written_time_steps_of_v000": MANY_WRITTEN,
        "codecs": "zarr-python 3 default (bytes + zstd level 0), fill 0, consolidated",
    }


def prepare_many(directory: Path) -> tuple[Path, np.ndarray]:
    """Write (or reuse) the ``many`` store; return its path and the written part of v000."""
    import zarr

    path = directory / "many.zarr"
    data = many_data()
    params = many_params()
    if prepare_dir(directory, params, [path.name]):
        print(f"reusing {path}")
        return path, data
    print(f"writing {path} (about a minute) ...", flush=True)
    t0 = time.perf_counter()
    group = zarr.create_group(str(path), zarr_format=3)
    for k in range(MANY_VARS):
        group.create_array(
            f"v{k:03d}",
            shape=MANY_SHAPE,
            dtype=DTYPE,
            chunks=MANY_CHUNKS,
            dimension_names=("time", "x"),
            fill_value=0.0,
        )
    v000 = zarr.open_array(str(path / "v000"), mode="r+")
    for i0 in range(0, MANY_WRITTEN, 500):
        v000[i0 : i0 + 500] = data[i0 : i0 + 500]
    zarr.consolidate_metadata(str(path))
    n_files = sum(len(files) for _r, _d, files in os.walk(path / "v000" / "c"))
    expected = MANY_WRITTEN * MANY_SHAPE[1] // MANY_CHUNKS[1]
    if n_files != expected:
        raise RuntimeError(f"v000 has {n_files} chunk files, expected {expected}")
    write_marker(directory, params)
    print(f"  wrote {n_files:,} chunks in {time.perf_counter() - t0:.1f} s")
    return path, data


def run_many(args: argparse.Namespace, engines: list[str], report: dict[str, Any]) -> bool:
    """The ``many`` case; returns whether anything failed."""
    path, data = prepare_many(args.workdir / "many")
    warm_page_cache(path)
    n_time, n_x = MANY_SHAPE
    per_step = n_x // MANY_CHUNKS[1]
    span = MANY_SLICE_QUICK if args.quick else MANY_SLICE
    factor = n_time / span
    ref_slice = float(data[:span].astype(np.float64).sum())
    ref_full = float(data.astype(np.float64).sum())
    spot = np.zeros((MANY_SPOT[1] - MANY_SPOT[0], n_x), dtype=DTYPE)
    spot[: MANY_WRITTEN - MANY_SPOT[0]] = data[MANY_SPOT[0] :]
    full_bytes = n_time * n_x * DTYPE.itemsize
    print(
        f"\n== many: V3 consolidated, {MANY_VARS} vars float32{MANY_SHAPE} chunks {MANY_CHUNKS}"
        f" = {n_time * per_step:,} chunks each; v000 time[:{MANY_WRITTEN}] written"
        f" ({MANY_WRITTEN * per_step:,} chunk files), the rest fill"
    )

    def check_open(ds: Any) -> str | None:
        names = sorted(ds.data_vars)
        if len(names) != MANY_VARS or names[0] != "v000" or names[-1] != f"v{MANY_VARS - 1:03d}":
            return f"got {len(names)} data variables ({names[:3]}...)"
        v = ds["v000"]
        if v.dims != ("time", "x") or v.shape != MANY_SHAPE or v.dtype != DTYPE:
            return f"v000 is {v.dtype}{v.shape} dims {v.dims}"
        got = np.asarray(v.isel(time=slice(*MANY_SPOT)).values)
        if not np.array_equal(got, spot):
            return f"v000[{MANY_SPOT[0]}:{MANY_SPOT[1]}] differs from the written data / fill"
        if np.any(np.asarray(ds["v137"].isel(time=slice(9998, 10000)).values) != 0):
            return "v137 (never written) is not all fill (0)"
        return None

    def check_sum(expected: float) -> Verify:
        def verify(result: Any) -> str | None:
            got = float(np.asarray(result))
            if not np.isclose(got, expected, rtol=1e-5, atol=0):
                return f"sum {got!r}, expected {expected!r}"
            return None

        return verify

    def open_setup(engine: str) -> Callable[[], tuple[Fn, Verify]]:
        def setup() -> tuple[Fn, Verify]:
            check_engine(engine)
            chunks = None if engine == "tensorstore" else {}
            return (lambda: open_ds(engine, path, chunks)), check_open

        return setup

    opened: dict[str, Any] = {}

    def dataset(engine: str) -> Any:
        if engine not in opened:
            check_engine(engine)
            opened[engine] = open_ds(engine, path, None if engine == "tensorstore" else {})
        return opened[engine]

    def sum_expr(engine: str, full: bool) -> Any:
        v = dataset(engine)["v000"]
        return v.sum() if full else v.isel(time=slice(0, span)).sum()

    def sum_setup(engine: str, full: bool) -> Callable[[], tuple[Fn, Verify]]:
        def setup() -> tuple[Fn, Verify]:
            dataset(engine)
            fn = lambda: sum_expr(engine, full).compute()  # noqa: E731
            return fn, check_sum(ref_full if full else ref_slice)

        return setup

    rows: dict[str, Row] = {}
    label_open = "open chunks={}"
    label_slice = f"v000[:{span}].sum() ({span * per_step:,} chunks)"
    label_full = f"v000.sum() ({n_time * per_step:,} chunks)"

    print(f"   timing {label_open} ...", flush=True)
    rows[label_open] = Row(measure({e: open_setup(e) for e in engines}, args.repeat))

    print(f"   timing {label_slice} ...", flush=True)
    slice_row = Row(
        measure(
            {e: sum_setup(e, False) for e in engines},
            args.repeat,
            nbytes=span * n_x * DTYPE.itemsize,
        )
    )
    count_tasks(slice_row, engines, lambda e: sum_expr(e, False))
    rows[label_slice] = slice_row

    print(f"   timing {label_full} ...", flush=True)
    full_engines = [e for e in engines if e != "zarr"]
    full_row = Row(
        measure({e: sum_setup(e, True) for e in full_engines}, args.repeat, nbytes=full_bytes)
    )
    if "zarr" in engines:
        zarr_slice = slice_row.timings["zarr"]
        if args.full_zarr:
            print("   timing the full zarr sum once (--full-zarr) ...", flush=True)
            full_row.timings.update(measure({"zarr": sum_setup("zarr", True)}, 1, full_bytes))
        elif zarr_slice.ok:
            estimate = Timing(nbytes=full_bytes, times=[zarr_slice.best * factor])
            full_row.timings["zarr"] = estimate
            full_row.marked.add("zarr")
        else:
            full_row.timings["zarr"] = Timing(full_bytes, status=zarr_slice.status)
    count_tasks(full_row, engines, lambda e: sum_expr(e, True), skip=args.quick)
    rows[label_full] = full_row
    opened.clear()

    report_problems(rows)
    print(case_table(rows, "s"))
    notes = [
        "open = xr.open_dataset(path, engine=..., chunks={}) (tensorstore: open_zarr, no Dask);",
        "sums run on an already open dataset; tasks = Dask tasks after dask.optimize.",
    ]
    if "zarr" in full_row.marked:
        notes.append(
            f"{EXTRAPOLATED} EXTRAPOLATED: zarr's full sum = {factor:g} x its {span}-step slice"
            " time (not measured; run with --full-zarr to measure it once)."
        )
    elif args.full_zarr and "zarr" in engines:
        notes.append("zarr's full sum was measured once (--full-zarr), not best of --repeat.")
    print("\n".join("   " + n for n in notes))
    report["cases"]["many"] = {"path": str(path), "rows": rows_json(rows), "slice_steps": span}
    return any(r.failed() for r in rows.values())


# --------------------------------------------------------------------------------------------
# Case "core": whole-dataset compute of the read benchmark's field
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DsStore:
    """A dataset store of one case."""

    key: str
    title: str
    path: Path


def core_params() -> dict[str, Any]:
    """Parameters that determine the ``core`` stores."""
    return {
        "version": CORE_VERSION,
        "bench_read": bench_read.store_params(CORE_N0),
        "var": CORE_VAR,
        "dims": list(CORE_DIMS),
        "writer": "xarray to_zarr, consolidated",
    }


def core_stores(directory: Path) -> list[DsStore]:
    """The two ``core`` store descriptors."""
    return [
        DsStore(
            "v2", "Zarr V2, chunks 16x256x256, Blosc lz4 clevel 5 shuffle", directory / "v2.zarr"
        ),
        DsStore(
            "v3_sharded",
            "Zarr V3, shards 64x512x512 / chunks 16x256x256, Blosc zstd clevel 3 shuffle",
            directory / "v3_sharded.zarr",
        ),
    ]


def prepare_core(directory: Path) -> tuple[list[DsStore], np.ndarray]:
    """Write (or reuse) the ``core`` dataset stores; return them and the reference array."""
    import numcodecs
    import xarray as xr
    from zarr.codecs import BloscCodec

    stores = core_stores(directory)
    t0 = time.perf_counter()
    ref = bench_read.generate(CORE_N0)
    if prepare_dir(directory, core_params(), [s.path.name for s in stores]):
        print(f"reusing {directory} (reference regenerated in {time.perf_counter() - t0:.1f} s)")
        return stores, ref
    print(f"writing {directory} ...", flush=True)
    ds = xr.Dataset({CORE_VAR: (CORE_DIMS, ref)})
    chunks = bench_read.CHUNKS
    v2 = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    ds.to_zarr(
        str(stores[0].path),
        mode="w",
        zarr_format=2,
        encoding={CORE_VAR: {"chunks": chunks, "compressors": v2, "filters": None}},
    )
    v3 = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=DTYPE.itemsize)
    ds.to_zarr(
        str(stores[1].path),
        mode="w",
        zarr_format=3,
        encoding={
            CORE_VAR: {
                "chunks": chunks,
                "shards": bench_read.SHARDS,
                "compressors": v3,
                "filters": None,
            }
        },
    )
    write_marker(directory, core_params())
    print(f"  generated and wrote in {time.perf_counter() - t0:.1f} s")
    return stores, ref


def run_core(args: argparse.Namespace, engines: list[str], report: dict[str, Any]) -> bool:
    """The ``core`` case; returns whether anything failed."""
    stores, ref = prepare_core(args.workdir / "core")
    print(
        f"\n== core: xr.open_dataset(path, chunks={{}}).compute() of float32{ref.shape}"
        f" = {ref.nbytes / MiB:.0f} MiB (bench_read's field) with dims {CORE_DIMS}"
    )
    check = check_array(ref)

    def verify(ds: Any) -> str | None:
        if list(ds.data_vars) != [CORE_VAR] or ds[CORE_VAR].dims != CORE_DIMS:
            return f"unexpected dataset {ds}"
        return check(ds[CORE_VAR].values)

    def setup(engine: str, store: DsStore) -> Callable[[], tuple[Fn, Verify]]:
        def inner() -> tuple[Fn, Verify]:
            check_engine(engine)
            if engine == "tensorstore":
                import xarray_tensorstore

                def fn() -> Any:
                    ds = xarray_tensorstore.open_zarr(str(store.path))
                    return xarray_tensorstore.read(ds).compute()

                return fn, verify
            return (lambda: open_ds(engine, store.path, {}).compute()), verify

        return inner

    rows: dict[str, Row] = {}
    for store in stores:
        warm_page_cache(store.path)
        print(f"   timing {store.key}: {store.title} ...", flush=True)
        row = Row(measure({e: setup(e, store) for e in engines}, args.repeat, nbytes=ref.nbytes))
        count_tasks(row, engines, lambda e, s=store: open_ds(e, s.path, {}))
        rows[store.key] = row
    report_problems(rows)
    print(case_table(rows, "GB/s"))
    print(
        "   GB/s = 512 MiB uncompressed / best time (open included); tensorstore ="
        " xarray_tensorstore.read(open_zarr(path)).compute(); tasks = Dask tasks after"
        " dask.optimize."
    )
    report["cases"]["core"] = {
        "stores": {s.key: str(s.path) for s in stores},
        "rows": rows_json(rows),
    }
    return any(r.failed() for r in rows.values())


# --------------------------------------------------------------------------------------------
# Case "point": 1-point time series from a store chunked in space
# --------------------------------------------------------------------------------------------


def point_field(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The ``point`` field at broadcastable integer indices ``t, y, x`` (float32, 0.01 steps).

    A smooth part plus a hash-based pseudo-noise, so any point can be recomputed without
    generating the whole array.
    """
    two_pi = np.float32(2 * np.pi)
    tf = t.astype(np.float32) * (two_pi / 365)
    yf = y.astype(np.float32) * (two_pi / 512)
    xf = x.astype(np.float32) * (two_pi / 512)
    smooth = (
        np.float32(20) * np.sin(tf) * np.cos(yf)
        + np.float32(8) * np.sin(np.float32(2) * xf + yf)
        + np.float32(10)
    )
    h = (
        t.astype(np.uint32) * np.uint32(2654435761)
        ^ y.astype(np.uint32) * np.uint32(2246822519)
        ^ x.astype(np.uint32) * np.uint32(3266489917)
    )
    noise = (h % np.uint32(1000)).astype(np.float32) * np.float32(0.001) - np.float32(0.5)
    return np.round(smooth + noise, 2).astype(DTYPE, copy=False)


def point_series(i: int, j: int) -> np.ndarray:
    """The reference time series at ``lat=i, lon=j``."""
    t = np.arange(POINT_SHAPE[0])
    return point_field(t, np.full_like(t, i), np.full_like(t, j))


def point_params() -> dict[str, Any]:
    """Parameters that determine the ``point`` stores."""
    return {
        "version": POINT_VERSION,
        "shape": list(POINT_SHAPE),
        "chunks": list(POINT_CHUNKS),
        "dims": list(POINT_DIMS),
        "v2": "blosc lz4 clevel=5 shuffle",
        "v3": "blosc zstd clevel=3 shuffle, no sharding",
        "writer": "xarray to_zarr, consolidated, coords time/lat/lon",
    }


def point_stores(directory: Path) -> list[DsStore]:
    """The two ``point`` store descriptors."""
    return [
        DsStore("v2", "Zarr V2, chunks 100x64x64, Blosc lz4", directory / "v2.zarr"),
        DsStore("v3", "Zarr V3, chunks 100x64x64, Blosc zstd clevel 3", directory / "v3.zarr"),
    ]


def prepare_point(directory: Path) -> list[DsStore]:
    """Write (or reuse) the ``point`` stores."""
    import numcodecs
    import pandas as pd
    import xarray as xr
    from zarr.codecs import BloscCodec

    stores = point_stores(directory)
    if prepare_dir(directory, point_params(), [s.path.name for s in stores]):
        print(f"reusing {directory}")
        return stores
    print(f"writing {directory} (2 GiB field, about a minute) ...", flush=True)
    t0 = time.perf_counter()
    nt, ny, nx = POINT_SHAPE
    data = np.empty(POINT_SHAPE, dtype=DTYPE)
    y = np.arange(ny)[None, :, None]
    x = np.arange(nx)[None, None, :]
    for t0_ in range(0, nt, POINT_CHUNKS[0]):
        t = np.arange(t0_, min(t0_ + POINT_CHUNKS[0], nt))[:, None, None]
        data[t0_ : t0_ + len(t)] = point_field(t, y, x)
    coords = {
        "time": pd.date_range("2000-01-01", periods=nt, freq="D"),
        "lat": np.linspace(-89.825, 89.825, ny),
        "lon": np.linspace(0.175, 359.825, nx),
    }
    ds = xr.Dataset({POINT_VAR: (POINT_DIMS, data)}, coords=coords)
    v2 = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    ds.to_zarr(
        str(stores[0].path),
        mode="w",
        zarr_format=2,
        encoding={POINT_VAR: {"chunks": POINT_CHUNKS, "compressors": v2, "filters": None}},
    )
    v3 = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=DTYPE.itemsize)
    ds.to_zarr(
        str(stores[1].path),
        mode="w",
        zarr_format=3,
        encoding={POINT_VAR: {"chunks": POINT_CHUNKS, "compressors": v3, "filters": None}},
    )
    write_marker(directory, point_params())
    print(f"  generated and wrote in {time.perf_counter() - t0:.1f} s")
    return stores


def run_point(args: argparse.Namespace, engines: list[str], report: dict[str, Any]) -> bool:
    """The ``point`` case; returns whether anything failed."""
    stores = prepare_point(args.workdir / "point")
    i, j = POINT_IJ
    expected = point_series(i, j)
    n_chunks = math.ceil(POINT_SHAPE[0] / POINT_CHUNKS[0])
    print(
        f"\n== point: ds.v.isel(lat={i}, lon={j}).values, float32{POINT_SHAPE} chunks"
        f" {POINT_CHUNKS}: {POINT_SHAPE[0]} values from {n_chunks} chunks"
        f" ({n_chunks * math.prod(POINT_CHUNKS) * DTYPE.itemsize / MiB:.0f} MiB decoded)"
    )
    check = check_array(expected)

    def select(ds: Any) -> Any:
        return ds[POINT_VAR].isel(lat=i, lon=j)

    def verify(values: Any) -> str | None:
        return check(values)

    def setup(engine: str, store: DsStore, chunks: Any, with_open: bool) -> Any:
        def inner() -> tuple[Fn, Verify]:
            check_engine(engine)
            if with_open:
                open_ds(engine, store.path, chunks)  # raises Unavailable for ts + chunks={}
                return (lambda: select(open_ds(engine, store.path, chunks)).values), verify
            ds = open_ds(engine, store.path, chunks)
            return (lambda: select(ds).values), verify

        return inner

    rows: dict[str, Row] = {}
    for store in stores:
        warm_page_cache(store.path)
        for chunks in (None, {}):
            for with_open in (True, False):
                label = f"{store.key} chunks={chunks} {'open+read' if with_open else 'read'}"
                print(f"   timing {label} ...", flush=True)
                setups = {e: setup(e, store, chunks, with_open) for e in engines}
                row = Row(measure(setups, args.repeat, nbytes=expected.nbytes))
                if chunks is not None:
                    count_tasks(row, engines, lambda e, s=store: select(open_ds(e, s.path, {})))
                rows[label] = row
    report_problems(rows)
    print(case_table(rows, "s"))
    print(
        "   open+read = open_dataset + isel + .values; read = isel + .values on an open dataset;"
        " tasks = Dask tasks after dask.optimize; tensorstore has no chunks={} mode."
    )
    report["cases"]["point"] = {
        "stores": {s.key: str(s.path) for s in stores},
        "point": [i, j],
        "rows": rows_json(rows),
    }
    return any(r.failed() for r in rows.values())


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def split_list(text: str, allowed: Sequence[str], what: str, p: argparse.ArgumentParser) -> list:
    """Parse a comma-separated subset of ``allowed`` (kept in ``allowed`` order)."""
    picked = {x.strip() for x in text.split(",") if x.strip()}
    bad = sorted(picked - set(allowed))
    if bad:
        p.error(f"unknown {what} {bad}; choose from {list(allowed)}")
    return [x for x in allowed if x in picked]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line interface."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=None, help="repetitions (best kept); default 3")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "xzaro-bench-xarray",
        help="where the stores live (reused when the parameters match)",
    )
    p.add_argument("--only", default=",".join(ENGINES), help=f"subset of {','.join(ENGINES)}")
    p.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(CASES)}")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: --repeat 1 by default, zarr sums a {MANY_SLICE_QUICK}-step slice, "
        "no task count for the full zarr graph",
    )
    p.add_argument(
        "--full-zarr",
        action="store_true",
        help="run zarr's full 100,000-chunk sum once (minutes) instead of extrapolating it",
    )
    p.add_argument("--json", type=Path, default=None, help="also dump all numbers to this file")
    args = p.parse_args(argv)
    args.engines = split_list(args.only, ENGINES, "engine(s)", p)
    args.case_list = split_list(args.cases, CASES, "case(s)", p)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    args.workdir = args.workdir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if any engine erred or returned a wrong result."""
    t_start = time.perf_counter()
    args = parse_args(argv)
    quiet_zarr_warnings()
    import dask
    import xarray as xr

    engines = args.engines
    status = {}
    for e in ENGINES:
        try:
            check_engine(e)
            status[e] = "ok" if e in engines else "skipped (--only)"
        except Unavailable as exc:
            status[e] = f"n/a: {exc}"
    versions = package_versions(
        ["xzaro", "xarray", "zarr", "dask", "tensorstore", "xarray-tensorstore", "numpy"]
    )
    print(" ".join(f"{k}={v}" for k, v in versions.items()))
    print(
        f"cpus={os.cpu_count()} repeat={args.repeat} (best of, interleaved) "
        f"dask scheduler={dask.config.get('scheduler', None) or 'threads (default)'}"
        f" workdir={args.workdir}"
    )
    for e in ENGINES:
        print(f"engine {e}: {status[e]}")
    print("ratios are speed ratios: > 1 means zaro is faster")
    del xr

    report: dict[str, Any] = {
        "params": {
            "repeat": args.repeat,
            "engines": engines,
            "cases": args.case_list,
            "quick": args.quick,
            "full_zarr": args.full_zarr,
        },
        "engine_status": status,
        "environment": environment(),
        "versions": versions,
        "cases": {},
    }
    runners = {"many": run_many, "core": run_core, "point": run_point}
    failed = False
    for case in args.case_list:
        t0 = time.perf_counter()
        failed |= runners[case](args, engines, report)
        print(f"   ({case} took {time.perf_counter() - t0:.0f} s)")
    total = time.perf_counter() - t_start
    report["total_seconds"] = total
    print(f"\ntotal {total:.0f} s")
    if args.json:
        dump_json(args.json, report)
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
