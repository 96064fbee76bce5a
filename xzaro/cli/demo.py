"""``xzaro demo``: write a sample field as a V2 and a V3 store, read it back, show it."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xzaro.cli.info import print_tree, tree_nodes
from xzaro.cli.text import human_bytes

if TYPE_CHECKING:
    import numpy as np


def add_command(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "demo",
        parents=parents,
        help="write a small sample store and read it back",
        description="Write a sample field as a V2 and a V3 store, read it back and show what "
        "was written. Without --out the stores go to a temporary directory that is removed.",
    )
    p.add_argument("--out", default=None, help="directory to keep the sample stores in")
    p.add_argument("-v", "--verbose", action="store_true", help="show xzaro's log")
    p.set_defaults(func=cmd_demo)


def sample_field(shape: tuple[int, int, int] = (24, 181, 360)) -> np.ndarray:
    """A smooth temperature-like field (time, lat, lon) with a little noise, in kelvin."""
    import numpy as np

    t, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    lat = np.deg2rad(90 - y)
    field = 288 - 30 * np.sin(lat) ** 2 + 5 * np.sin(2 * np.pi * (x / 360 + t / 24))
    noise = np.random.default_rng(0).normal(0, 0.3, shape)
    return np.round(field + noise, 2).astype(np.float32)


def sample_dataset() -> Any:
    """The demo dataset: hourly ``air`` temperature on a 1-degree grid, with coordinates."""
    import numpy as np
    import xarray as xr

    data = sample_field()
    coords = {
        "time": np.arange("2026-01-01T00", "2026-01-02T00", dtype="datetime64[h]").astype(
            "datetime64[ns]"
        ),
        "lat": np.arange(90.0, -90.5, -1.0),
        "lon": np.arange(0.0, 360.0, 1.0),
    }
    attrs = {"units": "K", "long_name": "air temperature"}
    air = xr.Variable(("time", "lat", "lon"), data, attrs)
    return xr.Dataset({"air": air}, coords=coords, attrs={"title": "xzaro demo"})


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``xzaro demo``: the stores go to ``--out``, or to a temporary directory removed after."""
    if args.out:
        status = _demo(Path(args.out), verbose=args.verbose)
        if status == 0:
            print(f"\nTry: xzaro info {Path(args.out) / 'demo_v3.zarr'}")
        return status
    with tempfile.TemporaryDirectory(prefix="xzaro-demo-") as tmp:
        status = _demo(Path(tmp), verbose=args.verbose)
    print("\nThe demo stores were removed; keep them with: xzaro demo --out DIR")
    return status


#: How each demo store is written: ``ds.zaro.to_store`` options.
STORES: dict[str, dict[str, Any]] = {
    "demo_v2.zarr": {
        "zarr_format": 2,
        "chunks": {"time": 6, "lat": 91, "lon": 180},
        "compressor": ("lz4", 5, "shuffle"),
    },
    "demo_v3.zarr": {
        "zarr_format": 3,
        "chunks": {"time": 6, "lat": 91, "lon": 90},
        "shards": {"time": 12, "lat": 182, "lon": 180},
        "compressor": ("zstd", 3, "shuffle"),
    },
}


def _demo(out: Path, *, verbose: bool) -> int:
    """Write the demo dataset as a V2 and a V3 store under ``out`` with ``ds.zaro.to_store``,
    read it back with ``engine="zaro"`` and show what was written."""
    import xarray as xr

    from xzaro.writers import BloscCompressionParams

    ds = sample_dataset()
    print(f"xzaro demo: {human_bytes(ds.nbytes)} of hourly air temperature -> {out}")
    print(ds)
    for name, options in STORES.items():
        path = str(out / name)
        t0 = time.perf_counter()
        blosc = BloscCompressionParams(*options["compressor"])
        ds.zaro.to_store(path, mode="w", **{**options, "compressor": blosc})
        t1 = time.perf_counter()
        back = xr.open_dataset(path, engine="zaro", chunks=None, verbose=verbose)
        back.load()
        t2 = time.perf_counter()
        window = back.air.sel(lat=slice(50, 0), lon=slice(100, None)).isel(time=slice(3, 8))
        ok = back.identical(ds) and window.equals(ds.air[3:8, 40:91, 100:])
        print(
            f"\n{name}: written in {t1 - t0:.2f}s; read back in {t2 - t1:.3f}s; "
            f"values {'identical' if ok else 'DIFFER'}"
        )
        print_tree(tree_nodes(path, "", None))
        if not ok:
            return 1
    return 0
