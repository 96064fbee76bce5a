"""Writing: ``ds.zaro.to_store``, the writer classes, ``BloscCompressionParams``, golden stores.

Every store written here is read back with xzaro (``xr.open_dataset(engine="zaro")`` and
``xzaro.open_array``), zarr-python (``zarr.open_array`` and ``engine="zarr"``) and, where it
understands the layout, tensorstore, and compared bit for bit (floats and complex through their
unsigned-integer views, so NaN payloads and -0.0 count; strings element by element).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import math
import struct
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dask
import numcodecs
import numpy as np
import pytest
import xarray as xr
import zarr
from dask.delayed import Delayed
from hypothesis import given, settings
from hypothesis import strategies as st

import xzaro
from xzaro.codecs import (
    BloscCodec,
    Crc32cCodec,
    GzipCodec,
    NumcodecsCodec,
    ZlibCodec,
    ZstdCodec,
)
from xzaro.codecs.compression import BLOSC_MAX_OVERHEAD
from xzaro.compat import xarray_encodes_per_zarr_format
from xzaro.stores import MemoryStore
from xzaro.stores.base import to_bytes
from xzaro.writers import (
    AlignmentError,
    BloscCompressionParams,
    ChunkWriter,
    ShardWriter,
    write_metadata,
    writer_for,
)
from xzaro.writers.layout import array_meta
from xzaro.writers.tiles import from_tiles, tile_grid, to_tiles

try:
    import zarr_matrix as zm
except ImportError:  # pragma: no cover - when tests/ is a package
    from tests import zarr_matrix as zm

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "fixtures" / "golden"
EMPTY = 2**64 - 1
METADATA_NAMES = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"})

# Known xzaro bugs: none open. A strict xfail per bug goes in _BUGS below.


# ----------------------------------------------------------------------------------------------
# comparison helpers
# ----------------------------------------------------------------------------------------------


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder not in "|=":
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype.kind in "fmM":
        return a.view(f"u{a.dtype.itemsize}")
    if a.dtype.kind == "c":
        return a.view(f"u{a.dtype.itemsize // 2}")
    return a


def assert_same(actual: Any, expected: Any, what: str = "") -> None:
    """Bit-exact equality (numbers) or element-wise equality (strings, bytes), shape included."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    text = "OTSU"
    if expected.dtype.kind in text or actual.dtype.kind in text:
        assert actual.ravel().tolist() == expected.ravel().tolist(), what
        return
    assert actual.dtype.newbyteorder("=") == expected.dtype.newbyteorder("="), (
        f"{what}: dtype {actual.dtype} != {expected.dtype}"
    )
    a, e = _bits(actual), _bits(expected)
    if not np.array_equal(a, e):
        bad = np.argwhere(a != e)[:5].tolist() if a.ndim else "scalar"
        raise AssertionError(
            f"{what}: values differ at {bad}\nactual={actual!r}\nexpected={expected!r}"
        )


def assert_datasets_same(actual: xr.Dataset, expected: xr.Dataset, what: str = "") -> None:
    assert set(actual.variables) == set(expected.variables), what
    for name in expected.variables:
        assert actual[name].dims == expected[name].dims, (what, name)
        assert_same(actual[name].values, expected[name].values, f"{what}:{name}")


def files(root: Path) -> list[str]:
    """Every file below ``root`` as a sorted list of relative posix paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def data_keys(keys: Iterable[str]) -> list[str]:
    return sorted(k for k in keys if k.rsplit("/", 1)[-1] not in METADATA_NAMES)


def ts_read(path: Path | str, name: str, zarr_format: int) -> np.ndarray:
    ts = pytest.importorskip("tensorstore")
    spec = {
        "driver": "zarr" if zarr_format == 2 else "zarr3",
        "kvstore": {"driver": "file", "path": f"{path}/{name}/"},
    }
    return np.asarray(ts.open(spec, read=True).result().read().result())


def zarr_read(path: Path | str, name: str, **kw: Any) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(zarr.open_array(str(path), path=name, mode="r", **kw)[...])


def as_object(a: np.ndarray) -> np.ndarray:
    """zarr-python gives variable-length strings as StringDType; compare them as objects."""
    return a.astype(object) if a.dtype.kind == "T" else a


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


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

SHAPE = (7, 5)  # ragged against chunks (3, 2) and shards (6, 4) on both axes
CHUNKS = {"y": 3, "x": 2}
SHARDS = {"y": 6, "x": 4}
LAYOUTS: dict[str, dict[str, Any]] = {
    "v2": {"zarr_format": 2},
    "v3": {"zarr_format": 3},
    "v3_sharded": {"zarr_format": 3, "shards": SHARDS},
}
DTYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "bool",
    "datetime64[ns]",
    "S6",
    "U5",
    "object",
]


def sample(dtype: str, shape: tuple[int, ...] = SHAPE, seed: str = "") -> np.ndarray:
    """Deterministic values: full integer ranges, NaN/inf/-0.0 floats, NaT, mixed strings."""
    seed = seed or dtype
    if dtype == "object":
        return zm.values(str, shape, seed)
    if dtype.startswith("datetime64"):
        n = math.prod(shape)
        v = np.datetime64("1999-12-31T06", "ns") + np.arange(n).astype("m8[h]") * 7
        v[min(3, n - 1)] = np.datetime64("NaT")
        return v.reshape(shape)
    return zm.values(dtype, shape, seed)


def dataset(dtype: str, *, dask_chunks: dict[str, int] | None = None) -> xr.Dataset:
    ds = xr.Dataset(
        {"v": (("y", "x"), sample(dtype), {"note": "ünïcode attr", "n": 3})},
        coords={"x": ("x", np.arange(SHAPE[1], dtype="int32") * 2)},
        attrs={"title": "round trip"},
    )
    return ds.chunk(dask_chunks) if dask_chunks else ds


def _tensorstore_reads(dtype: np.dtype, zarr_format: int) -> bool:
    """Which stored dtypes tensorstore can read back losslessly at all."""
    # tensorstore has no fixed-length unicode or variable-length strings, no V3 fixed bytes,
    # and gives V2 "|S6" as a (..., 6) array of dtype "char" whose numpy view loses the bytes.
    return dtype.kind not in "SUO"


# ----------------------------------------------------------------------------------------------
# round trips: every dtype x layout x numpy/Dask backing
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backing", ["numpy", "dask"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_dtypes(tmp_path: Path, dtype: str, layout: str, backing: str) -> None:
    # Dask chunks (4, 3) line up with neither chunks (3, 2) nor shards (6, 4)
    ds = dataset(dtype, dask_chunks={"y": 4, "x": 3} if backing == "dask" else None)
    expected = dataset(dtype)
    path = tmp_path / "s.zarr"
    fmt = LAYOUTS[layout]["zarr_format"]
    written = ds.zaro.to_store(path, chunks=CHUNKS, **LAYOUTS[layout])
    assert isinstance(written, int) and written > 0

    with xr.open_dataset(path, engine="zaro") as got:
        assert_datasets_same(got, expected, "engine=zaro")
        assert got.attrs == expected.attrs
        assert {k: got.v.attrs[k] for k in ("note", "n")} == {"note": "ünïcode attr", "n": 3}
    with xr.open_dataset(path, engine="zarr", zarr_format=fmt) as got:
        assert_datasets_same(got, expected, "engine=zarr")

    # the stored (CF-encoded) arrays, read raw
    raw_x = xzaro.open_array(path, "v")[...]
    raw_z = as_object(zarr_read(path, "v"))
    assert_same(raw_x, raw_z, "xzaro vs zarr-python (raw)")
    if dtype.startswith("datetime"):
        assert raw_x.dtype == np.int64
    elif dtype == "bool" and not xarray_encodes_per_zarr_format():
        assert raw_x.dtype == np.int8  # xarray < 2026.9 stores booleans so, with a dtype attribute
    elif dtype != "object":
        assert raw_x.dtype == np.dtype(dtype)
    if _tensorstore_reads(raw_x.dtype, fmt):
        assert_same(raw_x, ts_read(path, "v", fmt), "xzaro vs tensorstore (raw)")
    za = zarr.open_array(str(path), path="v", mode="r")
    assert tuple(za.chunks) == (3, 2)
    assert (tuple(za.shards) if za.shards else None) == ((6, 4) if layout == "v3_sharded" else None)


# ----------------------------------------------------------------------------------------------
# compressors
# ----------------------------------------------------------------------------------------------

COMPRESSORS: dict[str, Any] = {
    **{
        f"blosc_{c}_{s}": BloscCompressionParams(c, 5, s)
        for c in ("lz4", "zstd")
        for s in ("noshuffle", "shuffle", "bitshuffle")
    },
    "blosc_codec_typed": BloscCodec("lz4hc", 4, "bitshuffle", typesize=4),
    "blosc_codec_untyped": BloscCodec("lz4", 3, "shuffle"),
    "zstd": ZstdCodec(3),
    "zstd_checksum": ZstdCodec(1, checksum=True),
    "gzip": GzipCodec(5),
    "zlib": ZlibCodec(4),
    "none": None,
    "crc32c": [Crc32cCodec()],
    "zstd_crc32c": [ZstdCodec(1), Crc32cCodec()],
    "shuffle_zstd": [NumcodecsCodec.from_id("shuffle", {"elementsize": 4}), ZstdCodec(2)],
}

# (layout, compressor) -> tensorstore cannot read it, through no fault of xzaro
_TS_CANNOT = {
    ("v2", "crc32c"),  # no crc32c V2 compressor in tensorstore
    ("v2", "zstd_crc32c"),  # no V2 filters in tensorstore
    ("v2", "shuffle_zstd"),
    ("v2", "zstd_checksum"),
    *((lay, "shuffle_zstd") for lay in ("v3", "v3_sharded")),  # no numcodecs.* V3 codecs
    *((lay, "zlib") for lay in ("v3", "v3_sharded")),
}
_BUGS: dict[tuple[str, str, str], str] = {}  # (layout, compressor, reader) -> bug


def _compressor_params() -> list[Any]:
    out = []
    for layout, comp, reader in itertools.product(
        LAYOUTS, COMPRESSORS, ("xzaro", "zarr", "tensorstore")
    ):
        marks: list[Any] = []
        if reader == "tensorstore" and (layout, comp) in _TS_CANNOT:
            continue
        bug = _BUGS.get((layout, comp, reader))
        if bug:  # zarr-python: UnknownCodecError (a ValueError); tensorstore: ValueError
            marks.append(pytest.mark.xfail(strict=True, reason=bug, raises=ValueError))
        out.append(pytest.param(layout, comp, reader, marks=marks, id=f"{layout}-{comp}-{reader}"))
    return out


@pytest.fixture(scope="module")
def compressor_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """One store per (layout, compressor): float32 with NaN/inf/-0.0 and a ragged edge, plus an
    int16 variable (other typesize); Dask-backed with misaligned blocks."""
    root = tmp_path_factory.mktemp("compressors")
    ds = xr.Dataset(
        {
            "f": (("y", "x"), sample("float32", (9, 7))),
            "i": (("y", "x"), sample("int16", (9, 7))),
        }
    ).chunk({"y": 5, "x": 4})
    out = {}
    for layout, comp in itertools.product(LAYOUTS, COMPRESSORS):
        path = root / f"{layout}-{comp}.zarr"
        encoding = None
        if comp == "shuffle_zstd":  # the shuffle element size must match each variable
            encoding = {
                "i": {
                    "compressor": [
                        NumcodecsCodec.from_id("shuffle", {"elementsize": 2}),
                        ZstdCodec(2),
                    ]
                }
            }
        ds.zaro.to_store(
            path,
            zarr_format=LAYOUTS[layout]["zarr_format"],
            chunks={"y": 2, "x": 3},
            shards={"y": 4, "x": 6} if layout == "v3_sharded" else None,
            compressor=COMPRESSORS[comp],
            encoding=encoding,
        )
        out[(layout, comp)] = path
    return out


@pytest.mark.parametrize(("layout", "comp", "reader"), _compressor_params())
def test_round_trip_compressors(
    compressor_stores: dict[tuple[str, str], Path], layout: str, comp: str, reader: str
) -> None:
    path = compressor_stores[(layout, comp)]
    fmt = LAYOUTS[layout]["zarr_format"]
    for name, dtype in (("f", "float32"), ("i", "int16")):
        expected = sample(dtype, (9, 7))
        if reader == "xzaro":
            got = xzaro.open_array(path, name)[...]
            with xr.open_dataset(path, engine="zaro") as ds:
                assert_same(ds[name].values, expected, f"engine=zaro {name}")
        elif reader == "zarr":
            got = zarr_read(path, name)
        else:
            got = ts_read(path, name, fmt)
        assert_same(got, expected, f"{reader} {name}")


def test_compressor_metadata(compressor_stores: dict[tuple[str, str], Path]) -> None:
    """The stored codec chain is the one asked for (V2 compressor/filters, V3 codecs)."""
    v2 = json.loads((compressor_stores[("v2", "blosc_zstd_bitshuffle")] / "f/.zarray").read_text())
    assert v2["compressor"] == BloscCompressionParams("zstd", 5, "bitshuffle").to_v2_json()
    assert v2["filters"] is None
    v2 = json.loads((compressor_stores[("v2", "none")] / "f/.zarray").read_text())
    assert v2["compressor"] is None and v2["filters"] is None
    v2 = json.loads((compressor_stores[("v2", "gzip")] / "f/.zarray").read_text())
    assert v2["compressor"] == {"id": "gzip", "level": 5}
    v2 = json.loads((compressor_stores[("v2", "shuffle_zstd")] / "f/.zarray").read_text())
    assert v2["filters"] == [{"id": "shuffle", "elementsize": 4}]
    assert v2["compressor"]["id"] == "zstd"
    v2 = json.loads((compressor_stores[("v2", "shuffle_zstd")] / "i/.zarray").read_text())
    assert v2["filters"] == [{"id": "shuffle", "elementsize": 2}]

    v3 = json.loads((compressor_stores[("v3", "blosc_lz4_shuffle")] / "i/zarr.json").read_text())
    assert [c["name"] for c in v3["codecs"]] == ["bytes", "blosc"]
    assert v3["codecs"][1]["configuration"]["typesize"] == 2
    v3 = json.loads((compressor_stores[("v3", "none")] / "f/zarr.json").read_text())
    assert [c["name"] for c in v3["codecs"]] == ["bytes"]
    v3 = json.loads((compressor_stores[("v3_sharded", "zstd_crc32c")] / "f/zarr.json").read_text())
    (shard,) = v3["codecs"]
    assert shard["name"] == "sharding_indexed"
    cfg = shard["configuration"]
    assert cfg["chunk_shape"] == [2, 3]
    assert [c["name"] for c in cfg["codecs"]] == ["bytes", "zstd", "crc32c"]
    assert [c["name"] for c in cfg["index_codecs"]] == ["bytes", "crc32c"]
    assert cfg["index_location"] == "end"
    assert v3["chunk_grid"]["configuration"]["chunk_shape"] == [4, 6]


# ----------------------------------------------------------------------------------------------
# fill values, missing data, objects not written
# ----------------------------------------------------------------------------------------------


def _expected_objects(
    data: np.ndarray, unit: tuple[int, ...], fill: Any, key: Callable[[tuple[int, ...]], str]
) -> set[str]:
    """Keys of the stored objects whose (padded) contents are not all fill."""
    keys = set()
    grid = [range(math.ceil(n / u)) for n, u in zip(data.shape, unit)]
    for idx in itertools.product(*grid):
        block = data[tuple(slice(i * u, (i + 1) * u) for i, u in zip(idx, unit))]
        padded = np.full(unit, fill, dtype=data.dtype)
        padded[tuple(slice(0, n) for n in block.shape)] = block
        if _bits(padded).tobytes() != _bits(np.full(unit, fill, dtype=data.dtype)).tobytes():
            keys.add(key(idx))
    return keys


@pytest.mark.parametrize("backing", ["numpy", "dask"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_fill_chunks_and_shards_not_written(tmp_path: Path, layout: str, backing: str) -> None:
    """Objects that hold only the fill value are absent; everything reads back identically."""
    fmt = LAYOUTS[layout]["zarr_format"]
    f = np.full((13, 11), np.nan, dtype="float32")  # missing data = NaN = _FillValue
    f[0:3, 0:2] = 1.5  # one chunk
    f[12, 10] = -0.0  # the ragged corner
    f[7, 5] = np.inf
    n = np.zeros((13, 11), dtype="int16")  # zarr fill value 0
    n[4, 9] = -7
    n[12, 0] = 3
    fv = np.full((13, 11), -99, dtype="int32")  # explicit _FillValue -99
    fv[5:8, 2:6] = 12
    ds = xr.Dataset(
        {
            "f": (("y", "x"), f),
            "n": (("y", "x"), n),
            "fv": (("y", "x"), fv, {}, {"_FillValue": -99}),
        }
    )
    if backing == "dask":
        ds = ds.chunk({"y": 5, "x": 4})
    path = tmp_path / "s.zarr"
    ds.zaro.to_store(path, chunks=CHUNKS, **LAYOUTS[layout])

    for name in ("f", "n", "fv"):
        arr = xzaro.open_array(path, name)
        stored = data_keys(files(path / name))
        if layout == "v3_sharded":
            unit = (6, 4)
        else:
            unit = (3, 2)
        raw = np.asarray(ds[name].values)
        if name == "fv":  # stored raw values: -99 stays -99 (the fill value)
            raw = fv
        expected = _expected_objects(raw, unit, arr.meta.fill_value_or_default, arr.meta.chunk_key)
        assert set(stored) == expected, (name, sorted(set(stored) ^ expected))
        assert_same(arr[...], zarr_read(path, name), f"{name} xzaro vs zarr")
        assert_same(arr[...], ts_read(path, name, fmt), f"{name} xzaro vs tensorstore")
    with xr.open_dataset(path, engine="zaro") as got, xr.open_dataset(path, engine="zarr") as ref:
        assert_same(got.f.values, f, "f decoded")
        assert_same(ref.f.values, f, "f decoded by zarr")
        assert_same(got.fv.values, np.where(fv == -99, np.nan, fv), "fv decoded (masked)")
        assert_same(ref.fv.values, got.fv.values, "fv zarr vs zaro")
        assert got.fv.encoding.get("_FillValue") == -99


def test_missing_data_v2_nan_chunks_absent(tmp_path: Path) -> None:
    """V2: a float variable's _FillValue is NaN (as to_zarr writes), so all-NaN chunks vanish."""
    f = np.full((6, 4), np.nan, dtype="float64")
    f[0, 0] = 1.0
    xr.Dataset({"f": (("y", "x"), f)}).zaro.to_store(
        tmp_path / "s.zarr", zarr_format=2, chunks=(3, 2)
    )
    meta = json.loads((tmp_path / "s.zarr/f/.zarray").read_text())
    assert meta["fill_value"] == "NaN"
    assert data_keys(files(tmp_path / "s.zarr/f")) == ["0.0"]


def test_missing_data_v3_nan_chunks_absent(tmp_path: Path) -> None:
    f = np.full((6, 4), np.nan, dtype="float64")
    f[0, 0] = 1.0
    xr.Dataset({"f": (("y", "x"), f)}).zaro.to_store(tmp_path / "s.zarr", chunks=(3, 2))
    assert data_keys(files(tmp_path / "s.zarr/f")) == ["c/0/0"]


_KEY_CASES = ["int32", "float32", "bool", "S3", "U2", "object", "complex64"]


def _key_params() -> list[Any]:
    out = []
    for dtype, layout in itertools.product(_KEY_CASES, LAYOUTS):
        marks = []
        out.append(pytest.param(dtype, layout, marks=marks, id=f"{dtype}-{layout}"))
    return out


@pytest.mark.parametrize(("dtype", "layout"), _key_params())
def test_same_objects_and_fill_as_to_zarr(tmp_path: Path, dtype: str, layout: str) -> None:
    """xzaro stores exactly the objects (and the fill value) xarray's to_zarr stores."""
    a = sample(dtype, (8, 5), seed="keys")
    a[0:4, 0:2] = np.zeros((), dtype=a.dtype) if dtype != "object" else ""
    if dtype in ("float32", "complex64"):
        a[4:8, 2:4] = np.nan
    ds = xr.Dataset({"v": (("y", "x"), a)})
    fmt = LAYOUTS[layout]["zarr_format"]
    shards = (4, 4) if layout == "v3_sharded" else None
    ds.zaro.to_store(tmp_path / "x.zarr", chunks=(2, 2), shards=shards, zarr_format=fmt)
    enc: dict[str, Any] = {"chunks": (2, 2), **({"shards": shards} if shards else {})}
    ds.to_zarr(tmp_path / "z.zarr", zarr_format=fmt, encoding={"v": enc})
    assert files(tmp_path / "x.zarr/v") == files(tmp_path / "z.zarr/v")
    xa = zarr.open_array(str(tmp_path / "x.zarr"), path="v", mode="r")
    za = zarr.open_array(str(tmp_path / "z.zarr"), path="v", mode="r")
    if za.fill_value is None:
        assert xa.fill_value is None
    else:
        assert_same(
            np.asarray(xa.fill_value, dtype=xa.dtype), np.asarray(za.fill_value, dtype=za.dtype)
        )
    assert_same(as_object(xa[...]), as_object(za[...]), "values")


# ----------------------------------------------------------------------------------------------
# the writer classes on their own
# ----------------------------------------------------------------------------------------------


def _meta(
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


def _to_dir(store: MemoryStore, root: Path) -> Path:
    for key, value in store.data.items():
        p = root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(value)
    return root


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_chunk_writer_aligned_blocks(tmp_path: Path, zarr_format: int) -> None:
    data = sample("float32", (10, 7), seed="cw")
    data[4:8, 3:6] = 0.0  # one chunk of fill: not written
    meta = _meta((10, 7), (4, 3), zarr_format=zarr_format)
    store = MemoryStore()
    w = writer_for(store, "a", meta)
    assert type(w) is ChunkWriter
    assert w.unit == (4, 3)
    blocks = [((0, 0), (8, 3)), ((0, 3), (8, 4)), ((8, 0), (2, 7))]  # the last ones end the array
    written = 0
    for origin, shape in blocks:
        sl = tuple(slice(o, o + n) for o, n in zip(origin, shape))
        written += w.write_block(data[sl], origin)
    assert written == 3 * 3 - 1 == len(store.data)
    assert w.key((1, 1)) not in store.data
    write_metadata(store, "a", meta)
    assert_same(xzaro.open_array(store, "a")[...], data, "xzaro")
    root = _to_dir(store, tmp_path / "s.zarr")
    assert_same(zarr_read(root, "a"), data, "zarr")
    assert_same(ts_read(root, "a", zarr_format), data, "tensorstore")
    # one chunk per object, with the array's key encoding
    expected_key = "a/2.1" if zarr_format == 2 else "a/c/2/1"
    assert w.key((2, 1)) == expected_key and expected_key in store.data


@pytest.mark.parametrize(
    ("origin", "shape"),
    [
        ((1, 0), (4, 3)),  # starts inside a chunk
        ((0, 0), (5, 3)),  # ends inside a chunk that is not the last
        ((0, 2), (4, 5)),  # starts inside along the second axis
        ((4, 3), (4, 2)),  # ends inside the last column of chunks... not at the array end
    ],
)
@pytest.mark.parametrize("sharded", [False, True])
def test_writer_refuses_misaligned_blocks(
    origin: tuple[int, int], shape: tuple[int, int], sharded: bool
) -> None:
    meta = _meta((10, 7), (2, 1), (4, 3)) if sharded else _meta((10, 7), (4, 3), zarr_format=2)
    store = MemoryStore()
    w = writer_for(store, "a", meta)
    assert isinstance(w, ShardWriter if sharded else ChunkWriter)
    block = np.ones(shape, dtype="float32")
    with pytest.raises(AlignmentError, match="does not align"):
        w.write_block(block, origin)
    assert issubclass(AlignmentError, ValueError)
    assert store.data == {}  # nothing was written


def test_writer_class_checks_layout() -> None:
    with pytest.raises(ValueError, match="ShardWriter"):
        ChunkWriter(MemoryStore(), "a", _meta((4,), (2,), (4,)))
    with pytest.raises(ValueError, match="sharding"):
        ShardWriter(MemoryStore(), "a", _meta((4,), (2,)))
    with pytest.raises(ValueError, match="multiples"):
        _meta((8,), (3,), (4,))
    with pytest.raises(ValueError, match="zarr_format=3"):
        _meta((8,), (2,), (4,), zarr_format=2)


def _parse_shard(blob: bytes, n_inner: int) -> np.ndarray:
    """The ``(offset, nbytes)`` index at the end of a shard, after checking its crc32c."""
    import crc32c

    index_len = n_inner * 16 + 4
    assert len(blob) >= index_len
    raw, (crc,) = blob[-index_len:-4], struct.unpack("<I", blob[-4:])
    assert crc32c.crc32c(raw) == crc, "shard index crc32c mismatch"
    return np.frombuffer(raw, dtype="<u8").reshape(n_inner, 2)


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8"])
def test_shard_writer_index(tmp_path: Path, dtype: str) -> None:
    shape, chunks, shards = (10, 7), (2, 3), (4, 6)
    data = sample(dtype, shape, seed="sw")
    if dtype == "float32":
        data = np.nan_to_num(data, nan=1.0, posinf=2.0, neginf=3.0)  # only 0.0 is fill
    data[0:2, 3:6] = 0  # inner chunk (0, 1) of shard (0, 0) is fill
    data[4:8, 0:6] = 0  # shard (1, 0) is all fill: no object
    meta = _meta(shape, chunks, shards, dtype=dtype, compressor=ZstdCodec(1))
    store = RecordingStore()
    w = writer_for(store, "a", meta)
    assert type(w) is ShardWriter and w.unit == shards
    assert w.write_block(data, (0, 0)) == len(store.data) == 5
    assert sorted(store.data) == ["a/c/0/0", "a/c/0/1", "a/c/1/1", "a/c/2/0", "a/c/2/1"]
    assert Counter(store.log).most_common(1)[0][1] == 1

    cps = (shards[0] // chunks[0], shards[1] // chunks[1])
    n_inner = math.prod(cps)
    fill_chunk = np.zeros(chunks, dtype=dtype)
    for key, blob in store.data.items():
        si, sj = (int(p) for p in key.split("/")[-2:])
        index = _parse_shard(blob, n_inner)
        pos = 0
        for k, (ci, cj) in enumerate(itertools.product(range(cps[0]), range(cps[1]))):
            y0, x0 = si * shards[0] + ci * chunks[0], sj * shards[1] + cj * chunks[1]
            expected = fill_chunk.copy()
            part = data[y0 : y0 + chunks[0], x0 : x0 + chunks[1]]
            expected[: part.shape[0], : part.shape[1]] = part
            offset, nbytes = (int(x) for x in index[k])
            if not expected.any():
                # fill-only inner chunks (and those wholly outside the array) are not stored
                assert (offset, nbytes) == (EMPTY, EMPTY), (key, k)
                continue
            assert offset == pos, "inner chunks are packed back to back from the start"
            raw = numcodecs.Zstd().decode(blob[offset : offset + nbytes])
            got = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(chunks)
            assert_same(got, expected, f"{key} inner {k}")
            pos += nbytes
        assert pos == len(blob) - (n_inner * 16 + 4), "index right after the chunks, at the end"

    write_metadata(store, "a", meta)
    root = _to_dir(store, tmp_path / "s.zarr")
    assert_same(xzaro.open_array(store, "a")[...], data, "xzaro")
    assert_same(zarr_read(root, "a"), data, "zarr")
    assert_same(ts_read(root, "a", 3), data, "tensorstore")


def test_shard_writer_blocks_of_whole_shards() -> None:
    data = sample("int32", (10, 7), seed="sw2")
    meta = _meta((10, 7), (2, 3), (4, 6), dtype="int32")
    store = RecordingStore()
    w = ShardWriter(store, "", meta)
    for origin, shape in [((0, 0), (4, 7)), ((4, 0), (4, 6)), ((4, 6), (4, 1)), ((8, 0), (2, 7))]:
        sl = tuple(slice(o, o + n) for o, n in zip(origin, shape))
        w.write_block(data[sl], origin)
    assert sorted(store.log) == sorted(f"c/{i}/{j}" for i in range(3) for j in range(2))
    write_metadata(store, "", meta)
    assert_same(xzaro.open_array(store)[...], data)
    with pytest.raises(AlignmentError):  # a shard is the unit, not an inner chunk
        w.write_block(data[0:2, 0:3], (0, 0))


@pytest.mark.parametrize(
    ("shape", "chunks", "shards", "zarr_format"),
    [
        ((10, 7), (4, 3), None, 2),
        ((10, 7), (4, 3), None, 3),
        ((9, 16, 13), (2, 5, 4), (4, 10, 12), 3),  # ragged shards: some inner chunks beyond
        ((3, 48, 64), (3, 8, 8), (3, 48, 56), 3),
    ],
)
def test_write_tiles_stores_what_write_block_stores(
    tmp_path: Path, shape: Any, chunks: Any, shards: Any, zarr_format: int
) -> None:
    """Chunk-major tiles (as the streaming writer holds frames) give byte-identical objects;
    fill-only chunks and shards are skipped the same way."""
    data = sample("uint16", shape, seed="tiles")
    data[: chunks[0]] = 0  # a fill-only layer: inner chunks (and perhaps shards) not stored
    meta = _meta(shape, chunks, shards, zarr_format=zarr_format, dtype="uint16", fill=0)
    by_block, by_tiles = MemoryStore(), MemoryStore()
    writer_for(by_block, "a", meta).write_block(data, (0,) * len(shape))
    w = writer_for(by_tiles, "a", meta)
    tiles = to_tiles(data, chunks, 0)
    np.testing.assert_array_equal(from_tiles(tiles, shape), data)
    unit = meta.storage_shape
    per = tuple(u // c for u, c in zip(unit, chunks))
    # two blocks of whole stored objects along axis 0
    split = per[0] * max(1, tiles.shape[0] // per[0] // 2)
    w.write_tiles(tiles[:split], (0,) * len(shape))
    if split < tiles.shape[0]:
        w.write_tiles(tiles[split:], (split, *(0,) * (len(shape) - 1)))
    assert by_tiles.data == by_block.data
    # Encoded into caller-owned bytes (as the streaming writer recycles them): the same objects.
    slot = math.prod(chunks) * 2 + BLOSC_MAX_OVERHEAD
    out = np.zeros((*tiles.shape[: len(shape)], slot), np.uint8)
    items = w.encode_tiles(tiles, (0,) * len(shape), out)
    assert {key: to_bytes(value) for key, value in items} == by_block.data
    assert out.any() == bool(items)  # the compressed chunks went there
    if per[0] > 1:  # one inner chunk of a shard is not a stored object
        with pytest.raises(AlignmentError):
            w.write_tiles(tiles[1:2], (1, *(0,) * (len(shape) - 1)))
    with pytest.raises(ValueError, match="are not chunks"):
        w.write_tiles(data, (0,) * len(shape))
    write_metadata(by_tiles, "a", meta)
    root = _to_dir(by_tiles, tmp_path / "t.zarr")
    assert_same(zarr_read(root, "a"), data, "zarr")


@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_tiles_round_trip(shape: list[int], data: Any) -> None:
    chunk = tuple(data.draw(st.integers(1, n + 2)) for n in shape)
    block = np.arange(math.prod(shape), dtype=np.int32).reshape(shape)
    tiles = to_tiles(block, chunk, -1)
    assert tiles.shape == (*tile_grid(tuple(shape), chunk), *chunk)
    np.testing.assert_array_equal(from_tiles(tiles, tuple(shape)), block)
    for index in np.ndindex(*tiles.shape[: len(shape)]):
        region = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunk))
        piece = block[region]
        np.testing.assert_array_equal(tiles[index][tuple(map(slice, piece.shape))], piece)
        assert (tiles[index] == -1).sum() == math.prod(chunk) - piece.size


# ----------------------------------------------------------------------------------------------
# BloscCompressionParams
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cname", ["lz4", "lz4hc", "zstd", "zlib", "blosclz"])
@pytest.mark.parametrize("shuffle", ["noshuffle", "shuffle", "bitshuffle"])
def test_blosc_params_json_matches_zarr_python(cname: str, shuffle: str) -> None:
    clevel = {"lz4": 1, "lz4hc": 9, "zstd": 3, "zlib": 5, "blosclz": 7}[cname]
    p = BloscCompressionParams(cname, clevel, shuffle)
    sid = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[shuffle]
    z2 = zarr.create_array(
        zarr.storage.MemoryStore(),
        shape=(4,),
        dtype="f4",
        zarr_format=2,
        compressors=numcodecs.Blosc(cname=cname, clevel=clevel, shuffle=sid),
    )
    assert p.to_v2_json() == z2.metadata.to_dict()["compressor"]
    assert json.loads(json.dumps(p.to_v2_json())) == p.to_v2_json()
    for dtype in ("int8", "float32", "complex128", "uint16", "bool", "float64"):
        z3 = zarr.create_array(
            zarr.storage.MemoryStore(),
            shape=(4,),
            dtype=dtype,
            zarr_format=3,
            compressors=zarr.codecs.BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle),
        )
        assert p.to_v3_json(np.dtype(dtype)) == z3.metadata.to_dict()["codecs"][1], dtype


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cname": "snappy2"},
        {"cname": "LZ4"},
        {"cname": ""},
        {"clevel": 10},
        {"clevel": -1},
        {"clevel": 1.5},
        {"clevel": "5"},
        {"shuffle": "byte"},
        {"shuffle": 1},
        {"shuffle": None},
    ],
)
def test_blosc_params_invalid(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BloscCompressionParams(**kwargs)


def test_blosc_params_is_a_frozen_value() -> None:
    import dataclasses

    p = BloscCompressionParams("lz4", 5, "shuffle")
    assert p == BloscCompressionParams("lz4", 5, "shuffle")
    assert hash(p) == hash(BloscCompressionParams("lz4", 5, "shuffle"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.clevel = 3  # type: ignore[misc]
    assert p.codec(np.dtype("float64")).typesize == 8


# ----------------------------------------------------------------------------------------------
# golden stores
# ----------------------------------------------------------------------------------------------


def _load_make_golden() -> Any:
    spec = importlib.util.spec_from_file_location("make_golden", HERE / "fixtures/make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_GOLDEN = _load_make_golden()


def test_golden_fixtures_are_small() -> None:
    total = sum(p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file())
    assert 0 < total < 50_000
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(_GOLDEN.STORES)


@pytest.mark.parametrize("name", sorted(_GOLDEN.STORES))
def test_golden_store_is_byte_identical(tmp_path: Path, name: str) -> None:
    """Writing the golden dataset again gives exactly the committed keys and bytes.

    If this fails on purpose (a deliberate format change), regenerate with
    ``python tests/fixtures/make_golden.py`` and review the diff.
    """
    (fresh,) = (p for p in _GOLDEN.build(tmp_path) if p.name == name)
    golden = GOLDEN / name
    assert files(fresh) == files(golden), "the list of keys changed"
    changed = [k for k in files(golden) if (fresh / k).read_bytes() != (golden / k).read_bytes()]
    assert not changed, f"bytes changed in {changed}"


@pytest.mark.parametrize("name", sorted(_GOLDEN.STORES))
def test_golden_store_reads_everywhere(name: str) -> None:
    path = GOLDEN / name
    with xr.open_dataset(path, engine="zaro") as got, xr.open_dataset(path, engine="zarr") as ref:
        assert_datasets_same(got, ref, name)
        assert got.attrs == ref.attrs
    fmt = 2 if (path / ".zgroup").exists() else 3
    for var in xzaro.open_group(path).members():
        a = xzaro.open_array(path, var)[...]
        assert_same(as_object(a), as_object(zarr_read(path, var)), f"{name}/{var}")
        if a.dtype.kind not in "OSU":
            assert_same(a, ts_read(path, var, fmt), f"{name}/{var} tensorstore")


# ----------------------------------------------------------------------------------------------
# modes
# ----------------------------------------------------------------------------------------------


def _layout_for(ds: xr.Dataset, layout: str) -> dict[str, Any]:
    """A layout's keywords with its shard sizes limited to the dataset's dimensions (a
    ``shards=`` mapping naming a dimension the dataset lacks is refused)."""
    opts = dict(LAYOUTS[layout])
    if "shards" in opts:
        opts["shards"] = {d: n for d, n in opts["shards"].items() if d in ds.dims}
    return opts


def _simple(n: int = 10, offset: int = 0, *, extra: bool = False) -> xr.Dataset:
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


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mode_w_minus_refuses_existing(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "s.zarr"
    opts = _layout_for(_simple(), layout)
    _simple().zaro.to_store(path, **opts)
    before = {k: (path / k).read_bytes() for k in files(path)}
    with pytest.raises(xzaro.NodeExistsError):
        _simple(3).zaro.to_store(path, **opts)
    with pytest.raises(xzaro.NodeExistsError):
        _simple(3).zaro.to_store(path, mode="w-", zarr_format=5 - LAYOUTS[layout]["zarr_format"])
    assert {k: (path / k).read_bytes() for k in files(path)} == before


def test_mode_w_minus_in_memory_store() -> None:
    store = MemoryStore()
    _simple().zaro.to_store(store)
    with pytest.raises(xzaro.NodeExistsError):
        _simple().zaro.to_store(store)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mode_w_replaces_and_removes_old_keys(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "s.zarr"
    opts = _layout_for(_simple(12, extra=True), layout)
    _simple(12, extra=True).zaro.to_store(path, chunks={"t": 2}, **opts)
    assert (path / "extra").is_dir()
    new = xr.Dataset({"v": (("t", "x"), np.full((3, 2), 7.5, "float32"))})
    new.zaro.to_store(path, mode="w", chunks={"t": 2}, **_layout_for(new, layout))
    left = files(path)
    assert not any(k.startswith(("extra/", "k/", "t/", "x/")) for k in left), left
    with xr.open_dataset(path, engine="zaro") as got:
        assert set(got.variables) == {"v"}
        assert_same(got.v.values, new.v.values)
    with xr.open_dataset(path, engine="zarr") as got:  # consolidated metadata was rewritten
        assert set(got.variables) == {"v"}
        assert_same(got.v.values, new.v.values)
    # no old chunk beyond the new, smaller shape is left behind
    expected_v = {"v/0.0", "v/1.0"} if layout == "v2" else {"v/c/0/0", "v/c/1/0"}
    assert set(data_keys(left)) == expected_v


@pytest.mark.parametrize(
    ("layout", "first", "chunk"),
    [
        ("v2", 10, 4),  # existing length not a multiple of the chunk
        ("v2", 8, 4),
        ("v3", 7, 3),
        ("v3_sharded", 10, 2),  # shards of 4: ends inside a shard
        ("v3_sharded", 8, 2),
    ],
)
@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_mode_a_append_dim_matches_to_zarr(
    tmp_path: Path, layout: str, first: int, chunk: int, backing: str
) -> None:
    opts = dict(LAYOUTS[layout])
    shards = {"t": 2 * chunk, "x": 4} if "shards" in opts else None
    opts.pop("shards", None)
    parts = [_simple(first), _simple(5, first), _simple(3, first + 5)]
    if backing == "dask":
        parts = [p.chunk({"t": 3}) for p in parts]
    x, z = tmp_path / "x.zarr", tmp_path / "z.zarr"
    parts[0].zaro.to_store(x, chunks={"t": chunk}, shards=shards, **opts)
    enc = {"chunks": (chunk, 4), **({"shards": (2 * chunk, 4)} if shards else {})}
    parts[0].compute().to_zarr(
        z,
        zarr_format=opts["zarr_format"],
        encoding={"v": enc, "k": {k: v[:1] for k, v in enc.items()}},
    )
    for part in parts[1:]:
        part.zaro.to_store(x, mode="a", append_dim="t")
        part.compute().to_zarr(z, mode="a", append_dim="t")
    full = xr.concat([p.compute() for p in parts], dim="t")
    for name in ("v", "k", "t"):
        got, ref = zarr_read(x, name), zarr_read(z, name)
        assert_same(got, ref, f"{name}: xzaro store vs to_zarr store, read by zarr-python")
    with xr.open_dataset(x, engine="zarr") as got:
        assert_datasets_same(got, full, "xzaro store, engine=zarr")
    with xr.open_dataset(x, engine="zaro") as got:
        assert_datasets_same(got, full, "xzaro store, engine=zaro")
    za = zarr.open_array(str(x), path="v", mode="r")
    assert za.shape == (first + 8, 4) and za.chunks == (chunk, 4)


def test_mode_a_without_append_dim_adds_variables(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    base = _simple(6)
    base.zaro.to_store(path, chunks={"t": 4})
    before = {k: (path / k).read_bytes() for k in files(path) if k.startswith("v/")}
    more = xr.Dataset(
        {"w": (("t", "x"), np.full((6, 4), 2.5, "float64"))}, coords={"t": base.t, "x": base.x}
    )
    more.zaro.to_store(path, mode="a")
    assert {k: (path / k).read_bytes() for k in files(path) if k.startswith("v/")} == before
    for engine in ("zaro", "zarr"):
        with xr.open_dataset(path, engine=engine) as got:
            assert set(got.data_vars) == {"v", "k", "w"}
            assert_same(got.w.values, more.w.values)
            assert_same(got.v.values, base.v.values)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("backing", ["numpy", "dask"])
def test_mode_r_plus_region(tmp_path: Path, layout: str, backing: str) -> None:
    path = tmp_path / "s.zarr"
    opts = dict(LAYOUTS[layout])
    shards = {"t": 4, "x": 4} if "shards" in opts else None
    opts.pop("shards", None)
    unit = 4 if shards else 2
    n = 3 * unit + 3  # ragged end
    base = _simple(n)
    base.zaro.to_store(path, chunks={"t": 2}, shards=shards, **opts)
    region_ds = xr.Dataset({"v": (("t", "x"), np.full((2 * unit, 4), -1.25, "float32"))})
    if backing == "dask":
        region_ds = region_ds.chunk({"t": 3})  # misaligned Dask chunks inside the region
    region_ds.zaro.to_store(path, mode="r+", region={"t": slice(unit, 3 * unit)})
    expected = base.v.values.copy()
    expected[unit : 3 * unit] = -1.25
    assert_same(xzaro.open_array(path, "v")[...], expected, "xzaro")
    assert_same(zarr_read(path, "v"), expected, "zarr")
    # the ragged end of the array may be the end of a region
    tail = xr.Dataset({"v": (("t", "x"), np.full((n - 3 * unit, 4), 9.0, "float32"))})
    tail.zaro.to_store(path, mode="r+", region={"t": slice(3 * unit, n)})
    expected[3 * unit :] = 9.0
    assert_same(zarr_read(path, "v"), expected, "zarr after the tail")
    # regions that start or end inside a stored object merge with its stored values
    for value, sl in enumerate((slice(1, 1 + unit), slice(unit, 2 * unit + 1), slice(unit - 1, n))):
        part = xr.Dataset(
            {"v": (("t", "x"), np.full((sl.stop - sl.start, 4), value + 100, "float32"))}
        )
        if backing == "dask":
            part = part.chunk({"t": 1})
        part.zaro.to_store(path, mode="r+", region={"t": sl})
        expected[sl] = value + 100
        assert_same(zarr_read(path, "v"), expected, f"zarr after the region {sl}")


def test_mode_r_plus_needs_existing(tmp_path: Path) -> None:
    with pytest.raises(xzaro.NodeNotFoundError):
        _simple(2).zaro.to_store(tmp_path / "none.zarr", mode="r+", region={"t": slice(0, 2)})


def test_invalid_mode_arguments(tmp_path: Path) -> None:
    ds = _simple(2)
    with pytest.raises(ValueError, match="mode"):
        ds.zaro.to_store(tmp_path / "a.zarr", mode="x")
    with pytest.raises(ValueError, match="append_dim"):
        ds.zaro.to_store(tmp_path / "a.zarr", mode="w", append_dim="t")
    with pytest.raises(ValueError, match="region"):
        ds.zaro.to_store(tmp_path / "a.zarr", mode="w-", region={"t": slice(0, 2)})
    with pytest.raises(xzaro.NodeNotFoundError):  # region alone means mode "r+"
        ds.zaro.to_store(tmp_path / "a.zarr", region={"t": slice(0, 2)})
    with pytest.raises(ValueError, match="zarr_format"):
        ds.zaro.to_store(tmp_path / "a.zarr", zarr_format=4)
    assert not (tmp_path / "a.zarr").exists() or not files(tmp_path / "a.zarr")


# ----------------------------------------------------------------------------------------------
# Dask: misaligned chunks, compute=False, progress, distributed
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dask_chunk", [7, 3, 13])
def test_misaligned_dask_chunks_write_each_object_once(layout: str, dask_chunk: int) -> None:
    """Dask chunks of 7 (or 3, or 13) against storage objects of 5 (or shards of 10)."""
    data = sample("float64", (37, 23), seed="mis")
    ds = xr.Dataset({"v": (("y", "x"), data)}).chunk({"y": dask_chunk, "x": dask_chunk})
    opts = dict(LAYOUTS[layout])
    if "shards" in opts:
        opts["shards"] = {"y": 10, "x": 10}
    store = RecordingStore()
    ds.zaro.to_store(store, chunks={"y": 5, "x": 5}, **opts)
    counts = Counter(k for k in store.log if k in data_keys(store.log))
    twice = {k: c for k, c in counts.items() if c > 1}
    assert not twice, f"objects written more than once: {twice}"
    unit = 10 if "shards" in opts else 5
    assert len(data_keys(counts)) == math.ceil(37 / unit) * math.ceil(23 / unit)
    assert_same(xzaro.open_array(store, "v")[...], data)
    with xr.open_dataset(store, engine="zaro") as got:
        assert_same(got.v.values, data)


def test_to_store_into_memory_store_reads_with_zarr_python(tmp_path: Path) -> None:
    store = MemoryStore()
    ds = dataset("float32", dask_chunks={"y": 2})
    ds.zaro.to_store(store, zarr_format=2, chunks=CHUNKS)
    root = _to_dir(store, tmp_path / "s.zarr")
    assert_same(zarr_read(root, "v"), ds.v.values)


def test_metadata_written_after_data() -> None:
    ds = xr.Dataset(
        {
            "a": (("y", "x"), sample("float32", (9, 8))),
            "b": (("y",), sample("int64", (9,))),
        },
        coords={"y": np.arange(9)},
    ).chunk({"y": 4})
    for opts in ({"zarr_format": 2}, {"zarr_format": 3, "shards": {"y": 4, "x": 8}}):
        store = RecordingStore()
        ds.zaro.to_store(store, chunks={"y": 2, "x": 4}, **opts)
        meta_pos = [i for i, k in enumerate(store.log) if k.rsplit("/", 1)[-1] in METADATA_NAMES]
        data_pos = [
            i for i, k in enumerate(store.log) if k.rsplit("/", 1)[-1] not in METADATA_NAMES
        ]
        assert data_pos and meta_pos
        assert max(data_pos) < min(meta_pos), store.log
        # appending: the new data first, then the grown metadata
        store.log.clear()
        ds.isel(y=slice(0, 3)).zaro.to_store(store, mode="a", append_dim="y")
        meta_pos = [i for i, k in enumerate(store.log) if k.rsplit("/", 1)[-1] in METADATA_NAMES]
        data_pos = [
            i for i, k in enumerate(store.log) if k.rsplit("/", 1)[-1] not in METADATA_NAMES
        ]
        assert max(data_pos) < min(meta_pos), store.log


def test_no_temporary_files_left(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    dataset("int32", dask_chunks={"y": 2}).zaro.to_store(path, chunks=CHUNKS, shards=SHARDS)
    names = [p.name for p in path.rglob("*")]
    assert not [n for n in names if "tmp" in n or (n.startswith(".") and n not in METADATA_NAMES)]


@pytest.mark.parametrize("layout", ["v2", "v3_sharded"])
def test_compute_false_writes_the_template_at_once(tmp_path: Path, layout: str) -> None:
    """As ``to_zarr(compute=False)``: the metadata and the in-memory variables are written at
    once, the Dask-backed data when the returned object is computed."""
    path = tmp_path / "s.zarr"
    ds = dataset("float32", dask_chunks={"y": 4})
    task = ds.zaro.to_store(path, chunks=CHUNKS, compute=False, **LAYOUTS[layout])
    assert isinstance(task, Delayed)
    assert [k for k in data_keys(files(path)) if k.startswith("v/")] == []
    template = zarr.open_group(path, mode="r")
    assert_same(template["x"][...], ds.x.values, "the in-memory coordinate, written at once")
    assert template["v"].shape == ds.v.shape
    assert np.isnan(template["v"][...]).all()
    written = dask.compute(task)[0]
    assert written == len(data_keys(files(path)))
    with xr.open_dataset(path, engine="zaro") as got:
        assert_datasets_same(got, dataset("float32"))
    with xr.open_dataset(path, engine="zarr") as got:
        assert_datasets_same(got, dataset("float32"))


@pytest.mark.parametrize("scheduler", [None, "threads", "synchronous"])
def test_writes_run_where_dask_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheduler: str | None
) -> None:
    """Under Dask's threaded scheduler (the default) the write tasks run on xzaro's pool, where
    they encode inline; another configured scheduler is used as it is."""
    from xzaro.writers.writer import Writer

    threads: list[str] = []
    real = Writer.write_block

    def recording(self: Any, *args: Any, **kwargs: Any) -> int:
        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Writer, "write_block", recording)
    ds = dataset("float32", dask_chunks={"y": 4})
    with dask.config.set(scheduler=scheduler) if scheduler else contextlib.nullcontext():
        ds.zaro.to_store(tmp_path / "s.zarr", chunks=CHUNKS)
    # (in-memory coordinates are written from the calling thread in every case)
    on_pool = [name for name in threads if name.startswith("xzaro")]
    if scheduler == "synchronous":
        assert set(threads) == {"MainThread"}
    else:
        assert on_pool and set(threads) - set(on_pool) <= {"MainThread"}
    with xr.open_dataset(tmp_path / "s.zarr", engine="zaro") as got:
        assert_datasets_same(got, dataset("float32"))


def test_zeroed_buffer_is_writable_zeros() -> None:
    from xzaro.concurrency import zeroed_buffer

    for shape in [(3, 5), (9, 1024, 1024)]:  # below and above the mapped-buffer size
        buf = zeroed_buffer(shape, np.uint16)
        assert buf.shape == shape and buf.dtype == np.uint16 and not buf.any()
        buf[(-1,) * len(shape)] = 7
        assert buf.sum() == 7


def test_compute_false_memory_store() -> None:
    store = RecordingStore()
    task = dataset("int16", dask_chunks={"y": 4}).zaro.to_store(store, compute=False)
    assert "v/zarr.json" in store.data and "x/zarr.json" in store.data
    assert not [k for k in store.data if k.startswith("v/c")]
    task.compute()
    assert_same(xzaro.open_array(store, "v")[...], dataset("int16").v.values)


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset("uint8", dask_chunks={"y": 2}).zaro.to_store(tmp_path / "s.zarr", progress=True)
    out = capsys.readouterr()
    assert "100%" in out.out + out.err
    assert_same(xzaro.open_array(tmp_path / "s.zarr", "v")[...], sample("uint8"))


def test_dataarray_and_datatree_accessors(tmp_path: Path) -> None:
    arr = xr.DataArray(sample("float32", (6, 5)), dims=("y", "x"), name="temp")
    arr.zaro.to_store(tmp_path / "a.zarr", zarr_format=2, chunks=(4, 4))
    assert_same(zarr_read(tmp_path / "a.zarr", "temp"), arr.values)
    unnamed = xr.DataArray(np.arange(3.0), dims=("x",))
    unnamed.zaro.to_store(tmp_path / "u.zarr")
    with xr.open_dataarray(tmp_path / "u.zarr", engine="zarr") as got:
        assert_same(got.values, unnamed.values)

    tree = xr.DataTree.from_dict(
        {
            "/": xr.Dataset({"a": ("x", np.arange(4, dtype="int8"))}),
            "/g": xr.Dataset({"b": ("y", np.linspace(0, 1, 5))}),
            "/g/h": xr.Dataset({"c": ("z", np.array(["p", "qq"], dtype=object))}),
        }
    )
    tree.zaro.to_store(tmp_path / "t.zarr", shards=None)
    with xr.open_datatree(tmp_path / "t.zarr", engine="zarr") as got:
        assert_same(got["g/b"].values, tree["g/b"].values)
        assert got["g/h/c"].values.tolist() == ["p", "qq"]
        assert_same(got["a"].values, tree["a"].values)


def _mean2x2(a: np.ndarray) -> np.ndarray:
    """numpy's 2x2 mean (float64); odd edges average the cells that exist."""
    pad = np.pad(
        a.astype(np.float64), [(0, a.shape[0] % 2), (0, a.shape[1] % 2)], constant_values=np.nan
    )
    return np.nanmean(pad.reshape(pad.shape[0] // 2, 2, pad.shape[1] // 2, 2), axis=(1, 3))


def test_distributed_local_cluster_v3_sharded(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    path = tmp_path / "s.zarr"
    data = sample("float32", (40, 30), seed="dist")
    ints = sample("uint16", (40, 30), seed="dist-i")
    ds = xr.Dataset(
        {"f": (("y", "x"), data), "i": (("y", "x"), ints)},
        coords={"y": np.arange(40)},
    ).chunk({"y": 7, "x": 11})  # misaligned with the shards too
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=50,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        written = ds.zaro.to_store(
            path, chunks={"y": 5, "x": 5}, shards={"y": 10, "x": 15}, zarr_format=3
        )
        assert written > 0
        assert len(client.scheduler_info()["workers"]) == 2
        # A multiscale pyramid from the same workers: levels are coarsened there too.
        pyramid = tmp_path / "p.zarr"
        rng = np.random.default_rng(5)
        field = rng.normal(0, 100, (40, 30)).astype(np.float32)
        field[3, 4] = np.nan  # a missing cell: the mean of the others
        counts = rng.integers(0, 65536, (40, 30), dtype=np.uint16)
        image = xr.Dataset({"f": (("y", "x"), field), "i": (("y", "x"), counts)})
        image.chunk({"y": 7, "x": 11}).zaro.to_store(
            pyramid,
            chunks={"y": 8, "x": 8},
            shards={"y": 16, "x": 16},
            multiscale=xzaro.Multiscale(dims=("y", "x")),
        )
    level_f, level_i = field, counts
    for level in range(4):  # 40x30, 20x15, 10x8, 5x4: the first to fit in one 8x8 chunk
        if level:
            level_f = _mean2x2(level_f).astype(np.float32)
            level_i = np.rint(_mean2x2(level_i)).astype(np.uint16)
        assert_same(zarr_read(pyramid, f"{level}/f"), level_f, f"f level {level}")
        assert_same(zarr_read(pyramid, f"{level}/i"), level_i, f"i level {level}")
    assert not (pyramid / "4").exists()
    for name, expected in (("f", data), ("i", ints)):
        assert_same(zarr_read(path, name), expected, f"{name} zarr-python")
        assert zarr.open_array(str(path), path=name, mode="r").shards == (10, 15)
        assert_same(ts_read(path, name, 3), expected, f"{name} tensorstore")
    with xr.open_dataset(path, engine="zarr") as got:
        assert_same(got.f.values, data)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_scalar_variables(tmp_path: Path, zarr_format: int) -> None:
    ds = xr.Dataset(
        {"v": (("x",), np.arange(3.0))},
        coords={"height": ((), np.float32(2.5)), "label": ((), "station")},
    )
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=zarr_format)
    with xr.open_dataset(tmp_path / "s.zarr", engine="zarr") as got:
        assert_datasets_same(got, ds)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_numpy_attribute_values(tmp_path: Path, zarr_format: int) -> None:
    attrs = {"a": np.float32(1.5), "b": np.arange(3), "c": np.bool_(True)}
    ds = xr.Dataset({"v": (("x",), np.arange(3.0), attrs)}, attrs={"g": np.int64(7)})
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=zarr_format)
    with xr.open_dataset(tmp_path / "s.zarr", engine="zarr") as got:
        assert got.v.attrs == {"a": 1.5, "b": [0, 1, 2], "c": True}
        assert got.attrs == {"g": 7}


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_group_in_new_store(tmp_path: Path, zarr_format: int) -> None:
    ds = xr.Dataset({"v": (("x",), np.arange(3.0))})
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=zarr_format, group="a/b")
    for engine in ("zaro", "zarr"):
        with xr.open_dataset(tmp_path / "s.zarr", engine=engine, group="a/b") as got:
            assert_datasets_same(got, ds, engine)


def test_group_next_to_existing_group(tmp_path: Path) -> None:
    """Writing a second group (mode a) or replacing one (mode w) leaves its siblings alone."""
    path = tmp_path / "s.zarr"
    root = xr.Dataset({"r": (("x",), np.arange(4, dtype="int8"))})
    root.zaro.to_store(path, chunks={"x": 2})
    one = xr.Dataset({"v": (("x",), np.arange(3.0))})
    one.zaro.to_store(path, group="one", mode="a")
    two = xr.Dataset({"w": (("y",), np.array(["p", "qq"], dtype=object))})
    two.zaro.to_store(path, group="two", mode="a")
    xr.Dataset({"v": (("x",), np.arange(5.0))}).zaro.to_store(path, group="one", mode="w")
    with xr.open_dataset(path, engine="zarr", group="two") as got:
        assert got.w.values.tolist() == ["p", "qq"]
    with xr.open_dataset(path, engine="zarr", group="one") as got:
        assert_same(got.v.values, np.arange(5.0))
    with xr.open_dataset(path, engine="zaro") as got:
        assert_same(got.r.values, root.r.values)


# ----------------------------------------------------------------------------------------------
# object stores
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["v2", "v3_sharded"])
def test_write_to_s3(s3_server: dict[str, Any], layout: str) -> None:
    bucket = s3_server["make_bucket"]("xzaro-writes")
    options = s3_server["storage_options"]
    url = f"s3://{bucket}/{layout}.zarr"
    ds = dataset("float64", dask_chunks={"y": 4})
    ds.zaro.to_store(url, chunks=CHUNKS, storage_options=options, **LAYOUTS[layout])
    assert_same(xzaro.open_array(url, "v", storage_options=options)[...], ds.v.values)
    with xr.open_dataset(url, engine="zaro", storage_options=options) as got:
        assert_datasets_same(got, dataset("float64"))
    got = zarr_read(url, "v", storage_options=options)
    assert_same(got, ds.v.values, "zarr-python over S3")
    with pytest.raises(xzaro.NodeExistsError):
        ds.zaro.to_store(url, storage_options=options)
    ds.isel(y=slice(0, 2)).zaro.to_store(url, mode="a", append_dim="y", storage_options=options)
    expected = np.concatenate([ds.v.values, ds.v.values[:2]])
    assert_same(zarr_read(url, "v", storage_options=options), expected, "after append")


def test_shards_are_capped_at_the_array_extent(tmp_path: Path) -> None:
    """A shard larger than the array holds all of it (in whole chunks), as a coarse pyramid
    level needs; zarr-python reads the result."""
    data = sample("int16", (5, 21), seed="cap")
    ds = xr.Dataset({"v": (("y", "x"), data)})
    ds.zaro.to_store(tmp_path / "s.zarr", chunks={"y": 8, "x": 4}, shards={"y": 64, "x": 64})
    meta = xzaro.open_array(tmp_path / "s.zarr", "v").meta
    assert meta.chunk_shape == (5, 4) and meta.shard_shape == (5, 24)
    assert_same(zarr_read(tmp_path / "s.zarr", "v"), data)
