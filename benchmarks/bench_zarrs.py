"""zarrs/zarr_benchmarks cases: xzaro beside zarr-python (+ zarrs), zarrista, tensorstore, a floor.

Usage::

    python benchmarks/bench_zarrs.py [--quick] [--repeat 3] [--workdir DIR] [--only READERS]
                                     [--cases CASES] [--peer-python /tmp/venv312/bin/python]
                                     [--json out.json]

Data (issue 15; the generator of the published zarrs/zarr_benchmarks suite, not downloaded):
a 1024^3 uint16 array ``a[z, y, x] = (x + y**2 // 32 + z**3) % 65536`` (axis 0 is z), written
once with tensorstore into ``<workdir>/<n>/`` (reused while the params marker matches) as two
Zarr V3 arrays, each the array ``v`` (dimension names z, y, x) of a root group so that xarray
opens it too:

* ``compress``: chunks 256^3, zstd level 0;
* ``compress+shard``: shards 256^3 of inner chunks 64^3, zstd level 0, index at the end.

``--quick``: a 256^3 array with chunks (shards) 128^3 and inner chunks 32^3, best of 1.

Cases (time = open + read, in a fresh child process; see ``_zarrs_child.py``):

* ``read all``: ``a[...]``;
* ``chunks, 1 thread`` / ``chunks, 2 threads``: every chunk (shard) read on its own, by 1 or 2
  caller threads, the library limited to as many threads;
* ``inner chunks`` (sharded only): every inner chunk on its own, 2 caller threads;
* ``10% hyperslab``: the central cube ``[274:749]^3`` (9.98% of the elements, aligned with no
  chunk; see :func:`_zarrs_data.hyperslab`);
* ``round trip``: read all, then write a new V3 array with the same chunking and codecs.

Readers: ``xzaro`` (``xzaro.open_array(path)[box]``; writes with ``write_array``),
``zarrs`` (zarr-python with ``codec_pipeline.path = "zarrs.ZarrsCodecPipeline"``),
``tensorstore`` (``zarr3`` driver), ``zarrista``, ``zarr`` (zarr-python's default pipeline), and
for the xarray table ``xr-zaro`` (``xr.open_dataset(root, engine="zaro", chunks={})``) and
``xr-zarr`` (Dask over zarr-python, ``engine="zarr", chunks={}``). ``floor``: the unavoidable work
on the same threads, in three parts timed separately: *decode* (zstd-decompress each needed
(inner) chunk, already in memory, into a reused per-thread buffer), *touch* (``np.empty`` of
the case's outputs, each written once) and *place* (copy each chunk's part from that cache-hot
buffer into the touched output, where it cannot be decoded straight into its place); floor =
decode + touch + place.

Every run happens in its own child process (peak RSS = its ``ru_maxrss``, right after the timed
run) while holding an exclusive ``flock`` on ``/tmp/xzaro-bench.lock``; rounds are interleaved
across readers and the best of ``--repeat`` is kept. Each child first reads one element
(untimed) so lazy imports and thread-pool start-up are not timed. Results are checked against the
generator (whole reads plane-slab by plane-slab, chunk cases on three kept chunks, round trips by
reading the written array back with xzaro); a wrong value shows ``WRONG`` and exits with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # the working tree's xzaro

import _zarrs_data as data  # noqa: E402
from _common import (  # noqa: E402
    ERR,
    LOCK_PATH,
    NA,
    WRONG,
    MiB,
    Timing,
    bench_lock,
    dump_json,
    environment,
    format_table,
    package_versions,
    warm_page_cache,
)

ARRAY_READERS = ("xzaro", "zarrs", "tensorstore", "zarrista", "zarr")
XARRAY_READERS = ("xr-zaro", "xr-zarr", "xr-dask")
READERS = ("floor", *ARRAY_READERS, *XARRAY_READERS)
PEER_READERS = ("zarr", "zarrs")  # the readers --peer-python runs
CHILD = HERE / "_zarrs_child.py"
#: The floor's parts, timed apart (see ``_zarrs_child.run_floor``); the floor is their sum.
FLOOR_PARTS = ("decode", "touch", "place")
#: Pause before each child run, long enough for memory freed by the previous one to be
#: handed back by a VM that reports free pages (measured here: 1 s is not, 3 s is).
SETTLE_SECONDS = 4.0
LOCK_WAIT = [0.0]  # seconds spent waiting for the lock (other benchmarks timing)


@dataclass(frozen=True)
class Case:
    """One row: ``kind`` is all, chunks, inner, slab or roundtrip."""

    label: str
    kind: str
    threads: int
    sharded_only: bool = False

    @property
    def xarray(self) -> bool:
        """Whether the xarray readers run this case."""
        return self.kind in ("all", "slab")

    @property
    def has_floor(self) -> bool:
        """Whether the floor is defined (reads only)."""
        return self.kind != "roundtrip"


CASES = (
    Case("read all", "all", 2),
    Case("chunks, 1 thread", "chunks", 1),
    Case("chunks, 2 threads", "chunks", 2),
    Case("inner chunks, 2 threads", "inner", 2, sharded_only=True),
    Case("10% hyperslab", "slab", 2),
    Case("round trip", "roundtrip", 2),
)
CASE_KEYS = {
    "all": "read all",
    "chunks1": "chunks, 1 thread",
    "chunks2": "chunks, 2 threads",
    "inner": "inner chunks, 2 threads",
    "slab": "10% hyperslab",
    "roundtrip": "round trip",
}


@dataclass
class Cell:
    """The runs of one (array, case, reader)."""

    timing: Timing
    runs: list[dict[str, Any]] = field(default_factory=list)

    def best_run(self) -> dict[str, Any] | None:
        """The run with the least time (``None`` when not usable)."""
        if not self.timing.ok:
            return None
        return min(self.runs, key=lambda r: r["seconds"])

    def best(self, key: str) -> float | None:
        """A number of the best run (``seconds``, ``peak_rss``, ``decode``, ``touch``,
        ``place``)."""
        run = self.best_run()
        if run is None:
            return None
        if key in FLOOR_PARTS:  # each part's own best
            return min(r.get(key, 0.0) for r in self.runs)
        return run[key]


def child_run(python: str, spec: dict[str, Any], settle: float) -> dict[str, Any]:
    """Run one spec in a fresh interpreter under the lock, ``settle`` seconds after the
    previous run; the child's JSON or an error.

    The pause is for virtual machines that hand freed memory back to their host after a
    moment (Firecracker's free page reporting): there, memory another process has just freed
    costs a reader about a twentieth of memory touched for the first time, so without the
    pause a reader's time depends on what ran before it."""
    env = dict(os.environ)
    env["XZARO_THREADS"] = env["RAYON_NUM_THREADS"] = str(spec["threads"])
    env["PYTHONWARNINGS"] = "ignore"
    t0 = time.perf_counter()
    with bench_lock():
        LOCK_WAIT[0] += time.perf_counter() - t0
        time.sleep(settle)
        proc = subprocess.run(
            [python, str(CHILD), json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def check_roundtrip(src: Path, dst: Path, n: int) -> str | None:
    """Read the written array back with xzaro: same chunking and codec names, same values."""
    import xzaro

    try:
        a, b = xzaro.open_array(str(src)), xzaro.open_array(str(dst))
    except Exception as exc:
        return f"written array does not open: {exc!r}"
    if (a.shape, a.dtype, a.chunks, a.shards) != (b.shape, b.dtype, b.chunks, b.shards):
        return f"written array is {b!r}, source {a!r}"
    if a.meta.describe_codecs() != b.meta.describe_codecs():
        return f"codecs {b.meta.describe_codecs()} != {a.meta.describe_codecs()}"
    return data.check_boxes(lambda box: b[box], n)


def run_cell(
    cell: Cell,
    reader: str,
    case: Case,
    lay: data.Layout,
    args: argparse.Namespace,
    n: int,
) -> None:
    """One round of one reader on one case (appends to ``cell``)."""
    path = data.array_path(args.workdir, n, lay)
    unit = lay.inner if case.kind == "inner" else lay.chunks
    spec: dict[str, Any] = {
        "reader": reader,
        "kind": case.kind,
        "threads": case.threads,
        "n": n,
        "path": str(path),
        "layout": lay.key,
        "unit": list(unit),
    }
    dst = args.workdir / str(n) / "roundtrip" / f"{reader}.zarr"
    if case.kind == "roundtrip":
        spec["dst"] = str(dst)
    python = args.peer_python if reader in PEER_READERS and args.peer_python else sys.executable
    result = child_run(python, spec, args.settle)
    if "unavailable" in result:
        cell.timing.fail(NA, result["unavailable"])
        return
    if "error" in result:
        cell.timing.fail(ERR, result["error"])
        return
    problem = result.get("problem")
    if case.kind == "roundtrip" and not problem and not cell.runs:
        problem = check_roundtrip(path, dst, n)
    if case.kind == "roundtrip":
        shutil.rmtree(dst, ignore_errors=True)
    if problem:
        cell.timing.fail(WRONG, problem)
    cell.runs.append(result)
    cell.timing.times.append(result["seconds"])


def selection_bytes(case: Case, n: int) -> int:
    """Uncompressed bytes a case reads (the whole array except for the hyperslab)."""
    if case.kind == "slab":
        box = data.hyperslab(n)
        count = 1
        for s in box:
            count *= s.stop - s.start
        return count * data.DTYPE.itemsize
    return n**3 * data.DTYPE.itemsize


def readers_for(case: Case, readers: list[str]) -> list[str]:
    """The readers that run a case."""
    out = []
    for r in readers:
        if r == "floor" and not case.has_floor:
            continue
        if r in XARRAY_READERS and not case.xarray:
            continue
        out.append(r)
    return out


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _gbps(cell: Cell | None) -> str:
    return cell.timing.cell() if cell is not None else NA


def _best_peer(row: dict[str, Cell], peers: tuple[str, ...]) -> float | None:
    values = [row[p].timing.gbps for p in peers if p in row and row[p].timing.gbps is not None]
    return max(values) if values else None


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else NA


def speed_table(rows: dict[str, dict[str, Cell]], columns: tuple[str, ...], me: str) -> str:
    """GB/s per case and reader, and ``me`` against the best of the other columns."""
    peers = tuple(c for c in columns if c not in (me, "floor"))
    headers = ["case", *(f"{c} GB/s" for c in columns), f"{me} vs best"]
    body = []
    for label, row in rows.items():
        mine = row[me].timing.gbps if me in row else None
        cells = [_gbps(row.get(c)) for c in columns]
        body.append([label, *cells, _ratio(mine, _best_peer(row, peers))])
    return format_table(headers, body)


def cpu_table(rows: dict[str, dict[str, Cell]], columns: tuple[str, ...]) -> str:
    """The least CPU time (user + system, every thread of the process) of any run of each
    reader: steadier than the wall time on a shared machine."""
    body = []
    for label, row in rows.items():
        cells = []
        for c in columns:
            cell = row.get(c)
            cpus = [r["cpu_seconds"] for r in cell.runs if "cpu_seconds" in r] if cell else []
            cells.append(f"{min(cpus):.3f}" if cpus and cell and cell.timing.ok else NA)
        body.append([label, *cells])
    return format_table(["case", *(f"{c} CPU s" for c in columns)], body)


def memory_table(rows: dict[str, dict[str, Cell]], columns: tuple[str, ...]) -> str:
    """Peak RSS (MiB) of the best run of each reader."""
    body = []
    for label, row in rows.items():
        cells = []
        for c in columns:
            peak = row[c].best("peak_rss") if c in row else None
            cells.append(f"{peak / MiB:.0f}" if peak is not None else NA)
        body.append([label, *cells])
    return format_table(["case", *(f"{c} MiB" for c in columns)], body)


def floor_table(rows: dict[str, dict[str, Cell]], columns: tuple[str, ...]) -> str:
    """The floor's parts (seconds) and each reader's best time over the floor."""
    headers = [
        "case",
        *(f"{part} s" for part in FLOOR_PARTS),
        "floor s",
        *(f"{c}/floor" for c in columns),
    ]
    body = []
    for label, row in rows.items():
        fl = row.get("floor")
        parts = [fl.best(part) if fl else None for part in FLOOR_PARTS]
        floor = None if None in parts else sum(p for p in parts if p is not None)
        cells = [f"{v:.3f}" if v is not None else NA for v in (*parts, floor)]
        for c in columns:
            t = row[c].timing.best if c in row else None
            cells.append(f"{t / floor:.2f}x" if t is not None and floor else NA)
        body.append([label, *cells])
    return format_table(headers, body)


def _best(row: dict[str, Cell], reader: str, part: str | None = None) -> float | None:
    """The best time of ``reader`` in ``row`` (or of its floor ``part``), ``None`` if absent."""
    cell = row.get(reader)
    if cell is None:
        return None
    return cell.best(part) if part else cell.timing.best


def dask_floor_table(rows: dict[str, dict[str, Cell]]) -> str:
    """``xr-zaro`` against what Dask alone costs: ``xr-dask`` (the same Dask blocks, fresh and
    written once, sliced and concatenated) plus the floor's decode."""
    headers = [
        "case",
        "decode s",
        "xr-dask s",
        "dask floor s",
        "xr-zaro s",
        "xr-zaro/dask floor",
        "xzaro s",
        "xr-zaro/xzaro",
    ]
    body = []
    for label, row in rows.items():
        decode, alone, mine, array = (
            _best(row, "floor", "decode"),
            _best(row, "xr-dask"),
            _best(row, "xr-zaro"),
            _best(row, "xzaro"),
        )
        floor = decode + alone if decode is not None and alone is not None else None
        cells = [f"{v:.3f}" if v is not None else NA for v in (decode, alone, floor, mine)]
        cells.append(f"{mine / floor:.2f}x" if mine and floor else NA)
        cells.append(f"{array:.3f}" if array is not None else NA)
        cells.append(f"{mine / array:.2f}x" if mine and array else NA)
        body.append([label, *cells])
    return format_table(headers, body)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line interface."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="256^3 array, best of 1")
    p.add_argument("--size", type=int, default=None, help="edge n of the n^3 array (1024)")
    p.add_argument("--repeat", type=int, default=None, help="rounds, best kept (3; --quick 1)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "xzaro-bench-zarrs",
        help="where the arrays live (reused while the parameters match)",
    )
    p.add_argument("--only", default=",".join(READERS), help=f"subset of {','.join(READERS)}")
    p.add_argument("--cases", default=",".join(CASE_KEYS), help=f"subset of {','.join(CASE_KEYS)}")
    p.add_argument(
        "--peer-python",
        default=None,
        help="interpreter for the zarr and zarrs readers (e.g. a Python 3.12 venv with zarr 3.4)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=SETTLE_SECONDS,
        help=f"seconds of pause before each run ({SETTLE_SECONDS}; see child_run)",
    )
    p.add_argument("--json", type=Path, default=None, help="also dump all numbers to this file")
    args = p.parse_args(argv)
    args.size = args.size or (256 if args.quick else 1024)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.readers = [r for r in READERS if r in args.only.split(",")]
    bad = sorted(set(args.only.split(",")) - set(READERS) - {""})
    if bad:
        p.error(f"unknown reader(s) {bad}; choose from {list(READERS)}")
    keys = [k for k in args.cases.split(",") if k]
    bad = sorted(set(keys) - set(CASE_KEYS))
    if bad:
        p.error(f"unknown case(s) {bad}; choose from {list(CASE_KEYS)}")
    args.case_list = [c for c in CASES if c.label in {CASE_KEYS[k] for k in keys}]
    args.workdir = args.workdir.resolve()
    if args.repeat < 1 or args.size < 8:
        p.error("--repeat must be >= 1 and --size >= 8")
    return args


def peer_versions(python: str) -> dict[str, Any]:
    """zarr / zarrs versions and the Python version of the peer interpreter."""
    code = (
        "import json,sys\nfrom importlib.metadata import version as v\nout={'python':"
        " sys.version.split()[0]}\nfor d in ('zarr','zarrs','numpy'):\n try: out[d]=v(d)\n"
        " except Exception: out[d]=None\nprint(json.dumps(out))"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-300:]}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if a reader erred or returned a wrong value."""
    t_start = time.perf_counter()
    args = parse_args(argv)
    n = args.size
    lays = data.prepare(args.workdir, n)
    import xzaro

    for lay in lays:  # the data must be right before anything is timed
        a = xzaro.open_array(str(data.array_path(args.workdir, n, lay)))
        problem = data.check_boxes(lambda box, a=a: a[box], n)
        if problem:
            print(f"{lay.key}: xzaro reads the written data wrong: {problem}")
            return 1

    slab = data.hyperslab(n)
    slab_text = ", ".join(f"{s.start}:{s.stop}" for s in slab)
    print(
        f"uint16 {n}^3 = {n**3 * 2 / MiB:.0f} MiB, a[z,y,x] = (x + y**2//32 + z**3) % 65536;"
        f" 10% hyperslab [{slab_text}] = {selection_bytes(CASES[4], n) / MiB:.0f} MiB;"
        f" cpus={os.cpu_count()}; best of {args.repeat} interleaved rounds; one fresh process per"
        f" run, time = open + read"
    )
    report: dict[str, Any] = {
        "params": {**data.data_params(n), "repeat": args.repeat, "readers": args.readers},
        "hyperslab": slab_text,
        "environment": environment(),
        "versions": package_versions(
            ["xzaro", "zarr", "zarrs", "zarrista", "tensorstore", "numcodecs", "numpy", "xarray"]
        ),
        "arrays": {},
    }
    if args.peer_python:
        report["peer_python"] = {"path": args.peer_python, **peer_versions(args.peer_python)}
        print(f"zarr and zarrs readers run under {args.peer_python}: {report['peer_python']}")

    failed = False
    for lay in lays:
        path = data.array_path(args.workdir, n, lay)
        stored = data.tree_bytes(path)
        print(f"\n== {lay.key}: {lay.describe()}; stored {stored / MiB:.1f} MiB", flush=True)
        warm_page_cache(path)
        rows: dict[str, dict[str, Cell]] = {}
        for case in args.case_list:
            if case.sharded_only and lay.inner is None:
                continue
            names = readers_for(case, args.readers)
            row = {r: Cell(Timing(nbytes=selection_bytes(case, n))) for r in names}
            for _ in range(args.repeat):
                for r in names:
                    if row[r].timing.status == "ok":
                        run_cell(row[r], r, case, lay, args, n)
            rows[case.label] = row
            for r, cell in row.items():
                if cell.timing.status in (ERR, WRONG):
                    failed = True
                if cell.timing.status != "ok":
                    print(f"   {case.label}/{r}: {cell.timing.status}: {cell.timing.message}")
            speeds = " ".join(f"{r}={c.timing.cell()}" for r, c in row.items())
            print(
                f"   {case.label}: {speeds} GB/s ({time.perf_counter() - t_start:.0f} s,"
                f" {LOCK_WAIT[0]:.0f} s of it waiting for the lock)",
                flush=True,
            )
        array_cols = tuple(r for r in ("floor", *ARRAY_READERS) if r in args.readers)
        print(speed_table(rows, array_cols, "xzaro"))
        print()
        print(floor_table(rows, tuple(c for c in array_cols if c != "floor")))
        print()
        print(memory_table(rows, array_cols))
        print()
        print(cpu_table(rows, tuple(c for c in array_cols if c != "floor")))
        xr_rows = {k: v for k, v in rows.items() if any(r in v for r in XARRAY_READERS)}
        xr_cols = tuple(r for r in (*XARRAY_READERS, "xzaro") if r in args.readers)
        engines = tuple(r for r in ("xr-zaro", "xr-zarr") if r in args.readers)
        if xr_rows and engines:
            print("\n   xarray, chunks={}:")
            print(speed_table(xr_rows, engines, engines[0]))
            print(memory_table(xr_rows, xr_cols))
            print(cpu_table(xr_rows, xr_cols))
            if "xr-zaro" in engines and "xr-dask" in args.readers:
                print(dask_floor_table(xr_rows))
        report["arrays"][lay.key] = {
            "layout": lay.describe(),
            "stored_bytes": stored,
            "cases": {
                label: {r: {**cell.timing.to_json(), "runs": cell.runs} for r, cell in row.items()}
                for label, row in rows.items()
            },
        }

    total = time.perf_counter() - t_start
    report["total_seconds"] = total
    report["lock_wait_seconds"] = LOCK_WAIT[0]
    print(f"\ntotal {total:.0f} s ({LOCK_WAIT[0]:.0f} s waiting for {LOCK_PATH})")
    if args.json:
        dump_json(args.json, report)
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
