"""Streaming write benchmark: xzaro's ``ZarrV3`` against acquire-zarr, same settings, one run.

Frames of 2048x2048 uint16 (smooth noise), chunks 32x512x512 (t, y, x), shards 1x4x4 chunks,
raw and Blosc-LZ4 clevel 1 with shuffle, with and without multiscale, 128 and 256 frames. Each
case runs in its own subprocess so the peak resident memory (``ru_maxrss``) belongs to that case
alone; the frame source (16 distinct frames, cycled) is allocated before timing in both, and
``os.sync()`` runs (untimed) before each case so no case pays for the previous one's dirty pages.
The libraries' runs alternate and each keeps its best of ``--repeat``: on a shared VM the same
run varies by 2x with the state of the page cache (measured), so single runs do not compare.

    python benchmarks/bench_stream.py                 # all cases, best of 3 runs each
    python benchmarks/bench_stream.py --frames 128 --only xzaro
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from typing import Any

import numpy as np

H = W = 2048
CHUNK_T, CHUNK_XY, SHARD_XY = 32, 512, 4
POOL = 16


def make_frames() -> np.ndarray:
    """``POOL`` frames of a smooth field plus a little noise (compressible, not trivial)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rng = np.random.default_rng(0)
    out = np.empty((POOL, H, W), np.uint16)
    for i in range(POOL):
        field = 20000 + 8000 * np.sin(x / 97.0 + i / 5) * np.cos(y / 131.0 - i / 7)
        out[i] = (field + rng.normal(0, 30, (H, W))).astype(np.uint16)
    return out


def run_xzaro(path: str, frames: int, lz4: bool, multiscale: bool, pool: np.ndarray) -> float:
    from xzaro import BloscCompressionParams
    from xzaro.streaming import Dimension, StorageProperties, ZarrV3

    props = StorageProperties(
        uri=path,
        acquisition_dimensions=[
            Dimension("x", "space", W, CHUNK_XY, SHARD_XY),
            Dimension("y", "space", H, CHUNK_XY, SHARD_XY),
            Dimension("t", "time", 0, CHUNK_T, 1),
        ],
        enable_multiscale=multiscale,
        compression=BloscCompressionParams("lz4", 1, "shuffle") if lz4 else None,
        overwrite=True,
    )
    s = ZarrV3(props)
    s.reserve_image_shape((H, W), np.uint16)
    t0 = time.perf_counter()
    s.start()
    for i in range(frames):
        s.append(pool[i % POOL])
    s.stop()
    return time.perf_counter() - t0


def run_acquire(path: str, frames: int, lz4: bool, multiscale: bool, pool: np.ndarray) -> float:
    import acquire_zarr as az

    array = az.ArraySettings(
        dimensions=[
            az.Dimension(
                name="t",
                kind=az.DimensionType.TIME,
                array_size_px=0,
                chunk_size_px=CHUNK_T,
                shard_size_chunks=1,
            ),
            az.Dimension(
                name="y",
                kind=az.DimensionType.SPACE,
                array_size_px=H,
                chunk_size_px=CHUNK_XY,
                shard_size_chunks=SHARD_XY,
            ),
            az.Dimension(
                name="x",
                kind=az.DimensionType.SPACE,
                array_size_px=W,
                chunk_size_px=CHUNK_XY,
                shard_size_chunks=SHARD_XY,
            ),
        ],
        data_type=np.uint16,
    )
    if lz4:
        array.compression = az.CompressionSettings(
            compressor=az.Compressor.BLOSC1,
            codec=az.CompressionCodec.BLOSC_LZ4,
            level=1,
            shuffle=1,
        )
    if multiscale:
        array.downsampling_method = az.DownsamplingMethod.MEAN
    settings = az.StreamSettings(store_path=path, arrays=[array], overwrite=True)
    t0 = time.perf_counter()
    stream = az.ZarrStream(settings)
    for i in range(frames):
        stream.append(pool[i % POOL])
    stream.close()
    return time.perf_counter() - t0


def child(spec: dict[str, Any]) -> None:
    pool = make_frames()
    if os.path.exists(spec["path"]):
        shutil.rmtree(spec["path"])
    # Start from a clean page cache: dirty pages left by the previous case would otherwise
    # throttle this one's writes (the kernel's dirty-page limits), whichever library it is.
    os.sync()
    fn = run_xzaro if spec["lib"] == "xzaro" else run_acquire
    seconds = fn(spec["path"], spec["frames"], spec["lz4"], spec["multiscale"], pool)
    # ru_maxrss is in KiB on Linux; subtract the frame pool, which both sides hold.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - pool.nbytes
    size = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(spec["path"]) for f in fs
    )
    shutil.rmtree(spec["path"], ignore_errors=True)
    print(json.dumps({"seconds": seconds, "peak": peak, "stored": size}))


def measure(spec: dict[str, Any]) -> dict[str, Any] | None:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        print(f"  {spec['lib']} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def acquire_available() -> bool:
    try:
        import acquire_zarr  # noqa: F401
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--workdir", default="/tmp/xzaro-bench-stream")
    parser.add_argument("--only", default="xzaro,acquire-zarr")
    parser.add_argument("--repeat", type=int, default=3, help="runs per library (best is kept)")
    parser.add_argument("--json", default=None, help="also dump all numbers to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    libs = [lib for lib in args.only.split(",") if lib]
    if "acquire-zarr" in libs and not acquire_available():
        print("acquire-zarr is not importable: its columns are n/a")
        libs.remove("acquire-zarr")
    os.makedirs(args.workdir, exist_ok=True)
    report: dict[str, Any] = {"frames": args.frames, "repeat": args.repeat, "cases": {}}
    header = (
        f"{'frames':>6} {'codec':>5} {'ms':>3} | {'xzaro fps':>9} {'MB/s':>6} {'peak MB':>7} | "
        f"{'acquire fps':>11} {'MB/s':>6} {'peak MB':>7} | {'ratio':>5}"
    )
    print(f"2048x2048 uint16, chunks {CHUNK_T}x{CHUNK_XY}x{CHUNK_XY}, shards 1x4x4, Zarr V3")
    print(header)
    print("-" * len(header))
    for frames in args.frames:
        for lz4 in (False, True):
            for multiscale in (False, True):
                cells: dict[str, dict[str, Any] | None] = {}
                for _ in range(args.repeat):  # interleaved; each library's best run is kept
                    for lib in ("xzaro", "acquire-zarr"):
                        if lib not in libs:
                            cells.setdefault(lib, None)
                            continue
                        spec = {
                            "lib": lib,
                            "frames": frames,
                            "lz4": lz4,
                            "multiscale": multiscale,
                            "path": os.path.join(args.workdir, f"{lib}.zarr"),
                        }
                        result, best = measure(spec), cells.get(lib)
                        if result and (best is None or result["seconds"] < best["seconds"]):
                            cells[lib] = result

                x, a = cells.get("xzaro"), cells.get("acquire-zarr")
                case = f"{frames} frames, {'lz4' if lz4 else 'raw'}, pyramid {multiscale}"
                report["cases"][case] = cells
                ratio = f"{a['seconds'] / x['seconds']:.2f}" if x and a else "n/a"
                xf, af = _cell(x, frames), _cell(a, frames)
                codec = "lz4" if lz4 else "raw"
                pyramid = "yes" if multiscale else "no"
                print(
                    f"{frames:>6} {codec:>5} {pyramid:>3} | "
                    f"{xf[0]:>9} {xf[1]:>6} {xf[2]:>7} | {af[0]:>11} {af[1]:>6} {af[2]:>7} | "
                    f"{ratio:>5}",
                    flush=True,
                )
    print("ratio = xzaro fps / acquire-zarr fps (> 1: xzaro is faster)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def _cell(r: dict[str, Any] | None, frames: int) -> tuple[str, str, str]:
    """Frames per second, MB/s and peak MB of one measurement (``n/a`` when not run)."""
    if r is None:
        return "n/a", "n/a", "n/a"
    fps = frames / r["seconds"]
    mbs = frames * H * W * 2 / r["seconds"] / 1e6
    return f"{fps:.1f}", f"{mbs:.0f}", f"{r['peak'] / 1e6:.0f}"


if __name__ == "__main__":
    main()
