"""One timed run of ``bench_zarrs.py`` in a fresh process: ``python _zarrs_child.py SPEC_JSON``.

The spec names the reader, the case and the array; the child opens the array, runs the case once
under the clock (open included), records its peak resident memory (``ru_maxrss``) right after,
then checks the values (untimed) and prints one JSON line::

    {"seconds": ..., "cpu_seconds": ..., "peak_rss": bytes, "problem": null | "...", ...}

Only numpy and the reader's own library are imported, so the zarr-python readers can run under
another interpreter (``--peer-python``). Thread limits come from the spec (``threads``): the
environment variables ``XZARO_THREADS`` and ``RAYON_NUM_THREADS`` are set by the parent before
the child starts, the libraries' own settings here.
"""

from __future__ import annotations

import gc
import json
import resource
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # the working tree's xzaro

import _zarrs_data as data  # noqa: E402

Box = data.Box
ARRAY_READERS = ("xzaro", "zarrs", "tensorstore", "zarrista", "zarr")
XARRAY_READERS = ("xr-zaro", "xr-zarr", "xr-dask")
#: Readers whose values are not the array's (only their shape and data type are checked).
UNCHECKED = ("xr-dask",)


class Unavailable(Exception):
    """The reader's library cannot be imported in this interpreter (shown as ``n/a``)."""


class Lib:
    """One library's open / read / write-alike, as the cases use them."""

    name = ""

    def versions(self) -> dict[str, str]:
        """Versions worth recording (distribution name -> version)."""
        return {}

    def open(self, path: str) -> Any:
        """Open the array directory ``path``."""
        raise NotImplementedError

    def read(self, handle: Any, box: Box) -> np.ndarray:
        """Read ``box`` into a numpy array."""
        raise NotImplementedError

    def write_like(self, handle: Any, dst: str, values: np.ndarray) -> None:
        """Write ``values`` as a new V3 array at ``dst`` with the codecs of ``handle``."""
        raise NotImplementedError


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


class XzaroLib(Lib):
    """``xzaro.open_array(path)[box]``; writes with ``write_array`` and the source's metadata."""

    name = "xzaro"

    def __init__(self) -> None:
        # imported here, untimed, as a script imports it at its top: the other libraries'
        # writers come with the import of the library itself
        from xzaro.writers.store_array import write_array

        self._write_array = write_array

    def versions(self) -> dict[str, str]:
        import xzaro

        return {"xzaro": xzaro.__version__}

    def open(self, path: str) -> Any:
        import xzaro

        return xzaro.open_array(path)

    def read(self, handle: Any, box: Box) -> np.ndarray:
        return handle[box]

    def write_like(self, handle: Any, dst: str, values: np.ndarray) -> None:
        import xzaro

        self._write_array(xzaro.open_store(dst, mode="w"), "", handle.meta, values)


class ZarrLib(Lib):
    """zarr-python's ``open_array(path)[box]``, default pipeline or the zarrs pipeline."""

    def __init__(self, zarrs: bool, threads: int) -> None:
        import zarr

        self.name = "zarrs" if zarrs else "zarr"
        settings: dict[str, Any] = {"threading.max_workers": threads}
        if zarrs:
            import zarrs  # fails clearly when the package is missing

            settings["codec_pipeline.path"] = "zarrs.ZarrsCodecPipeline"
        zarr.config.set(settings)

    def versions(self) -> dict[str, str]:
        out = {"zarr": _version("zarr")}
        if self.name == "zarrs":
            out["zarrs"] = _version("zarrs")
        return out

    def open(self, path: str) -> Any:
        import zarr

        return zarr.open_array(path, mode="r")

    def read(self, handle: Any, box: Box) -> np.ndarray:
        return handle[box]

    def write_like(self, handle: Any, dst: str, values: np.ndarray) -> None:
        import zarr

        out = zarr.create_array(
            store=dst,
            shape=handle.shape,
            dtype=handle.dtype,
            chunks=handle.chunks,
            shards=handle.shards,
            compressors=handle.compressors,
            filters=handle.filters,
            serializer=handle.serializer,
            fill_value=handle.fill_value,
            dimension_names=handle.metadata.dimension_names,
            zarr_format=3,
            overwrite=True,
        )
        out[...] = values


class ZarristaLib(Lib):
    """zarrista (zarrs' Rust API): ``Array.open(FilesystemStore(dir), "/")[box]``."""

    name = "zarrista"

    def versions(self) -> dict[str, str]:
        return {"zarrista": _version("zarrista")}

    def open(self, path: str) -> Any:
        import zarrista

        return zarrista.Array.open(zarrista.store.FilesystemStore(path), "/")

    def read(self, handle: Any, box: Box) -> np.ndarray:
        return handle[box].to_numpy()

    def write_like(self, handle: Any, dst: str, values: np.ndarray) -> None:
        import zarrista

        Path(dst).mkdir(parents=True, exist_ok=True)
        out = zarrista.Array.from_metadata(
            handle.metadata, zarrista.store.FilesystemStore(dst), "/"
        )
        out.store_metadata()
        out[...] = values


class TensorstoreLib(Lib):
    """tensorstore's ``zarr3`` driver: ``ts.open(spec).result()[box].read().result()``."""

    name = "tensorstore"

    def __init__(self, threads: int) -> None:
        self.context = {
            "data_copy_concurrency": {"limit": threads},
            "file_io_concurrency": {"limit": max(threads, 1)},
        }

    def versions(self) -> dict[str, str]:
        return {"tensorstore": _version("tensorstore")}

    def _spec(self, path: str) -> dict[str, Any]:
        return {
            "driver": "zarr3",
            "kvstore": {"driver": "file", "path": path},
            "context": self.context,
        }

    def open(self, path: str) -> Any:
        import tensorstore as ts

        return ts.open(self._spec(path), read=True).result()

    def read(self, handle: Any, box: Box) -> np.ndarray:
        return handle[box].read().result()

    def write_like(self, handle: Any, dst: str, values: np.ndarray) -> None:
        import tensorstore as ts

        meta = handle.spec().to_json()["metadata"]
        spec = {**self._spec(dst), "metadata": meta}
        out = ts.open(spec, create=True, delete_existing=True).result()
        out.write(values).result()


class XarrayLib(Lib):
    """``xr.open_dataset(root, engine=..., chunks={})`` and the variable's ``.values``."""

    def __init__(self, engine: str, threads: int) -> None:
        import dask

        self.name = f"xr-{engine}"
        self.engine = engine
        dask.config.set(scheduler="threads", num_workers=threads)

    def versions(self) -> dict[str, str]:
        return {k: _version(k) for k in ("xarray", "dask", "zarr")}

    def open(self, path: str) -> Any:
        import xarray as xr

        root = str(Path(path).parent)  # xarray opens the group holding the array
        kwargs: dict[str, Any] = {"consolidated": False}
        return xr.open_dataset(root, engine=self.engine, chunks={}, **kwargs)

    def read(self, handle: Any, box: Box) -> np.ndarray:
        return handle[data.ARRAY_NAME][box].values

    def write_like(self, handle: Any, dst: str, values: np.ndarray) -> None:
        raise NotImplementedError


class DaskAloneLib(XarrayLib):
    """Dask's part of an xarray read with ``chunks={}``, nothing read or decoded: the
    variable's Dask blocks (``engine="zaro"``'s chunking) are fresh arrays written once, then
    sliced and concatenated by ``.values`` as a reader's blocks would be."""

    def __init__(self, threads: int) -> None:
        super().__init__("zaro", threads)
        self.name = "xr-dask"

    def open(self, path: str) -> Any:
        import dask.array as da

        ds = super().open(path)
        var = ds[data.ARRAY_NAME]
        blocks = da.map_blocks(_written_block, dtype=var.dtype, chunks=var.data.chunks)
        return ds.assign({data.ARRAY_NAME: (var.dims, blocks)})


def _written_block(block_info: Any = None) -> np.ndarray:
    """A fresh block of the output's shape, every byte written once (as a decode writes it)."""
    info = block_info[None]
    out = fresh(info["chunk-shape"], info["dtype"])
    out.fill(1)
    return out


def fresh(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """New memory the cheapest way for a large output: an anonymous mapping of its own, in the
    pages the system's huge page policy gives. ``np.empty`` advises huge pages for arrays of
    4 MiB or more, whose first touch costs about five times as much on this VM (see
    benchmarks/README.md, "Memory on this VM"); a floor must not pay that."""
    import mmap

    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes < 4 * 2**20:
        return np.empty(shape, dtype=dtype)
    mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(mapping, dtype=dtype).reshape(shape)


def make_lib(reader: str, threads: int) -> Lib:
    """The :class:`Lib` of a reader name."""
    if reader == "xzaro":
        return XzaroLib()
    if reader in ("zarr", "zarrs"):
        return ZarrLib(reader == "zarrs", threads)
    if reader == "zarrista":
        return ZarristaLib()
    if reader == "tensorstore":
        return TensorstoreLib(threads)
    if reader == "xr-dask":
        return DaskAloneLib(threads)
    if reader in XARRAY_READERS:
        return XarrayLib(reader.removeprefix("xr-"), threads)
    raise ValueError(f"unknown reader {reader!r}")


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


def case_boxes(spec: dict[str, Any]) -> list[Box]:
    """The boxes the case reads one by one (chunk and inner-chunk cases)."""
    n = spec["n"]
    return data.grid_boxes(n, tuple(spec["unit"]))


def kept(boxes: list[Box]) -> set[int]:
    """Indices of the chunks whose data is kept for the check (first, middle, last)."""
    return {0, len(boxes) // 2, len(boxes) - 1}


def each(
    read: Callable[[Box], np.ndarray], boxes: list[Box], threads: int
) -> dict[int, np.ndarray]:
    """Read every box, ``threads`` at a time; keep the results of :func:`kept` indices."""
    keep = kept(boxes)
    out: dict[int, np.ndarray] = {}

    def one(i: int) -> None:
        got = read(boxes[i])
        if i in keep:
            out[i] = np.asarray(got)

    if threads == 1:
        for i in range(len(boxes)):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(one, range(len(boxes))):
                pass
    return out


def run_reader(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one case of one reader; check its values afterwards."""
    try:
        lib = make_lib(spec["reader"], spec["threads"])
    except ImportError as exc:
        raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
    path, kind, n = spec["path"], spec["kind"], spec["n"]
    full = (slice(0, n),) * 3
    slab = data.hyperslab(n)
    dst = spec.get("dst")
    if dst:
        shutil.rmtree(dst, ignore_errors=True)

    # Untimed warm-up on one element: lazy imports, thread pools and first-open costs of the
    # library are paid here, not in the timed run (which opens the array again).
    lib.read(lib.open(path), (slice(0, 1),) * 3)

    def run() -> Any:
        h = lib.open(path)
        if kind == "all":
            return lib.read(h, full)
        if kind == "slab":
            return lib.read(h, slab)
        if kind in ("chunks", "inner"):
            return each(lambda b: lib.read(h, b), case_boxes(spec), spec["threads"])
        if kind == "roundtrip":
            got = lib.read(h, full)
            lib.write_like(h, dst, got)
            return None
        raise ValueError(f"unknown case kind {kind!r}")

    cpu0 = time.process_time()
    seconds, result = _timed(run)
    cpu = time.process_time() - cpu0
    peak = peak_rss()
    problem = check(kind, n, result, spec)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss": peak,
        "problem": problem,
        "versions": lib.versions(),
    }


def check(kind: str, n: int, result: Any, spec: dict[str, Any]) -> str | None:
    """Compare a case's result with the generator (slab by slab for whole-array reads)."""
    if kind == "roundtrip":
        return None  # the parent checks the written array
    if kind in ("chunks", "inner"):
        boxes = case_boxes(spec)
        if set(result) != kept(boxes):
            return "chunk results missing"
        for i, got in result.items():
            if not np.array_equal(got, data.values(boxes[i])):
                return f"chunk {boxes[i]} differs"
        return None
    box = (slice(0, n),) * 3 if kind == "all" else data.hyperslab(n)
    got = np.asarray(result)
    shape = tuple(s.stop - s.start for s in box)
    if got.shape != shape or got.dtype != data.DTYPE:
        return f"got {got.dtype}{got.shape}, expected {data.DTYPE}{shape}"
    if spec["reader"] in UNCHECKED:
        return None
    step = 32
    for z0 in range(0, shape[0], step):
        part = (slice(box[0].start + z0, min(box[0].stop, box[0].start + z0 + step)), *box[1:])
        if not np.array_equal(got[z0 : z0 + step], data.values(part)):
            return f"values differ in planes {part[0]}"
    return None


def peak_rss() -> int:
    """This process's peak resident memory in bytes.

    ``VmHWM`` from ``/proc/self/status``, which starts afresh at ``exec``; ``ru_maxrss`` does
    not (it keeps the forking parent's peak), so it is only the fallback.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t0
    gc.enable()
    return elapsed, result


# --------------------------------------------------------------------------------------------
# Floor
# --------------------------------------------------------------------------------------------


def zstd_decoder() -> tuple[str, Callable[[], Callable[[bytes, np.ndarray], None]]]:
    """A factory of per-thread decoders ``decode(blob, out)`` writing into ``out``.

    libzstd through ctypes when the system has it: one ``ZSTD_DCtx`` per thread, one
    ``ZSTD_decompressDCtx`` per chunk, the GIL released during the call, no allocation.
    Otherwise numcodecs' ``Zstd.decode(blob, out=)``.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("zstd")
    if name:
        lib = ctypes.CDLL(name)
        lib.ZSTD_createDCtx.restype = ctypes.c_void_p
        lib.ZSTD_decompressDCtx.restype = ctypes.c_size_t
        lib.ZSTD_decompressDCtx.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]

        def make_ctypes() -> Callable[[bytes, np.ndarray], None]:
            dctx = lib.ZSTD_createDCtx()

            def decode(blob: bytes, out: np.ndarray) -> None:
                got = lib.ZSTD_decompressDCtx(dctx, out.ctypes.data, out.nbytes, blob, len(blob))
                if got > out.nbytes:
                    raise ValueError(f"zstd error {got}")

            return decode

        return f"libzstd ({name}) via ctypes", make_ctypes
    import numcodecs

    def make_numcodecs() -> Callable[[bytes, np.ndarray], None]:
        codec = numcodecs.Zstd()
        return lambda blob, out: codec.decode(blob, out=out)

    return "numcodecs Zstd.decode(out=)", make_numcodecs


def run_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """The floor's three parts, timed separately on ``threads`` threads.

    * decode: zstd-decompress every needed (inner) chunk, already in memory, into a reused
      buffer per thread (cache-hot for inner chunks) (see :func:`zstd_decoder`);
    * touch: allocate the outputs the case produces (one array, or one per chunk) with
      :func:`fresh` and write each once (``fill``), split over the threads;
    * place: copy each (inner) chunk's part from that cache-hot buffer into the output touched
      before, where the chunk cannot be decoded straight into its place (its part of a single
      output is not one C-contiguous block: a 64^3 inner chunk of a 1024^3 array is 4,096 rows
      of 128 bytes); the chunk cases decode each chunk into an output of its own and place
      nothing.
    """
    n, kind, threads = spec["n"], spec["kind"], spec["threads"]
    lay = next(x for x in data.layouts(n) if x.key == spec["layout"])
    full = (slice(0, n),) * 3
    box = data.hyperslab(n) if kind == "slab" else full
    blobs = data.encoded_chunks(Path(spec["path"]), lay, n, box)
    unit = lay.inner or lay.chunks
    unit_bytes = int(np.prod(unit)) * data.DTYPE.itemsize
    how, make_decoder = zstd_decoder()
    decoders = [make_decoder() for _ in range(threads)]
    buffers = [np.empty(unit_bytes, dtype=np.uint8) for _ in range(threads)]
    parts = [blobs[i::threads] for i in range(threads)]

    def decode(i: int) -> None:
        fn, buf = decoders[i], buffers[i]
        for blob in parts[i]:
            fn(blob, buf)

    if kind in ("chunks", "inner"):
        outputs = [tuple(s.stop - s.start for s in b) for b in case_boxes(spec)]
    else:
        outputs = [tuple(s.stop - s.start for s in box)]

    def touch_each(i: int) -> None:
        for shape in outputs[i::threads]:
            fresh(shape, data.DTYPE).fill(1)

    def touch_one(pool: ThreadPoolExecutor) -> np.ndarray:
        out = fresh(outputs[0], data.DTYPE)
        step = -(-out.shape[0] // threads)
        list(pool.map(lambda z: out[z : z + step].fill(1), range(0, out.shape[0], step)))
        return out

    units = [u for u in data.grid_boxes(n, unit) if data.intersects(u, box)]

    def place(i: int, out: np.ndarray) -> None:
        chunk = buffers[i].view(data.DTYPE).reshape(unit)
        for u in units[i::threads]:
            part = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(u, box))
            dest = out[tuple(slice(p.start - b.start, p.stop - b.start) for p, b in zip(part, box))]
            if part == u and dest.flags.c_contiguous:
                continue  # decoded straight into its place
            source = tuple(slice(p.start - a.start, p.stop - a.start) for p, a in zip(part, u))
            dest[...] = chunk[source]

    t_place = 0.0
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: None, range(threads)))  # start the threads, untimed
        t_decode, _ = _timed(lambda: list(pool.map(decode, range(threads))))
        if len(outputs) == 1:
            t_touch, out = _timed(lambda: touch_one(pool))
            t_place, _ = _timed(lambda: list(pool.map(lambda i: place(i, out), range(threads))))
            del out
        else:
            t_touch, _ = _timed(lambda: list(pool.map(touch_each, range(threads))))
    peak = peak_rss()
    return {
        "seconds": t_decode + t_touch + t_place,
        "decode": t_decode,
        "touch": t_touch,
        "place": t_place,
        "chunks": len(blobs),
        "decoder": how,
        "peak_rss": peak,
        "problem": None,
        "versions": {"numcodecs": _version("numcodecs")},
    }


def main(argv: list[str]) -> int:
    """Entry point of the child process."""
    spec = json.loads(argv[0])
    try:
        result = run_floor(spec) if spec["reader"] == "floor" else run_reader(spec)
    except Unavailable as exc:
        result = {"unavailable": str(exc)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
