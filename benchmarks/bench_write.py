"""Write benchmark: ``ds.zaro.to_store`` vs ``ds.to_zarr`` vs tensorstore vs an encode-only floor.

Usage::

    python benchmarks/bench_write.py [--size-mib 512] [--repeat 3] [--workdir DIR]
                                     [--only floor,xzaro,zarr,tensorstore] [--cases v2,v3_sharded]
                                     [--json out.json]

Data: the read benchmark's field (``bench_read.generate``): float32 ``(size_mib, 512, 512)``,
one 512x512 plane = 1 MiB, as an ``xr.Dataset`` with one variable ``v`` of dims ``(z, y, x)``
backed by a Dask array in 64x512x512 blocks (64 MiB; aligned with every stored chunk and shard).

Cases (the same codecs as the read benchmark's stores):

* ``v2``: Zarr V2, chunks 16x256x256, Blosc lz4 clevel 5 byte shuffle.
* ``v3_sharded``: Zarr V3, shards 64x512x512 of 16x256x256 chunks, Blosc zstd clevel 3 byte
  shuffle (typesize 4), shard index (crc32c) at the end.

Writers (each timed from the in-memory data to a complete store on local disk, best of
``--repeat``, interleaved per repetition; the output directory is removed, untimed, before each
run):

* ``xzaro``: ``ds.zaro.to_store(path, zarr_format=..., chunks=..., shards=...,
  compressor=BloscCompressionParams(...))`` (consolidated metadata, Dask's threaded scheduler).
* ``zarr``: ``ds.to_zarr(path, zarr_format=..., encoding={"v": {chunks, shards, compressors}})``
  with xarray + zarr-python defaults (consolidated metadata, Dask's threaded scheduler).
* ``tensorstore``: ``ts.open({"driver": "zarr"|"zarr3", "kvstore": file, "metadata": ...},
  create=True)`` then ``write(numpy array)``: the same array from memory, no Dask.
* ``floor``: numcodecs Blosc encoding every (inner) chunk with the case's settings on a
  ``ThreadPoolExecutor(os.cpu_count())``, from C-contiguous copies of the chunks made beforehand
  (untimed). Nothing is written: no writer that has to compress those chunks can be faster.

After the first repetition every store is read back with zarr-python and compared with the
reference (``np.array_equal``), and the floor's chunks are decoded and compared; a mismatch is
shown as ``WRONG``, an exception as ``err``, and either makes the script exit with status 1.

GB/s = uncompressed bytes (``size_mib`` MiB) / best time, 1 GB = 1e9 B.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    Ratio,
    Timing,
    dump_json,
    environment,
    package_versions,
    run_interleaved,
    throughput_table,
    tree_size,
)
from bench_read import CHUNKS, DTYPE, METADATA_FILES, PLANE, SHARDS, Unavailable, generate

DIMS = ("z", "y", "x")
DASK_BLOCK = (64, 512, 512)  # 64 MiB Dask blocks: whole V2 chunks and whole V3 shards

# --- writers and ratio columns ----------------------------------------------------------------
# Hook for more columns (the lead's multiscale pyramid writer goes here): add the column name to
# WRITERS, a factory ``(case, workdir, ds, ref) -> WriterRun`` to FACTORIES (see xzaro_writer for
# the shape) and, if wanted, a Ratio to RATIOS. run_case times, verifies and tabulates every
# column in WRITERS the same way; a factory raising Unavailable shows the column as ``n/a``.
WRITERS: tuple[str, ...] = (
    "floor",
    "xzaro",
    "zarr",
    "tensorstore",
    "pyr_floor",
    "pyr_work",
    "pyramid",
)
RATIOS: tuple[Ratio, ...] = (
    Ratio("xzaro/floor %", "xzaro", "floor", percent=True),
    Ratio("xzaro/zarr", "xzaro", "zarr"),
    Ratio("xzaro/tensorstore", "xzaro", "tensorstore"),
    Ratio("pyramid/xzaro", "pyramid", "xzaro"),
    Ratio("pyramid/pyr_floor %", "pyramid", "pyr_floor", percent=True),
    Ratio("pyramid/pyr_work %", "pyramid", "pyr_work", percent=True),
)
#: Levels of the pyramid column (level 0 plus three 2x2 means along y, x).
PYRAMID_LEVELS = 4


@dataclass(frozen=True)
class Case:
    """One store layout with its codec settings."""

    key: str
    title: str
    zarr_format: int
    shards: tuple[int, ...] | None
    cname: str
    clevel: int
    #: the stored chunks (the inner chunks of a sharded case)
    inner: tuple[int, ...] = CHUNKS


CASES = (
    Case("v2", "Zarr V2, chunks 16x256x256, Blosc lz4 clevel 5 shuffle", 2, None, "lz4", 5),
    Case(
        "v3_sharded",
        "Zarr V3, shards 64x512x512 of 16x256x256 chunks, Blosc zstd clevel 3 shuffle",
        3,
        SHARDS,
        "zstd",
        3,
    ),
)


@dataclass
class WriterRun:
    """What a writer column does: ``prepare`` (untimed), ``run`` (timed), ``verify`` (once)."""

    run: Callable[[], Any]
    verify: Callable[[Any], str | None]
    prepare: Callable[[], None] = lambda: None
    stored_bytes: Callable[[], int | None] = lambda: None


def _fresh(path: Path) -> Callable[[], None]:
    def prepare() -> None:
        if path.exists():
            shutil.rmtree(path)

    return prepare


def _store_size(path: Path) -> Callable[[], int | None]:
    return lambda: tree_size(path, exclude=METADATA_FILES) if path.exists() else None


def _read_back(path: Path, ref: np.ndarray, array_path: str) -> Callable[[Any], str | None]:
    """Verifier: zarr-python reads the written array and it must equal the reference."""

    def verify(_: Any) -> str | None:
        import zarr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z = zarr.open_array(str(path), path=array_path, mode="r")
            got = z[...]
        if got.shape != ref.shape or got.dtype != ref.dtype:
            return f"read back {got.dtype}{got.shape}, expected {ref.dtype}{ref.shape}"
        if not np.array_equal(got, ref):
            return f"read back differs from the reference in {np.count_nonzero(got != ref)} places"
        return None

    return verify


def xzaro_writer(case: Case, workdir: Path, ds: Any, ref: np.ndarray) -> WriterRun:
    try:
        import xzaro  # noqa: F401  (registers the .zaro accessor)
        from xzaro.writers import BloscCompressionParams
    except Exception as exc:
        raise Unavailable(f"import xzaro failed: {exc!r}") from exc
    path = workdir / f"xzaro-{case.key}.zarr"
    kwargs: dict[str, Any] = {
        "zarr_format": case.zarr_format,
        "chunks": dict(zip(DIMS, case.inner)),
        "compressor": BloscCompressionParams(case.cname, case.clevel, "shuffle"),
    }
    if case.shards:
        kwargs["shards"] = dict(zip(DIMS, case.shards))
    return WriterRun(
        run=lambda: ds.zaro.to_store(path, mode="w-", **kwargs),
        verify=_read_back(path, ref, "v"),
        prepare=_fresh(path),
        stored_bytes=_store_size(path),
    )


def pyramid_writer(case: Case, workdir: Path, ds: Any, ref: np.ndarray) -> WriterRun:
    """``to_store(multiscale=Multiscale(levels=4))``: level 0 plus three levels of 2x2 means
    along (y, x), same codecs; GB/s counts level 0's bytes, so the column shows what the
    extra levels cost."""
    try:
        import xzaro
        from xzaro.writers import BloscCompressionParams
    except Exception as exc:
        raise Unavailable(f"import xzaro failed: {exc!r}") from exc
    path = workdir / f"pyramid-{case.key}.zarr"
    kwargs: dict[str, Any] = {
        "zarr_format": case.zarr_format,
        "chunks": dict(zip(DIMS, case.inner)),
        "compressor": BloscCompressionParams(case.cname, case.clevel, "shuffle"),
        "multiscale": xzaro.Multiscale(levels=PYRAMID_LEVELS, dims=("y", "x")),
    }
    if case.shards:
        kwargs["shards"] = dict(zip(DIMS, case.shards))
    return WriterRun(
        run=lambda: ds.zaro.to_store(path, mode="w-", **kwargs),
        verify=_read_back(path, ref, "0/v"),
        prepare=_fresh(path),
        stored_bytes=_store_size(path),
    )


def zarr_writer(case: Case, workdir: Path, ds: Any, ref: np.ndarray) -> WriterRun:
    try:
        import numcodecs
        from zarr.codecs import BloscCodec
    except Exception as exc:
        raise Unavailable(f"import zarr failed: {exc!r}") from exc
    path = workdir / f"zarr-{case.key}.zarr"
    if case.zarr_format == 2:
        compressor: Any = numcodecs.Blosc(case.cname, case.clevel, numcodecs.Blosc.SHUFFLE)
    else:
        compressor = BloscCodec(
            cname=case.cname, clevel=case.clevel, shuffle="shuffle", typesize=DTYPE.itemsize
        )
    enc: dict[str, Any] = {"chunks": case.inner, "compressors": compressor}
    if case.shards:
        enc["shards"] = case.shards

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # V3 consolidated metadata is "not in the spec"
            ds.to_zarr(path, mode="w-", zarr_format=case.zarr_format, encoding={"v": enc})

    return WriterRun(run, _read_back(path, ref, "v"), _fresh(path), _store_size(path))


def tensorstore_writer(case: Case, workdir: Path, ds: Any, ref: np.ndarray) -> WriterRun:
    try:
        import tensorstore as ts
    except Exception as exc:
        raise Unavailable(f"import tensorstore failed: {exc!r}") from exc
    path = workdir / f"tensorstore-{case.key}.zarr"
    blosc_v3 = {
        "name": "blosc",
        "configuration": {
            "cname": case.cname,
            "clevel": case.clevel,
            "shuffle": "shuffle",
            "typesize": DTYPE.itemsize,
        },
    }
    if case.zarr_format == 2:
        spec: dict[str, Any] = {
            "driver": "zarr",
            "metadata": {
                "shape": list(ref.shape),
                "chunks": list(case.inner),
                "dtype": DTYPE.str,
                "compressor": {
                    "id": "blosc",
                    "cname": case.cname,
                    "clevel": case.clevel,
                    "shuffle": 1,
                },
                "fill_value": 0.0,
                "order": "C",
            },
        }
    else:
        assert case.shards is not None
        spec = {
            "driver": "zarr3",
            "metadata": {
                "shape": list(ref.shape),
                "data_type": DTYPE.name,
                "chunk_grid": {
                    "name": "regular",
                    "configuration": {"chunk_shape": list(case.shards)},
                },
                "codecs": [
                    {
                        "name": "sharding_indexed",
                        "configuration": {
                            "chunk_shape": list(case.inner),
                            "codecs": [
                                {"name": "bytes", "configuration": {"endian": "little"}},
                                blosc_v3,
                            ],
                            "index_codecs": [
                                {"name": "bytes", "configuration": {"endian": "little"}},
                                {"name": "crc32c"},
                            ],
                            "index_location": "end",
                        },
                    }
                ],
                "fill_value": 0.0,
            },
        }
    spec["kvstore"] = {"driver": "file", "path": str(path) + "/"}

    def run() -> None:
        arr = ts.open(spec, create=True).result()
        arr.write(ref).result()

    return WriterRun(run, _read_back(path, ref, ""), _fresh(path), _store_size(path))


def _chunk_boxes(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[tuple[slice, ...]]:
    counts = [math.ceil(s / c) for s, c in zip(shape, chunks)]
    return [
        tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, chunks, shape))
        for idx in np.ndindex(*counts)
    ]


def _pairwise_mean(a: np.ndarray) -> np.ndarray:
    """2x2 mean over (y, x): neighbours added pairwise in float64, then scaled."""
    pairs = np.add(a[:, :, 0::2], a[:, :, 1::2], dtype=np.float64)
    total = np.add(pairs[:, 0::2], pairs[:, 1::2])
    total *= 0.25
    return total.astype(a.dtype)


def _coarsened(below: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    """The next pyramid level, 16-plane slabs in parallel."""
    above = np.empty((below.shape[0], below.shape[1] // 2, below.shape[2] // 2), below.dtype)

    def slab(z: int) -> None:
        above[z : z + 16] = _pairwise_mean(below[z : z + 16])

    list(pool.map(slab, range(0, below.shape[0], 16)))
    return above


def floor_writer(
    case: Case,
    workdir: Path,
    ds: Any,
    ref: np.ndarray,
    pool: ThreadPoolExecutor,
    levels: int = 1,
    coarsen: bool = False,
) -> WriterRun:
    """numcodecs Blosc on every (inner) chunk from memory, on all cores; nothing written.

    With ``levels`` > 1, the chunks of every pyramid level (computed beforehand, untimed) are
    encoded: the floor of a pyramid writer, which also has to compute those levels. With
    ``coarsen``, the timed run also computes levels 1 and up from level 0 (numpy 2x2 means in
    float64, pairwise, in 16-plane slabs on all cores) and copies their chunks out.
    """
    import numcodecs

    codec = numcodecs.Blosc(case.cname, case.clevel, numcodecs.Blosc.SHUFFLE)
    arrays = [ref]
    while len(arrays) < levels:
        arrays.append(_pairwise_mean(arrays[-1]))
    boxes = [
        (level, box)
        for level, a in enumerate(arrays)
        for box in _chunk_boxes(a.shape, tuple(min(c, n) for c, n in zip(case.inner, a.shape)))
    ]
    pieces: list[np.ndarray] = []

    def inner(level: int) -> tuple[int, ...]:
        return tuple(min(c, n) for c, n in zip(case.inner, arrays[level].shape))

    def prepare() -> None:
        if not pieces:  # C-contiguous chunk copies, padded like a stored edge chunk
            for level, box in boxes:
                piece = np.zeros(inner(level), dtype=DTYPE)
                piece[tuple(slice(0, b.stop - b.start) for b in box)] = arrays[level][box]
                pieces.append(piece)

    def run() -> list[bytes]:
        if not coarsen:
            return list(pool.map(codec.encode, pieces))
        computed = [ref]
        for _ in range(1, levels):
            computed.append(_coarsened(computed[-1], pool))

        def encode(i: int) -> bytes:
            level, box = boxes[i]
            if level == 0:
                return codec.encode(pieces[i])
            piece = np.zeros(inner(level), dtype=DTYPE)
            piece[tuple(slice(0, b.stop - b.start) for b in box)] = computed[level][box]
            return codec.encode(piece)

        return list(pool.map(encode, range(len(boxes))))

    def verify(encoded: list[bytes]) -> str | None:
        for (level, box), blob in zip(boxes, encoded):
            out = np.frombuffer(codec.decode(blob), dtype=DTYPE).reshape(inner(level))
            want = arrays[level][box]
            if not np.array_equal(out[tuple(slice(0, b.stop - b.start) for b in box)], want):
                return f"encoded chunk at {[b.start for b in box]} does not decode to the data"
        return None

    sizes: list[int] = []

    def stored() -> int | None:
        return sizes[0] if sizes else None

    def run_and_size() -> list[bytes]:
        encoded = run()
        if not sizes:
            sizes.append(sum(len(b) for b in encoded))
        return encoded

    return WriterRun(run_and_size, verify, prepare, stored)


FACTORIES: dict[str, Callable[..., WriterRun]] = {
    "xzaro": xzaro_writer,
    "zarr": zarr_writer,
    "tensorstore": tensorstore_writer,
    "pyramid": pyramid_writer,
}


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def make_dataset(ref: np.ndarray) -> Any:
    """The reference array as a Dask-backed Dataset with dims (z, y, x)."""
    import dask.array as da
    import xarray as xr

    block = tuple(min(b, n) for b, n in zip(DASK_BLOCK, ref.shape))
    return xr.Dataset({"v": (DIMS, da.from_array(ref, chunks=block))})


def run_case(
    case: Case,
    workdir: Path,
    ds: Any,
    ref: np.ndarray,
    writers: list[str],
    repeat: int,
    pool: ThreadPoolExecutor,
) -> tuple[dict[str, Timing], dict[str, int | None]]:
    """Time every writer on one case; repetitions are interleaved across writers."""
    timings: dict[str, Timing] = {}
    runs: dict[str, WriterRun] = {}
    for name in writers:
        timings[name] = Timing(nbytes=ref.nbytes)
        try:
            if name in ("floor", "pyr_floor", "pyr_work"):
                levels = 1 if name == "floor" else PYRAMID_LEVELS
                runs[name] = floor_writer(
                    case, workdir, ds, ref, pool, levels, coarsen=name == "pyr_work"
                )
            else:
                runs[name] = FACTORIES[name](case, workdir, ds, ref)
        except Unavailable as exc:
            timings[name].fail(NA, str(exc))

    run_interleaved(
        {name: (wr.run, wr.verify) for name, wr in runs.items()},
        timings,
        repeat,
        prepare={name: wr.prepare for name, wr in runs.items()},
    )
    sizes = {name: wr.stored_bytes() for name, wr in runs.items()}
    return timings, sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line interface."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=512, help="array size in MiB = length of axis 0")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per writer (best is kept)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "xzaro-bench-write",
        help="where the stores are written (removed at the end unless --keep)",
    )
    p.add_argument(
        "--only", default=",".join(WRITERS), help=f"comma-separated subset of {','.join(WRITERS)}"
    )
    p.add_argument(
        "--cases",
        default=",".join(c.key for c in CASES),
        help=f"comma-separated subset of {','.join(c.key for c in CASES)}",
    )
    p.add_argument("--keep", action="store_true", help="keep the written stores")
    p.add_argument("--json", type=Path, default=None, help="also dump all numbers to this file")
    args = p.parse_args(argv)
    args.writers = [w.strip() for w in args.only.split(",") if w.strip()]
    bad = sorted(set(args.writers) - set(WRITERS))
    if bad:
        p.error(f"unknown writer(s) {bad}; choose from {list(WRITERS)}")
    args.case_keys = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = sorted(set(args.case_keys) - {c.key for c in CASES})
    if bad:
        p.error(f"unknown case(s) {bad}; choose from {[c.key for c in CASES]}")
    if args.size_mib < 1 or args.repeat < 1:
        p.error("--size-mib and --repeat must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if any writer erred or wrote a wrong store."""
    t_start = time.perf_counter()
    args = parse_args(argv)
    writers = [w for w in WRITERS if w in args.writers]
    cases = [c for c in CASES if c.key in args.case_keys]
    n0 = args.size_mib
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    ref = generate(n0)
    ds = make_dataset(ref)
    print(
        f"array float32{ref.shape} = {ref.nbytes / MiB:.0f} MiB (generated in "
        f"{time.perf_counter() - t0:.1f} s); Dask blocks {ds.v.data.chunksize}; "
        f"stores in {workdir}"
    )
    print(f"cpus={os.cpu_count()} repeat={args.repeat} (best of), writes to a local disk")

    report: dict[str, Any] = {
        "params": {
            "shape": [n0, *PLANE],
            "dtype": DTYPE.str,
            "dask_block": list(ds.v.data.chunksize),
            "repeat": args.repeat,
            "writers": writers,
        },
        "environment": environment(),
        "versions": package_versions(
            ["xzaro", "zarr", "tensorstore", "numcodecs", "numpy", "xarray", "dask"]
        ),
        "cases": {},
    }
    failed = False
    rows: dict[str, dict[str, Timing | None]] = {}
    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for case in cases:
                print(f"\n== {case.key}: {case.title}")
                timings, sizes = run_case(case, workdir, ds, ref, writers, args.repeat, pool)
                for name, t in timings.items():
                    if t.status in (ERR, WRONG):
                        failed = True
                    if t.status != "ok":
                        print(f"   {name}: {t.status}: {t.message}")
                stored = ", ".join(
                    f"{name} {ref.nbytes / size:.3f}" for name, size in sizes.items() if size
                )
                print(f"   compression ratio: {stored}")
                print(throughput_table({case.key: timings}, WRITERS, RATIOS))
                rows[case.key] = dict(timings)
                report["cases"][case.key] = {
                    "title": case.title,
                    "stored_bytes": sizes,
                    "writers": {name: t.to_json() for name, t in timings.items()},
                }
    finally:
        if not args.keep:
            for case in cases:
                for name in writers:
                    shutil.rmtree(workdir / f"{name}-{case.key}.zarr", ignore_errors=True)

    if len(rows) > 1:
        print("\n== summary (GB/s = uncompressed MiB written / best time)")
        print(throughput_table(rows, WRITERS, RATIOS))
    total = time.perf_counter() - t_start
    report["total_seconds"] = total
    print(f"\ntotal {total:.1f} s")
    if args.json:
        dump_json(args.json, report)
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
