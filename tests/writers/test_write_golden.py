"""Golden ``to_store`` stores: written again byte for byte, and read alike by xzaro, zarr-python
and tensorstore.
"""

from __future__ import annotations

from pathlib import Path

import make_golden as mg
import pytest
import xarray as xr
from helpers import as_object, assert_same, assert_same_files, ts_read, zarr_read
from write_cases import QUIET, assert_datasets_same

import xzaro

pytestmark = QUIET


def test_golden_fixtures_are_small() -> None:
    total = sum(p.stat().st_size for p in mg.GOLDEN.rglob("*") if p.is_file())
    assert 0 < total < 50_000
    assert sorted(p.name for p in mg.GOLDEN.iterdir()) == sorted(mg.STORES)


@pytest.mark.parametrize("name", sorted(mg.STORES))
def test_golden_store_is_byte_identical(tmp_path: Path, name: str) -> None:
    """Writing the golden dataset again gives exactly the committed keys and bytes.

    If this fails on purpose (a deliberate format change), regenerate with
    ``python tests/fixtures/make_golden.py`` and review the diff.
    """
    (fresh,) = (p for p in mg.build(tmp_path) if p.name == name)
    assert_same_files(fresh, mg.GOLDEN / name)


@pytest.mark.parametrize("name", sorted(mg.STORES))
def test_golden_store_reads_everywhere(name: str) -> None:
    path = mg.GOLDEN / name
    with xr.open_dataset(path, engine="zaro") as got, xr.open_dataset(path, engine="zarr") as ref:
        assert_datasets_same(got, ref, name)
        assert got.attrs == ref.attrs
    fmt = 2 if (path / ".zgroup").exists() else 3
    for var in xzaro.open_group(path).members():
        a = xzaro.open_array(path, var)[...]
        assert_same(as_object(a), as_object(zarr_read(path, var)), f"{name}/{var}")
        if a.dtype.kind not in "OSU":
            assert_same(a, ts_read(path, var, fmt), f"{name}/{var} tensorstore")
