"""Reads of unsharded chunks from local files, against zarr-python's reads of the same stores.

Small chunks (up to ``SERIAL_CHUNK_BYTES`` decoded) are read and decoded one after the other on
the caller's thread, larger ones by the shared pool; either way every chunk that exists has its
values, every missing one the fill value bit for bit (a NaN with a payload included), and a file
that comes back from the system in several reads is read whole.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import xzaro
import xzaro.local_chunks
from xzaro.errors import DecodeError
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
    real_map = xzaro.local_chunks.concurrent_map

    def counting_map(fn: Any, items: Any) -> list[Any]:
        items = list(items)
        pooled.append(len(items))
        return real_map(fn, items)

    monkeypatch.setattr(xzaro.local_chunks, "concurrent_map", counting_map)
    a = xzaro.open_array(str(tmp_path / "a"))
    for box in [(...,), (slice(3, 61), slice(5, 90, 2)), (slice(None, None, -1), 7)]:
        got = a[box]
        assert got.tobytes() == expected[box].tobytes(), box  # NaN payloads compared as bits
    small = np.prod(chunk) * 4 <= xzaro.local_chunks.SERIAL_CHUNK_BYTES
    assert small == (chunk != (64, 96))
    assert (pooled == []) == small  # small chunks never go to the pool


def test_pool_reads_chunks_over_the_serial_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xzaro.local_chunks, "SERIAL_CHUNK_BYTES", 16)
    expected = _written(tmp_path / "a", (8, 32), 0.0)
    pooled: list[int] = []
    real_map = xzaro.local_chunks.concurrent_map
    monkeypatch.setattr(
        xzaro.local_chunks,
        "concurrent_map",
        lambda fn, items: pooled.append(1) or real_map(fn, items),
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


COMPRESSORS = {
    "zstd": lambda: zarr.codecs.ZstdCodec(level=1),
    "blosc": lambda: zarr.codecs.BloscCodec(cname="lz4", shuffle="shuffle"),
    "gzip": lambda: zarr.codecs.GzipCodec(level=1),
    "none": lambda: None,
}


@pytest.mark.parametrize("compressor", list(COMPRESSORS))
@pytest.mark.parametrize(
    ("shape", "chunk"),
    [
        ((50, 96), (1, 96)),  # whole rows
        ((50, 96), (1, 16)),  # a row in pieces
        ((9, 7, 33), (1, 1, 33)),
        ((9, 7, 33), (2, 7, 33)),  # blocks of whole planes, the last cut by the array's end
        ((9, 7, 33), (1, 2, 33)),  # the last of each plane cut
        ((50, 97), (1, 16)),  # each row's last chunk cut
        ((40, 96), (8, 32)),  # no chunk is one run of the output: placed one by one
    ],
)
def test_whole_chunks_decoded_by_offset_read_as_zarr_does(
    tmp_path: Path, compressor: str, shape: tuple[int, ...], chunk: tuple[int, ...]
) -> None:
    """Small chunks that each fill a run of the output are decoded straight to their offset;
    those a box or the array's end cuts, and missing ones, are placed as before."""
    data = np.random.default_rng(3).normal(size=shape).astype("f4")
    z = zarr.create_array(
        str(tmp_path / "a"),
        shape=shape,
        chunks=chunk,
        dtype="f4",
        fill_value=-2.0,
        compressors=COMPRESSORS[compressor](),
        zarr_format=3,
    )
    z[...] = data
    grid = [range(0, n, c) for n, c in zip(shape, chunk)]
    for n, start in enumerate(itertools.product(*grid)):
        if n % 5 == 2:  # some chunks never written
            (tmp_path / "a" / "c" / "/".join(str(s // c) for s, c in zip(start, chunk))).unlink()
    expected = np.asarray(zarr.open_array(str(tmp_path / "a"), mode="r")[...])
    a = xzaro.open_array(str(tmp_path / "a"))
    boxes = [(...,), (slice(1, None),), (slice(3, 7),), (slice(2, 9), 0), (slice(None, None, 2),)]
    if len(shape) == 3:
        boxes += [(slice(1, 8), slice(0, 7), slice(None)), (4,), (slice(0, 4), slice(2, 4))]
    else:
        boxes += [(slice(0, 33), slice(16, 96)), (slice(None), slice(0, 33))]
    for box in boxes:
        np.testing.assert_array_equal(a[box], expected[box], err_msg=str(box))


def test_a_corrupt_small_chunk_names_its_key(tmp_path: Path) -> None:
    z = zarr.create_array(
        str(tmp_path / "a"),
        shape=(20, 64),
        chunks=(1, 64),
        dtype="f4",
        compressors=zarr.codecs.ZstdCodec(level=1),
    )
    z[...] = 1.0
    (tmp_path / "a" / "c" / "7" / "0").write_bytes(b"\x28\xb5\x2f\xfd broken")
    a = xzaro.open_array(str(tmp_path / "a"))
    with pytest.raises(DecodeError, match="zstd") as raised:
        a[...]
    assert raised.value.key == "c/7/0" and raised.value.url == a.store.url
    np.testing.assert_array_equal(a[:7], np.ones((7, 64), "f4"))
