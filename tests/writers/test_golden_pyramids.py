"""OME pyramids of ``to_store(multiscale=...)``: the stored bytes are written again, and decode.

The stores below ``tests/fixtures/pyramids/`` (:data:`make_golden.PYRAMID_CASES`: a V2 ``mean``
pyramid, a sharded V3 ``mean`` pyramid, a V3 ``decimate`` pyramid of odd sizes) were written once
by ``tests/fixtures/make_golden.py`` from ``pyramids/base_*.npy``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import make_golden as mg
import numpy as np
import pytest
from helpers import assert_same, assert_same_files

import xzaro

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CASES = sorted(mg.PYRAMID_CASES)


def _base(name: str) -> np.ndarray:
    return np.load(mg.PYRAMIDS / f"base_{mg.PYRAMID_CASES[name][0]}.npy")


def test_the_folder_holds_the_cases_only_and_stays_small() -> None:
    bases = {f"base_{case[0]}.npy" for case in mg.PYRAMID_CASES.values()}
    assert {p.name for p in mg.PYRAMIDS.iterdir()} == bases | set(CASES)
    assert sum(p.stat().st_size for p in mg.PYRAMIDS.rglob("*") if p.is_file()) < 200_000


@pytest.mark.parametrize("name", CASES)
def test_written_pyramid_is_the_stored_pyramid(tmp_path: Path, name: str) -> None:
    fresh = tmp_path / name
    mg.write_pyramid(name, _base(name), fresh)
    assert_same_files(fresh, mg.PYRAMIDS / name)


@pytest.mark.parametrize("name", CASES)
def test_stored_pyramid_decodes_to_the_base_and_its_coarsenings(name: str) -> None:
    """Level 0 is the base image; each further level coarsens the one before by 2 x 2 (``mean``
    ignoring NaN, or ``decimate``)."""
    method = mg.PYRAMID_CASES[name][2]
    levels = [ds["img"].values for ds in xzaro.open_multiscale(mg.PYRAMIDS / name)]
    assert len(levels) == 3
    assert_same(levels[0], _base(name), name)
    for i, (finer, level) in enumerate(itertools.pairwise(levels), start=1):
        if method == "decimate":
            assert_same(level, finer[::2, ::2], f"{name} level {i}")
            continue
        y, x = finer.shape
        means = np.nanmean(finer.reshape(y // 2, 2, x // 2, 2), axis=(1, 3))
        assert level.dtype == finer.dtype
        np.testing.assert_allclose(level, means, rtol=1e-5, atol=1e-5, err_msg=f"{name} level {i}")
