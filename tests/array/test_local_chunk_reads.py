"""Reads of unsharded chunks from local files, against zarr-python's reads of the same stores.

Small chunks (up to ``SERIAL_CHUNK_BYTES`` decoded) are read and decoded one after the other on
the caller's thread, larger ones by the shared pool; either way every chunk that exists has its
values, every missing one the fill value bit for bit (a NaN with a payload included), and a file
that comes back from the system in several reads is read whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import xzaro
import xzaro.array
from xzaro.stores import files

NAN_WITH_PAYLOAD = np.array([0x7FC00123], dtype=np.uint32).view(np.float32)[0]


def _written(path: Path, chunk: tuple[int, int], fill: Any) -> np.ndarray:
    """A float32 (64, 96) array in ``chunk``s, zstd, with every third chunk never written."""
    rng = np.random.default_rng(7)
    data = rng.normal(size=(64, 96)).astype(np.float32)
    z = zarr.create_array(
        str(path),
        shape=data.shape,
        chunks=chunk,
        dtype="float32",
        fill_value=fill,
        compressors=zarr.codecs.ZstdCodec(level=1),
        zarr_format=3,
    )
    for n, (i, j) in enumerate(np.ndindex(64 // chunk[0], 96 // chunk[1])):
        if n % 3:
            box = (slice(i * chunk[0], (i + 1) * chunk[0]), slice(j * chunk[1], (j + 1) * chunk[1]))
            z[box] = data[box]
    return np.asarray(zarr.open_array(str(path), mode="r")[...])


@pytest.mark.parametrize("fill", [0.0, NAN_WITH_PAYLOAD])
@pytest.mark.parametrize("chunk", [(1, 16), (8, 32), (64, 96)])
def test_small_and_large_chunks_read_as_zarr_does(
    tmp_path: Path, chunk: tuple[int, int], fill: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _written(tmp_path / "a", chunk, fill)
    pooled: list[int] = []
    real_map = xzaro.array.concurrent_map

    def counting_map(fn: Any, items: Any) -> list[Any]:
        items = list(items)
        pooled.append(len(items))
        return real_map(fn, items)

    monkeypatch.setattr(xzaro.array, "concurrent_map", counting_map)
    a = xzaro.open_array(str(tmp_path / "a"))
    for box in [(...,), (slice(3, 61), slice(5, 90, 2)), (slice(None, None, -1), 7)]:
        got = a[box]
        assert got.tobytes() == expected[box].tobytes(), box  # NaN payloads compared as bits
    small = np.prod(chunk) * 4 <= xzaro.array.SERIAL_CHUNK_BYTES
    assert small == (chunk != (64, 96))
    assert (pooled == []) == small  # small chunks never go to the pool


def test_pool_reads_chunks_over_the_serial_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xzaro.array, "SERIAL_CHUNK_BYTES", 16)
    expected = _written(tmp_path / "a", (8, 32), 0.0)
    pooled: list[int] = []
    real_map = xzaro.array.concurrent_map
    monkeypatch.setattr(
        xzaro.array, "concurrent_map", lambda fn, items: pooled.append(1) or real_map(fn, items)
    )
    assert np.array_equal(xzaro.open_array(str(tmp_path / "a"))[...], expected)
    assert pooled == [1]


def test_file_returned_in_several_reads_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _written(tmp_path / "a", (8, 32), 0.0)
    real_readv = os.readv

    def short_readv(fd: int, buffers: list[Any]) -> int:
        """At most 7 bytes per call, as a file system may return them."""
        return real_readv(fd, [memoryview(buffers[0])[:7]])

    monkeypatch.setattr(files.os, "readv", short_readv)
    assert np.array_equal(xzaro.open_array(str(tmp_path / "a"))[...], expected)
