"""Network benchmark: latency-bound reads and throughput over HTTP and S3, readers side by side.

Usage::

    python benchmarks/bench_network.py [--latency-ms 20] [--repeat 3] [--quick]
                                       [--transports http,s3] [--cases latency,throughput]
                                       [--only zaro,tensorstore,...] [--throughput-mib 1024]
                                       [--workdir DIR] [--json out.json]

Two cases, each over a local HTTP server with ``Range`` support and over the moto S3 server:

* ``latency``: 1024x1024 float32 in 16x16 chunks (4,096 chunks, consolidated), as Zarr V2 and as
  a V3 copy in 256x256 shards, every request answered ``--latency-ms`` late (over HTTP by an
  asyncio latency server, over S3 by a proxy in front of moto). Printed per reader: the time,
  the requests and the most in flight (both counted by the server or proxy), the floor
  ``requests x latency / in flight`` and how many times faster zaro is.
* ``throughput``: ``--throughput-mib`` MiB of float32 in chunks of 0.5, 4 and 32 MiB
  (uncompressed Zarr V2), read straight from the servers (no proxy, no latency). Printed: GB/s
  per reader and chunk size, and zaro over the best peer.

Every reader is timed from the URL to a numpy array (open included). Readers take turns in every
round; a reader whose first run took more than ``SLOW_SECONDS`` runs once. Every first result is
compared with the expected array: a mismatch shows ``WRONG``, an exception ``err``, and either
makes the exit status 1. See README.md (Network benchmark) for the readers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Benchmark the working tree's xzaro, not whatever may be installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _network as net
from _common import (
    ERR,
    NA,
    WRONG,
    Timing,
    clear_marker,
    dump_json,
    environment,
    format_table,
    marker_matches,
    package_versions,
    timed,
    write_marker,
)

#: A reader whose first run takes longer than this runs only once.
SLOW_SECONDS = 10.0
#: Issue 14's targets for the latency case: zaro over tensorstore, zaro over engine="zarr".
TARGETS = {"tensorstore": 2.0, "zarr": 20.0}
ZARO_READERS = ("zaro", "zaro obstore")


@dataclass
class Cell:
    """One reader on one store: its timings and what the proxy counted in its best run."""

    timing: Timing
    requests: int | None = None
    in_flight: int | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            **self.timing.to_json(),
            "requests": self.requests,
            "max_in_flight": self.in_flight,
            "runs": self.runs,
        }


Cells = dict[str, Cell]


def make_cells(readers: Sequence[str], nbytes: int, skipped: Mapping[str, str]) -> Cells:
    """A cell per reader; an unavailable or skipped reader starts as ``n/a`` with the reason."""
    cells: Cells = {}
    for reader in readers:
        cell = Cell(Timing(nbytes=nbytes))
        why = skipped.get(reader) or net.reader_unavailable(reader)
        if why:
            cell.timing.fail(NA, why)
        cells[reader] = cell
    return cells


def run_rounds(
    fns: Mapping[str, Callable[[], Any]],
    cells: Cells,
    verify: Callable[[Any], str | None],
    endpoint: net.Endpoint,
    repeat: int,
) -> None:
    """Time every reader ``repeat`` times, taking turns; verify each first result.

    The endpoint's counters are zeroed before each run and read after it; the cell keeps the
    counts of its best run.
    """
    for rnd in range(repeat):
        for name, fn in fns.items():
            cell = cells[name]
            timing = cell.timing
            if timing.status != "ok" or (rnd and timing.times[0] > SLOW_SECONDS):
                continue
            endpoint.reset_stats()
            try:
                elapsed, result = timed(fn)
            except Exception as exc:
                timing.fail(ERR, f"{type(exc).__name__}: {exc}"[:500])
                traceback.print_exc(limit=3)
                continue
            requests, in_flight = endpoint.stats()
            if rnd == 0:
                try:
                    problem = verify(result)
                except Exception as exc:
                    problem = f"verification raised {type(exc).__name__}: {exc}"
                if problem:
                    timing.fail(WRONG, problem)
            del result
            cell.runs.append({"s": elapsed, "requests": requests, "max_in_flight": in_flight})
            if not timing.times or elapsed < min(timing.times):
                cell.requests, cell.in_flight = requests, in_flight
            timing.times.append(elapsed)
            print(f"   {name:<20} {elapsed:8.3f} s  requests={requests}  in flight={in_flight}")


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def fmt_seconds(value: float | None) -> str:
    """Seconds with three significant places, or ``n/a``."""
    if value is None:
        return NA
    return f"{value * 1e3:.0f} ms" if value < 1 else f"{value:.2f} s"


def speedup(cells: Cells, fast: str, slow: str) -> float | None:
    """How many times faster reader ``fast`` is than ``slow`` (best times), or ``None``."""
    a = cells.get(fast)
    b = cells.get(slow)
    if a is None or b is None or a.timing.best is None or b.timing.best is None:
        return None
    return b.timing.best / a.timing.best


def latency_table(cells: Cells, latency: float) -> str:
    """Rows per reader: time, requests, most in flight, floor, zaro's speed-ups over it."""
    headers = ["reader", "time", "requests", "in flight", "floor", "zaro x", "zaro obstore x"]
    body = []
    for name, cell in cells.items():
        t = cell.timing
        floor = None
        if cell.requests and cell.in_flight:
            floor = cell.requests * latency / cell.in_flight
        row = [name, fmt_seconds(t.best) if t.ok else t.status]
        row += [
            f"{cell.requests:,}" if cell.requests is not None and t.ok else "-",
            str(cell.in_flight) if cell.in_flight is not None and t.ok else "-",
            fmt_seconds(floor) if t.ok and floor is not None else "-",
        ]
        for zaro in ZARO_READERS:
            ratio = speedup(cells, zaro, name)
            row.append(f"{ratio:.3g}x" if ratio is not None else NA)
        body.append(row)
    return format_table(headers, body)


def target_lines(cells: Cells) -> list[str]:
    """Whether zaro (each client) meets issue 14's targets in this table."""
    lines = []
    for zaro in ZARO_READERS:
        parts = []
        for peer, target in TARGETS.items():
            ratio = speedup(cells, zaro, peer)
            if ratio is None:
                parts.append(f"vs {peer}: {NA}")
            else:
                verdict = "met" if ratio >= target else "NOT met"
                parts.append(f"vs {peer}: {ratio:.2f}x (target {target:g}x, {verdict})")
        lines.append(f"   {zaro}: " + "; ".join(parts))
    return lines


def throughput_table(results: Mapping[str, Cells], readers: Sequence[str]) -> str:
    """Rows per reader, a GB/s column per chunk size; then zaro over the best peer."""
    labels = list(results)
    headers = ["reader", *(f"{label} GB/s" for label in labels)]
    body = []
    for reader in readers:
        row = [reader]
        for label in labels:
            row.append(results[label][reader].timing.cell())
        body.append(row)
    for zaro in ZARO_READERS:
        row = [f"{zaro} / best peer"]
        for label in labels:
            cells = results[label]
            peers = [c.timing.gbps for n, c in cells.items() if not n.startswith("zaro")]
            peers = [p for p in peers if p is not None]
            mine = cells[zaro].timing.gbps if zaro in cells else None
            row.append(f"{mine / max(peers):.2f}x" if mine is not None and peers else NA)
        body.append(row)
    return format_table(headers, body)


def report_problems(title: str, cells: Cells, seen: set[tuple[str, str]]) -> None:
    """Print why each cell that is not ok is so (each ``n/a`` reason once)."""
    for name, cell in cells.items():
        t = cell.timing
        if t.status == "ok" or (t.status == NA and (name, t.message) in seen):
            continue
        seen.add((name, t.message))
        print(f"   {title} / {name}: {t.status}: {t.message}")


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


def prepare(workdir: Path, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray | None]:
    """Write the stores (or reuse them); return the latency and throughput arrays."""
    workdir.mkdir(parents=True, exist_ok=True)
    latency = net.latency_field()
    throughput = net.throughput_field(args.throughput_mib) if "throughput" in args.cases else None
    params = {"version": 1, "throughput_mib": args.throughput_mib}
    names = [*net.LATENCY_STORES.values()]
    names += [net.throughput_path(workdir, label).name for label in net.THROUGHPUT_CHUNKS]
    if marker_matches(workdir, params) and all((workdir / n).is_dir() for n in names):
        return latency, throughput
    clear_marker(workdir)
    t0 = time.perf_counter()
    net.write_latency_stores(workdir, latency)
    if throughput is None:
        throughput = net.throughput_field(args.throughput_mib)
    net.write_throughput_stores(workdir, throughput)
    if "throughput" not in args.cases:
        throughput = None
    write_marker(workdir, params)
    print(f"wrote the stores in {time.perf_counter() - t0:.1f} s ({workdir})")
    return latency, throughput


def run_latency(
    servers: net.Servers, args: argparse.Namespace, expected: np.ndarray, report: dict
) -> bool:
    """The latency case over every transport; print the tables; return whether all is well."""
    ok = True
    latency = args.latency_ms / 1e3
    skipped = {r: "skipped by --quick" for r in net.SLOW_READERS} if args.quick else {}
    seen: set[tuple[str, str]] = set()
    for transport in args.transports:
        endpoint = servers.endpoint(transport, latency)
        for label, name in net.LATENCY_STORES.items():
            title = f"latency {transport} {label}"
            print(f"\n== {title}: {args.latency_ms:g} ms per request ({endpoint.base_url}) ==")
            cells = make_cells(args.only, expected.nbytes, skipped)
            zarr_format = 2 if label == "v2" else 3
            fns = {
                r: net.make_reader(r, endpoint, name, zarr_format)
                for r in args.only
                if cells[r].timing.status == "ok"
            }
            run_rounds(fns, cells, net.check(expected), endpoint, args.repeat)
            print(f"\n{title}: 1024x1024 float32, 4,096 chunks of 16x16")
            print(latency_table(cells, latency))
            print("\n".join(target_lines(cells)))
            report_problems(title, cells, seen)
            ok &= all(c.timing.status not in (ERR, WRONG) for c in cells.values())
            report["latency"][f"{transport} {label}"] = {n: c.to_json() for n, c in cells.items()}
    return ok


def run_throughput(
    servers: net.Servers, args: argparse.Namespace, expected: np.ndarray, report: dict
) -> bool:
    """The throughput case over every transport, no latency; print the tables."""
    ok = True
    verify = net.check(expected)
    seen: set[tuple[str, str]] = set()
    for transport in args.transports:
        endpoint = servers.endpoint(transport, None)
        results: dict[str, Cells] = {}
        for label in net.THROUGHPUT_CHUNKS:
            name = net.throughput_path(args.workdir, label).name
            print(f"\n== throughput {transport} {label} chunks ({endpoint.base_url}) ==")
            cells = make_cells(args.only, expected.nbytes, {})
            fns = {
                r: net.make_reader(r, endpoint, name, 2)
                for r in args.only
                if cells[r].timing.status == "ok"
            }
            run_rounds(fns, cells, verify, endpoint, args.repeat)
            results[label] = cells
            report_problems(f"throughput {transport} {label}", cells, seen)
            ok &= all(c.timing.status not in (ERR, WRONG) for c in cells.values())
            report["throughput"][f"{transport} {label}"] = {
                n: c.to_json() for n, c in cells.items()
            }
        print(f"\nthroughput {transport}: {args.throughput_mib} MiB float32, uncompressed V2")
        print(throughput_table(results, args.only))
    return ok


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def split_list(text: str, allowed: Sequence[str], what: str, p: argparse.ArgumentParser) -> list:
    """A comma-separated option checked against ``allowed`` (in ``allowed``'s order)."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(items) - set(allowed))
    if unknown:
        p.error(f"unknown {what} {unknown}; known: {', '.join(allowed)}")
    return [a for a in allowed if a in items]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--repeat", type=int, default=None, help="rounds (default 3, --quick 1)")
    p.add_argument("--quick", action="store_true", help="skip engine='zarr' readers, 256 MiB")
    p.add_argument("--transports", default="http,s3")
    p.add_argument("--cases", default="latency,throughput")
    p.add_argument("--only", default=",".join(net.READERS), help="readers (comma-separated)")
    p.add_argument("--throughput-mib", type=int, default=None, help="default 1024, --quick 256")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.transports = split_list(args.transports, ("http", "s3"), "transports", p)
    args.cases = split_list(args.cases, ("latency", "throughput"), "cases", p)
    args.only = split_list(args.only, net.READERS, "readers", p)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.throughput_mib is None:
        args.throughput_mib = 256 if args.quick else 1024
    if args.workdir is None:
        args.workdir = Path(tempfile.gettempdir()) / "xzaro-bench-network"
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every reader ran and read the right values."""
    args = parse_args(argv)
    latency_data, throughput_data = prepare(args.workdir, args)
    report: dict[str, Any] = {
        "environment": environment(),
        "versions": package_versions(
            ["xarray", "zarr", "tensorstore", "obstore", "fsspec", "s3fs", "moto", "dask"]
        ),
        "args": {k: str(v) for k, v in vars(args).items()},
        "latency": {},
        "throughput": {},
    }
    net.set_aws_environment()
    servers = net.Servers(args.workdir)
    ok = True
    try:
        servers.start(s3="s3" in args.transports)
        if "s3" in args.transports:
            names = [*net.LATENCY_STORES.values()]
            if throughput_data is not None:
                names += [net.throughput_path(args.workdir, x).name for x in net.THROUGHPUT_CHUNKS]
            t0 = time.perf_counter()
            servers.upload(names)
            print(f"uploaded the stores to S3 in {time.perf_counter() - t0:.1f} s")
        if "latency" in args.cases:
            ok &= run_latency(servers, args, latency_data, report)
        if throughput_data is not None:
            ok &= run_throughput(servers, args, throughput_data, report)
    finally:
        servers.stop()
    if args.json:
        dump_json(args.json, report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
