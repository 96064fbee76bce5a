"""Every codec configuration xzaro writes: the stored bytes are written again, and decode.

The stores below ``tests/fixtures/codecs/`` (one per :data:`make_golden.CODEC_CASES` entry) were
written once by ``tests/fixtures/make_golden.py`` from the arrays in ``codecs/arrays/``. Writing
the same array with the same configuration must give the same keys and bytes, and reading the
stored bytes must give the stored array back bit for bit (a lossy filter's stored decode, and
values within its tolerance of the input).
"""

from __future__ import annotations

from pathlib import Path

import make_golden as mg
import numpy as np
import pytest
from helpers import assert_same, assert_same_files

import xzaro

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

CASES = sorted(mg.CODEC_CASES)


def test_the_folder_holds_the_cases_only_and_stays_small() -> None:
    stored = {p.name for p in mg.CODECS.iterdir()} - {"arrays"}
    wanted = {f"{name}.zarr" for name in CASES}
    wanted |= {f"{name}.decoded.npy" for name, case in mg.CODEC_CASES.items() if case.lossy}
    assert stored == wanted
    arrays = {case.array for case in mg.CODEC_CASES.values()}
    assert {p.stem for p in (mg.CODECS / "arrays").iterdir()} == arrays
    assert sum(p.stat().st_size for p in mg.CODECS.rglob("*") if p.is_file()) < 400_000


@pytest.mark.parametrize("name", CASES)
def test_written_bytes_are_the_stored_bytes(tmp_path: Path, name: str) -> None:
    case = mg.CODEC_CASES[name]
    fresh = tmp_path / f"{name}.zarr"
    mg.write_codec_case(case, mg.load_codec_array(case.array), fresh)
    assert_same_files(fresh, mg.CODECS / f"{name}.zarr")


@pytest.mark.parametrize("name", CASES)
def test_stored_bytes_decode_to_the_stored_array(name: str) -> None:
    case = mg.CODEC_CASES[name]
    got = xzaro.open_array(mg.CODECS / f"{name}.zarr", "v")[...]
    array = mg.load_codec_array(case.array)
    if not case.lossy:
        assert_same(got, array, name)
        return
    assert_same(got, np.load(mg.CODECS / f"{name}.decoded.npy"), name)
    np.testing.assert_allclose(got, array, rtol=0, atol=case.tolerance, err_msg=name)
