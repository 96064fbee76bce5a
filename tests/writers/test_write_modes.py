"""Write modes ``w-``, ``w`` and ``a`` (adding variables), groups, and arguments that do not
agree with the mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers import assert_same, files
from write_cases import LAYOUTS, QUIET, assert_datasets_same, data_keys, layout_for, simple

import xzaro
from xzaro.stores import MemoryStore

pytestmark = QUIET


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mode_w_minus_refuses_existing(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "s.zarr"
    opts = layout_for(simple(), layout)
    simple().zaro.to_store(path, **opts)
    before = {k: (path / k).read_bytes() for k in files(path)}
    with pytest.raises(xzaro.NodeExistsError):
        simple(3).zaro.to_store(path, **opts)
    with pytest.raises(xzaro.NodeExistsError):
        simple(3).zaro.to_store(path, mode="w-", zarr_format=5 - LAYOUTS[layout]["zarr_format"])
    assert {k: (path / k).read_bytes() for k in files(path)} == before


def test_mode_w_minus_in_memory_store() -> None:
    store = MemoryStore()
    simple().zaro.to_store(store)
    with pytest.raises(xzaro.NodeExistsError):
        simple().zaro.to_store(store)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mode_w_replaces_and_removes_old_keys(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "s.zarr"
    opts = layout_for(simple(12, extra=True), layout)
    simple(12, extra=True).zaro.to_store(path, chunks={"t": 2}, **opts)
    assert (path / "extra").is_dir()
    new = xr.Dataset({"v": (("t", "x"), np.full((3, 2), 7.5, "float32"))})
    new.zaro.to_store(path, mode="w", chunks={"t": 2}, **layout_for(new, layout))
    left = files(path)
    assert not any(k.startswith(("extra/", "k/", "t/", "x/")) for k in left), left
    with xr.open_dataset(path, engine="zaro") as got:
        assert set(got.variables) == {"v"}
        assert_same(got.v.values, new.v.values)
    with xr.open_dataset(path, engine="zarr") as got:  # consolidated metadata was rewritten
        assert set(got.variables) == {"v"}
        assert_same(got.v.values, new.v.values)
    # no old chunk beyond the new, smaller shape is left behind
    expected_v = {"v/0.0", "v/1.0"} if layout == "v2" else {"v/c/0/0", "v/c/1/0"}
    assert set(data_keys(left)) == expected_v


def test_mode_a_without_append_dim_adds_variables(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    base = simple(6)
    base.zaro.to_store(path, chunks={"t": 4})
    before = {k: (path / k).read_bytes() for k in files(path) if k.startswith("v/")}
    more = xr.Dataset(
        {"w": (("t", "x"), np.full((6, 4), 2.5, "float64"))}, coords={"t": base.t, "x": base.x}
    )
    more.zaro.to_store(path, mode="a")
    assert {k: (path / k).read_bytes() for k in files(path) if k.startswith("v/")} == before
    for engine in ("zaro", "zarr"):
        with xr.open_dataset(path, engine=engine) as got:
            assert set(got.data_vars) == {"v", "k", "w"}
            assert_same(got.w.values, more.w.values)
            assert_same(got.v.values, base.v.values)


def test_invalid_mode_arguments(tmp_path: Path) -> None:
    ds = simple(2)
    with pytest.raises(ValueError, match="mode"):
        ds.zaro.to_store(tmp_path / "a.zarr", mode="x")
    with pytest.raises(ValueError, match="append_dim"):
        ds.zaro.to_store(tmp_path / "a.zarr", mode="w", append_dim="t")
    with pytest.raises(ValueError, match="region"):
        ds.zaro.to_store(tmp_path / "a.zarr", mode="w-", region={"t": slice(0, 2)})
    with pytest.raises(xzaro.NodeNotFoundError):  # region alone means mode "r+"
        ds.zaro.to_store(tmp_path / "a.zarr", region={"t": slice(0, 2)})
    with pytest.raises(ValueError, match="zarr_format"):
        ds.zaro.to_store(tmp_path / "a.zarr", zarr_format=4)
    assert not (tmp_path / "a.zarr").exists() or not files(tmp_path / "a.zarr")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_group_in_new_store(tmp_path: Path, zarr_format: int) -> None:
    ds = xr.Dataset({"v": (("x",), np.arange(3.0))})
    ds.zaro.to_store(tmp_path / "s.zarr", zarr_format=zarr_format, group="a/b")
    for engine in ("zaro", "zarr"):
        with xr.open_dataset(tmp_path / "s.zarr", engine=engine, group="a/b") as got:
            assert_datasets_same(got, ds, engine)


def test_group_next_to_existing_group(tmp_path: Path) -> None:
    """Writing a second group (mode a) or replacing one (mode w) leaves its siblings alone."""
    path = tmp_path / "s.zarr"
    root = xr.Dataset({"r": (("x",), np.arange(4, dtype="int8"))})
    root.zaro.to_store(path, chunks={"x": 2})
    one = xr.Dataset({"v": (("x",), np.arange(3.0))})
    one.zaro.to_store(path, group="one", mode="a")
    two = xr.Dataset({"w": (("y",), np.array(["p", "qq"], dtype=object))})
    two.zaro.to_store(path, group="two", mode="a")
    xr.Dataset({"v": (("x",), np.arange(5.0))}).zaro.to_store(path, group="one", mode="w")
    with xr.open_dataset(path, engine="zarr", group="two") as got:
        assert got.w.values.tolist() == ["p", "qq"]
    with xr.open_dataset(path, engine="zarr", group="one") as got:
        assert_same(got.v.values, np.arange(5.0))
    with xr.open_dataset(path, engine="zaro") as got:
        assert_same(got.r.values, root.r.values)
