"""The helpers test modules share: bit-exact comparison, data, metadata documents, oracle reads.

``pythonpath = ["tests", ...]`` in pytest's configuration puts this folder on the import path, so
a test module anywhere below ``tests/`` writes ``from helpers import assert_same``. Servers live
in ``servers.py``, shared fixtures (servers, a Dask cluster) in ``conftest.py``, the zarr-python
store matrix in ``zarr_matrix.py``, the golden fixtures' writer in ``fixtures/make_golden.py``.
"""

from __future__ import annotations

import math
import subprocess
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# ----------------------------------------------------------------------------------------------
# bit-exact comparison
# ----------------------------------------------------------------------------------------------

#: kinds compared element by element as Python objects: object arrays and numpy's StringDType
TEXT_KINDS = "OT"


def bits(a: Any) -> np.ndarray:
    """A view of ``a`` whose equality is bit equality, numbers in native byte order.

    Booleans, integers and fixed-size strings are returned as they are; every other value
    (floats, complex numbers, datetimes and timedeltas, structured values, extension types such
    as ``ml_dtypes``') as its bytes, along a trailing axis of ``itemsize``, so NaN payloads, NaT
    and -0.0 count.
    """
    a = np.ascontiguousarray(a)
    kind = a.dtype.kind
    if kind in "biufcmM" and a.dtype.byteorder not in "|=":
        a = a.astype(a.dtype.newbyteorder("="))
    if kind in "biuSU":
        return a
    return a.view(np.uint8).reshape(*a.shape, a.dtype.itemsize)


def assert_same(actual: Any, expected: Any, what: str = "", *, any_byteorder: bool = False) -> None:
    """Assert two arrays hold the same values bit for bit, with the same shape and dtype.

    Numbers, times, structured and opaque values compare through :func:`bits`, so NaN payloads,
    NaT and -0.0 count. Object and StringDType arrays (both sides must be one of them) compare
    element by element; a 0-d bytes/str array compares its item (a numpy scalar is as wide as
    its value).

    Parameters
    ----------
    actual, expected
        Array-likes; ``expected`` is the oracle.
    what
        Named in the failure message.
    any_byteorder
        Accept the same dtype in another byte order (a store's ``>f8`` read as native ``<f8``).
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    where = f"{what}: " if what else ""
    assert actual.shape == expected.shape, f"{where}shape {actual.shape} != {expected.shape}"
    text = actual.dtype.kind in TEXT_KINDS, expected.dtype.kind in TEXT_KINDS
    if any(text):
        assert all(text), f"{where}dtype {actual.dtype} is not {expected.dtype}'s kind"
        assert actual.ravel().tolist() == expected.ravel().tolist(), f"{where}values differ"
        return
    if actual.ndim == 0 and expected.dtype.kind in "SU":
        assert actual.dtype.kind == expected.dtype.kind, f"{where}dtype {actual.dtype}"
        assert actual.item() == expected.item(), f"{where}{actual.item()!r} != {expected.item()!r}"
        return
    a_dtype, e_dtype = actual.dtype, expected.dtype
    if any_byteorder:
        a_dtype, e_dtype = a_dtype.newbyteorder("="), e_dtype.newbyteorder("=")
    assert a_dtype == e_dtype, f"{where}dtype {actual.dtype} != {expected.dtype}"
    a, e = bits(actual), bits(expected)
    if not np.array_equal(a, e):
        bad = np.argwhere(a != e)[:5].tolist() if a.ndim else "scalar"
        raise AssertionError(
            f"{where}values differ at {bad}\nactual={actual!r}\nexpected={expected!r}"
        )


# ----------------------------------------------------------------------------------------------
# deterministic data
# ----------------------------------------------------------------------------------------------

#: every fixed-size numeric data type Zarr V2 and V3 share
NUMERIC_DTYPES = [
    "bool",
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
]

UNICODE_POOL = ["", "a", "bb", "ccc", "dddd", "é", "漢字", "ß-x", "Ωz", "🙂", "q\tr", "x y"]
BYTES_POOL = [b"", b"a", b"bb", b"ccc", b"\x01\x02", b"abcdefgh", b"\xff\xfe", b"z z"]


def seeded_rng(name: str) -> np.random.Generator:
    """A random generator seeded by a name, the same in every run and process."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def _pick(pool: list[Any], rng: np.random.Generator, n: int, dtype: Any) -> np.ndarray:
    return np.array([pool[i] for i in rng.integers(0, len(pool), n)], dtype=dtype)


def values(dtype: Any, shape: tuple[int, ...], seed: str, *, special: bool = True) -> np.ndarray:
    """Deterministic pseudo-random values of ``dtype`` and ``shape``.

    Floats get NaN, +-Infinity and -0.0 sprinkled in (unless ``special`` is false), complex
    numbers NaN and -0.0 parts, times a NaT, integers span the full range of the type, strings
    (``str``/``"vlen-utf8"`` and ``bytes``/``"vlen-bytes"`` as object arrays, or fixed ``S``/``U``)
    mix empty, ASCII and non-ASCII values.
    """
    rng = seeded_rng(seed)
    n = math.prod(shape)
    if dtype in (str, "str", "vlen-utf8"):
        return _pick(UNICODE_POOL, rng, n, object).reshape(shape)
    if dtype in (bytes, "vlen-bytes"):
        return _pick(BYTES_POOL, rng, n, object).reshape(shape)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        v = rng.random(n) < 0.5
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        v = rng.integers(int(info.min), int(info.max), n, endpoint=True, dtype=dt.newbyteorder("="))
    elif dt.kind == "f":
        v = rng.standard_normal(n) * 100
        if special and n >= 8:
            v[1], v[3], v[5], v[6] = np.nan, np.inf, -np.inf, -0.0
    elif dt.kind == "c":
        v = rng.standard_normal(n) * 10 + 1j * rng.standard_normal(n) * 10
        if special and n >= 8:
            v[2] = complex(np.nan, 1.0)
            v[4] = complex(-np.inf, -0.0)
    elif dt.kind in "Mm":
        v = rng.integers(-(2**40), 2**40, n, dtype=np.int64).view(dt.newbyteorder("="))
        if n >= 4:
            v[2] = np.array("NaT", dtype=dt)
    elif dt.kind == "S":
        v = _pick([p[: dt.itemsize].rstrip(b"\x00") for p in BYTES_POOL], rng, n, dt)
    elif dt.kind == "U":
        v = _pick([p[: dt.itemsize // 4] for p in UNICODE_POOL], rng, n, dt)
    elif dt.kind == "V":
        v = rng.integers(0, 256, n * dt.itemsize, dtype=np.uint8).view(dt)
    else:  # pragma: no cover - a test asked for a type this helper does not make
        raise TypeError(dt)
    return np.asarray(v).astype(dt).reshape(shape)


def smooth(dtype: Any, shape: tuple[int, ...], seed: str) -> np.ndarray:
    """Finite, smoothly varying values (for lossy filters that need a bounded range)."""
    rng = seeded_rng(seed)
    n = math.prod(shape)
    v = np.linspace(-50.0, 50.0, n) + rng.standard_normal(n)
    return v.astype(dtype).reshape(shape)


# ----------------------------------------------------------------------------------------------
# hand-written metadata documents
# ----------------------------------------------------------------------------------------------


def v2_array_doc(shape: list[int], chunks: list[int], dtype: str, **fields: Any) -> dict[str, Any]:
    """A Zarr V2 ``.zarray`` document: no compressor or filters, fill value 0, order C; each
    entry of ``fields`` replaces or adds one field."""
    doc = {
        "zarr_format": 2,
        "shape": shape,
        "chunks": chunks,
        "dtype": dtype,
        "compressor": None,
        "filters": None,
        "fill_value": 0,
        "order": "C",
    }
    return {**doc, **fields}


def v3_array_doc(
    shape: list[int], chunk_shape: list[int], data_type: str, **fields: Any
) -> dict[str, Any]:
    """A Zarr V3 array ``zarr.json``: a regular chunk grid, the default chunk key encoding, fill
    value 0 and the ``bytes`` codec alone; each entry of ``fields`` replaces or adds one field."""
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
        "chunk_key_encoding": {"name": "default"},
        "fill_value": 0,
        "codecs": [{"name": "bytes"}],
    }
    return {**doc, **fields}


# ----------------------------------------------------------------------------------------------
# files and oracle reads
# ----------------------------------------------------------------------------------------------


def files(root: Path) -> list[str]:
    """Every file below ``root`` as a sorted list of relative posix paths."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_same_files(actual: Path, expected: Path) -> None:
    """Assert two folders hold the same relative file names with the same bytes in each.

    ``expected`` is a golden fixture: if it differs on purpose, regenerate it with
    ``python tests/fixtures/make_golden.py`` and review the diff.
    """
    names = files(expected)
    assert files(actual) == names, f"the list of keys below {expected.name} changed"
    changed = [n for n in names if (actual / n).read_bytes() != (expected / n).read_bytes()]
    assert not changed, f"bytes changed below {expected.name}: {changed}"


def as_object(a: np.ndarray) -> np.ndarray:
    """zarr-python gives variable-length strings as StringDType; compare them as objects."""
    return a.astype(object) if a.dtype.kind == "T" else a


def zarr_read(
    path: Path | str, name: str | None = None, selection: Any = ..., **kw: Any
) -> np.ndarray:
    """zarr-python's own read of the array at ``path`` (or of its member ``name``)."""
    zarr = pytest.importorskip("zarr")
    if name is not None:
        kw["path"] = name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(zarr.open_array(str(path), mode="r", **kw)[selection])


def ts_read(path: Path | str, name: str, zarr_format: int) -> np.ndarray:
    """tensorstore's read of the array ``name`` below ``path`` (skips without tensorstore)."""
    ts = pytest.importorskip("tensorstore")
    spec = {
        "driver": "zarr" if zarr_format == 2 else "zarr3",
        "kvstore": {"driver": "file", "path": f"{path}/{name}/"},
    }
    return np.asarray(ts.open(spec, read=True).result().read().result())


#: stores other Zarr implementations wrote, beside the project (absent from a user's clone)
CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
#: (store path relative to CONFORMANCE, the .npy it must read as, zarr_format)
CONFORMANCE_STORES = [
    ("z5py.zr/raw", "z5py_expected.npy", 2),
    ("z5py.zr/blosc", "z5py_expected.npy", 2),
    ("z5py.zr/zlib", "z5py_expected.npy", 2),
    ("z5py.zr/gzip", "z5py_expected.npy", 2),
    ("int64.zarr", "int64_expected.npy", 2),
    ("int32.zarr", "int32_expected.npy", 2),
    ("float32.zarr", "float32_expected.npy", 2),
    ("float64.zarr", "float64_expected.npy", 2),
    ("bool.zarr", "bool_expected.npy", 2),
    ("int32_v3.zarr", "int32_v3_expected.npy", 3),
]

#: a Python 3.12 environment with a newer zarr-python than the suite's (tests skip without it)
VENV312 = Path("/tmp/venv312/bin/python")


def run_venv312(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c script args...`` in :data:`VENV312`; skip the test when it is absent."""
    if not VENV312.exists():
        pytest.skip(f"no Python 3.12 venv with a newer zarr-python at {VENV312}")
    return subprocess.run([str(VENV312), "-c", script, *args], capture_output=True, text=True)
