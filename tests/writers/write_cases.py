"""What the writer tests share: the data they write, the layouts they write it in, and the
stores and metadata they write it to."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from helpers import NUMERIC_DTYPES, assert_same, values

from xzaro.stores import MemoryStore
from xzaro.writers import BloscCompressionParams
from xzaro.writers.layout import array_meta

#: The warnings writer tests leave aside (zarr-python's and xarray's about formats and codecs).
QUIET = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]
EMPTY = 2**64 - 1

METADATA_NAMES = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"})


def assert_datasets_same(actual: xr.Dataset, expected: xr.Dataset, what: str = "") -> None:
    assert set(actual.variables) == set(expected.variables), what
    for name in expected.variables:
        assert actual[name].dims == expected[name].dims, (what, name)
        assert_same(actual[name].values, expected[name].values, f"{what}:{name}")


def data_keys(keys: Iterable[str]) -> list[str]:
    return sorted(k for k in keys if k.rsplit("/", 1)[-1] not in METADATA_NAMES)


class RecordingStore(MemoryStore):
    """A memory store that records every key written, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []
        self._log_lock = threading.Lock()

    def set(self, key: str, value: bytes) -> None:
        with self._log_lock:
            self.log.append(key)
        super().set(key, value)

    def set_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        items = list(items)
        with self._log_lock:
            self.log.extend(k for k, _ in items)
        super().set_many(items)


SHAPE = (7, 5)  # ragged against chunks (3, 2) and shards (6, 4) on both axes

CHUNKS = {"y": 3, "x": 2}

SHARDS = {"y": 6, "x": 4}

LAYOUTS: dict[str, dict[str, Any]] = {
    "v2": {"zarr_format": 2},
    "v3": {"zarr_format": 3},
    "v3_sharded": {"zarr_format": 3, "shards": SHARDS},
}

DTYPES = [*NUMERIC_DTYPES, "datetime64[ns]", "S6", "U5", "object"]


def sample(dtype: str, shape: tuple[int, ...] = SHAPE, seed: str = "") -> np.ndarray:
    """Deterministic values: full integer ranges, NaN/inf/-0.0 floats, NaT, mixed strings."""
    seed = seed or dtype
    if dtype == "object":
        return values(str, shape, seed)
    if dtype.startswith("datetime64"):
        n = math.prod(shape)
        v = np.datetime64("1999-12-31T06", "ns") + np.arange(n).astype("m8[h]") * 7
        v[min(3, n - 1)] = np.datetime64("NaT")
        return v.reshape(shape)
    return values(dtype, shape, seed)


def dataset(dtype: str, *, dask_chunks: dict[str, int] | None = None) -> xr.Dataset:
    ds = xr.Dataset(
        {"v": (("y", "x"), sample(dtype), {"note": "ünïcode attr", "n": 3})},
        coords={"x": ("x", np.arange(SHAPE[1], dtype="int32") * 2)},
        attrs={"title": "round trip"},
    )
    return ds.chunk(dask_chunks) if dask_chunks else ds


def tensorstore_reads(dtype: np.dtype, zarr_format: int) -> bool:
    """Which stored dtypes tensorstore can read back losslessly at all."""
    # tensorstore has no fixed-length unicode or variable-length strings, no V3 fixed bytes,
    # and gives V2 "|S6" as a (..., 6) array of dtype "char" whose numpy view loses the bytes.
    return dtype.kind not in "SUO"


def meta_for(
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    shards: tuple[int, ...] | None = None,
    *,
    zarr_format: int = 3,
    dtype: str = "float32",
    compressor: Any = None,
    fill: Any = 0.0,
) -> Any:
    if compressor is None:
        compressor = BloscCompressionParams("zstd", 3, "shuffle")
    return array_meta(
        shape=shape,
        dtype=np.dtype(dtype),
        dims=tuple(f"d{i}" for i in range(len(shape))),
        chunk_shape=chunks,
        shard_shape=shards,
        zarr_format=zarr_format,
        compressor=compressor,
        fill_value=fill,
        attributes={},
    )


def to_dir(store: MemoryStore, root: Path) -> Path:
    for key, value in store.data.items():
        p = root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(value)
    return root


def layout_for(ds: xr.Dataset, layout: str) -> dict[str, Any]:
    """A layout's keywords with its shard sizes limited to the dataset's dimensions (a
    ``shards=`` mapping naming a dimension the dataset lacks is refused)."""
    opts = dict(LAYOUTS[layout])
    if "shards" in opts:
        opts["shards"] = {d: n for d, n in opts["shards"].items() if d in ds.dims}
    return opts


def simple(n: int = 10, offset: int = 0, *, extra: bool = False) -> xr.Dataset:
    t = np.datetime64("2001-01-01", "ns") + (np.arange(n) + offset).astype("m8[D]")
    v = np.arange(offset, offset + n, dtype="float32")[:, None] * np.ones((1, 4), "float32")
    v[1, 2] = np.nan
    data: dict[str, Any] = {
        "v": (("t", "x"), v),
        "k": (("t",), (np.arange(n) + offset).astype("int16")),
    }
    if extra:
        data["extra"] = (("x",), np.arange(4, dtype="float64"))
    return xr.Dataset(data, coords={"t": t, "x": np.arange(4)})
