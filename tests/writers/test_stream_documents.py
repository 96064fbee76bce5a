"""A stream's metadata: documents made from a template equal what ``write_metadata`` writes,
unchanged documents are not stored again, and stored rows are published at most every
interval, the last ones by a timer."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from tests.writers.test_streaming import dims3
from xzaro.meta import GroupMeta
from xzaro.stores import open_store
from xzaro.writers.compression import BloscCompressionParams
from xzaro.writers.streaming.documents import _MARKER, StreamDocuments, rendered
from xzaro.writers.streaming.geometry import StreamGeometry
from xzaro.writers.streaming.properties import StorageProperties
from xzaro.writers.streaming.publish import RowPublisher


class CountingStore:
    """Keeps every ``set`` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def set(self, key: str, value: Any) -> None:
        self.calls.append((key, bytes(value)))


def level_meta(zarr_format: int, attributes: dict[str, Any] | None = None):
    props = StorageProperties(
        uri="memory://unused",
        acquisition_dimensions=dims3(48, 40, 16, 16, 4),
        compression=BloscCompressionParams("zstd", 1, "shuffle"),
    )
    meta = StreamGeometry(props, zarr_format).level_meta(0, (0, 40, 48), 0, np.dtype("uint16"))
    return replace(meta, attributes=attributes or {}) if attributes is not None else meta


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("attributes", [None, {"a": 1}, {"marker": int(_MARKER)}])
def test_documents_equal_write_metadata(zarr_format: int, attributes: Any) -> None:
    store = CountingStore()
    documents = StreamDocuments(store)  # type: ignore[arg-type]
    meta = level_meta(zarr_format, attributes)
    node_key = "0/zarr.json" if zarr_format == 3 else "0/.zarray"
    for extent in (0, 4, 8, 12, 1234567):
        before = len(store.calls)
        sized = replace(meta, shape=(extent, *meta.shape[1:]))
        documents.write_array("0", sized)
        want = rendered("0", sized)
        stored = dict(store.calls[before:])
        assert node_key in stored  # its extent changed
        assert stored == {k: want[k] for k in stored}
    # the last stored version of every document is what write_metadata writes now
    latest = dict(store.calls)
    assert latest == rendered("0", replace(meta, shape=(1234567, *meta.shape[1:])))


def test_unchanged_documents_are_stored_once() -> None:
    store = CountingStore()
    documents = StreamDocuments(store)  # type: ignore[arg-type]
    meta = level_meta(2, {"a": 1})
    made = []

    def group() -> GroupMeta:
        made.append(1)
        return GroupMeta(2, {"b": 2})

    for _ in range(3):
        documents.write_array("0", meta)
        documents.write_group("", group)
    keys = [k for k, _ in store.calls]
    assert sorted(keys) == sorted(["0/.zarray", "0/.zattrs", ".zgroup", ".zattrs"])
    assert len(made) == 1
    documents.forget()  # the attributes changed: rendered again, stored as they differ
    documents.write_group("", lambda: GroupMeta(2, {"b": 3}))
    assert store.calls[-1] == (".zattrs", rendered("", GroupMeta(2, {"b": 3}))[".zattrs"])


def test_documents_go_to_a_real_store(tmp_path) -> None:
    store = open_store(str(tmp_path / "d.zarr"), mode="a")
    documents = StreamDocuments(store)
    meta = level_meta(3)
    documents.write_array("0", replace(meta, shape=(7, *meta.shape[1:])))
    assert (
        store.get("0/zarr.json") == rendered("0", replace(meta, shape=(7, 40, 48)))["0/zarr.json"]
    )


def test_publisher_at_once_then_by_timer() -> None:
    lock = threading.Lock()
    published: list[int] = []
    publisher = RowPublisher(lock, published.append, interval=0.2)
    publisher._last -= 1  # the last publication is old: the next one goes at once
    with lock:
        publisher.rows_stored(1)
        publisher.rows_stored(2)  # too soon: left to the timer
        publisher.rows_stored(3)
    assert published == [1]
    deadline = time.monotonic() + 5
    while published == [1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert published == [1, 3]  # only the latest count, once
    time.sleep(0.3)
    assert published == [1, 3]
    assert publisher.error is None


def test_publisher_closed_publishes_nothing_more() -> None:
    lock = threading.Lock()
    published: list[int] = []
    publisher = RowPublisher(lock, published.append, interval=0.1)
    with lock:
        publisher.rows_stored(1)  # deferred: the first metadata was just written
        publisher.close()
        publisher.rows_stored(2)
    time.sleep(0.3)
    assert published == []


def test_publisher_keeps_a_timer_failure() -> None:
    lock = threading.Lock()

    def fail(rows: int) -> None:
        raise OSError("disk full")

    publisher = RowPublisher(lock, fail, interval=0.05)
    with lock:
        publisher.rows_stored(1)
    deadline = time.monotonic() + 5
    while publisher.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(publisher.error, OSError)
