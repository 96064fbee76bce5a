"""The hierarchy under attack: node names that would leave the store, and metadata that could
vanish or turn into fill values.

Stores are written by zarr-python in the test, then damaged as an attacker (or another program)
would; both entry points (``xr.open_dataset(engine="zaro")`` and ``xzaro.open_group``) must
raise an error naming the URL, the key and the field. (The store layer's own attacks are in
``tests/stores/``.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capped import run_capped
from zarr_written import SECRET, zarr_v2_store, zarr_v3_store

import xzaro
from xzaro.errors import MetadataError, ZaroError

zarr = pytest.importorskip("zarr")
xr = pytest.importorskip("xarray")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def edit_json(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def open_both(url: str) -> None:
    """Open a store with both entry points; each must raise."""
    for opener in (
        lambda: xr.open_dataset(url, engine="zaro").load(),
        lambda: list(xzaro.open_group(url).walk()),
    ):
        opener()


#: Node paths that would leave the store, or are not node paths at all.
ESCAPES = ["..", "../x", "a/../../b", "/etc", "a//b", "a\\b", "a\x00b", ".", "./v"]


def _opened(url: str) -> tuple[Callable[[], Any], ...]:
    """Opening the store at ``url`` with each entry point: the xarray engine and the group."""
    return (
        lambda: xr.open_dataset(url, engine="zaro"),
        lambda: xzaro.open_group(url).members(),
    )


def _metadata_errors(*calls: Callable[[], Any]) -> list[MetadataError]:
    """The :class:`MetadataError` each call raises (each must raise one)."""
    errors = []
    for call in calls:
        with pytest.raises(MetadataError) as info:
            call()
        errors.append(info.value)
    return errors


def _plant_secrets(tmp_path: Path) -> None:
    """Write SECRET at every place outside the store a bad node path could reach."""
    for name in ("0", "x/0", "b/0", "c/0", "x/c/0", "b/c/0"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(SECRET)


def _assert_names_bad_node(error: ZaroError, url: str, key: str, bad: str) -> None:
    assert isinstance(error, MetadataError)
    assert error.url == url
    assert error.key == key
    assert error.field is not None and repr(bad)[1:-1] in error.field
    assert SECRET.decode() not in str(error)


@pytest.mark.parametrize("bad", ESCAPES)
def test_v2_consolidated_node_outside_the_store_is_refused(tmp_path: Path, bad: str) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr")
    _plant_secrets(tmp_path)

    def rename(doc: dict) -> None:
        meta = doc["metadata"]
        meta[f"{bad}/.zarray"] = meta.pop("v/.zarray")
        meta[f"{bad}/.zattrs"] = meta.pop("v/.zattrs")

    edit_json(root / ".zmetadata", rename)
    url = str(root)
    with pytest.raises(MetadataError) as info:
        xr.open_dataset(url, engine="zaro").load()
    _assert_names_bad_node(info.value, url, ".zmetadata", f"{bad}/.zarray")
    with pytest.raises(MetadataError) as info:
        list(xzaro.open_group(url).walk())
    _assert_names_bad_node(info.value, url, ".zmetadata", f"{bad}/.zarray")


@pytest.mark.parametrize("bad", ESCAPES)
def test_v3_consolidated_node_outside_the_store_is_refused(tmp_path: Path, bad: str) -> None:
    root = zarr_v3_store(tmp_path / "store.zarr")
    _plant_secrets(tmp_path)

    def rename(doc: dict) -> None:
        nodes = doc["consolidated_metadata"]["metadata"]
        nodes[bad] = nodes.pop("v")

    edit_json(root / "zarr.json", rename)
    url = str(root)
    with pytest.raises(MetadataError) as info:
        xr.open_dataset(url, engine="zaro").load()
    _assert_names_bad_node(info.value, url, "zarr.json", bad)
    with pytest.raises(MetadataError) as info:
        list(xzaro.open_group(url).walk())
    _assert_names_bad_node(info.value, url, "zarr.json", bad)


def test_consolidated_escape_never_opens_the_outside_file(tmp_path: Path) -> None:
    """The place a ``..`` node points at is a FIFO: opening it would block (or, once FIFOs are
    refused, raise a store error), so only the metadata error shows that it was never opened."""
    root = zarr_v2_store(tmp_path / "store.zarr")
    os.mkfifo(tmp_path / "0")

    def rename(doc: dict) -> None:
        meta = doc["metadata"]
        meta["../.zarray"] = meta.pop("v/.zarray")

    edit_json(root / ".zmetadata", rename)
    outcome = run_capped(open_both, str(root), timeout=30)
    assert outcome.raised("MetadataError"), outcome


@pytest.mark.parametrize("path", ["..", "../x", "a/../..", "a\\b", "a\x00b"])
def test_user_node_path_outside_the_store_is_refused(tmp_path: Path, path: str) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
    with pytest.raises(ZaroError):
        xzaro.open_group(str(root), path)
    with pytest.raises(ZaroError):
        xzaro.open_array(str(root), path)
    with pytest.raises(ZaroError):
        xr.open_dataset(str(root), engine="zaro", group=path)


def test_zarray_without_shape_is_an_error(tmp_path: Path) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
    edit_json(root / "v" / ".zarray", lambda doc: doc.pop("shape"))
    url = str(root)
    for error in _metadata_errors(*_opened(url), lambda: xzaro.open_group(url)["v"]):
        assert error.key == "v/.zarray"
        assert error.field == "shape"
        assert error.url == url


def test_consolidated_zarray_without_shape_is_an_error(tmp_path: Path) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr")
    edit_json(root / ".zmetadata", lambda doc: doc["metadata"]["v/.zarray"].pop("shape"))
    for error in _metadata_errors(*_opened(str(root))):
        assert ".zmetadata" in error.key and "v/.zarray" in error.key
        assert error.field == "shape"


@pytest.mark.parametrize("where", ["zarray", "zgroup"])
def test_v2_document_with_the_wrong_format_is_an_error(tmp_path: Path, where: str) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
    doc = root / "v" / ".zarray" if where == "zarray" else root / ".zgroup"
    edit_json(doc, lambda d: d.update(zarr_format=3))
    with pytest.raises(MetadataError) as info:
        xr.open_dataset(str(root), engine="zaro").load()
    assert info.value.field == "zarr_format"


def test_v3_consolidated_holding_a_v2_document_is_an_error(tmp_path: Path) -> None:
    root = zarr_v3_store(tmp_path / "store.zarr")
    v2 = {
        "zarr_format": 2,
        "shape": [8],
        "chunks": [8],
        "dtype": "|u1",
        "compressor": None,
        "fill_value": 0,
        "order": "C",
        "filters": None,
    }
    edit_json(root / "zarr.json", lambda d: d["consolidated_metadata"]["metadata"].update(v=v2))
    url = str(root)
    for error in _metadata_errors(
        lambda: xr.open_dataset(url, engine="zaro").load(),
        lambda: xzaro.open_group(url)["v"][...],
    ):
        assert error.key.startswith("zarr.json")
        assert error.field == "zarr_format"


def test_v3_node_document_holding_v2_is_an_error(tmp_path: Path) -> None:
    root = zarr_v3_store(tmp_path / "store.zarr", consolidated=False)
    doc = json.loads((root / "v" / "zarr.json").read_text())
    doc = {"zarr_format": 2, "shape": doc["shape"], "chunks": [8], "dtype": "|u1"}
    (root / "v" / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(MetadataError) as info:
        xzaro.open_group(str(root))["v"]
    assert info.value.key == "v/zarr.json"
    assert info.value.field == "zarr_format"


DEEP = "[" * 2000 + "]" * 2000


@pytest.mark.parametrize("where", [".zattrs", "zarr.json", ".zmetadata"])
def test_metadata_nested_too_deep_is_an_error(tmp_path: Path, where: str) -> None:
    if where == "zarr.json":
        root = zarr_v3_store(tmp_path / "store.zarr", consolidated=False)
        target = root / "v" / "zarr.json"
        edit_json(target, lambda d: d["attributes"].update(deep="DEEP"))
        key = "v/zarr.json"
    elif where == ".zattrs":
        root = zarr_v2_store(tmp_path / "store.zarr", consolidated=False)
        target = root / "v" / ".zattrs"
        edit_json(target, lambda d: d.update(deep="DEEP"))
        key = "v/.zattrs"
    else:
        root = zarr_v2_store(tmp_path / "store.zarr")
        target = root / ".zmetadata"
        edit_json(target, lambda d: d["metadata"]["v/.zattrs"].update(deep="DEEP"))
        key = ".zmetadata"
    target.write_text(target.read_text().replace('"DEEP"', DEEP))
    url = str(root)
    for error in _metadata_errors(*_opened(url)):
        assert error.key == key
        assert error.url == url


@pytest.mark.parametrize("attrs", [[1, 2], "text", 5, True])
def test_consolidated_zattrs_that_is_not_an_object_is_an_error(tmp_path: Path, attrs: Any) -> None:
    root = zarr_v2_store(tmp_path / "store.zarr")
    edit_json(root / ".zmetadata", lambda d: d["metadata"].update({"v/.zattrs": attrs}))
    for error in _metadata_errors(*_opened(str(root))):
        assert error.key == ".zmetadata"
        assert "v/.zattrs" in error.field
