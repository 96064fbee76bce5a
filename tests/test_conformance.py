"""Stores written by other Zarr implementations read exactly as their ``*_expected.npy``.

The stores live in ``shared/conformance`` beside the project (see its README.md); a user's clone
does not have them, so the module skips when the folder is absent. They are read in place.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import xzaro

CONFORMANCE = Path(__file__).resolve().parents[1].parent / "shared" / "conformance"

if not CONFORMANCE.is_dir():
    pytest.skip(f"conformance stores not found at {CONFORMANCE}", allow_module_level=True)


#: (store path relative to CONFORMANCE, expected .npy, zarr_format)
STORES = [
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

_ids = [s[0] if isinstance(s, tuple) else s.id for s in STORES]


def _assert_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    assert actual.dtype.newbyteorder("=") == expected.dtype.newbyteorder("="), actual.dtype
    if expected.dtype.kind == "f":
        u = f"u{expected.dtype.itemsize}"
        np.testing.assert_array_equal(
            np.ascontiguousarray(actual).astype(expected.dtype).view(u), expected.view(u)
        )
    else:
        np.testing.assert_array_equal(actual, expected)


def _present(rel: str, npy: str) -> None:
    if not (CONFORMANCE / rel).is_dir() or not (CONFORMANCE / npy).is_file():
        pytest.skip(f"{rel} or {npy} missing from {CONFORMANCE}")


@pytest.mark.parametrize(("rel", "npy", "fmt"), STORES, ids=_ids)
def test_reads_as_expected(rel: str, npy: str, fmt: int) -> None:
    _present(rel, npy)
    expected = np.load(CONFORMANCE / npy)
    a = xzaro.open_array(str(CONFORMANCE / rel))
    assert a.meta.zarr_format == fmt
    assert tuple(a.shape) == expected.shape
    assert a.dtype.newbyteorder("=") == expected.dtype.newbyteorder("=")
    _assert_identical(a[...], expected)


@pytest.mark.parametrize(("rel", "npy", "fmt"), STORES, ids=_ids)
def test_chunks_and_regions(rel: str, npy: str, fmt: int) -> None:
    _present(rel, npy)
    expected = np.load(CONFORMANCE / npy)
    a = xzaro.open_array(str(CONFORMANCE / rel))
    out = np.zeros_like(expected)
    chunks = tuple(a.chunks)
    n = 0
    for idx, block in a.iter_chunks():
        sel = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks))
        out[sel] = block
        n += 1
    assert n == int(np.prod([-(-s // c) for s, c in zip(expected.shape, chunks)]))
    _assert_identical(out, expected)
    start = tuple(s // 3 for s in expected.shape)
    count = tuple(max(1, s // 2) for s in expected.shape)
    sel = tuple(slice(st, st + c) for st, c in zip(start, count))
    _assert_identical(a.read_region(start, count), expected[sel])
    stepped = tuple(slice(None, None, 3) for _ in expected.shape)
    _assert_identical(a[stepped], expected[stepped])


def test_readme_facts() -> None:
    """The summary numbers the README gives for the zarr-conformance-tests stores."""
    facts = {
        "int32.zarr": (239, 49),
        "float32.zarr": (513.08, None),
        "float64.zarr": (503.56, None),
    }
    for rel, (total, nonzero) in facts.items():
        if not (CONFORMANCE / rel).is_dir():
            continue
        v = xzaro.open_array(str(CONFORMANCE / rel))[...]
        assert float(v.astype(np.float64).sum()) == pytest.approx(total, abs=1e-3)
        if nonzero is not None:
            assert int(np.count_nonzero(v)) == nonzero
    if (CONFORMANCE / "int64.zarr").is_dir():
        v = xzaro.open_array(str(CONFORMANCE / "int64.zarr"))[...]
        np.testing.assert_array_equal(v, np.arange(1, 17).reshape(4, 4, order="F"))
    if (CONFORMANCE / "bool.zarr").is_dir():
        v = xzaro.open_array(str(CONFORMANCE / "bool.zarr"))[...]
        np.testing.assert_array_equal(v, [[True, False], [True, False]])


def test_gzip_declared_zlib_chunks_are_read_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    rel = "z5py.zr/gzip"
    _present(rel, "z5py_expected.npy")
    first = next(p for p in sorted((CONFORMANCE / rel).iterdir()) if not p.name.startswith("."))
    assert first.read_bytes()[:2] != b"\x1f\x8b"  # the trap: zlib streams under a gzip codec
    expected = np.load(CONFORMANCE / "z5py_expected.npy")
    with caplog.at_level(logging.INFO, logger="xzaro"):
        a = xzaro.open_array(str(CONFORMANCE / rel))
        got = a[...]
    _assert_identical(got, expected)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("xzaro")]
    assert any("zlib" in m.lower() and "gzip" in m.lower() for m in messages), messages


def test_z5py_group(caplog: pytest.LogCaptureFixture) -> None:
    if not (CONFORMANCE / "z5py.zr").is_dir():
        pytest.skip("z5py.zr missing")
    g = xzaro.open_group(str(CONFORMANCE / "z5py.zr"))
    assert g.meta.zarr_format == 2
    assert sorted(g.arrays()) == ["blosc", "gzip", "raw", "zlib"]
    expected = np.load(CONFORMANCE / "z5py_expected.npy")
    _assert_identical(g["raw"][100:200, 250:, 1], expected[100:200, 250:, 1])
