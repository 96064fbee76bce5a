"""Read benchmark: xzaro vs zarr-python vs tensorstore vs a decode-only floor.

Usage::

    python benchmarks/bench_read.py [--size-mib 512] [--repeat 3] [--workdir DIR]
                                    [--only xzaro,zarr,tensorstore,floor] [--json out.json]

Data: a float32 array of shape ``(size_mib, 512, 512)`` (one 512x512 float32 plane is exactly
1 MiB), a smooth field (sum of low-frequency sines over the three axes) plus gaussian noise,
quantised to 0.01. Generated deterministically (seeded per 64-plane slab) and written once with
zarr-python into two stores:

* ``v2.zarr``: Zarr V2, chunks (16, 256, 256), numcodecs Blosc(lz4, clevel 5, byte shuffle).
* ``v3_sharded.zarr``: Zarr V3, shards (64, 512, 512) of inner chunks (16, 256, 256),
  BloscCodec(zstd, clevel 3, shuffle, typesize 4), shard index at the end.

Cases per store: ``full`` (``a[...]``) and ``region10``, a ~10% hyperslab that is aligned to no
chunk or shard boundary (see :func:`region_for`).

Readers (each timed as *open + read*, best of ``--repeat``, interleaved per repetition):

* ``xzaro``: ``xzaro.open_array(path)[sel]`` (``n/a`` if the package is not usable yet).
* ``zarr``: ``zarr.open_array(path, mode="r")[sel]`` with zarr's default config.
* ``tensorstore``: ``ts.open({"driver": "zarr"|"zarr3", "kvstore": file}).result()`` then
  ``[sel].read().result()``.
* ``floor``: numcodecs Blosc decoding of every compressed chunk the selection touches, each into a
  freshly allocated buffer, on ``os.cpu_count()`` threads. The compressed bytes are loaded into
  memory beforehand (untimed), for V3 by parsing the shard indexes. No reader that has to decode
  those chunks can be faster than this (modulo multi-threaded Blosc tricks).

Every reader's first result is compared with the in-memory reference (``np.array_equal``); a
mismatch is shown as ``WRONG`` and makes the script exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
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
    clear_marker,
    dump_json,
    environment,
    marker_matches,
    package_versions,
    run_interleaved,
    throughput_table,
    tree_size,
    warm_page_cache,
    write_marker,
)

READERS = ("floor", "xzaro", "zarr", "tensorstore")
RATIOS = (
    Ratio("xzaro/floor %", "xzaro", "floor", percent=True),
    Ratio("xzaro/zarr", "xzaro", "zarr"),
    Ratio("xzaro/tensorstore", "xzaro", "tensorstore"),
)

SEED = 20240601
GENERATOR_VERSION = 1  # bump whenever generate_slab changes, to invalidate cached stores
PLANE = (512, 512)  # one float32 plane = 1 MiB
DTYPE = np.dtype("float32")
GEN_SLAB = 64  # planes generated (and written) at once; also the noise-seeding granularity

CHUNKS = (16, 256, 256)
SHARDS = (64, 512, 512)
V2_NAME = "v2.zarr"
V3_NAME = "v3_sharded.zarr"
METADATA_FILES = (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json")

Selection = tuple[slice, ...]


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def generate_slab(i0: int, i1: int, seed: int = SEED) -> np.ndarray:
    """Planes ``i0:i1`` of the benchmark field (float32, quantised to 0.01).

    The smooth part depends only on global coordinates; the noise is seeded by ``(seed, i0)``,
    so callers must always ask for the same ``GEN_SLAB``-aligned slabs (see :func:`generate`).
    """
    ny, nx = PLANE
    two_pi = np.float32(2 * np.pi)
    z = (np.arange(i0, i1, dtype=np.float32) * (two_pi / 512))[:, None, None]
    y = (np.arange(ny, dtype=np.float32) * (two_pi / 512))[None, :, None]
    x = (np.arange(nx, dtype=np.float32) * (two_pi / 512))[None, None, :]
    field = (
        np.float32(10) * np.sin(z + np.float32(0.3)) * np.cos(np.float32(2) * y)
        + np.float32(5) * np.sin(np.float32(3) * x + y)
        + np.float32(3) * np.cos(np.float32(2) * z + x + np.float32(0.7))
        + np.float32(15)
    )
    rng = np.random.default_rng([seed, i0])
    field += rng.standard_normal(field.shape, dtype=np.float32) * np.float32(0.5)
    return np.round(field, 2).astype(DTYPE, copy=False)


def slabs(n0: int) -> list[tuple[int, int]]:
    """The ``GEN_SLAB``-plane slabs covering ``n0`` planes."""
    return [(i0, min(i0 + GEN_SLAB, n0)) for i0 in range(0, n0, GEN_SLAB)]


def generate(n0: int, seed: int = SEED) -> np.ndarray:
    """The full reference array of shape ``(n0, 512, 512)``."""
    out = np.empty((n0, *PLANE), dtype=DTYPE)
    for i0, i1 in slabs(n0):
        out[i0:i1] = generate_slab(i0, i1, seed)
    return out


def region_for(n0: int) -> Selection:
    """The "10% hyperslab": ``[37:37+L, 100:420, 60:380]`` with ``L = round(0.256 * n0)``.

    320/512 of each trailing axis times 25.6% of the first gives ~10.0% of the elements
    (for n0 = 512: 131 x 320 x 320 = 13,414,400 elements = 53.7 MB, 9.99%). No bound is a
    multiple of 16, 64 or 256, so the region crosses chunk boundaries on every axis (and shard
    boundaries on axis 0): along axis 0 it starts in the middle of chunk 2 / shard 0, along axes 1
    and 2 it straddles the 256 chunk boundary. For tiny arrays the start is pulled back to fit.
    """
    length = max(1, round(0.256 * n0))
    start = max(0, min(37, n0 - length))
    return (slice(start, start + length), slice(100, 420), slice(60, 380))


def describe(sel: Selection) -> str:
    """``[a:b, c:d, ...]`` text for a selection."""
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in sel) + "]"


def selection_shape(sel: Selection) -> tuple[int, ...]:
    """Shape of a (normalised, step-1) slice selection."""
    return tuple(s.stop - s.start for s in sel)


# --------------------------------------------------------------------------------------------
# Stores
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """One benchmark store on disk."""

    key: str
    title: str
    path: Path
    ts_driver: str


def store_params(n0: int) -> dict[str, Any]:
    """Everything that determines the bytes on disk (compared against the workdir marker)."""
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": SEED,
        "shape": [n0, *PLANE],
        "dtype": DTYPE.str,
        "v2": {"chunks": list(CHUNKS), "compressor": "blosc lz4 clevel=5 shuffle"},
        "v3": {
            "shards": list(SHARDS),
            "chunks": list(CHUNKS),
            "compressor": "blosc zstd clevel=3 shuffle typesize=4",
            "index_location": "end",
        },
    }


def make_stores(workdir: Path) -> list[Store]:
    """The two store descriptors (nothing is written)."""
    return [
        Store(
            "v2",
            "Zarr V2, chunks 16x256x256, Blosc lz4 clevel 5 shuffle",
            workdir / V2_NAME,
            "zarr",
        ),
        Store(
            "v3_sharded",
            "Zarr V3 sharded, shards 64x512x512 / chunks 16x256x256, Blosc zstd clevel 3 shuffle",
            workdir / V3_NAME,
            "zarr3",
        ),
    ]


def prepare_stores(workdir: Path, n0: int) -> tuple[list[Store], np.ndarray]:
    """Write the stores unless the workdir already holds them for these parameters.

    Returns the stores and the in-memory reference array.
    """
    import numcodecs
    import zarr
    from zarr.codecs import BloscCodec

    stores = make_stores(workdir)
    params = store_params(n0)
    workdir.mkdir(parents=True, exist_ok=True)
    if marker_matches(workdir, params) and all(s.path.is_dir() for s in stores):
        t0 = time.perf_counter()
        ref = generate(n0)
        print(
            f"reusing stores in {workdir} (reference regenerated in "
            f"{time.perf_counter() - t0:.1f} s)"
        )
        return stores, ref

    print(f"writing stores to {workdir} ...", flush=True)
    t0 = time.perf_counter()
    clear_marker(workdir)
    for s in stores:
        if s.path.exists():
            shutil.rmtree(s.path)
    shape = (n0, *PLANE)
    v2 = zarr.create_array(
        store=str(stores[0].path),
        shape=shape,
        dtype=DTYPE,
        chunks=CHUNKS,
        compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
        filters=None,
        fill_value=0.0,
        zarr_format=2,
    )
    v3 = zarr.create_array(
        store=str(stores[1].path),
        shape=shape,
        dtype=DTYPE,
        chunks=CHUNKS,
        shards={"shape": SHARDS, "index_location": "end"},
        compressors=BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=DTYPE.itemsize),
        filters=None,
        fill_value=0.0,
        zarr_format=3,
    )
    ref = np.empty(shape, dtype=DTYPE)
    for i0, i1 in slabs(n0):
        slab = generate_slab(i0, i1)
        ref[i0:i1] = slab
        v2[i0:i1] = slab
        v3[i0:i1] = slab
    write_marker(workdir, params)
    print(f"  wrote in {time.perf_counter() - t0:.1f} s")
    return stores, ref


# --------------------------------------------------------------------------------------------
# Decode-only floor
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedChunk:
    """The compressed bytes of one (inner) chunk and where the chunk sits in the array."""

    origin: tuple[int, ...]
    shape: tuple[int, ...]
    data: bytes

    def touches(self, sel: Selection) -> bool:
        """Whether the chunk's box intersects the selection."""
        return all(o < s.stop and s.start < o + n for o, n, s in zip(self.origin, self.shape, sel))


def _grid(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[tuple[int, ...]]:
    """All chunk grid coordinates, C order."""
    counts = [math.ceil(s / c) for s, c in zip(shape, chunks)]
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*counts)]


def load_v2_chunks(path: Path) -> list[EncodedChunk]:
    """Read every stored chunk file of a Blosc-compressed Zarr V2 array."""
    meta = json.loads((path / ".zarray").read_text())
    if (meta.get("compressor") or {}).get("id") != "blosc" or meta.get("filters"):
        raise ValueError(f"floor expects plain Blosc V2 chunks, got {meta}")
    if meta.get("order", "C") != "C":
        raise ValueError("floor expects C order")
    shape, chunks = tuple(meta["shape"]), tuple(meta["chunks"])
    sep = meta.get("dimension_separator", ".")
    out = []
    for coord in _grid(shape, chunks):
        f = path / sep.join(map(str, coord))
        if f.exists():  # a missing chunk is all fill value: nothing to decode
            origin = tuple(i * c for i, c in zip(coord, chunks))
            out.append(EncodedChunk(origin, chunks, f.read_bytes()))
    return out


def load_v3_sharded_chunks(path: Path) -> list[EncodedChunk]:
    """Extract every inner chunk's compressed bytes from the shards of a Zarr V3 array.

    Supports exactly the layout written here: one ``sharding_indexed`` codec with the index at
    the end (``n_inner * 16`` bytes of little-endian uint64 ``(offset, nbytes)`` pairs followed by
    a 4-byte crc32c), inner codecs ``bytes`` (little endian) + ``blosc``, default chunk keys.
    """
    meta = json.loads((path / "zarr.json").read_text())
    shape = tuple(meta["shape"])
    shard_shape = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    (codec,) = meta["codecs"]
    if codec["name"] != "sharding_indexed":
        raise ValueError(f"floor expects a sharded V3 array, got {codec}")
    cfg = codec["configuration"]
    inner = tuple(cfg["chunk_shape"])
    names = [c["name"] for c in cfg["codecs"]]
    index_names = [c["name"] for c in cfg["index_codecs"]]
    if names != ["bytes", "blosc"] or cfg.get("index_location", "end") != "end":
        raise ValueError(f"floor expects bytes+blosc inner codecs and an end index: {cfg}")
    if index_names != ["bytes", "crc32c"]:
        raise ValueError(f"unexpected index codecs {index_names}")
    cke = meta.get("chunk_key_encoding", {"name": "default"})
    if cke["name"] != "default":
        raise ValueError(f"floor expects default chunk keys, got {cke}")
    sep = cke.get("configuration", {}).get("separator", "/")

    try:
        from crc32c import crc32c
    except ImportError:  # pragma: no cover - crc32c is an xzaro dependency
        crc32c = None

    per_shard = tuple(s // c for s, c in zip(shard_shape, inner))
    n_inner = math.prod(per_shard)
    local = list(np.ndindex(*per_shard))
    empty = np.uint64(2**64 - 1)
    out = []
    for scoord in _grid(shape, shard_shape):
        f = path / sep.join(["c", *map(str, scoord)])
        if not f.exists():
            continue
        blob = f.read_bytes()
        index_bytes = blob[-(n_inner * 16 + 4) :]
        if crc32c is not None:
            expected = int.from_bytes(index_bytes[-4:], "little")
            if crc32c(index_bytes[:-4]) != expected:
                raise ValueError(f"shard index checksum mismatch in {f}")
        index = np.frombuffer(index_bytes[:-4], dtype="<u8").reshape(n_inner, 2)
        for (offset, nbytes), lcoord in zip(index, local):
            if offset == empty and nbytes == empty:
                continue
            origin = tuple(
                (s * p + lc) * c for s, p, lc, c in zip(scoord, per_shard, lcoord, inner)
            )
            if any(o >= n for o, n in zip(origin, shape)):
                continue  # lies wholly outside the array (edge shard)
            out.append(EncodedChunk(origin, inner, blob[int(offset) : int(offset + nbytes)]))
    return out


def decode_all(chunks: list[EncodedChunk], pool: ThreadPoolExecutor) -> list[np.ndarray]:
    """Decode every chunk (Blosc) into a fresh buffer, in parallel on ``pool``."""
    import numcodecs

    codec = numcodecs.Blosc()

    def one(chunk: EncodedChunk) -> np.ndarray:
        out = np.empty(math.prod(chunk.shape), dtype=DTYPE)
        codec.decode(chunk.data, out=out)
        return out

    return list(pool.map(one, chunks))


def verify_floor(
    chunks: list[EncodedChunk], decoded: list[np.ndarray], ref: np.ndarray
) -> str | None:
    """Compare every decoded chunk with the reference; return an error message or ``None``."""
    for chunk, flat in zip(chunks, decoded):
        box = tuple(
            slice(o, min(o + n, s)) for o, n, s in zip(chunk.origin, chunk.shape, ref.shape)
        )
        got = flat.reshape(chunk.shape)[tuple(slice(0, b.stop - b.start) for b in box)]
        if not np.array_equal(got, ref[box]):
            return f"decoded chunk at {chunk.origin} differs from the reference"
    return None


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------

ReadFn = Callable[[], Any]
VerifyFn = Callable[[Any], "str | None"]


class Unavailable(Exception):
    """A reader cannot run in this environment (shown as ``n/a``)."""


def check_array(expected: np.ndarray) -> VerifyFn:
    """Verifier comparing a reader's result with ``expected`` (shape, dtype and values)."""

    def verify(result: Any) -> str | None:
        got = np.asarray(result)
        if got.shape != expected.shape or got.dtype != expected.dtype:
            return f"got {got.dtype}{got.shape}, expected {expected.dtype}{expected.shape}"
        if not np.array_equal(got, expected):
            return f"values differ from the reference in {np.count_nonzero(got != expected)} places"
        return None

    return verify


def xzaro_reader(store: Store, sel: Selection | None) -> ReadFn:
    """``xzaro.open_array(path)[sel]``; raises :class:`Unavailable` if xzaro is not usable."""
    try:
        import xzaro
    except Exception as exc:
        raise Unavailable(f"import xzaro failed: {exc!r}") from exc
    open_array = getattr(xzaro, "open_array", None)
    if open_array is None:
        raise Unavailable("xzaro.open_array is missing")
    path = str(store.path)
    key = Ellipsis if sel is None else sel
    return lambda: np.asarray(open_array(path)[key])


def zarr_reader(store: Store, sel: Selection | None) -> ReadFn:
    """``zarr.open_array(path, mode="r")[sel]`` with zarr-python's default configuration."""
    try:
        import zarr
    except Exception as exc:
        raise Unavailable(f"import zarr failed: {exc!r}") from exc
    path = str(store.path)
    key = Ellipsis if sel is None else sel
    return lambda: zarr.open_array(path, mode="r")[key]


def tensorstore_reader(store: Store, sel: Selection | None) -> ReadFn:
    """``ts.open(spec).result()`` then ``[sel].read().result()`` (default context)."""
    try:
        import tensorstore as ts
    except Exception as exc:
        raise Unavailable(f"import tensorstore failed: {exc!r}") from exc
    spec = {"driver": store.ts_driver, "kvstore": {"driver": "file", "path": str(store.path)}}

    def read() -> np.ndarray:
        arr = ts.open(spec, read=True).result()
        view = arr if sel is None else arr[sel]
        return view.read().result()

    return read


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def run_case(
    store: Store,
    sel: Selection | None,
    expected: np.ndarray,
    chunks: list[EncodedChunk] | None,
    readers: list[str],
    repeat: int,
    pool: ThreadPoolExecutor,
    ref: np.ndarray,
) -> dict[str, Timing]:
    """Time every reader on one (store, selection); repetitions are interleaved across readers."""
    nbytes = expected.nbytes
    timings: dict[str, Timing] = {}
    fns: dict[str, tuple[ReadFn, VerifyFn]] = {}
    for name in readers:
        timings[name] = Timing(nbytes=nbytes)
        try:
            if name == "floor":
                assert chunks is not None
                todo = chunks if sel is None else [c for c in chunks if c.touches(sel)]

                def floor_fn(todo: list[EncodedChunk] = todo) -> list[np.ndarray]:
                    return decode_all(todo, pool)

                def floor_verify(res: Any, todo: list[EncodedChunk] = todo) -> str | None:
                    return verify_floor(todo, res, ref)

                fns[name] = (floor_fn, floor_verify)
            else:
                factory = {
                    "xzaro": xzaro_reader,
                    "zarr": zarr_reader,
                    "tensorstore": tensorstore_reader,
                }[name]
                fns[name] = (factory(store, sel), check_array(expected))
        except Unavailable as exc:
            timings[name].fail(NA, str(exc))

    run_interleaved(fns, timings, repeat)
    return timings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line interface."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=512, help="array size in MiB = length of axis 0")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per reader (best is kept)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "xzaro-bench-read",
        help="where the stores live (reused when the parameters match)",
    )
    p.add_argument(
        "--only", default=",".join(READERS), help=f"comma-separated subset of {','.join(READERS)}"
    )
    p.add_argument("--json", type=Path, default=None, help="also dump all numbers to this file")
    args = p.parse_args(argv)
    args.readers = [r.strip() for r in args.only.split(",") if r.strip()]
    bad = sorted(set(args.readers) - set(READERS))
    if bad:
        p.error(f"unknown reader(s) {bad}; choose from {list(READERS)}")
    if args.size_mib < 1 or args.repeat < 1:
        p.error("--size-mib and --repeat must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if any reader erred or returned a wrong result."""
    t_start = time.perf_counter()
    args = parse_args(argv)
    readers = [r for r in READERS if r in args.readers]
    n0 = args.size_mib
    stores, ref = prepare_stores(args.workdir.resolve(), n0)
    region = region_for(n0)
    region_ref = np.ascontiguousarray(ref[region])

    import zarr

    zarr_cfg = {k: zarr.config.get(k) for k in ("async", "threading")}
    print(
        f"array float32{ref.shape} = {ref.nbytes / MiB:.0f} MiB; region10 = {describe(region)}"
        f" = {region_ref.nbytes / MiB:.1f} MiB ({100 * region_ref.size / ref.size:.2f}%)"
    )
    print(
        f"cpus={os.cpu_count()} repeat={args.repeat} (best of), times include open; "
        f"zarr config {zarr_cfg}"
    )

    report: dict[str, Any] = {
        "params": {**store_params(n0), "repeat": args.repeat, "readers": readers},
        "region10": describe(region),
        "environment": environment(),
        "versions": package_versions(["xzaro", "zarr", "tensorstore", "numcodecs", "numpy"]),
        "zarr_config": zarr_cfg,
        "stores": {},
    }
    failed = False
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for store in stores:
            stored = tree_size(store.path, exclude=METADATA_FILES)
            ratio = ref.nbytes / stored
            print(f"\n== {store.key}: {store.title}")
            print(f"   stored {stored / MiB:.1f} MiB, compression ratio {ratio:.3f}")
            warm_page_cache(store.path)
            chunks = None
            if "floor" in readers:
                loader = load_v2_chunks if store.key == "v2" else load_v3_sharded_chunks
                chunks = loader(store.path)
            rows: dict[str, dict[str, Timing | None]] = {}
            cases = {"full": (None, ref), "region10": (region, region_ref)}
            for case, (sel, expected) in cases.items():
                timings = run_case(store, sel, expected, chunks, readers, args.repeat, pool, ref)
                rows[case] = dict(timings)
                for name, t in timings.items():
                    if t.status in (ERR, WRONG):
                        failed = True
                    if t.status != "ok":
                        print(f"   {case}/{name}: {t.status}: {t.message}")
            del chunks
            print(throughput_table(rows, READERS, RATIOS))
            report["stores"][store.key] = {
                "title": store.title,
                "path": str(store.path),
                "stored_bytes": stored,
                "compression_ratio": ratio,
                "cases": {
                    case: {name: t.to_json() for name, t in row.items() if t is not None}
                    for case, row in rows.items()
                },
            }

    total = time.perf_counter() - t_start
    report["total_seconds"] = total
    print(f"\ntotal {total:.1f} s")
    if args.json:
        dump_json(args.json, report)
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
