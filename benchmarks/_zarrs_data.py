"""Data of the zarrs/zarr_benchmarks suite: generator, layouts, stores on disk, encoded chunks.

Only numpy (and, for writing, tensorstore) is imported at module level, so the child process of
``bench_zarrs.py`` can import this module under another interpreter (``--peer-python``).

Axes: the array is indexed ``a[z, y, x]`` (axis 0 is z, the slowest; axis 2 is x, contiguous in
memory), and ``a[z, y, x] = (x + y**2 // 32 + z**3) % 65536`` as uint16, as the generator of the
published suite writes it (``g2 + g1*g1/32 + g0*g0*g0`` with ``g0`` the first index).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DTYPE = np.dtype("uint16")
GENERATOR_VERSION = 1  # bump whenever values() or the layouts change
ARRAY_NAME = "v"  # the array inside each store's root group (xarray opens groups)
DIMS = ("z", "y", "x")
ZSTD_LEVEL = 0

Box = tuple[slice, ...]


def values(box: Box) -> np.ndarray:
    """The benchmark values of ``box`` (three step-1 slices ``z, y, x``), as uint16.

    Each term is reduced modulo 65536 first; uint16 additions then wrap, which is the modulo.
    """
    z, y, x = (np.arange(s.start, s.stop, dtype=np.uint64) for s in box)
    zt = (z**3 % 65536).astype(DTYPE)
    yt = (y * y // 32 % 65536).astype(DTYPE)
    xt = (x % 65536).astype(DTYPE)
    plane = yt[:, None] + xt[None, :]
    return zt[:, None, None] + plane[None, :, :]


@dataclass(frozen=True)
class Layout:
    """One benchmark array: its store directory and chunking."""

    key: str
    chunks: tuple[int, ...]  # chunk shape, or shard shape when ``inner`` is set
    inner: tuple[int, ...] | None = None

    def metadata(self, n: int) -> dict[str, Any]:
        """The Zarr V3 ``zarr.json`` of the array (zstd level 0, no checksum)."""
        zstd = {"name": "zstd", "configuration": {"level": ZSTD_LEVEL, "checksum": False}}
        bytes_codec = {"name": "bytes", "configuration": {"endian": "little"}}
        if self.inner is None:
            codecs: list[dict[str, Any]] = [bytes_codec, zstd]
        else:
            codecs = [
                {
                    "name": "sharding_indexed",
                    "configuration": {
                        "chunk_shape": list(self.inner),
                        "codecs": [bytes_codec, zstd],
                        "index_codecs": [bytes_codec, {"name": "crc32c"}],
                        "index_location": "end",
                    },
                }
            ]
        return {
            "zarr_format": 3,
            "node_type": "array",
            "shape": [n, n, n],
            "data_type": "uint16",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(self.chunks)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": codecs,
            "attributes": {},
            "dimension_names": list(DIMS),
        }

    def describe(self) -> str:
        """One line: chunking and codecs."""
        c = "x".join(map(str, self.chunks))
        if self.inner is None:
            return f"chunks {c}, zstd level {ZSTD_LEVEL}"
        i = "x".join(map(str, self.inner))
        return f"shards {c} of inner chunks {i}, zstd level {ZSTD_LEVEL}"


def layouts(n: int) -> list[Layout]:
    """The two arrays: 256^3 chunks, and 256^3 shards of 64^3 inner chunks (n = 1024).

    Smaller arrays (``--quick``) scale the chunking to keep a grid of several chunks: chunks
    ``n/2`` (at least 16), inner chunks a quarter of that.
    """
    c = 256 if n >= 1024 else max(16, n // 2)
    i = 64 if n >= 1024 else max(4, c // 4)
    return [Layout("compress", (c, c, c)), Layout("compress+shard", (c, c, c), (i, i, i))]


def store_root(workdir: Path, n: int, layout: Layout) -> Path:
    """The store (root group) directory of one array."""
    return workdir / str(n) / f"{layout.key.replace('+', '_')}.zarr"


def array_path(workdir: Path, n: int, layout: Layout) -> Path:
    """The array directory inside its store."""
    return store_root(workdir, n, layout) / ARRAY_NAME


def data_params(n: int) -> dict[str, Any]:
    """Everything that determines the bytes on disk (compared with the workdir marker)."""
    return {
        "generator_version": GENERATOR_VERSION,
        "value": "(x + y**2 // 32 + z**3) % 65536, a[z, y, x]",
        "shape": [n, n, n],
        "dtype": DTYPE.str,
        "arrays": {lay.key: lay.metadata(n) for lay in layouts(n)},
    }


def write_group(root: Path) -> None:
    """The root group's ``zarr.json``."""
    root.mkdir(parents=True, exist_ok=True)
    doc = {"zarr_format": 3, "node_type": "group", "attributes": {}}
    (root / "zarr.json").write_text(json.dumps(doc, indent=2))


def write_array(root: Path, n: int, layout: Layout) -> None:
    """Write one array with tensorstore, slab by slab along z (one chunk/shard deep)."""
    import tensorstore as ts

    if root.exists():
        shutil.rmtree(root)
    write_group(root)
    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": str(root / ARRAY_NAME)},
        "metadata": {
            k: v
            for k, v in layout.metadata(n).items()
            if k not in ("zarr_format", "node_type", "attributes")
        },
    }
    arr = ts.open(spec, create=True, delete_existing=True).result()
    depth = layout.chunks[0]
    for z0 in range(0, n, depth):
        z1 = min(n, z0 + depth)
        box = (slice(z0, z1), slice(0, n), slice(0, n))
        arr[z0:z1].write(values(box)).result()


def sample_boxes(n: int) -> list[Box]:
    """A few boxes spread over the array (corners, middle, an unaligned box) for checks."""
    q = max(1, n // 7)
    return [
        (slice(0, 2), slice(0, n), slice(0, n)),
        (slice(n - 3, n), slice(n - 5, n), slice(0, n)),
        (slice(q, 3 * q), slice(2 * q, 5 * q), slice(q + 1, 6 * q)),
        (slice(n // 2, n // 2 + 1), slice(0, n), slice(n // 3, n)),
    ]


def check_boxes(read: Any, n: int) -> str | None:
    """Compare ``read(box)`` with :func:`values` on :func:`sample_boxes`; a problem or None."""
    for box in sample_boxes(n):
        got = np.asarray(read(box))
        want = values(box)
        if got.shape != want.shape or not np.array_equal(got, want):
            return f"values differ in {box}"
    return None


def hyperslab(n: int) -> Box:
    """The "10% hyperslab": a central cube ``[s:s+L]^3`` with ``L = round(n * 0.1 ** (1/3))``.

    For n = 1024: ``[274:749]^3``, 475^3 = 107,171,875 elements = 9.98% of the array,
    aligned with no chunk, shard or inner chunk (it straddles the 256, 512 boundaries on every
    axis).
    """
    length = round(n * 0.1 ** (1 / 3))
    start = (n - length) // 2
    return (slice(start, start + length),) * 3


def grid_boxes(n: int, chunk: tuple[int, ...]) -> list[Box]:
    """Every chunk's box, C order."""
    counts = [math.ceil(n / c) for c in chunk]
    return [
        tuple(slice(i * c, min(n, (i + 1) * c)) for i, c in zip(idx, chunk))
        for idx in np.ndindex(*counts)
    ]


def intersects(a: Box, b: Box) -> bool:
    """Whether two boxes overlap."""
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b))


# --------------------------------------------------------------------------------------------
# Encoded chunks (for the floor)
# --------------------------------------------------------------------------------------------


def encoded_chunks(array_dir: Path, layout: Layout, n: int, box: Box) -> list[bytes]:
    """The zstd-compressed bytes of every (inner) chunk that ``box`` touches.

    For a sharded array the shard indexes (``(offset, nbytes)`` little-endian uint64 pairs at the
    end, then a crc32c) are parsed, and each needed inner chunk is sliced out of its shard.
    """
    out: list[bytes] = []
    for sbox in grid_boxes(n, layout.chunks):
        if not intersects(sbox, box):
            continue
        key = "/".join(["c", *(str(s.start // c) for s, c in zip(sbox, layout.chunks))])
        f = array_dir / key
        if not f.exists():
            continue
        blob = f.read_bytes()
        if layout.inner is None:
            out.append(blob)
            continue
        per = [c // i for c, i in zip(layout.chunks, layout.inner)]
        count = math.prod(per)
        index = np.frombuffer(blob[-(16 * count + 4) : -4], dtype="<u8").reshape(count, 2)
        for local, (offset, nbytes) in zip(np.ndindex(*per), index):
            if offset == np.uint64(2**64 - 1):
                continue
            ibox = tuple(
                slice(s.start + li * i, s.start + (li + 1) * i)
                for s, li, i in zip(sbox, local, layout.inner)
            )
            if intersects(ibox, box):
                out.append(blob[int(offset) : int(offset + nbytes)])
    return out


def prepare(workdir: Path, n: int) -> list[Layout]:
    """Write the arrays unless the workdir holds them already for these parameters.

    The marker is ``<workdir>/<n>/bench-params.json``; a crash while writing leaves none.
    """
    from _common import clear_marker, marker_matches, write_marker

    base = workdir / str(n)
    base.mkdir(parents=True, exist_ok=True)
    lays = layouts(n)
    params = data_params(n)
    if marker_matches(base, params) and all(
        (array_path(workdir, n, lay) / "zarr.json").exists() for lay in lays
    ):
        print(f"reusing arrays in {base}")
        return lays
    clear_marker(base)
    for lay in lays:
        t0 = time.perf_counter()
        write_array(store_root(workdir, n, lay), n, lay)
        print(f"  wrote {lay.key} in {time.perf_counter() - t0:.1f} s", flush=True)
    write_marker(base, params)
    return lays


def tree_bytes(path: Path) -> int:
    """Bytes of the chunk/shard files under ``path`` (metadata excluded)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f != "zarr.json")
    return total
