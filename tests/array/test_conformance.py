"""Stores written by other Zarr implementations read exactly as their ``*_expected.npy``.

The stores live in ``shared/conformance`` beside the project (see its README.md); a user's clone
does not have them, so the module skips when the folder is absent. They are read in place.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from helpers import CONFORMANCE, CONFORMANCE_STORES, assert_same

import xzaro

if not CONFORMANCE.is_dir():
    pytest.skip(f"conformance stores not found at {CONFORMANCE}", allow_module_level=True)

IDS = [rel for rel, _, _ in CONFORMANCE_STORES]


def _present(rel: str, npy: str) -> None:
    if not (CONFORMANCE / rel).is_dir() or not (CONFORMANCE / npy).is_file():
        pytest.skip(f"{rel} or {npy} missing from {CONFORMANCE}")


@pytest.mark.parametrize(("rel", "npy", "fmt"), CONFORMANCE_STORES, ids=IDS)
def test_reads_as_expected(rel: str, npy: str, fmt: int) -> None:
    _present(rel, npy)
    expected = np.load(CONFORMANCE / npy)
    a = xzaro.open_array(str(CONFORMANCE / rel))
    assert a.meta.zarr_format == fmt
    assert tuple(a.shape) == expected.shape
    assert a.dtype.newbyteorder("=") == expected.dtype.newbyteorder("=")
    assert_same(a[...], expected, any_byteorder=True)


@pytest.mark.parametrize(("rel", "npy", "fmt"), CONFORMANCE_STORES, ids=IDS)
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
    assert_same(out, expected, any_byteorder=True)
    start = tuple(s // 3 for s in expected.shape)
    count = tuple(max(1, s // 2) for s in expected.shape)
    sel = tuple(slice(st, st + c) for st, c in zip(start, count))
    assert_same(a.read_region(start, count), expected[sel], any_byteorder=True)
    stepped = tuple(slice(None, None, 3) for _ in expected.shape)
    assert_same(a[stepped], expected[stepped], any_byteorder=True)


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
    assert_same(got, expected, any_byteorder=True)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("xzaro")]
    assert any("zlib" in m.lower() and "gzip" in m.lower() for m in messages), messages


def test_z5py_group(caplog: pytest.LogCaptureFixture) -> None:
    if not (CONFORMANCE / "z5py.zr").is_dir():
        pytest.skip("z5py.zr missing")
    g = xzaro.open_group(str(CONFORMANCE / "z5py.zr"))
    assert g.meta.zarr_format == 2
    assert sorted(g.arrays()) == ["blosc", "gzip", "raw", "zlib"]
    expected = np.load(CONFORMANCE / "z5py_expected.npy")
    assert_same(g["raw"][100:200, 250:, 1], expected[100:200, 250:, 1], any_byteorder=True)
