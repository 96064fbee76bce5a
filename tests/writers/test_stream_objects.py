"""A stream's objects are written in place in a local store (no temporary file, no rename):
new files appear with their directories, an existing one is replaced whole, a failed write
leaves nothing, other stores get ``set_many``, and a reader polling the store during an
acquisition only ever sees whole rows."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

import xzaro
from tests.writers.test_streaming import dims3, frames_of
from xzaro.errors import StoreError
from xzaro.stores import files
from xzaro.stores.files import TMP_SUFFIX, create_file
from xzaro.stores.local import LocalStore
from xzaro.streaming import StorageProperties, ZarrV2, ZarrV3
from xzaro.writers.coarsen import coarsen_array
from xzaro.writers.compression import BloscCompressionParams
from xzaro.writers.streaming.objects import new_object_writer


def test_create_file_new_and_existing(tmp_path: Path) -> None:
    path = str(tmp_path / "a" / "b" / "c")
    create_file(path, memoryview(b"first"))
    assert Path(path).read_bytes() == b"first"
    create_file(path, memoryview(b"second, longer"))  # exists: replaced whole
    assert Path(path).read_bytes() == b"second, longer"
    assert not [n for n in os.listdir(tmp_path / "a" / "b") if n.endswith(TMP_SUFFIX)]


def test_create_file_failure_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def half_then_fail(fd: int, value) -> None:
        os.write(fd, bytes(value)[:2])
        raise OSError("disk full")

    monkeypatch.setattr(files, "_write_all", half_then_fail)
    path = str(tmp_path / "x")
    with pytest.raises(OSError, match="disk full"):
        create_file(path, memoryview(b"payload"))
    assert not os.path.exists(path)


def test_object_writer_of_a_local_store(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "s"))
    write = new_object_writer(store)
    write([("c/0/0", b"00"), ("c/0/1", memoryview(b"01")), ("zarr.json", b"{}")])
    assert store.get_many(["c/0/0", "c/0/1", "zarr.json"]) == [b"00", b"01", b"{}"]
    (tmp_path / "s" / "blocked").write_bytes(b"")  # a file where a directory must go
    with pytest.raises(StoreError, match="blocked/0"):
        write([("blocked/0", b"x")])


def test_object_writer_of_other_stores() -> None:
    class Recording:
        def __init__(self) -> None:
            self.items: list[tuple[str, bytes]] = []

        def set_many(self, items) -> None:
            self.items += list(items)

    store = Recording()
    new_object_writer(store)([("a", b"1")])  # type: ignore[arg-type]
    assert store.items == [("a", b"1")]


@pytest.mark.parametrize("cls", [ZarrV2, ZarrV3])
def test_reader_polling_sees_only_whole_rows(tmp_path: Path, cls: type) -> None:
    url = str(tmp_path / "poll.zarr")
    data = frames_of(48, 32, 64, np.uint16, seed=5)
    half = coarsen_array(data, (1, 2), "mean")
    props = StorageProperties(
        uri=url,
        acquisition_dimensions=dims3(64, 32, 32, 16, 1),
        enable_multiscale=True,
        compression=BloscCompressionParams("lz4", 1, "shuffle"),
    )
    s = cls(props)
    s.reserve_image_shape((32, 64), np.uint16)
    s.start()
    seen: list[int] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def poll() -> None:
        try:
            while not done.is_set():
                a = xzaro.open_array(url, "0")
                n = a.shape[0]
                np.testing.assert_array_equal(a[...], data[:n])
                b = xzaro.open_array(url, "1")
                np.testing.assert_array_equal(b[...], half[: b.shape[0]])
                seen.append(n)
        except BaseException as e:
            failures.append(e)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for frame in data:
            s.append(frame)
        s.stop()
    finally:
        done.set()
        reader.join()
    assert not failures, failures[0]
    assert seen == sorted(seen)
    assert xzaro.open_array(url, "0").shape == (48, 32, 64)
