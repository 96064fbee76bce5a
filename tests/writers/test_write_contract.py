"""``to_store`` keeps xarray's ``to_zarr`` contract: no silent loss, no silently ignored input,
nothing written outside the store, and appends that survive being interrupted.

Every value is checked as zarr-python reads it back, not only as xzaro does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr

import xzaro
from xzaro.errors import MetadataError, ZaroError
from xzaro.paths import InvalidNameError
from xzaro.writers import dataset as dataset_module
from xzaro.writers.journal import JOURNAL_KEY, InterruptedAppendError

LAYOUTS: dict[str, dict[str, Any]] = {
    "v2": {"zarr_format": 2},
    "v3": {"zarr_format": 3},
    "v3_sharded": {"zarr_format": 3, "shards": {"t": 20}},
}


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def zread(path: Path, name: str) -> np.ndarray:
    return zarr.open_group(path, mode="r")[name][...]


def series(n: int = 40, start: int = 0) -> xr.Dataset:
    t = np.arange(start, start + n)
    return xr.Dataset({"v": ("t", (t * 1.5).astype("float64"))}, coords={"t": t})


# ------------------------------------------------------------------------------------------
# Silent loss and silent misbehaviour
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_appending_longer_fixed_width_strings_is_refused(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "s.zarr"
    xr.Dataset({"s": ("t", np.array(["ab", "cd"], dtype="<U2"))}).zaro.to_store(
        path, zarr_format=zarr_format
    )
    before = {k: (path / k).read_bytes() for k in files(path)}
    longer = xr.Dataset({"s": ("t", np.array(["hello"], dtype="<U5"))})
    with pytest.raises(MetadataError, match="Mismatched dtypes"):
        longer.zaro.to_store(path, append_dim="t")
    assert {k: (path / k).read_bytes() for k in files(path)} == before
    same = xr.Dataset({"s": ("t", np.array(["ef"], dtype="<U2"))})
    same.zaro.to_store(path, append_dim="t")
    assert list(zread(path, "s")) == ["ab", "cd", "ef"]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mode_a_without_append_dim_overwrites_stored_variables(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "s.zarr"
    series().zaro.to_store(path, chunks={"t": 10}, **LAYOUTS[layout])
    new = series()
    new["v"] = new.v * 0 + 7.0
    new["v"][:12] = np.nan  # objects that become all fill must not keep their old bytes
    written = new.zaro.to_store(path, mode="a")
    assert written > 0
    expected = np.full(40, 7.0)
    expected[:12] = np.nan
    np.testing.assert_array_equal(zread(path, "v"), expected)
    with xr.open_dataset(path, engine="zarr") as got:
        np.testing.assert_array_equal(got.v.values, expected)


def test_mode_a_refuses_other_dimensions_and_unknown_append_dim(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    series().zaro.to_store(path)
    before = {k: (path / k).read_bytes() for k in files(path)}
    other = xr.Dataset({"v": ("x", np.arange(40.0))})
    with pytest.raises(MetadataError, match="dimensions"):
        other.zaro.to_store(path, mode="a")
    with pytest.raises(ValueError, match="append_dim='X'"):
        series(5, 40).zaro.to_store(path, append_dim="X")
    with pytest.raises(MetadataError, match="different dimension sizes"):
        series(5, 40).zaro.to_store(path, mode="a")  # a different size needs append_dim
    assert {k: (path / k).read_bytes() for k in files(path)} == before


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_cf_encoding_keys_are_applied(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "s.zarr"
    times = np.array(["2000-01-01", "2000-01-03"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {"temp": ("t", np.array([1.25, np.nan])), "k": ("t", np.array([10.0, 20.0]))},
        coords={"t": times},
    )
    encoding = {
        "temp": {"dtype": "int16", "scale_factor": 0.25, "add_offset": 1.0, "_FillValue": -9},
        "k": {"dtype": "float32"},
        "t": {"units": "days since 1900-01-01", "calendar": "standard", "dtype": "int32"},
    }
    ds.zaro.to_store(path, zarr_format=zarr_format, encoding=encoding)
    group = zarr.open_group(path, mode="r")
    assert group["temp"].dtype == np.dtype("int16")
    assert list(group["temp"][...]) == [1, -9]
    assert group["temp"].attrs["scale_factor"] == 0.25
    assert group["k"].dtype == np.dtype("float32")
    assert group["t"].dtype == np.dtype("int32")
    assert group["t"].attrs["units"] == "days since 1900-01-01"
    assert list(group["t"][...]) == [36524, 36526]
    for engine in ("zarr", "zaro"):
        with xr.open_dataset(path, engine=engine) as got:
            xr.testing.assert_identical(got[["temp", "k"]].load(), ds[["temp", "k"]])


@pytest.mark.parametrize("key", ["chunkz", "compresor", "units_"])
def test_unknown_encoding_keys_are_refused_before_writing(tmp_path: Path, key: str) -> None:
    path = tmp_path / "s.zarr"
    with pytest.raises(MetadataError, match=key):
        series().zaro.to_store(path, encoding={"v": {key: 4}})
    assert not path.exists() or not files(path)


def test_encoding_for_a_variable_not_in_the_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="nope"):
        series().zaro.to_store(tmp_path / "s.zarr", encoding={"nope": {"chunks": 4}})


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_call_chunks_win_over_encoding_left_from_reading(tmp_path: Path, zarr_format: int) -> None:
    src, out = tmp_path / "src.zarr", tmp_path / "out.zarr"
    series().zaro.to_store(src, chunks={"t": 8}, zarr_format=zarr_format)
    with xr.open_dataset(src, engine="zaro") as ds:
        assert ds.v.encoding["chunks"] == (8,)
        ds.zaro.to_store(out, chunks={"t": 5}, zarr_format=zarr_format)
        ds.zaro.to_store(tmp_path / "kept.zarr", zarr_format=zarr_format)
    assert zarr.open_group(out, mode="r")["v"].chunks == (5,)
    assert zarr.open_group(tmp_path / "kept.zarr", mode="r")["v"].chunks == (8,)
    np.testing.assert_array_equal(zread(out, "v"), series().v.values)


def test_stale_chunks_after_isel_are_dropped(tmp_path: Path) -> None:
    src = tmp_path / "src.zarr"
    ds = xr.Dataset({"u": (("t", "x"), np.arange(12.0).reshape(3, 4))})
    ds.zaro.to_store(src, chunks={"t": 1, "x": 2})
    with xr.open_dataset(src, engine="zaro") as got:
        row = got.isel(t=0)
        row.zaro.to_store(tmp_path / "row.zarr")
    np.testing.assert_array_equal(zread(tmp_path / "row.zarr", "u"), np.arange(4.0))


def test_encoding_while_appending_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    series().zaro.to_store(path)
    with pytest.raises(MetadataError, match="already exist"):
        series(5, 40).zaro.to_store(path, append_dim="t", encoding={"v": {"chunks": (2,)}})
    assert zarr.open_group(path, mode="r")["v"].shape == (40,)


def test_mode_w_compute_false_writes_the_new_template_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    series().zaro.to_store(path)
    new = xr.Dataset({"w": ("y", np.arange(6.0))}).chunk({"y": 3})
    task = new.zaro.to_store(path, mode="w", compute=False)
    group = zarr.open_group(path, mode="r")
    assert list(group.array_keys()) == ["w"]  # the new template, not an empty store
    assert np.isnan(group["w"][...]).all()
    task.compute()
    np.testing.assert_array_equal(zread(path, "w"), np.arange(6.0))


def test_template_then_regions_from_separate_writes(tmp_path: Path) -> None:
    """``compute=False`` writes the template; independent region writes then fill it."""
    path = tmp_path / "s.zarr"
    full = series(30)
    full.chunk({"t": 10}).zaro.to_store(path, chunks={"t": 10}, compute=False)
    for start in (20, 0, 10):
        piece = full.isel(t=slice(start, start + 10))
        piece.zaro.to_store(path, region="auto")
    np.testing.assert_array_equal(zread(path, "v"), full.v.values)
    np.testing.assert_array_equal(zread(path, "t"), full.t.values)


@pytest.mark.parametrize("value", [4.5, True, "4", 0, -2])
def test_bad_chunk_sizes_are_refused(tmp_path: Path, value: Any) -> None:
    with pytest.raises(MetadataError, match="chunks"):
        series().zaro.to_store(tmp_path / "s.zarr", encoding={"v": {"chunks": (value,)}})


def test_integer_chunk_size_applies_to_every_dimension(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    ds = xr.Dataset({"u": (("y", "x"), np.arange(20.0).reshape(4, 5))})
    ds.zaro.to_store(path, encoding={"u": {"chunks": 2}})
    assert zarr.open_group(path, mode="r")["u"].chunks == (2, 2)
    np.testing.assert_array_equal(zread(path, "u"), ds.u.values)


@pytest.mark.parametrize("name", [0, True, "", 1.5, (4, 5)])
def test_names_xarray_refuses_are_refused(tmp_path: Path, name: Any) -> None:
    path = tmp_path / "s.zarr"
    ds = xr.Dataset({name: ("x", np.arange(3))})
    with pytest.raises(InvalidNameError):
        ds.zaro.to_store(path)
    assert not path.exists() or not files(path)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_variable_named_none_round_trips(tmp_path: Path, zarr_format: int) -> None:
    """As xarray does: stored as ``__values__``, read back as ``None`` (not ``"None"``)."""
    path = tmp_path / "s.zarr"
    xr.Dataset({None: ("x", np.arange(3))}).zaro.to_store(path, zarr_format=zarr_format)
    assert list(zarr.open_group(path, mode="r").array_keys()) == ["__values__"]
    for engine in ("zarr", "zaro"):
        with xr.open_dataset(path, engine=engine) as got:
            assert list(got.data_vars) == [None]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_dataarray_named_like_its_dimension(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "s.zarr"
    arr = xr.DataArray(np.arange(4.0), dims="x", name="x")
    arr.zaro.to_store(path, zarr_format=zarr_format)
    for engine in ("zarr", "zaro"):
        with xr.open_dataarray(path, engine=engine) as got:
            assert got.name == "x"
            np.testing.assert_array_equal(got.values, arr.values)


# ------------------------------------------------------------------------------------------
# Data loss under faults and hostile names
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("value", [0.0, np.nan])
def test_region_write_of_fill_values_replaces_stored_objects(
    tmp_path: Path, layout: str, value: float
) -> None:
    path = tmp_path / "s.zarr"
    ds = xr.Dataset({"v": ("t", np.arange(40.0))})
    fill = {"fill_value": value} if layout != "v2" else {"_FillValue": value}
    ds.zaro.to_store(path, chunks={"t": 10}, encoding={"v": fill}, **LAYOUTS[layout])
    part = xr.Dataset({"v": ("t", np.full(20, value))})
    part.zaro.to_store(path, mode="r+", region={"t": slice(0, 20)})
    expected = np.arange(40.0)
    expected[:20] = value
    np.testing.assert_array_equal(zread(path, "v"), expected)


def test_write_empty_chunks_writes_fill_objects(tmp_path: Path) -> None:
    ds = xr.Dataset({"v": ("t", np.zeros(40))})
    ds.zaro.to_store(tmp_path / "skip.zarr", chunks={"t": 10}, encoding={"v": {"fill_value": 0}})
    ds.zaro.to_store(
        tmp_path / "keep.zarr",
        chunks={"t": 10},
        encoding={"v": {"fill_value": 0}},
        write_empty_chunks=True,
    )
    assert not [k for k in files(tmp_path / "skip.zarr") if k.startswith("v/c/")]
    assert len([k for k in files(tmp_path / "keep.zarr") if k.startswith("v/c/")]) == 4
    ds.zaro.to_store(
        tmp_path / "enc.zarr",
        chunks={"t": 10},
        encoding={"v": {"fill_value": 0, "write_empty_chunks": True}},
    )
    assert len([k for k in files(tmp_path / "enc.zarr") if k.startswith("v/c/")]) == 4
    np.testing.assert_array_equal(zread(tmp_path / "keep.zarr", "v"), np.zeros(40))


class _Once:
    """Fails the first call of a function, then calls it."""

    def __init__(self, real: Any) -> None:
        self.real, self.failed = real, False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise OSError("injected: the store answered 500")
        return self.real(*args, **kwargs)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("stage", ["consolidated", "array metadata"])
def test_an_interrupted_append_is_finished_by_running_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zarr_format: int, stage: str
) -> None:
    path = tmp_path / "s.zarr"
    series(40).zaro.to_store(path, chunks={"t": 10}, zarr_format=zarr_format)
    more = series(20, 40)
    target = "write_consolidated" if stage == "consolidated" else "write_metadata"
    monkeypatch.setattr(dataset_module, target, _Once(getattr(dataset_module, target)))
    with pytest.raises(OSError, match="injected"):
        more.zaro.to_store(path, append_dim="t")
    assert (path / JOURNAL_KEY).exists()
    # something else than the same append is refused while the journal is there
    with pytest.raises(InterruptedAppendError, match="run the same append again"):
        series(3, 60).zaro.to_store(path, append_dim="t")
    more.zaro.to_store(path, append_dim="t")  # the obvious recovery: run it again
    assert not (path / JOURNAL_KEY).exists()
    group = zarr.open_group(path, mode="r")
    assert group["v"].shape == (60,)
    np.testing.assert_array_equal(group["v"][...], np.arange(60) * 1.5)
    np.testing.assert_array_equal(group["t"][...], np.arange(60))
    for consolidated in (True, False):
        with xr.open_dataset(path, engine="zarr", consolidated=consolidated) as got:
            assert got.sizes["t"] == 60
    series(5, 60).zaro.to_store(path, append_dim="t")  # and later appends go on as usual
    assert zarr.open_group(path, mode="r")["v"].shape == (65,)


@pytest.mark.parametrize(
    "name", [".zmetadata", "zarr.json", ".zgroup", ".zarray", ".zattrs", "..", "."]
)
def test_reserved_names_are_refused_before_any_byte(tmp_path: Path, name: str) -> None:
    path = tmp_path / "s.zarr"
    ds = xr.Dataset({"ok": ("x", np.arange(3)), name: ("x", np.arange(3))})
    with pytest.raises(InvalidNameError):
        ds.zaro.to_store(path)
    assert not path.exists() or not files(path)


@pytest.mark.parametrize("name", ["../evil", "a/../../x", "a/b", "/abs", "a\\b"])
def test_variable_names_cannot_leave_the_store(tmp_path: Path, name: str) -> None:
    path = tmp_path / "inside" / "s.zarr"
    with pytest.raises(InvalidNameError):
        xr.Dataset({name: ("x", np.arange(3))}).zaro.to_store(path)
    assert files(tmp_path) == set()


def test_dimension_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError, match="dimension"):
        xr.Dataset({"v": ("../d", np.arange(3))}).zaro.to_store(tmp_path / "s.zarr")


@pytest.mark.parametrize("group", ["../sibling", "a/../../x", "..", "a//b/..", "."])
@pytest.mark.parametrize("mode", ["w-", "w"])
def test_groups_cannot_leave_the_store(tmp_path: Path, group: str, mode: str) -> None:
    path = tmp_path / "store" / "s.zarr"
    series().zaro.to_store(path)
    (tmp_path / "keep.txt").write_text("precious")
    before = files(tmp_path)
    with pytest.raises(InvalidNameError):
        series().zaro.to_store(path, group=group, mode=mode)
    assert files(tmp_path) == before
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_nested_group_is_written_with_its_parents(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    series().zaro.to_store(path, group="a/b")
    np.testing.assert_array_equal(
        zarr.open_group(path, mode="r")["a/b/v"][...], np.arange(40) * 1.5
    )


# ------------------------------------------------------------------------------------------
# Workflows
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_region_auto(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "s.zarr"
    times = np.datetime64("2020-01-01", "ns") + np.arange(40).astype("m8[D]")
    ds = xr.Dataset(
        {"v": (("t", "x"), np.zeros((40, 3))), "k": ("x", np.arange(3.0))},
        coords={"t": times, "x": [10, 20, 30]},
    )
    ds.zaro.to_store(path, chunks={"t": 10}, **LAYOUTS[layout])
    part = ds.isel(t=slice(13, 27), x=[1, 2])[["v"]]
    part["v"] = part.v + 5
    part.zaro.to_store(path, region="auto")  # edges inside stored objects are merged
    part2 = ds.isel(t=slice(30, 32))[["v"]]
    part2["v"] = part2.v - 1
    part2.zaro.to_store(path, region={"t": "auto", "x": slice(None)})
    expected = np.zeros((40, 3))
    expected[13:27, 1:] = 5
    expected[30:32] = -1
    np.testing.assert_array_equal(zread(path, "v"), expected)
    with pytest.raises(MetadataError, match="not all values"):
        shifted = ds.isel(t=slice(0, 2))[["v"]].assign_coords(t=times[:2] - np.timedelta64(9, "D"))
        shifted.zaro.to_store(path, region="auto")


def test_region_with_steps_or_unknown_dims_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    series().zaro.to_store(path)
    part = xr.Dataset({"v": ("t", np.zeros(5))})
    with pytest.raises(MetadataError, match="step on all slices"):
        part.zaro.to_store(path, region={"t": slice(0, 10, 2)})
    with pytest.raises(MetadataError, match="not in Dataset dimensions"):
        part.zaro.to_store(path, region={"q": slice(0, 5)})
    with pytest.raises(MetadataError, match="different dimension sizes"):
        part.zaro.to_store(path, region={"t": slice(0, 6)})
    with pytest.raises(TypeError, match="must be a dict"):
        part.zaro.to_store(path, region=slice(0, 5))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_append_after_a_partial_string_chunk(tmp_path: Path, zarr_format: int) -> None:
    path = tmp_path / "s.zarr"
    first = xr.Dataset({"s": ("t", np.array(["a", "bb", "ccc"], dtype=object))})
    first.zaro.to_store(path, chunks={"t": 2}, zarr_format=zarr_format)
    second = xr.Dataset({"s": ("t", np.array(["dddd", "e"], dtype=object))})
    second.zaro.to_store(path, append_dim="t")
    assert list(zread(path, "s")) == ["a", "bb", "ccc", "dddd", "e"]


def test_append_keeps_stored_encoding(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    times = np.datetime64("2000-01-01", "ns") + np.arange(4).astype("m8[D]")
    first = xr.Dataset({"v": ("t", np.arange(4.0))}, coords={"t": times})
    first.zaro.to_store(
        path, encoding={"t": {"units": "days since 1990-01-01"}, "v": {"dtype": "float32"}}
    )
    more = xr.Dataset(
        {"v": ("t", np.arange(4.0, 6.0))},
        coords={"t": times[-1] + np.arange(1, 3).astype("m8[D]")},
    )
    more.zaro.to_store(path, append_dim="t")
    group = zarr.open_group(path, mode="r")
    assert group["v"].dtype == np.dtype("float32")
    assert group["t"].attrs["units"] == "days since 1990-01-01"
    with xr.open_dataset(path, engine="zarr") as got:
        np.testing.assert_array_equal(got.t.values, np.concatenate([first.t.values, more.t.values]))


def test_error_messages_name_url_and_key(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    with pytest.raises(ZaroError) as info:
        xr.Dataset({"a/b": ("x", np.arange(3))}).zaro.to_store(path)
    assert info.value.url is not None and info.value.key == "a/b"
    with pytest.raises(ZaroError) as info2:
        series().zaro.to_store(path, encoding={"v": {"chunks": (4.5,)}})
    assert info2.value.key == "v" and info2.value.field == "chunks"


def test_journal_document_is_plain_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.zarr"
    series(10).zaro.to_store(path)
    real = dataset_module.write_consolidated
    monkeypatch.setattr(dataset_module, "write_consolidated", _Once(real))
    with pytest.raises(OSError):
        series(4, 10).zaro.to_store(path, append_dim="t")
    doc = json.loads((path / JOURNAL_KEY).read_text())
    assert doc == {"append_dim": "t", "arrays": {"t": [10, 14], "v": [10, 14]}}
    assert xzaro.open_group(path)  # a journal does not disturb readers


def test_align_chunks_false_refuses_blocks_that_share_an_object(tmp_path: Path) -> None:
    ds = xr.Dataset({"v": ("t", np.arange(40.0))}).chunk({"t": 7})
    with pytest.raises(MetadataError, match="align_chunks=True"):
        ds.zaro.to_store(tmp_path / "s.zarr", chunks={"t": 10}, align_chunks=False)
    with pytest.raises(MetadataError, match="does not make this safe"):
        ds.zaro.to_store(
            tmp_path / "s.zarr", chunks={"t": 10}, align_chunks=False, safe_chunks=False
        )
    assert not (tmp_path / "s.zarr").exists() or not files(tmp_path / "s.zarr")
    ds.zaro.to_store(tmp_path / "s.zarr", chunks={"t": 10})  # the default rechunks
    np.testing.assert_array_equal(zread(tmp_path / "s.zarr", "v"), np.arange(40.0))


def test_mode_a_minus_leaves_variables_without_append_dim_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    first = series(10).assign(k=("x", np.arange(3.0)))
    first.zaro.to_store(path)
    more = series(5, 10).assign(k=("x", np.full(3, -1.0)))
    more.zaro.to_store(path, mode="a-", append_dim="t")
    np.testing.assert_array_equal(zread(path, "k"), np.arange(3.0))
    np.testing.assert_array_equal(zread(path, "v"), np.arange(15) * 1.5)
    more.zaro.to_store(path, mode="a", append_dim="t")  # "a" writes them again
    np.testing.assert_array_equal(zread(path, "k"), np.full(3, -1.0))


def test_mode_r_plus_keeps_metadata_and_mode_a_keeps_variable_attributes(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    original = xr.Dataset({"u": ("x", np.zeros(10), {"variable": "original"})}, attrs={"g": "o"})
    modified = xr.Dataset({"u": ("x", np.ones(10), {"variable": "modified"})}, attrs={"g": "m"})
    original.zaro.to_store(path)
    modified.zaro.to_store(path, mode="r+")
    group = zarr.open_group(path, mode="r")
    assert dict(group.attrs) == {"g": "o"} and group["u"].attrs["variable"] == "original"
    np.testing.assert_array_equal(group["u"][...], np.ones(10))
    modified.zaro.to_store(path, mode="a")
    group = zarr.open_group(path, mode="r")
    assert group.attrs["g"] == "m" and group["u"].attrs["variable"] == "original"


def test_bad_attributes_are_refused_before_writing(tmp_path: Path) -> None:
    ds = series().assign_attrs(bad=xr.DataArray([1]))
    with pytest.raises(TypeError, match=r"Invalid attribute in Dataset\.attrs"):
        ds.zaro.to_store(tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists() or not files(tmp_path / "s.zarr")


def test_shards_that_contradict_chunks_in_one_encoding_are_refused(tmp_path: Path) -> None:
    ds = xr.Dataset({"v": (("y", "x"), np.zeros((10, 10)))})
    ds["v"].encoding.update(chunks=(2, 2), shards=(5, 5))
    with pytest.raises(MetadataError, match="multiples"):
        ds.zaro.to_store(tmp_path / "s.zarr")


@pytest.mark.parametrize("compute", [True, False])
def test_work_shared_by_variables_runs_once(tmp_path: Path, compute: bool) -> None:
    """Variables derived from one Dask source compute it once per block, so a source that is
    not deterministic still gives them consistent values."""
    import dask.array as da

    calls: list[int] = []

    def expensive(block: np.ndarray) -> np.ndarray:
        calls.append(1)
        return block + np.random.default_rng().random(block.shape)  # differs on each call

    src = da.zeros((40,), chunks=10).map_blocks(expensive, meta=np.array((), dtype=float))
    ds = xr.Dataset({"a": ("t", src), "b": ("t", src * 2), "c": ("t", src + 3)})
    path = tmp_path / "s.zarr"
    result = ds.zaro.to_store(path, chunks={"t": 10}, compute=compute)
    if not compute:
        result.compute()
    assert len(calls) == 4
    group = zarr.open_group(path, mode="r")
    np.testing.assert_array_equal(group["b"][...], 2 * group["a"][...])
    np.testing.assert_array_equal(group["c"][...], group["a"][...] + 3)


def test_bytes_attributes_are_refused_not_stored_as_base64(tmp_path: Path) -> None:
    # to_zarr refuses them too; stored as base64 text every reader got a str back
    ds = series().assign_attrs(raw=b"\xff\x00")
    with pytest.raises(TypeError, match=r"Invalid attribute in Dataset\.attrs.*bytes"):
        ds.zaro.to_store(tmp_path / "s.zarr")
    ds = series()
    ds["v"].attrs["name"] = b"abc"
    with pytest.raises(TypeError, match=r"variable 'v'.*bytes"):
        ds.zaro.to_store(tmp_path / "t.zarr")


@pytest.mark.parametrize(
    ("zarr_format", "asked", "first_key"),
    [
        (3, {"name": "default", "separator": "."}, "v/c.0"),  # zarr-python's spelling
        (3, {"name": "v2", "separator": "/"}, "v/0"),
        (2, {"name": "v2", "separator": "/"}, "v/0"),
        (3, {"name": "default", "configuration": {"separator": "."}}, "v/c.0"),
    ],
)
def test_chunk_key_encoding_separator_is_kept_in_every_spelling(
    tmp_path: Path, zarr_format: int, asked: dict, first_key: str
) -> None:
    path = tmp_path / "s.zarr"
    ds = series()
    ds.zaro.to_store(
        path, zarr_format=zarr_format, encoding={"v": {"chunks": 10, "chunk_key_encoding": asked}}
    )
    chunk_files = {f for f in files(path) if f.startswith("v/") and "zarr.json" not in f}
    assert first_key in chunk_files, sorted(chunk_files)
    np.testing.assert_array_equal(zread(path, "v"), ds.v.values)


@pytest.mark.parametrize(
    "asked",
    [
        {"name": "default", "sep": "."},
        {"name": "default", "separator": ".", "configuration": {"separator": "/"}},
        {"name": "default", "configuration": {"separator": ".", "other": 1}},
    ],
)
def test_chunk_key_encoding_with_unknown_members_is_refused(tmp_path: Path, asked: dict) -> None:
    with pytest.raises(MetadataError, match="chunk_key_encoding"):
        series().zaro.to_store(tmp_path / "s.zarr", encoding={"v": {"chunk_key_encoding": asked}})


@pytest.mark.parametrize(
    "compressor",
    [
        "zstd",
        {"id": "zstd", "level": 3},
        {"name": "zstd", "configuration": {"level": 3}},
        pytest.param("numcodecs", id="numcodecs-object"),
        pytest.param("list", id="list-of-numcodecs"),
    ],
)
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_compressor_argument_takes_the_spellings_encoding_takes(
    tmp_path: Path, compressor: Any, zarr_format: int
) -> None:
    import numcodecs

    if compressor == "numcodecs":
        compressor = numcodecs.Zstd(level=3)
    elif compressor == "list":
        compressor = [numcodecs.Zstd(level=3)]
    path = tmp_path / "s.zarr"
    series().zaro.to_store(path, zarr_format=zarr_format, compressor=compressor)
    assert xzaro.open_array(str(path), "v").meta.describe_codecs().endswith("zstd")
    np.testing.assert_array_equal(zread(path, "v"), series().v.values)


def test_compressor_argument_that_is_no_codec_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="compressor"):
        series().zaro.to_store(tmp_path / "s.zarr", compressor=42)
    with pytest.raises(MetadataError, match="compressor"):
        series().zaro.to_store(tmp_path / "t.zarr", compressor="no-such-codec")


@pytest.mark.parametrize("root_format", [2, 3])
def test_a_new_group_joins_its_hierarchys_format(tmp_path: Path, root_format: int) -> None:
    path = tmp_path / "s.zarr"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(path, zarr_format=root_format)
    child = xr.Dataset({"v": ("y", np.arange(2.0) + 100)})
    child.zaro.to_store(path, group="sub")
    document = ".zgroup" if root_format == 2 else "zarr.json"
    assert (path / "sub" / document).is_file()
    for engine in ("zarr", "zaro"):
        got = xr.open_dataset(path, engine=engine, group="sub")
        np.testing.assert_array_equal(got.v.values, child.v.values)


def test_a_new_group_of_the_other_format_is_refused(tmp_path: Path) -> None:
    # V2 readers and the root's consolidated metadata would not see a V3 group in a V2
    # hierarchy (zarr-python wrote one and a second root document beside the first)
    path = tmp_path / "s.zarr"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(path, zarr_format=2)
    before = files(path)
    child = xr.Dataset({"v": ("y", np.arange(2.0) + 100)})
    with pytest.raises(MetadataError, match="Zarr V2") as err:
        child.zaro.to_store(path, group="sub", zarr_format=3)
    assert err.value.field == "zarr_format"
    assert files(path) == before


def test_consolidating_a_mixed_hierarchy_leaves_out_the_other_format(tmp_path: Path) -> None:
    # zarr-python writes a V3 group into a V2 hierarchy; a later xzaro write into the root
    # consolidated the V3 documents under V2 keys, and xzaro's reader refused the store
    path = tmp_path / "s.zarr"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_zarr(path, zarr_format=2)
    xr.Dataset({"v": ("y", np.arange(2.0))}).to_zarr(path, group="sub", zarr_format=3, mode="a")
    xr.Dataset({"b": ("x", np.ones(3))}).zaro.to_store(path, mode="a")
    consolidated = json.loads((path / ".zmetadata").read_text())["metadata"]
    assert all(
        doc.get("zarr_format", 2) == 2 for doc in consolidated.values() if "zarr_format" in doc
    )
    got = xr.open_dataset(path, engine="zaro")
    np.testing.assert_array_equal(got.b.values, np.ones(3))
