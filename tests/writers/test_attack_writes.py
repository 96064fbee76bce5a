"""Write faults: a full disk never leaves a store that reads wrong.

The writes run in a child process whose file-size limit (``RLIMIT_FSIZE``, with ``SIGXFSZ``
ignored) makes every chunk write fail with ``EFBIG``, as a full disk or quota would.
"""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from capped import run_capped

import xzaro  # noqa: F401  (registers the .zaro accessor)

LIMIT = 3000  # bytes per file: metadata fits, an uncompressed 8 x 64 float64 chunk does not


def _dataset(rows: int, seed: int) -> xr.Dataset:
    values = np.random.default_rng(seed).normal(size=(rows, 64))
    return xr.Dataset({"v": (("t", "x"), values)}).chunk({"t": 8})


def _raw(zarr_format: int) -> dict:
    return {"v": {"compressors": None} if zarr_format == 3 else {"compressor": None}}


def _with_small_files(fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))
    fn(*args, **kwargs)


def _write_new(path: Path, zarr_format: int) -> None:
    _dataset(16, 0).zaro.to_store(path, zarr_format=zarr_format, encoding=_raw(zarr_format))


def _append(path: Path) -> None:
    _dataset(16, 1).zaro.to_store(path, append_dim="t")


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_full_disk_on_a_new_store_leaves_nothing_that_reads(
    tmp_path: Path, zarr_format: int
) -> None:
    path = tmp_path / "new.zarr"
    outcome = run_capped(_with_small_files, _write_new, path, zarr_format, timeout=120)
    assert outcome.raised("StoreError"), outcome
    assert "File too large" in outcome.message and str(path) in outcome.message
    assert not [f for f in _files(path) if "tmp" in f]  # no half-written objects
    with pytest.raises(FileNotFoundError):  # no metadata claims data that is not there
        xr.open_dataset(path, engine="zaro")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_full_disk_during_an_append_keeps_what_was_there(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "old.zarr"
    before = _dataset(16, 0)
    before.zaro.to_store(path, zarr_format=zarr_format, encoding=_raw(zarr_format))
    outcome = run_capped(_with_small_files, _append, path, timeout=120)
    assert outcome.raised("StoreError"), outcome
    assert not [f for f in _files(path) if "tmp" in f]
    after = xr.open_dataset(path, engine="zaro", consolidated=zarr_format == 2)
    xr.testing.assert_identical(after.v.load(), before.v.load())
    # The same append, run again with room, completes it.
    _append(path)
    whole = xr.open_dataset(path, engine="zaro", consolidated=zarr_format == 2)
    expected = xr.concat([before, _dataset(16, 1)], dim="t")
    np.testing.assert_array_equal(whole.v.values, expected.v.values)
