"""Shared helpers for the xzaro benchmarks: timing, throughput, tables, workdir reuse.

Everything here is deliberately dependency-free (stdlib + numpy) so that every benchmark script
(`bench_read.py`, and later the write / xarray-engine / references benchmarks) can reuse it.

Conventions
-----------
* Times are wall-clock seconds from :func:`time.perf_counter`; the reported number is the best
  (minimum) of N repetitions, which is the least noise-sensitive statistic on a shared machine.
* Throughput is ``uncompressed bytes of the selection / best time`` in GB/s with 1 GB = 1e9 B.
* Ratio columns compare throughputs (``num / den``), so a ratio > 1 means *num* is faster.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Placeholder for a cell whose reader is not available (e.g. not importable, or filtered out).
NA = "n/a"
#: Placeholder for a cell whose reader raised.
ERR = "err"
#: Placeholder for a cell whose reader returned a wrong result (this must never be ignored).
WRONG = "WRONG"

GB = 1e9
MiB = 1 << 20


@dataclass
class Timing:
    """Accumulated wall times of one (reader, case) pair plus its status.

    ``status`` is ``"ok"`` while every call succeeded and verified; otherwise one of
    :data:`NA`, :data:`ERR` or :data:`WRONG`, with ``message`` saying why.
    """

    nbytes: int
    times: list[float] = field(default_factory=list)
    status: str = "ok"
    message: str = ""

    @property
    def ok(self) -> bool:
        """Whether the timings are usable (at least one run, no error, verified)."""
        return self.status == "ok" and bool(self.times)

    @property
    def best(self) -> float | None:
        """Best (minimum) wall time in seconds, or ``None`` when not usable."""
        return min(self.times) if self.ok else None

    @property
    def gbps(self) -> float | None:
        """Throughput in GB/s based on the best time, or ``None`` when not usable."""
        best = self.best
        return gbps(self.nbytes, best) if best is not None else None

    def fail(self, status: str, message: str) -> None:
        """Mark this timing as failed; the first failure wins."""
        if self.status == "ok":
            self.status = status
            self.message = message

    def cell(self) -> str:
        """Table cell: the GB/s figure, or the status placeholder."""
        value = self.gbps
        return f"{value:.2f}" if value is not None else self.status

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "status": self.status,
            "message": self.message,
            "nbytes": self.nbytes,
            "times_s": self.times,
            "best_s": self.best,
            "gbps": self.gbps,
        }


def gbps(nbytes: int, seconds: float) -> float:
    """Throughput in GB/s (1 GB = 1e9 bytes)."""
    return nbytes / seconds / GB if seconds > 0 else float("inf")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Call ``fn`` once and return ``(wall seconds, result)``.

    A full garbage collection is done *before* the clock starts, and the collector is disabled
    while timing so a collection triggered by the reader's own allocations does not land in
    somebody else's measurement.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - t0
    finally:
        if was_enabled:
            gc.enable()
    return elapsed, result


def best_of(fn: Callable[[], Any], repeat: int, nbytes: int = 0) -> Timing:
    """Time ``fn`` ``repeat`` times (results discarded) and return the :class:`Timing`."""
    timing = Timing(nbytes=nbytes)
    for _ in range(repeat):
        elapsed, result = timed(fn)
        del result
        timing.times.append(elapsed)
    return timing


@dataclass(frozen=True)
class Ratio:
    """A ratio column ``num / den`` of two throughput columns.

    With ``percent`` the value is shown as a percentage (``xzaro/floor %``), otherwise as a
    factor with an ``x`` suffix.
    """

    label: str
    num: str
    den: str
    percent: bool = False

    def cell(self, row: Mapping[str, Timing | None]) -> str:
        """Table cell for one row, or :data:`NA` when either side has no number."""
        a, b = row.get(self.num), row.get(self.den)
        va = a.gbps if a is not None else None
        vb = b.gbps if b is not None else None
        if va is None or vb is None or vb == 0:
            return NA
        value = va / vb
        return f"{100 * value:.0f}%" if self.percent else f"{value:.2f}x"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Render a plain-text table: first column left-aligned, the rest right-aligned."""
    body = [list(map(str, r)) for r in rows]
    widths = [len(h) for h in headers]
    for r in body:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def line(cells: Sequence[str]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in body)])


def throughput_table(
    rows: Mapping[str, Mapping[str, Timing | None]],
    columns: Sequence[str],
    ratios: Sequence[Ratio] = (),
    first_header: str = "case",
) -> str:
    """Table of GB/s per row (case) and column (reader) followed by ratio columns.

    ``rows`` maps a row label to ``{column: Timing or None}``; a missing/``None`` entry is shown
    as :data:`NA`.
    """
    headers = [first_header, *(f"{c} GB/s" for c in columns), *(r.label for r in ratios)]
    body = []
    for label, row in rows.items():
        cells = [label]
        for c in columns:
            t = row.get(c)
            cells.append(t.cell() if t is not None else NA)
        cells += [r.cell(row) for r in ratios]
        body.append(cells)
    return format_table(headers, body)


def warm_page_cache(path: str | os.PathLike[str], block: int = 16 * MiB) -> int:
    """Read every file under ``path`` once (untimed) so later reads come from the page cache.

    Returns the number of bytes read.
    """
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb", buffering=0) as f:
                while chunk := f.read(block):
                    total += len(chunk)
    return total


def tree_size(path: str | os.PathLike[str], exclude: Iterable[str] = ()) -> int:
    """Total size in bytes of the files under ``path`` whose name is not in ``exclude``."""
    skip = set(exclude)
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            if name not in skip:
                total += os.path.getsize(os.path.join(root, name))
    return total


MARKER_NAME = "bench-params.json"


def marker_matches(workdir: Path, params: Mapping[str, Any]) -> bool:
    """Whether ``workdir`` holds a marker file written by :func:`write_marker` with ``params``."""
    marker = workdir / MARKER_NAME
    try:
        return json.loads(marker.read_text()) == json.loads(json.dumps(dict(params)))
    except (OSError, ValueError):
        return False


def write_marker(workdir: Path, params: Mapping[str, Any]) -> None:
    """Record the parameters the data in ``workdir`` was generated with (write it last)."""
    (workdir / MARKER_NAME).write_text(json.dumps(dict(params), indent=2, sort_keys=True) + "\n")


def clear_marker(workdir: Path) -> None:
    """Remove the marker (call before regenerating, so a crash leaves no stale marker)."""
    (workdir / MARKER_NAME).unlink(missing_ok=True)


def environment() -> dict[str, Any]:
    """Machine / interpreter facts worth recording next to the numbers."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed distribution versions (``None`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def dump_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON."""
    Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


def run_interleaved(
    fns: Mapping[str, tuple[Callable[[], Any], Callable[[Any], str | None]]],
    timings: Mapping[str, Timing],
    repeat: int,
    prepare: Mapping[str, Callable[[], Any]] | None = None,
) -> None:
    """Time every ``fn`` ``repeat`` times, taking turns, and verify each first result.

    ``fns[name]`` is ``(fn, verify)``; ``verify(result)`` returns a problem or ``None``;
    ``prepare[name]()``, if given, runs untimed before each timing. Errors and wrong results
    mark ``timings[name]`` (``err`` / ``WRONG``) and stop that column.
    """
    import traceback

    for rep in range(repeat):
        for name, (fn, verify) in fns.items():
            timing = timings[name]
            if timing.status != "ok":
                continue
            try:
                if prepare and name in prepare:
                    prepare[name]()
                elapsed, result = timed(fn)
            except Exception as exc:
                timing.fail(ERR, f"{type(exc).__name__}: {exc}")
                traceback.print_exc(limit=4)
                continue
            if rep == 0:
                try:
                    problem = verify(result)
                except Exception as exc:
                    problem = f"verification raised {type(exc).__name__}: {exc}"
                if problem:
                    timing.fail(WRONG, problem)
            del result
            timing.times.append(elapsed)


#: Held by every timed run of a benchmark that takes it, so that no two benchmarks time at once.
LOCK_PATH = "/tmp/xzaro-bench.lock"


@contextlib.contextmanager
def bench_lock(path: str | None = LOCK_PATH) -> Iterator[None]:
    """Hold the machine-wide benchmark lock (an exclusive ``flock`` on ``path``, by default
    :data:`LOCK_PATH`; nothing when ``path`` is ``None``) while the block runs."""
    if path is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
