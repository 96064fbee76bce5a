"""Reference-store benchmark: xzaro's ``engine="zaro"`` vs xarray's ``engine="kerchunk"``.

Usage::

    python benchmarks/bench_refs.py [--repeat 3] [--workdir DIR] [--json out.json]

Cases (each timed from a path to a loaded result, best of ``--repeat``):

* ``parquet open``: ``xr.open_dataset(refs.parq, engine=...)`` on Parquet references (record size
  100,000) to 1,000,000 chunks of 64 float32 each, all byte ranges of one local file.
* ``parquet open chunks={}``: the same with Dask arrays.
* ``parquet read 20k chunks``: open, then ``ds["data"][: 20_000 * 64].values``.
* ``netcdf json full read``: the packed NetCDF4 test file (int16 with scale/offset, shuffle +
  zlib, 2 x 2 x 300 x 300) read in full through Kerchunk JSON references.

``engine="kerchunk"`` is the xarray engine the ``kerchunk`` package registers (fsspec's
``ReferenceFileSystem`` + zarr-python); without it the script falls back to fsspec's
``reference://`` with ``engine="zarr"``. A case whose first run takes more than
``SLOW_SECONDS`` is not repeated. Every result is checked against the expected values.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
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

N_CHUNKS = 1_000_000
CHUNK = 64
RECORD_SIZE = 100_000
READ_CHUNKS = 20_000
SLOW_SECONDS = 10.0
PARAMS = {"n_chunks": N_CHUNKS, "chunk": CHUNK, "record_size": RECORD_SIZE, "version": 2}


def expected_values(n: int) -> np.ndarray:
    """The first ``n`` values of the big array (exact in float32)."""
    return (np.arange(n, dtype=np.int64) % 65521).astype("<f4")


def write_parquet_case(root: Path) -> Path:
    """data.bin (256 MB) and Parquet references to its 1,000,000 chunks, written directly."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xzaro.stores.references.write import parquet_schema

    data = root / "data.bin"
    block = 2**22
    with open(data, "wb") as f:
        for start in range(0, N_CHUNKS * CHUNK, block):
            n = min(block, N_CHUNKS * CHUNK - start)
            f.write(((np.arange(start, start + n, dtype=np.int64) % 65521).astype("<f4")).tobytes())
    refs = root / "refs.parq"
    shutil.rmtree(refs, ignore_errors=True)
    (refs / "data").mkdir(parents=True)
    zarray = {
        "shape": [N_CHUNKS * CHUNK],
        "chunks": [CHUNK],
        "dtype": "<f4",
        "compressor": None,
        "filters": None,
        "fill_value": None,
        "order": "C",
        "zarr_format": 2,
    }
    meta = {
        "metadata": {
            ".zgroup": {"zarr_format": 2},
            ".zattrs": {},
            "data/.zarray": zarray,
            "data/.zattrs": {"_ARRAY_DIMENSIONS": ["x"]},
        },
        "record_size": RECORD_SIZE,
    }
    nbytes = CHUNK * 4
    for record in range(N_CHUNKS // RECORD_SIZE):
        first = record * RECORD_SIZE
        frame = pd.DataFrame(
            {
                "path": [str(data)] * RECORD_SIZE,
                "offset": np.arange(first, first + RECORD_SIZE, dtype=np.int64) * nbytes,
                "size": np.full(RECORD_SIZE, nbytes, dtype=np.int64),
                "raw": [None] * RECORD_SIZE,
            }
        )
        # kerchunk's column types (binary raw, non-null int64), readable by fastparquet too
        table = pa.Table.from_pandas(frame, schema=parquet_schema(), preserve_index=False)
        pq.write_table(table, refs / "data" / f"refs.{record}.parq", compression="zstd")
    (refs / ".zmetadata").write_text(json.dumps(meta))
    return refs


def write_netcdf_case(root: Path) -> tuple[Path, Path]:
    """The packed NetCDF4 test file and Kerchunk JSON references to it."""
    import h5netcdf
    from kerchunk.hdf import SingleHdf5ToZarr

    nc = root / "packed.nc"
    rng = np.random.default_rng(0)
    with h5netcdf.File(nc, "w") as f:
        f.dimensions = {"time": None, "depth": 2, "lat": 300, "lon": 300}
        f.resize_dimension("time", 2)
        t = f.create_variable("time", ("time",), "f8")
        t.attrs["units"] = "days since 2000-01-01"
        t[:] = [0.0, 1.0]
        f.create_variable("depth", ("depth",), "f4", data=np.array([0.5, 10.0], "f4"))
        f.create_variable("lat", ("lat",), "f4", data=np.linspace(-60, 60, 300, dtype="f4"))
        f.create_variable("lon", ("lon",), "f4", data=np.linspace(0, 359, 300, dtype="f4"))
        v = f.create_variable(
            "temperature",
            ("time", "depth", "lat", "lon"),
            "i2",
            chunks=(1, 1, 300, 300),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
            fillvalue=np.int16(-32767),
        )
        v.attrs["scale_factor"] = np.float32(0.01)
        v.attrs["add_offset"] = np.float32(10.0)
        v[:] = rng.integers(-1500, 1500, size=(2, 2, 300, 300)).astype("i2")
    refs = root / "packed.json"
    refs.write_text(json.dumps(SingleHdf5ToZarr(str(nc), inline_threshold=100).translate()))
    return nc, refs


def kerchunk_open(url: str, **kwargs: Any) -> Any:
    """``engine="kerchunk"`` if registered, else fsspec ``reference://`` + ``engine="zarr"``."""
    import xarray as xr

    if "kerchunk" in xr.backends.list_engines():
        return xr.open_dataset(
            url, engine="kerchunk", storage_options={"remote_protocol": "file"}, **kwargs
        )
    return xr.open_dataset(
        "reference://",
        engine="zarr",
        backend_kwargs={
            "consolidated": False,
            "storage_options": {"fo": url, "remote_protocol": "file"},
        },
        **kwargs,
    )


def zaro_open(url: str, **kwargs: Any) -> Any:
    import xarray as xr

    return xr.open_dataset(url, engine="zaro", **kwargs)


def run_case(fn: Callable[[], Any], check: Callable[[Any], bool], repeat: int) -> Timing:
    """Time ``fn`` (best of ``repeat``; one run when slow) and verify its first result."""
    timing = Timing(nbytes=0)
    for i in range(repeat):
        try:
            elapsed, result = timed(fn)
        except Exception as exc:  # a reader that fails is reported, not fatal
            traceback.print_exc()
            timing.fail(ERR, f"{type(exc).__name__}: {exc}")
            return timing
        timing.times.append(elapsed)
        if i == 0 and not check(result):
            timing.fail(WRONG, "result differs from the expected values")
            return timing
        if elapsed > SLOW_SECONDS:
            break
    return timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "xzaro-bench-refs")
    )
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import xarray as xr

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not marker_matches(workdir, PARAMS):
        clear_marker(workdir)
        print(f"writing the data and references to {workdir} ...", flush=True)
        elapsed, _ = timed(lambda: write_parquet_case(workdir))
        print(f"  1,000,000 Parquet references + 256 MB target in {elapsed:.1f}s", flush=True)
        write_marker(workdir, PARAMS)
    parq = str(workdir / "refs.parq")
    nc, nc_refs = write_netcdf_case(workdir)
    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        nc_expected = ds.load()

    first = expected_values(READ_CHUNKS * CHUNK)
    n_read = READ_CHUNKS * CHUNK

    def is_parquet_ds(ds: Any) -> bool:
        return ds["data"].shape == (N_CHUNKS * CHUNK,)

    def same_nc(ds: Any) -> bool:
        return bool(
            np.allclose(
                ds["temperature"].values,
                nc_expected["temperature"].values,
                rtol=1e-6,
                atol=1e-5,
                equal_nan=True,
            )
        )

    readers = {"xzaro": zaro_open, "kerchunk": kerchunk_open}
    cases: dict[str, dict[str, Callable[[], Any]]] = {}
    checks: dict[str, Callable[[Any], bool]] = {
        "parquet open": is_parquet_ds,
        "parquet open chunks={}": is_parquet_ds,
        "parquet read 20k chunks": lambda a: np.array_equal(a, first),
        "netcdf json full read": same_nc,
    }
    for name, opener in readers.items():

        def read20k(opener: Callable[..., Any] = opener) -> Any:
            return opener(parq)["data"][:n_read].values

        cases.setdefault("parquet open", {})[name] = lambda o=opener: o(parq)
        cases.setdefault("parquet open chunks={}", {})[name] = lambda o=opener: o(parq, chunks={})
        cases.setdefault("parquet read 20k chunks", {})[name] = read20k
        cases.setdefault("netcdf json full read", {})[name] = lambda o=opener: o(
            str(nc_refs)
        ).load()

    results: dict[str, dict[str, Timing]] = {}
    status = 0
    for case, fns in cases.items():
        results[case] = {}
        for name, fn in fns.items():
            t = run_case(fn, checks[case], args.repeat)
            results[case][name] = t
            if t.status in (ERR, WRONG):
                status = 1
            best = f"{t.best:.3f}s" if t.best is not None else t.status
            print(f"  {case:<26} {name:<9} {best}", flush=True)

    rows = []
    for case, by_reader in results.items():
        z, k = by_reader["xzaro"], by_reader["kerchunk"]
        ratio = f"{k.best / z.best:.1f}x" if z.best and k.best else NA
        rows.append(
            [
                case,
                f"{z.best:.3f}" if z.best is not None else z.status,
                f"{k.best:.3f}" if k.best is not None else k.status,
                ratio,
            ]
        )
    print()
    print(format_table(["case", "xzaro s", "kerchunk s", "kerchunk/xzaro"], rows))
    if args.json:
        dump_json(
            args.json,
            {
                "params": PARAMS,
                "environment": environment(),
                "packages": package_versions(
                    ["xzaro", "xarray", "kerchunk", "fsspec", "zarr", "pyarrow", "fastparquet"]
                ),
                "results": {
                    case: {name: t.to_json() for name, t in by.items()}
                    for case, by in results.items()
                },
            },
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
