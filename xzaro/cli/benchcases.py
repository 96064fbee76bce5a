"""The cases of ``xzaro bench``: generated data written and read by xzaro.

The package never imports zarr-python (it is a test oracle), so the peers are compared by the
scripts of ``benchmarks/`` in a source checkout, not here.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as field_
from pathlib import Path
from typing import Any

import numpy as np

from xzaro.cli.text import table

PLANE = (512, 512)
CHUNKS = (16, 256, 256)
SHARDS = (64, 512, 512)
REGION = (slice(5, None), slice(100, 420), slice(60, 380))  # the first axis is set per size

# name -> (what it times, (workdir, data) -> seconds)
CASES: dict[str, tuple[str, Callable[..., float]]] = {}


def case(name: str, what: str) -> Callable[[Callable[..., float]], Any]:
    """Register a case under ``name``."""

    def register(fn: Callable[..., float]) -> Callable[..., float]:
        CASES[name] = (what, fn)
        return fn

    return register


def field(size: int) -> np.ndarray:
    """A smooth float32 field ``(size, 512, 512)`` with seeded noise, rounded to 0.01."""
    t, y, x = np.ogrid[:size, : PLANE[0], : PLANE[1]]
    smooth = 10 * np.sin(t / 7 + y / 40) + 5 * np.cos(x / 30)
    noise = np.random.default_rng(0).normal(0, 0.5, (size, *PLANE))
    return np.round(smooth + noise, 2).astype(np.float32)


def region(size: int) -> tuple[slice, ...]:
    """About a tenth of the array, lining up with no chunk."""
    return (slice(min(5, size - 1), max(6, size * 4 // 5)), *REGION[1:])


def layout(size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The chunk and shard shapes for ``size`` planes (a shard holds whole chunks)."""
    chunk = min(CHUNKS[0], size)
    shard = max(chunk, min(SHARDS[0], size) // chunk * chunk)
    return (chunk, *CHUNKS[1:]), (shard, *SHARDS[1:])


def xzaro_meta(fmt: int, shape: tuple[int, ...]) -> Any:
    """The ``ZaroMeta`` of the V2 (Blosc lz4) or V3 sharded (Blosc zstd) store."""
    from xzaro.chunk_keys import ChunkKeyEncoding
    from xzaro.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
    from xzaro.meta import ZaroMeta

    blosc = BloscCodec("lz4" if fmt == 2 else "zstd", 5 if fmt == 2 else 3, "shuffle", 4)
    chunks, shards = layout(shape[0])
    if fmt == 2:
        codecs: tuple[Any, ...] = (BytesCodec("little"), blosc)
        keys = ChunkKeyEncoding("v2", ".")
    else:
        codecs = (ShardingCodec(chunks, (BytesCodec(), blosc), (BytesCodec(), Crc32cCodec())),)
        keys = ChunkKeyEncoding("default", "/")
    dtype = np.dtype("<f4") if fmt == 2 else np.dtype("float32")
    shard_shape = shards if fmt == 3 else None
    return ZaroMeta(
        fmt, shape, dtype, chunks, codecs, np.float32(0), keys, "C", shard_shape, None, {}
    )


def write_with(path: Path, data: np.ndarray, fmt: int) -> None:
    """Write ``data`` as array ``a`` of a new store at ``path``."""
    from xzaro.stores import open_store
    from xzaro.writers import write_array

    write_array(open_store(str(path), mode="w"), "", xzaro_meta(fmt, data.shape), data)


def read_with(path: Path, selection: Any) -> np.ndarray:
    """Open the array at ``path`` and read ``selection``."""
    from xzaro.hierarchy import open_array

    return np.asarray(open_array(str(path))[selection])


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``fn()`` took, and its value."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def writer(fmt: int) -> Callable[..., float]:
    """A case writing a new store of format ``fmt``."""

    def run(workdir: Path, data: np.ndarray) -> float:
        path = workdir / f"w{fmt}-{time.perf_counter_ns()}.zarr"
        seconds, _ = timed(lambda: write_with(path, data, fmt))
        return seconds

    return run


def reader(fmt: int, whole: bool) -> Callable[..., float]:
    """A case reading (``whole`` or a region of) the store of format ``fmt``, checking the
    values."""

    def run(workdir: Path, data: np.ndarray) -> float:
        path = workdir / f"source-v{fmt}.zarr"
        if not path.exists():
            write_with(path, data, fmt)
        selection = (...,) if whole else region(data.shape[0])
        seconds, values = timed(lambda: read_with(path, selection))
        if not np.array_equal(values, data[selection]):
            raise RuntimeError(f"xzaro read wrong values from {path}")
        return seconds

    return run


case("write-v2", "write the field as V2, Blosc lz4 chunks")(writer(2))
case("write-v3", "write the field as V3, Blosc zstd chunks in shards")(writer(3))
case("read-v2", "open and read the whole V2 array")(reader(2, True))
case("read-v3", "open and read the whole V3 sharded array")(reader(3, True))
case("region-v3", "open and read a region (about 10%) of the V3 array")(reader(3, False))


def warm_up(workdir: Path) -> None:
    """Write and read one plane in each format, untimed, so that no case times first imports
    or the start of thread pools."""
    plane = field(1)
    for fmt in (2, 3):
        path = workdir / f"warm-{fmt}.zarr"
        write_with(path, plane, fmt)
        read_with(path, (...,))


@dataclass
class Results:
    """The best time of each case run."""

    size_mib: int
    repeat: int
    seconds: dict[str, float] = field_(default_factory=dict)
    nbytes: dict[str, int] = field_(default_factory=dict)

    def mb_per_second(self, case: str) -> float:
        """Uncompressed megabytes (1e6 B) per second."""
        return self.nbytes[case] / self.seconds[case] / 1e6

    def text(self) -> str:
        """The table ``xzaro bench`` prints."""
        header = ["case", "seconds", "MB/s"]
        rows = [
            [case, f"{best:.3f}", f"{self.mb_per_second(case):.0f}"]
            for case, best in self.seconds.items()
        ]
        note = (
            "\n(xzaro alone; the peers - zarr-python, tensorstore, zarrs - are compared by the "
            "scripts of benchmarks/ in a source checkout: xzaro bench --list)"
        )
        title = f"{self.size_mib} MiB float32 {(self.size_mib, *PLANE)}, best of {self.repeat}"
        return f"{title}\n{table(header, rows)}{note}"


def measure(
    names: list[str],
    size_mib: int,
    repeat: int,
    *,
    step: Callable[[], Any] | None = None,
) -> Results:
    """Run the cases ``names``, each ``repeat`` times, keeping the best time; ``step()`` is
    called after each run."""
    results = Results(size_mib, repeat)
    data = field(size_mib)
    with tempfile.TemporaryDirectory(prefix="xzaro-bench-") as tmp:
        warm_up(Path(tmp))
        for name in names:
            run = CASES[name][1]
            selected = data[region(size_mib)] if name.startswith("region") else data
            results.nbytes[name] = selected.nbytes
            for _ in range(repeat):
                seconds = run(Path(tmp), data)
                results.seconds[name] = min(results.seconds.get(name, seconds), seconds)
                if step is not None:
                    step()
    return results
