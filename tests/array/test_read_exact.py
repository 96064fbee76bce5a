"""Stores written by other programs read exactly as those programs read them (issue 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import xzaro


@pytest.mark.parametrize("dtype", ["M8[ns]", "M8[s]", "m8[s]", "m8[ms]"])
def test_v2_time_arrays_with_null_fill_read_never_written_chunks_as_nat(
    tmp_path: Path, dtype: str
) -> None:
    """zarr-python skips all-NaT chunks; with ``"fill_value": null`` they must read as NaT,
    not as 1970-01-01 / 0."""
    path = tmp_path / "t.zarr"
    arr = zarr.create_array(
        path, shape=(6,), chunks=(2,), dtype=dtype, zarr_format=2, fill_value=None
    )
    arr[:2] = np.array([1, 2]).astype(dtype)
    expected = arr[...]
    assert np.isnat(expected[2:]).all()
    got = xzaro.open_array(path)[...]
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype


def test_v2_datetime_variable_with_null_fill_through_xarray(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    times = group.create_array("t", shape=(4,), chunks=(2,), dtype="M8[ns]", fill_value=None)
    times.attrs["_ARRAY_DIMENSIONS"] = ["t"]
    times[:2] = np.array(["2001-01-01", "2001-01-02"], dtype="M8[ns]")
    for engine in ("zarr", "zaro"):
        with xr.open_dataset(path, engine=engine, consolidated=False) as ds:
            values = ds.t.values
            assert values[0] == np.datetime64("2001-01-01")
            assert np.isnat(values[2:]).all(), engine


@pytest.mark.parametrize(("fill", "expected"), [(0, "0"), (1.5, "1.5"), (True, "True")])
def test_v2_string_array_with_a_number_as_fill_value(
    tmp_path: Path, fill: object, expected: str
) -> None:
    """zarrs' test data stores ``"fill_value": 0`` for a vlen-utf8 array; zarr-python reads
    never-written chunks as ``"0"``. A number must never appear inside a string array."""
    import json

    path = tmp_path / "s.zarr"
    arr = zarr.create_array(path, shape=(4,), chunks=(2,), dtype=str, zarr_format=2, fill_value="")
    arr[:2] = np.array(["a", "b"], dtype=object)
    doc = json.loads((path / ".zarray").read_text())
    doc["fill_value"] = fill
    (path / ".zarray").write_text(json.dumps(doc))
    got = xzaro.open_array(path)[...]
    assert list(got) == ["a", "b", expected, expected]
    assert list(got) == list(zarr.open_array(path, mode="r")[...])


def test_v2_string_array_with_a_list_as_fill_value_is_refused(tmp_path: Path) -> None:
    import json

    path = tmp_path / "s.zarr"
    zarr.create_array(path, shape=(4,), chunks=(2,), dtype=str, zarr_format=2, fill_value="")
    doc = json.loads((path / ".zarray").read_text())
    doc["fill_value"] = [1, 2]
    (path / ".zarray").write_text(json.dumps(doc))
    with pytest.raises(xzaro.MetadataError, match="fill_value") as info:
        xzaro.open_array(path)
    assert info.value.field == "fill_value" and info.value.url is not None


def _bytes_array_with_fill(path: Path, fill: object) -> None:
    """A V3 variable-length bytes array (zarr-python 3) whose fill value is then rewritten."""
    import json
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr-python: the data type is not in the V3 spec yet
        arr = zarr.create_array(
            path, shape=(4,), chunks=(2,), dtype="variable_length_bytes", zarr_format=3
        )
        arr[:2] = np.array([b"ab", b"c"], dtype=object)
    doc = json.loads((path / "zarr.json").read_text())
    doc["fill_value"] = fill
    (path / "zarr.json").write_text(json.dumps(doc))


def test_v3_bytes_fill_value_as_a_list_of_bytes(tmp_path: Path) -> None:
    """``[1, 2, 3]`` is the fill value b"\\x01\\x02\\x03" (the base64 form reads the same)."""
    _bytes_array_with_fill(tmp_path / "list.zarr", [1, 2, 3])
    _bytes_array_with_fill(tmp_path / "b64.zarr", "AQID")
    for name in ("list.zarr", "b64.zarr"):
        got = xzaro.open_array(tmp_path / name)[...]
        assert list(got) == [b"ab", b"c", b"\x01\x02\x03", b"\x01\x02\x03"], name


@pytest.mark.parametrize("fill", [[1, 256], [1, "a"], [True], {"a": 1}])
def test_v3_bytes_fill_value_that_is_no_bytes_is_refused(tmp_path: Path, fill: object) -> None:
    _bytes_array_with_fill(tmp_path / "b.zarr", fill)
    with pytest.raises(xzaro.MetadataError) as info:
        xzaro.open_array(tmp_path / "b.zarr")
    assert info.value.field == "fill_value"
