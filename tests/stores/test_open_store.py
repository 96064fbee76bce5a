"""``open_store``, the scheme table: which store a path, URL, mapper or store opens as."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from xzaro.errors import NodeNotFoundError, StoreError, ZaroError
from xzaro.stores import MemoryStore, open_store


def test_open_store_returns_store_as_is() -> None:
    store = MemoryStore({"k": b"v"})
    assert open_store(store) is store


def test_open_store_local_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "data.zarr").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="xzaro"):
        relative = open_store("data.zarr/")
    assert relative.url == str(tmp_path / "data.zarr")
    assert "with local" in caplog.text
    assert open_store("~/data.zarr").url == str(tmp_path / "data.zarr")
    assert open_store(f"file://{tmp_path}/data.zarr").url == str(tmp_path / "data.zarr")
    assert open_store(tmp_path / "data.zarr").url == str(tmp_path / "data.zarr")


def test_open_store_missing_local_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.zarr"
    with pytest.raises(NodeNotFoundError) as info:
        open_store(missing)
    assert str(missing) in str(info.value)
    store = open_store(missing, mode="w")
    store.set("zarr.json", b"{}")
    assert open_store(missing).get("zarr.json") == b"{}"


def test_open_store_unknown_protocol() -> None:
    with pytest.raises(StoreError, match="no fsspec implementation for protocol 'foo'"):
        open_store("foo://bucket/data")


def test_open_store_bad_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        open_store(tmp_path, mode="x")


def test_open_store_remote_names_backend(
    s3_server: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="xzaro"):
        store = open_store(
            "s3://bucket/path/", {**s3_server["storage_options"], "client": "fsspec"}
        )
        open_store("http://127.0.0.1:1/x", {"client": "fsspec"})
        open_store("memory://x")
        open_store("simplecache::memory://x")
    assert store.url == "s3://bucket/path"
    assert "opened s3://bucket/path with s3 (s3fs)" in caplog.text
    assert "with http (aiohttp)" in caplog.text
    assert "with memory (fsspec)" in caplog.text
    assert "simplecache (fsspec) over memory (fsspec)" in caplog.text


def test_errors_pickle_with_context() -> None:
    err = StoreError("boom", url="s3://b/x", key="c/0")
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, ZaroError)
    assert (clone.url, clone.key) == ("s3://b/x", "c/0")
