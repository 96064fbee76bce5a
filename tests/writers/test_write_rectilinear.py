"""Rectilinear chunk grids on the write side: ``to_store`` with chunks (or shards) of given sizes.

Chunk sizes listed per dimension, through ``encoding`` or ``chunks=``/``shards=``, write a V3
``rectilinear`` grid in the form zarr-python 3.4 writes; xzaro and zarr-python (in the 3.12 venv,
where it exists) read the values back bit-exactly, and the Dask chunks on reopening are the
written grid. V2 and bad sizes are errors naming the variable and the field; appends add chunks.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from helpers import assert_same, run_venv312

import xzaro
from xzaro.errors import MetadataError, UnsupportedError

MONTHS = (31, 28, 31, 30)


def _dataset(n: int = sum(MONTHS)) -> xr.Dataset:
    rng = np.random.default_rng(3)
    return xr.Dataset(
        {
            "v": (("time", "x"), rng.standard_normal((n, 10)).astype("f4")),
            "n": (("time",), np.arange(n, dtype="<i8")),
        },
    )


def _grid(path: Path, name: str) -> dict[str, Any]:
    return json.loads((path / name / "zarr.json").read_text())["chunk_grid"]


def _reopen(path: Path) -> xr.Dataset:
    return xr.open_dataset(path, engine="zaro", chunks={}, consolidated=False)


THEIR_READ = textwrap.dedent(
    """
    import sys, numpy, zarr
    zarr.config.set({"array.rectilinear_chunks": True})
    numpy.save(sys.argv[2], zarr.open_array(sys.argv[1], mode="r")[...])
    """
)


def _zarr_python_reads(path: Path, expected: np.ndarray, tmp_path: Path) -> None:
    """zarr-python 3.4 reads the array at ``path`` as ``expected`` (skip where it is absent)."""
    out = tmp_path / "theirs.npy"
    result = run_venv312(THEIR_READ, str(path), str(out))
    if result.returncode:
        pytest.skip(f"zarr-python reads no rectilinear grids here: {result.stderr[-300:]}")
    assert_same(np.load(out), expected)


def test_encoding_chunks_write_a_rectilinear_grid(tmp_path: Path) -> None:
    ds = _dataset()
    path = tmp_path / "a.zarr"
    ds.zaro.to_store(path, zarr_format=3, encoding={"v": {"chunks": (MONTHS, 4)}})
    assert _grid(path, "v") == {
        "name": "rectilinear",
        "configuration": {"kind": "inline", "chunk_shapes": [list(MONTHS), 4]},
    }
    assert _grid(path, "n")["name"] == "regular"
    with _reopen(path) as back:
        assert back.v.chunks == (MONTHS, (4, 4, 2))
        assert back.v.encoding["chunks"] == (MONTHS, 4)
        assert_same(back.v.values, ds.v.values)
        assert_same(back.n.values, ds.n.values)
    _zarr_python_reads(path / "v", ds.v.values, tmp_path)


def test_chunks_argument_writes_runs_and_matching_dask_blocks_stay(tmp_path: Path) -> None:
    sizes = (31, 28, 31, 30, 5, 5)
    ds = _dataset(sum(sizes)).chunk({"time": sizes})
    path = tmp_path / "a.zarr"
    ds.zaro.to_store(path, zarr_format=3, chunks={"time": sizes})
    assert _grid(path, "v")["configuration"]["chunk_shapes"] == [[31, 28, 31, 30, [5, 2]], 10]
    assert _grid(path, "n")["configuration"]["chunk_shapes"] == [[31, 28, 31, 30, [5, 2]]]
    with _reopen(path) as back:
        assert back.v.chunks == (sizes, (10,))
        assert back.n.chunks == (sizes,)
        assert_same(back.v.values, ds.v.values)
    _zarr_python_reads(path / "v", ds.v.values, tmp_path)


def test_sizes_of_one_chunk_size_write_a_regular_grid(tmp_path: Path) -> None:
    path = tmp_path / "a.zarr"
    _dataset(25).zaro.to_store(path, zarr_format=3, chunks={"time": (10, 10, 5)})
    assert _grid(path, "v") == {"name": "regular", "configuration": {"chunk_shape": [10, 10]}}


def test_sharded_rectilinear_grid(tmp_path: Path) -> None:
    ds = _dataset()
    path = tmp_path / "a.zarr"
    encoding = {"v": {"chunks": (1, 5), "shards": (MONTHS, 10)}}
    ds.zaro.to_store(path, zarr_format=3, encoding=encoding)
    assert _grid(path, "v")["configuration"]["chunk_shapes"] == [list(MONTHS), 10]
    with _reopen(path) as back:
        assert back.v.encoding["shards"] == (MONTHS, 10)
        assert_same(back.v.values, ds.v.values)
    _zarr_python_reads(path / "v", ds.v.values, tmp_path)


def test_shards_argument_with_shards_of_whole_chunks(tmp_path: Path) -> None:
    ds = _dataset(40)
    path = tmp_path / "a.zarr"
    ds.zaro.to_store(path, zarr_format=3, chunks={"time": 4}, shards={"time": (8, 12, 20)})
    assert _grid(path, "n")["configuration"]["chunk_shapes"] == [[8, 12, 20]]
    with _reopen(path) as back:
        assert_same(back.n.values, ds.n.values)
    with pytest.raises(MetadataError, match="whole multiples") as info:
        ds.zaro.to_store(tmp_path / "b.zarr", chunks={"time": 4}, shards={"time": (6, 34)})
    assert info.value.key in ("v", "n")


def test_rectilinear_inner_chunks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError) as info:
        _dataset().zaro.to_store(
            tmp_path / "a.zarr", encoding={"v": {"chunks": (MONTHS, 10), "shards": (120, 10)}}
        )
    assert (info.value.key, info.value.field) == ("v", "chunks")


def test_zarr_v2_refuses_a_rectilinear_grid(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="zarr_format=3") as info:
        _dataset().zaro.to_store(
            tmp_path / "a.zarr", zarr_format=2, encoding={"v": {"chunks": (MONTHS, 10)}}
        )
    assert (info.value.key, info.value.field) == ("v", "chunks")
    assert str(tmp_path / "a.zarr") in str(info.value.url)
    with pytest.raises(UnsupportedError, match="zarr_format=3") as info:
        _dataset().zaro.to_store(tmp_path / "b.zarr", zarr_format=2, chunks={"time": MONTHS})
    assert info.value.field == "chunks" and info.value.key in ("v", "n")


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((31, 28, 31), "sum to 90, not the dimension's length 120"),
        ((31, 28, 31, 31), "sum to 121"),
        ((31, 28, 0, 31, 30), "positive integers"),
        ((31, 28, -31, 92), "positive integers"),
        ((31.0, 28, 31, 30), "positive integers"),
        ((), "positive integers"),
    ],
)
def test_bad_sizes_name_the_variable_and_field(
    tmp_path: Path, sizes: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(MetadataError, match=message) as info:
        _dataset().zaro.to_store(tmp_path / "a.zarr", encoding={"v": {"chunks": (sizes, 10)}})
    assert (info.value.key, info.value.field) == ("v", "chunks")
    with pytest.raises(MetadataError, match=message) as info:
        _dataset().zaro.to_store(tmp_path / "b.zarr", chunks={"time": sizes})
    assert info.value.field == "chunks"


def test_a_rewrite_keeps_the_grid_it_read(tmp_path: Path) -> None:
    ds = _dataset()
    ds.zaro.to_store(tmp_path / "a.zarr", encoding={"v": {"chunks": (MONTHS, 10)}})
    with _reopen(tmp_path / "a.zarr") as back:
        back.zaro.to_store(tmp_path / "b.zarr")
        back.isel(time=slice(0, 100)).zaro.to_store(tmp_path / "c.zarr")
    assert _grid(tmp_path / "b.zarr", "v") == _grid(tmp_path / "a.zarr", "v")
    assert _grid(tmp_path / "c.zarr", "v")["name"] == "regular"  # stale sizes are dropped


def test_append_along_a_rectilinear_dimension_adds_chunks(tmp_path: Path) -> None:
    ds = _dataset()
    path = tmp_path / "a.zarr"
    ds.isel(time=slice(0, 90)).zaro.to_store(path, encoding={"v": {"chunks": ((31, 28, 31), 10)}})
    ds.isel(time=slice(90, 120)).zaro.to_store(path, append_dim="time")
    # the new rows go into chunks of the last edge length, the last reaching past the end
    assert _grid(path, "v")["configuration"]["chunk_shapes"] == [[31, 28, [31, 2]], 10]
    with _reopen(path) as back:
        assert back.v.chunks[0] == (31, 28, 31, 30)
        assert_same(back.v.values, ds.v.values)
    _zarr_python_reads(path / "v", ds.v.values, tmp_path)


def test_region_write_into_a_rectilinear_array(tmp_path: Path) -> None:
    ds = _dataset()
    path = tmp_path / "a.zarr"
    ds.zaro.to_store(path, encoding={"v": {"chunks": (MONTHS, 10)}})
    patch = ds.isel(time=slice(40, 70)).drop_vars("n") * 0 + 1
    patch.zaro.to_store(path, region={"time": slice(40, 70)})
    expected = ds.v.values.copy()
    expected[40:70] = 1
    with _reopen(path) as back:
        assert_same(back.v.values, expected)


def test_info_shows_the_edge_lengths(tmp_path: Path) -> None:
    from xzaro.cli.info import describe_array

    path = tmp_path / "a.zarr"
    _dataset().zaro.to_store(path, encoding={"v": {"chunks": (1, 5), "shards": (MONTHS, 10)}})
    facts = describe_array("v", xzaro.open_array(path / "v"), None)
    assert (facts["chunks"], facts["shards"]) == ([1, 5], [list(MONTHS), 10])
    _dataset().zaro.to_store(tmp_path / "b.zarr", chunks={"time": MONTHS})
    facts = describe_array("n", xzaro.open_array(tmp_path / "b.zarr" / "n"), None)
    assert (facts["chunks"], facts["shards"]) == ([list(MONTHS)], None)
