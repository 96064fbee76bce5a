"""The arrays a read returns: large ones are memory of their own, in the pages the system's
huge page policy gives, not numpy's huge-page-advised allocations (whose first touch cost about
five times as much on a VM that hands freed memory back to its host)."""

from __future__ import annotations

import mmap
import pickle
from pathlib import Path

import numpy as np
import pytest
import zarr

import xzaro
from xzaro.buffers import fresh_array


def _owner(array: np.ndarray) -> object:
    base: object = array
    while True:
        if isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        elif isinstance(base, memoryview) and base.obj is not None:
            base = base.obj
        else:
            return base


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_large_read_is_a_mapping_of_its_own(tmp_path: Path, zarr_format: int) -> None:
    values = np.arange(3 * 1024 * 1024, dtype="<f4").reshape(3, 1024, 1024)  # 12 MiB
    path = tmp_path / "a.zarr"
    z = zarr.create_array(
        path, shape=values.shape, chunks=(1, 512, 512), dtype=values.dtype, zarr_format=zarr_format
    )
    z[...] = values
    got = xzaro.open_array(str(path))[...]
    assert isinstance(_owner(got), mmap.mmap)
    assert got.flags.writeable and got.flags.c_contiguous
    np.testing.assert_array_equal(got, values)
    got[0, 0, 0] = -1  # the caller's own memory
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(got)), got)
    small = xzaro.open_array(str(path))[0, :4, :4]
    assert not isinstance(_owner(small), mmap.mmap)


def test_fresh_arrays_of_objects_come_from_numpy() -> None:
    out = fresh_array((1024, 1024), object)
    assert out.dtype == object and not isinstance(_owner(out), mmap.mmap)


def test_a_fresh_array_that_cannot_be_mapped_is_a_memory_error() -> None:
    with pytest.raises(MemoryError):
        fresh_array((2**62,), np.uint8)
