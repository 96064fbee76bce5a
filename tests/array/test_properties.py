"""Hypothesis properties: any basic selection of any small array reads as numpy indexing does.

Arrays of 0-4 dimensions, random chunk shapes (chunks larger than the array included), V2 and V3
(sharded too), partially written (missing chunks read as the fill value), are written with
zarr-python into a temporary directory; xzaro's ``a[sel]`` and ``read_region`` must equal numpy
indexing and slicing of the full array, and out-of-range selections raise ``IndexError``
naming the shape.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from helpers import assert_same
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import basic_indices

import xzaro

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

V2_DTYPES = ["<i4", "<f8", "|u1", "|b1", ">i2", "<u8"]
V3_DTYPES = ["int32", "float64", "uint8", "bool", "int16", "float32"]


@dataclass
class Stored:
    array: Any  # the xzaro array
    full: np.ndarray  # what it must read as
    shape: tuple[int, ...]


@st.composite
def layouts(draw: st.DrawFn) -> dict[str, Any]:
    fmt = draw(st.sampled_from([2, 3]))
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    chunks = tuple(draw(st.lists(st.integers(1, 8), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from(V2_DTYPES if fmt == 2 else V3_DTYPES))
    shards = None
    if fmt == 3 and ndim > 0 and draw(st.booleans()):
        factors = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
        shards = tuple(c * f for c, f in zip(chunks, factors))
    order = draw(st.sampled_from(["C", "F"])) if fmt == 2 else "C"
    fill = draw(st.integers(0, 100))
    # the region actually written; the rest stays missing and reads as the fill value
    region = tuple(
        slice(*sorted(draw(st.lists(st.integers(0, s), min_size=2, max_size=2)))) for s in shape
    )
    partial = draw(st.booleans())
    return {
        "fmt": fmt,
        "shape": shape,
        "chunks": chunks,
        "dtype": dtype,
        "shards": shards,
        "order": order,
        "fill": fill,
        "region": region if partial else None,
    }


def _values(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    n = int(np.prod(shape))
    base = np.arange(n, dtype=np.int64) * 7 + 3
    if dtype.kind == "b":
        return (base % 3 == 0).reshape(shape)
    if dtype.kind == "u" and dtype.itemsize == 1:
        return (base % 251).astype(dtype).reshape(shape)
    if dtype.kind == "f":
        return (base / 4 - 10).astype(dtype).reshape(shape)
    return ((base % 30000) - 15000 if dtype.kind == "i" else base).astype(dtype).reshape(shape)


@contextmanager
def stored(layout: dict[str, Any]) -> Iterator[Stored]:
    tmp = Path(tempfile.mkdtemp(prefix="xzaro-prop-"))
    try:
        dtype = np.dtype(layout["dtype"])
        shape = layout["shape"]
        fill = np.array(layout["fill"]).astype(dtype)[()]
        full = np.full(shape, fill, dtype=dtype)
        data = _values(shape, dtype)
        kw: dict[str, Any] = {}
        if layout["shards"] is not None:
            kw["shards"] = layout["shards"]
        if layout["fmt"] == 2:
            kw["order"] = layout["order"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z = zarr.create_array(
                store=str(tmp),
                shape=shape,
                chunks=layout["chunks"],
                dtype=dtype,
                fill_value=fill,
                zarr_format=layout["fmt"],
                **kw,
            )
            region = layout["region"] if layout["region"] is not None else ...
            if data.size:
                z[region] = data[region]
                full[region] = data[region]
        yield Stored(xzaro.open_array(str(tmp)), full, shape)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def shape_pattern(shape: tuple[int, ...]) -> str:
    """A regex matching the shape written as a tuple or list (``(3, 4)``, ``[3, 4]``)."""
    return r"[\(\[]" + r",\s*".join(str(s) for s in shape) + r",?[\)\]]"


@SETTINGS
@given(layout=layouts(), data=st.data())
def test_basic_selections_match_numpy(layout: dict[str, Any], data: st.DataObject) -> None:
    with stored(layout) as s:
        assert_same(s.array[...], s.full, any_byteorder=True)
        for _ in range(8):
            sel = data.draw(basic_indices(s.shape, allow_ellipsis=True, allow_newaxis=False))
            assert_same(s.array[sel], s.full[sel], any_byteorder=True)


@st.composite
def stepped(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple:
    """Explicit stepped/negative-step slices and negative integers, one per dimension."""
    out: list[Any] = []
    for n in shape:
        if n and draw(st.booleans()):
            out.append(draw(st.integers(-n, n - 1)))
        else:
            start = draw(st.none() | st.integers(-n - 3, n + 3))
            stop = draw(st.none() | st.integers(-n - 3, n + 3))
            step = draw(st.sampled_from([None, 1, 2, 5, -1, -2, -3]))
            out.append(slice(start, stop, step))
    return tuple(out)


@SETTINGS
@given(layout=layouts(), data=st.data())
def test_stepped_and_negative_selections(layout: dict[str, Any], data: st.DataObject) -> None:
    with stored(layout) as s:
        for _ in range(6):
            sel = data.draw(stepped(s.shape))
            assert_same(s.array[sel], s.full[sel], any_byteorder=True)


@SETTINGS
@given(layout=layouts(), data=st.data())
def test_read_region_matches_slicing(layout: dict[str, Any], data: st.DataObject) -> None:
    with stored(layout) as s:
        for _ in range(5):
            start = tuple(data.draw(st.integers(0, n)) for n in s.shape)
            count = tuple(
                data.draw(st.none() | st.integers(0, n - b)) for n, b in zip(s.shape, start)
            )
            sel = tuple(slice(b, None if c is None else b + c) for b, c in zip(start, count))
            assert_same(s.array.read_region(start, count), s.full[sel], any_byteorder=True)


@SETTINGS
@given(layout=layouts(), data=st.data())
def test_chunks_cover_the_array(layout: dict[str, Any], data: st.DataObject) -> None:
    with stored(layout) as s:
        a = s.array
        out = np.zeros(s.shape, dtype=s.full.dtype)
        chunks = tuple(a.chunks)
        for idx, block in a.iter_chunks():
            sel = tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, chunks))
            assert_same(block, s.full[sel], any_byteorder=True)
            assert_same(a.read_chunk(idx), s.full[sel], any_byteorder=True)
            out[sel] = block
        assert_same(out, s.full, any_byteorder=True)


@SETTINGS
@given(layout=layouts().filter(lambda lay: len(lay["shape"]) > 0), data=st.data())
def test_out_of_range_raises_index_error(layout: dict[str, Any], data: st.DataObject) -> None:
    with stored(layout) as s:
        shape = s.shape
        pat = shape_pattern(shape)
        dim = data.draw(st.integers(0, len(shape) - 1))
        n = shape[dim]
        bad = data.draw(st.sampled_from([n, n + 3, -n - 1, -n - 7]))
        sel = tuple(bad if d == dim else slice(None) for d in range(len(shape)))
        with pytest.raises(IndexError, match=pat):
            s.array[sel]
        with pytest.raises(IndexError, match=pat):
            s.array[(*(0 for _ in shape), 0)]  # too many indices
        start = tuple(0 for _ in shape)
        count = tuple(n + 1 if d == dim else None for d, n in enumerate(shape))
        with pytest.raises(IndexError, match=pat):
            s.array.read_region(start, count)
        start = tuple(n + 1 if d == dim else 0 for d, n in enumerate(shape))
        with pytest.raises(IndexError, match=pat):
            s.array.read_region(start, tuple(None for _ in shape))


def test_shape_pattern() -> None:
    assert re.search(shape_pattern((3, 4)), "array shape is (3, 4)")
    assert re.search(shape_pattern((3,)), "shape [3]")
    assert re.search(shape_pattern((3,)), "shape (3,)")
    assert not re.search(shape_pattern((3, 4)), "shape (3, 5)")
