"""Streaming write benchmark: ``xzaro.acquire`` against acquire-zarr, one script, same settings.

Both libraries run the same acquire-zarr script (``StreamSettings``/``ArraySettings``/
``ZarrStream``), once with ``import acquire_zarr`` and once with ``import xzaro.acquire``.
Cases (``--cases``):

``acquire``
    acquire-zarr's own benchmark: 2048x2048 uint16 frames (``--frames``, default 1024), time
    chunks of 64 frames, 64x64 tiles, shards of 16x16 tiles (``shard_size_chunks=16`` on y and
    on x, one time chunk per shard: 64x1024x1024 per shard, 4 shards per 64 frames).
``ome``
    ome-writers' ``t:20, y:1024:256, x:1024:256``: 20 frames of 1024x1024 uint16 in 1x256x256
    chunks, one chunk per shard.

Each case runs raw, Blosc-LZ4 and Blosc-Zstd (clevel 1, byte shuffle, as acquire-zarr's
benchmark) and each of those with and without a mean pyramid. Every run is its own subprocess
(so its peak resident memory, ``VmHWM``, is that run's alone) and starts after an untimed
``os.sync()``; the frames (16 distinct ones, cycled) are loaded before timing; the libraries
alternate, the first one changing every repeat. The time covers ``ZarrStream(settings)`` to
``close()`` returning. Printed: frames per second (best, median, worst run), MB/s of the best,
CPU time (user + system) per frame (median; less sensitive to a loaded machine than the wall
time), peak memory (the worst run's, frames left out) and the ratio of the best runs.

    python benchmarks/bench_stream.py                       # everything, best of 3 (long)
    python benchmarks/bench_stream.py --quick               # 128 frames, best of 2
    python benchmarks/bench_stream.py --frames 256 --codecs lz4 --cases acquire
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from _common import bench_lock

LIBS = {"xzaro": "xzaro.acquire", "acquire-zarr": "acquire_zarr"}
CODECS = ("raw", "lz4", "zstd")
POOL = 16


@dataclass(frozen=True)
class Case:
    """One stream configuration (``chunk``/``shard`` apply to y and x; time has its own)."""

    name: str
    frames: int
    size: int
    t_chunk: int
    chunk: int
    shard: int
    codec: str
    pyramid: bool

    @property
    def label(self) -> str:
        return (
            f"{self.name:<7} {self.frames:>6} {self.codec:>5} {'yes' if self.pyramid else 'no':>3}"
        )


def cases(names: list[str], frames: int, codecs: list[str]) -> list[Case]:
    """Every case of ``names`` for each codec, without then with a pyramid."""
    shapes = {"acquire": (frames, 2048, 64, 64, 16), "ome": (20, 1024, 1, 256, 1)}
    return [
        Case(name, *shapes[name], codec, pyramid)
        for name in names
        for codec in codecs
        for pyramid in (False, True)
    ]


def frame_pool(size: int, cache_dir: str) -> np.ndarray:
    """``POOL`` frames of a smooth field plus N(0, 30) noise (compressible, not trivial),
    cached as ``.npy`` so that runs only load them."""
    path = os.path.join(cache_dir, f"frames-{size}.npy")
    if os.path.exists(path):
        return np.load(path)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    rng = np.random.default_rng(0)
    out = np.empty((POOL, size, size), np.uint16)
    for i in range(POOL):
        field = 20000 + 8000 * np.sin(x / 97.0 + i / 5) * np.cos(y / 131.0 - i / 7)
        out[i] = (field + rng.normal(0, 30, (size, size))).astype(np.uint16)
    np.save(path + ".tmp.npy", out)
    os.replace(path + ".tmp.npy", path)
    return out


def stream_settings(az: Any, case: Case, path: str) -> Any:
    """acquire-zarr's settings for ``case``, built with the module ``az`` (either library)."""

    def dim(name: str, kind: Any, size: int, chunk: int, shard: int) -> Any:
        return az.Dimension(
            name=name, kind=kind, array_size_px=size, chunk_size_px=chunk, shard_size_chunks=shard
        )

    space = az.DimensionType.SPACE
    array = az.ArraySettings(
        dimensions=[
            dim("t", az.DimensionType.TIME, 0, case.t_chunk, 1),
            dim("y", space, case.size, case.chunk, case.shard),
            dim("x", space, case.size, case.chunk, case.shard),
        ],
        data_type=az.DataType.UINT16,
    )
    if case.codec != "raw":
        codec = (
            az.CompressionCodec.BLOSC_LZ4 if case.codec == "lz4" else az.CompressionCodec.BLOSC_ZSTD
        )
        array.compression = az.CompressionSettings(
            compressor=az.Compressor.BLOSC1, codec=codec, level=1, shuffle=1
        )
    if case.pyramid:
        array.downsampling_method = az.DownsamplingMethod.MEAN
    return az.StreamSettings(
        store_path=path, arrays=[array], overwrite=True, version=az.ZarrVersion.V3
    )


def peak_rss() -> int:
    """This process's peak resident memory in bytes: ``VmHWM``, which (unlike ``ru_maxrss``)
    starts afresh at ``exec`` instead of inheriting the parent's."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(spec: dict[str, Any]) -> None:
    """One timed run in this process; prints its numbers as JSON."""
    case, path = Case(**spec["case"]), spec["path"]
    az = importlib.import_module(LIBS[spec["lib"]])
    pool = frame_pool(case.size, spec["cache"])
    shutil.rmtree(path, ignore_errors=True)
    # Dirty pages left by the previous run would throttle this one's writes.
    os.sync()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    stream = az.ZarrStream(stream_settings(az, case, path))
    for i in range(case.frames):
        stream.append(pool[i % POOL])
    stream.close()
    seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    user, system = cpu1.ru_utime - cpu0.ru_utime, cpu1.ru_stime - cpu0.ru_stime
    peak = peak_rss() - pool.nbytes  # the frame pool, which both hold, is left out
    stored = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    shutil.rmtree(path, ignore_errors=True)
    faults = cpu1.ru_minflt - cpu0.ru_minflt
    result = {"seconds": seconds, "user": user, "system": system, "faults": faults}
    result.update(peak=peak, stored=stored)
    print(json.dumps(result))


def measure(spec: dict[str, Any], lock: str | None) -> dict[str, Any] | None:
    """Run ``spec`` in a subprocess (under ``lock``); its numbers, or ``None`` if it failed."""
    # Bytecode is cached (in the work directory), as for an installed package: otherwise
    # modules imported lazily during the run are compiled inside the timing, every run.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(spec["cache"], "pycache")
    with bench_lock(lock):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    if proc.returncode:
        print(f"  {spec['lib']} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(runs: list[dict[str, Any]], case: Case) -> dict[str, Any] | None:
    """Frames per second (min, median, max over runs), MB/s of the best, peak MB (max), size."""
    if not runs:
        return None
    fps = sorted(case.frames / r["seconds"] for r in runs)
    return {
        "fps": (fps[0], statistics.median(fps), fps[-1]),
        "mbs": fps[-1] * case.size * case.size * 2 / 1e6,
        "peak_mb": max(r["peak"] for r in runs) / 1e6,
        "cpu_ms": statistics.median(1e3 * (r["user"] + r["system"]) / case.frames for r in runs),
        "stored_mb": runs[0]["stored"] / 1e6,
        "runs": runs,
    }


def acquire_available() -> bool:
    try:
        import acquire_zarr  # noqa: F401
    except Exception:
        return False
    return True


def print_row(case: Case, cells: dict[str, dict[str, Any] | None]) -> None:
    parts = [case.label]
    for lib in LIBS:
        s = cells.get(lib)
        if s is None:
            parts.append(f"{'n/a':>41}")
            continue
        lo, mid, hi = s["fps"]
        cells_text = f"{hi:10.1f} {mid:5.1f} {lo:5.1f} {s['mbs']:5.0f} {s['cpu_ms']:5.1f}"
        parts.append(f"{cells_text} {s['peak_mb']:6.0f}")
    x, a = cells.get("xzaro"), cells.get("acquire-zarr")
    parts.append(f"{x['fps'][2] / a['fps'][2]:5.2f}" if x and a else "  n/a")
    print(" | ".join(parts), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1024, help="frames of the acquire case")
    parser.add_argument("--cases", default="acquire,ome")
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--pyramid", choices=("both", "no", "yes"), default="both")
    parser.add_argument("--only", default="xzaro,acquire-zarr", help="libraries to run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per library (best kept)")
    parser.add_argument("--quick", action="store_true", help="128 frames, best of 2")
    parser.add_argument("--workdir", default="/tmp/xzaro-bench-stream")
    parser.add_argument("--lock", default=None, help="flock this file around every run")
    parser.add_argument("--json", default=None, help="also dump all numbers to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.frames, args.repeat = min(args.frames, 128), min(args.repeat, 2)
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    libs = [lib for lib in args.only.split(",") if lib]
    if "acquire-zarr" in libs and not acquire_available():
        print("acquire-zarr is not importable: its columns are n/a")
        libs.remove("acquire-zarr")
    os.makedirs(args.workdir, exist_ok=True)
    todo = cases(args.cases.split(","), args.frames, args.codecs.split(","))
    todo = [c for c in todo if args.pyramid == "both" or c.pyramid == (args.pyramid == "yes")]
    for size in sorted({c.size for c in todo}):
        frame_pool(size, args.workdir)  # made once, untimed, outside every run
    cols = "fps: best   med   min  MB/s cpu/f peakMB"
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    print(f"{'':<24} | {'xzaro':<41} | {'acquire-zarr':<41} |")
    print(f"{'case':<7} {'frames':>6} {'codec':>5} pyr | {cols} | {cols} | ratio")
    report: dict[str, Any] = {"args": vars(args), "cases": []}
    for case in todo:
        runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libs}
        for r in range(args.repeat):  # interleaved, the first library alternating
            for lib in libs[r % 2 :] + libs[: r % 2]:
                spec = {
                    "lib": lib,
                    "case": asdict(case),
                    "cache": args.workdir,
                    "path": os.path.join(args.workdir, f"{lib}.zarr"),
                }
                result = measure(spec, args.lock)
                if result is not None:
                    runs[lib].append(result)
        cells = {lib: summary(runs[lib], case) for lib in libs}
        print_row(case, cells)
        report["cases"].append({"case": asdict(case), **cells})
    print("fps: best, median, min of the runs; MB/s of the best; cpu/f: user+system ms per")
    print("frame, median; peakMB: VmHWM - frames, max of the runs")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    print("ratio = best xzaro fps / best acquire-zarr fps (> 1: xzaro is faster)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
