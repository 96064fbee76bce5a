"""Before/after: xzaro's own timings at an earlier revision against the working tree, in one run.

Usage::

    python benchmarks/compare_revisions.py [--before REV] [--rounds 3] [--bench read,write,...]

The earlier revision (default ``HEAD``) is exported with ``git archive`` into a temporary directory.
For each benchmark, the two trees run in turn, ``--rounds`` times, interleaved (before, after,
before, after, ...), each in a fresh process that imports xzaro from its own tree (``PYTHONPATH``)
and asks only for xzaro's columns. Each tree runs its own copy of the benchmark script, so a module
moved between the revisions does not break the comparison; a script that cannot write ``--json`` at
the earlier revision is taken from the working tree (it must then use only xzaro's public names).

Every xzaro timing (a ``best_s``/``seconds`` leaf under a key naming xzaro) is kept at its best over
the rounds, and printed with ``after / before`` (below 1: the working tree is faster). The exit
status is 1 when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: benchmark -> (script, arguments that select xzaro only and a quick size)
BENCHES: dict[str, tuple[str, list[str]]] = {
    "read": ("bench_read.py", ["--only", "xzaro", "--size-mib", "256", "--repeat", "3"]),
    "write": ("bench_write.py", ["--only", "xzaro", "--size-mib", "256", "--repeat", "3"]),
    "xarray": ("bench_xarray.py", ["--only", "zaro", "--repeat", "3"]),
    "refs": ("bench_refs.py", ["--repeat", "3"]),
    "stream": ("bench_stream.py", ["--only", "xzaro", "--frames", "128", "--repeat", "3"]),
}
XZARO_KEYS = ("xzaro", "zaro")
TIME_KEYS = ("best_s", "seconds")


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` written into ``into`` (``git archive``), returned."""
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def supports_json(script: Path) -> bool:
    """Whether a benchmark script takes ``--json``."""
    return script.exists() and "--json" in script.read_text()


def run(tree: Path, script: Path, args: list[str], out: Path, workdir: Path) -> dict[str, Any]:
    """One benchmark run importing xzaro from ``tree``; its JSON report."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(script), *args, "--json", str(out)]
    if "--workdir" in script.read_text():
        command += ["--workdir", str(workdir)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{script} with xzaro from {tree} failed:\n  " + "\n  ".join(tail))
    return json.loads(out.read_text())


def timings(report: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, float]]:
    """Every xzaro timing leaf of a report, keyed by its path."""
    if isinstance(report, dict):
        for key, value in report.items():
            name = str(key)
            if name in TIME_KEYS and isinstance(value, (int, float)):
                if any(part in XZARO_KEYS for part in path):
                    yield "/".join(path), float(value)
            else:
                yield from timings(value, (*path, name))
    elif isinstance(report, list):
        for i, value in enumerate(report):
            yield from timings(value, (*path, str(i)))


def compare(name: str, before: Path, rounds: int, scratch: Path) -> list[tuple[str, float, float]]:
    """Best xzaro timings of one benchmark at both trees: (case, before s, after s)."""
    script, args = BENCHES[name]
    trees = {"before": before, "after": ROOT}
    scripts = {label: tree / "benchmarks" / script for label, tree in trees.items()}
    if not supports_json(scripts["before"]):
        scripts["before"] = scripts["after"]
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    for i in range(rounds):
        for label, tree in trees.items():
            out = scratch / f"{name}-{label}-{i}.json"
            report = run(tree, scripts[label], args, out, scratch / f"work-{name}")
            for case, seconds in timings(report):
                best[label][case] = min(seconds, best[label].get(case, seconds))
    cases = sorted(set(best["before"]) & set(best["after"]))
    return [(case, best["before"][case], best["after"][case]) for case in cases]


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print one table per benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="HEAD", help="the earlier revision (git)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per tree")
    parser.add_argument("--bench", default=",".join(BENCHES), help=f"subset of {','.join(BENCHES)}")
    args = parser.parse_args(argv)
    status = 0
    with tempfile.TemporaryDirectory(prefix="xzaro-compare-") as tmp:
        scratch = Path(tmp)
        before = export(args.before, scratch)
        print(f"before: {args.before}; after: the working tree; best of {args.rounds} interleaved")
        for name in args.bench.split(","):
            try:
                rows = compare(name, before, args.rounds, scratch)
            except RuntimeError as exc:
                print(f"\n{name}: FAILED\n{exc}")
                status = 1
                continue
            print(f"\n{name}\n{'case':<60} {'before s':>9} {'after s':>9} {'after/before':>12}")
            for case, old, new in rows:
                print(f"{case:<60} {old:>9.3f} {new:>9.3f} {new / old:>12.2f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
