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


def _demo(out: Path, *, verbose: bool) -> int:
    """Write the demo field as a V2 and a V3 store under ``out``, read it back and show it."""
    import numpy as np

    from xzaro.chunk_keys import ChunkKeyEncoding
    from xzaro.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
    from xzaro.hierarchy import open_array
    from xzaro.meta import GroupMeta, ZaroMeta
    from xzaro.stores import open_store
    from xzaro.writers import write_array, write_group

    data = sample_field()
    dims = ("time", "lat", "lon")
    print(f"xzaro demo: a {data.shape} float32 field ({human_bytes(data.nbytes)}) -> {out}")
    stores = {
        "demo_v2.zarr": ZaroMeta(
            2,
            data.shape,
            np.dtype("<f4"),
            (6, 91, 180),
            (BytesCodec("little"), BloscCodec("lz4", 5, "shuffle")),
            np.float32(np.nan),
            ChunkKeyEncoding("v2", "."),
            "C",
            None,
            dims,
            {"units": "K", "long_name": "air temperature"},
        ),
        "demo_v3.zarr": ZaroMeta(
            3,
            data.shape,
            np.dtype("float32"),
            (6, 91, 90),
            (
                ShardingCodec(
                    (6, 91, 90), (BytesCodec(), ZstdCodec(3)), (BytesCodec(), Crc32cCodec())
                ),
            ),
            np.float32(np.nan),
            ChunkKeyEncoding("default", "/"),
            "C",
            (12, 182, 180),
            dims,
            {"units": "K", "long_name": "air temperature"},
        ),
    }
    for name, meta in stores.items():
        store = open_store(str(out / name), mode="w")
        t0 = time.perf_counter()
        write_group(store, "", GroupMeta(meta.zarr_format, {"title": "xzaro demo"}))
        n = write_array(store, "air", meta, data)
        t1 = time.perf_counter()
        arr = open_array(str(out / name), "air", verbose=verbose)
        full = arr[...]
        t2 = time.perf_counter()
        region = arr.read_region((3, 40, 100), (5, 50, None))
        ok = np.array_equal(full, data) and np.array_equal(region, data[3:8, 40:90, 100:])
        print(
            f"\n{name}: wrote {n} objects in {t1 - t0:.2f}s; read back in {t2 - t1:.3f}s; "
            f"values {'identical' if ok else 'DIFFER'}"
        )
        print_tree(tree_nodes(str(out / name), "", None))
        if not ok:
            return 1
    return 0
