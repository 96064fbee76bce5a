"""Reads of local arrays that are mostly unwritten: directory listings rule out the chunks that
are not there, so only stored chunks are opened (``xzaro.chunk_presence``). Values are checked
against zarr-python's; lookups and listings are counted on the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import xzaro
from xzaro.chunk_presence import LISTED_READ_CHUNKS, SAMPLED_CHUNKS, absent_chunks
from xzaro.errors import StoreError
from xzaro.indexing import plan_selection
from xzaro.stores.local import LocalStore

SHAPE = (40, 600)
CHUNKS = (1, 6)  # 4,000 chunks, 100 a row: rows 0..9 written, and a scattered few after them
STORED = 10 * 100 + 1 + 100


def _write(path: Path, zarr_format: int, separator: str = "/") -> zarr.Array:
    kwargs: dict = {"zarr_format": zarr_format, "fill_value": -1.5}
    if zarr_format == 2:
        kwargs["chunk_key_encoding"] = {"name": "v2", "separator": separator}
    array = zarr.create_array(str(path), shape=SHAPE, chunks=CHUNKS, dtype="f4", **kwargs)
    array[:10] = np.arange(10 * SHAPE[1], dtype="f4").reshape(10, SHAPE[1])
    array[25, 12:18] = 7.0  # one chunk alone in its row
    array[39, :] = 9.0  # a whole row at the end
    return array


class Counting:
    """Counts the store's per-chunk lookups and directory listings."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lookups = 0
        self.sampled = 0
        self.listings: list[str] = []
        get, list_dir, exists = LocalStore.get_transient, LocalStore.list_dir, LocalStore.exists

        def counted_get(store: LocalStore, key: str):  # type: ignore[no-untyped-def]
            self.lookups += 1
            return get(store, key)

        def counted_list(store: LocalStore, prefix: str = ""):  # type: ignore[no-untyped-def]
            self.listings.append(prefix)
            return list_dir(store, prefix)

        def counted_exists(store: LocalStore, key: str) -> bool:
            self.sampled += 1
            return exists(store, key)

        monkeypatch.setattr(LocalStore, "get_transient", counted_get)
        monkeypatch.setattr(LocalStore, "exists", counted_exists)
        monkeypatch.setattr(LocalStore, "list_dir", counted_list)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_only_stored_chunks_are_looked_up(
    tmp_path: Path, zarr_format: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _write(tmp_path / "a.zarr", zarr_format)[...]
    array = xzaro.open_array(str(tmp_path / "a.zarr"))
    counting = Counting(monkeypatch)
    np.testing.assert_array_equal(array[...], expected)
    assert counting.sampled == SAMPLED_CHUNKS  # before listing: their files checked, not read
    assert counting.lookups == STORED  # then the stored chunks, and no others
    # the directory of rows, then each stored row's directory
    assert len(counting.listings) == 1 + 12


def test_directories_are_listed_only_where_it_pays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One chunk column over every row: each row directory would be listed for one of its ten
    entries, so only the directory of rows is listed and the rows' stored chunks looked up.
    All columns: a row directory would answer for only ten chunks (a listing costs about ten
    lookups), so again only the directory of rows is listed."""
    wide = (4000, 60)
    array = zarr.create_array(
        str(tmp_path / "a.zarr"), shape=wide, chunks=CHUNKS, dtype="f4", fill_value=0
    )
    array[:50] = 1.0
    counting = Counting(monkeypatch)
    got = xzaro.open_array(str(tmp_path / "a.zarr"))[:, 6:12]
    np.testing.assert_array_equal(got, array[:, 6:12])
    assert counting.listings == ["c"]
    assert counting.lookups == 50
    counting.listings.clear()
    counting.lookups = 0
    np.testing.assert_array_equal(xzaro.open_array(str(tmp_path / "a.zarr"))[...], array[...])
    assert counting.listings == ["c"]
    assert counting.lookups == 50 * 10


def test_small_reads_and_dotted_keys_look_up_every_chunk(tmp_path: Path) -> None:
    _write(tmp_path / "dots.zarr", 2, separator=".")
    _write(tmp_path / "slashes.zarr", 3)
    dots = xzaro.open_array(str(tmp_path / "dots.zarr"))
    slashes = xzaro.open_array(str(tmp_path / "slashes.zarr"))
    box = plan_selection(..., SHAPE, orthogonal=False).box
    assert absent_chunks(dots.store, dots.meta, box) is None  # "i.j": one flat directory
    assert absent_chunks(slashes.store, slashes.meta, box) is not None
    rows = LISTED_READ_CHUNKS // (SHAPE[1] // CHUNKS[1]) - 1
    few = plan_selection((slice(0, rows),), SHAPE, orthogonal=False).box
    assert absent_chunks(slashes.store, slashes.meta, few) is None
    np.testing.assert_array_equal(dots[...], slashes[...])


def test_names_that_are_not_chunk_indices_rule_nothing_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stray ``07`` or ``x`` beside the chunks is no chunk: index 7 stays missing."""
    path = tmp_path / "a.zarr"
    expected = _write(path, 3)[...]
    for stray in ("07", "x", "+7", "\u0667"):
        (path / "c" / "25" / stray).write_bytes(b"junk")
        (path / "c" / stray).mkdir()
    counting = Counting(monkeypatch)
    np.testing.assert_array_equal(xzaro.open_array(str(path))[...], expected)
    assert counting.lookups == STORED


def test_a_directory_that_cannot_be_listed_rules_nothing_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _write(tmp_path / "a.zarr", 3)[...]
    array = xzaro.open_array(str(tmp_path / "a.zarr"))
    counting = Counting(monkeypatch)

    def refuse(store: LocalStore, prefix: str = "") -> list[str]:
        counting.listings.append(prefix)
        raise StoreError("permission denied", url=store.url, key=prefix)

    monkeypatch.setattr(LocalStore, "list_dir", refuse)
    np.testing.assert_array_equal(array[...], expected)
    # every chunk looked up, as without listings
    assert counting.lookups == SHAPE[0] * 100


def test_a_chunk_removed_or_added_after_the_open_reads_as_the_files_say(tmp_path: Path) -> None:
    path = tmp_path / "a.zarr"
    written = _write(path, 3)
    array = xzaro.open_array(str(path))
    (path / "c" / "5" / "3").unlink()
    written[30, :6] = 4.0
    got = array[...]
    np.testing.assert_array_equal(got[5, 18:24], np.full(6, -1.5, "f4"))
    np.testing.assert_array_equal(got[30, :6], np.full(6, 4.0, "f4"))
    np.testing.assert_array_equal(got, written[...])


def test_a_read_of_stored_chunks_lists_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sampled chunks are all there: a listing could rule out nothing worth its cost."""
    path = tmp_path / "a.zarr"
    written = _write(path, 3)
    array = xzaro.open_array(str(path))
    counting = Counting(monkeypatch)
    np.testing.assert_array_equal(array[:10], written[:10])
    assert counting.listings == []
    assert counting.lookups == 10 * 100
