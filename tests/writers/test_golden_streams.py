"""``xzaro.streaming`` output: the stored streams are written again, and decode to the frames.

The stores below ``tests/fixtures/streams/`` (:data:`make_golden.STREAM_CASES`: V2 and V3 with a
multiscale pyramid, an uncompressed single-level V3 stream written frame by frame) were written
once by ``tests/fixtures/make_golden.py`` from ``streams/frames.npy``.
"""

from __future__ import annotations

from pathlib import Path

import make_golden as mg
import numpy as np
import pytest
from helpers import assert_same, assert_same_files

import xzaro

CASES = sorted(mg.STREAM_CASES)


def _frames() -> np.ndarray:
    return np.load(mg.STREAMS / "frames.npy")


def test_the_folder_holds_the_cases_only_and_stays_small() -> None:
    assert {p.name for p in mg.STREAMS.iterdir()} == {"frames.npy", *CASES}
    assert sum(p.stat().st_size for p in mg.STREAMS.rglob("*") if p.is_file()) < 100_000


@pytest.mark.parametrize("name", CASES)
def test_streamed_bytes_are_the_stored_bytes(tmp_path: Path, name: str) -> None:
    fresh = tmp_path / name
    mg.write_stream(name, _frames(), fresh)
    assert_same_files(fresh, mg.STREAMS / name)


@pytest.mark.parametrize("name", CASES)
def test_stored_stream_decodes_to_the_frames(name: str) -> None:
    """Level 0 holds the frames; each further level the 2 x 2 means of the one before (integer
    means rounded)."""
    path = mg.STREAMS / name
    level = xzaro.open_array(path, "0")[...]
    assert_same(level, _frames(), name)
    levels = sorted(p.name for p in path.iterdir() if p.name.isdigit())
    assert len(levels) == (3 if mg.STREAM_CASES[name][3] else 1)
    for n in levels[1:]:
        t, y, x = level.shape
        means = level.reshape(t, y // 2, 2, x // 2, 2).mean(axis=(2, 4))
        level = xzaro.open_array(path, n)[...]
        assert level.dtype == np.uint16
        np.testing.assert_allclose(level, means, rtol=0, atol=0.5, err_msg=f"{name} level {n}")
