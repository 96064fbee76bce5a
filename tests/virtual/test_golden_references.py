"""``xzaro refs`` output: the stored references are made again, and read as the NetCDF files.

``tests/fixtures/references/`` holds two small NetCDF4 files and the Kerchunk references
(:data:`make_golden.REFERENCE_CASES`: JSON of one file and of both combined along ``time``,
Parquet of one file) ``tests/fixtures/make_golden.py`` made of them once, their folder written
as ``{nc}``. Scanning the same files again must give the same references (the same JSON bytes;
the same ``.zmetadata`` bytes and record tables for Parquet), and the stored references must
read as h5netcdf reads the files.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import make_golden as mg
import pytest
import xarray as xr
from helpers import assert_same, files

pytest.importorskip("kerchunk")
pytest.importorskip("h5netcdf")

CASES = sorted(mg.REFERENCE_CASES)


def _assert_same_references(fresh: Path, stored: Path) -> None:
    if stored.is_file():
        assert fresh.read_bytes() == stored.read_bytes(), f"{stored.name} changed"
        return
    pq = pytest.importorskip("pyarrow.parquet")
    assert files(fresh) == files(stored), f"the files of {stored.name} changed"
    for name in files(stored):
        if name.endswith(".parq"):
            assert pq.read_table(fresh / name).equals(pq.read_table(stored / name)), name
        else:
            assert (fresh / name).read_bytes() == (stored / name).read_bytes(), name


def _netcdf(name: str) -> xr.Dataset:
    """What h5netcdf reads from the files of the reference case ``name`` (raw, not masked)."""
    scanned = mg.REFERENCE_CASES[name][0]
    parts = [
        xr.open_dataset(mg.REFERENCES / f, engine="h5netcdf", mask_and_scale=False) for f in scanned
    ]
    if len(parts) == 1:
        return parts[0].load()
    return xr.concat(parts, "time", data_vars="minimal", coords="minimal", compat="override").load()


def test_the_folder_holds_the_cases_only_and_stays_small() -> None:
    assert {p.name for p in mg.REFERENCES.iterdir()} == {*mg.NETCDF_FILES, *CASES}
    assert sum(p.stat().st_size for p in mg.REFERENCES.rglob("*") if p.is_file()) < 100_000


@pytest.mark.parametrize("name", CASES)
def test_scanned_references_are_the_stored_references(tmp_path: Path, name: str) -> None:
    fresh = tmp_path / name
    mg.write_references(name, mg.REFERENCES, fresh)
    mg.mark_folder(fresh, mg.REFERENCES)
    _assert_same_references(fresh, mg.REFERENCES / name)


@pytest.mark.parametrize("name", CASES)
def test_stored_references_read_as_the_files(tmp_path: Path, name: str) -> None:
    refs = tmp_path / name
    stored = mg.REFERENCES / name
    if stored.is_dir():
        shutil.copytree(stored, refs)
    else:
        shutil.copy(stored, refs)
    mg.unmark_folder(refs, mg.REFERENCES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = xr.open_dataset(refs, engine="zaro", mask_and_scale=False).load()
    expected = _netcdf(name)
    assert set(got.variables) == set(expected.variables)
    for var in expected.variables:
        assert got[var].dims == expected[var].dims, var
        assert_same(got[var].values, expected[var].values, f"{name}:{var}")
