"""``ParquetReferenceStore``: the Parquet reference layout that kerchunk and VirtualiZarr write.

Layout of a reference directory::

    .zmetadata                    {"metadata": {".zgroup": {...}, "v/.zarray": {...}, ...},
                                   "record_size": N}
    <variable>/refs.<R>.parq      columns path, offset, size, raw; N rows each

A chunk key of a variable maps to a row of a record file
(:mod:`xzaro.stores.references.parquet_layout`); the rows say where the chunk is
(:mod:`xzaro.stores.references.records`). A row whose ``path`` and ``raw`` are both null
(padding, or a chunk deleted through fsspec's ``LazyReferenceMapper``) is a missing chunk, and
so is every chunk of a record file that does not exist. Record files are read on first use and
kept in a bounded per-process LRU cache, so opening a dataset with millions of references reads
none of them. Nothing else reads as missing: a record file is validated before it is used, and
its columns may take at most ``max_reference_bytes`` uncompressed (a Parquet page bomb).
"""

from __future__ import annotations

import io
import json
import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xzaro.errors import MetadataError, StoreError
from xzaro.stores.filesystem import open_file_store
from xzaro.stores.references.base import ReferenceStoreBase
from xzaro.stores.references.documents import decompress_if_zstd, read_bounded, too_large
from xzaro.stores.references.fetch import Reference
from xzaro.stores.references.parquet_layout import (
    META_NAMES,
    ArrayChunks,
    chunk_grids,
    locate_chunk,
)
from xzaro.stores.references.records import Record, check_rows

#: Record files kept in memory per process (each holds ``record_size`` rows).
RECORD_CACHE_SIZE = 64


@dataclass
class _Layout:
    metadata: dict[str, Any]
    record_size: int
    grids: dict[str, ArrayChunks]


_records: OrderedDict[tuple[Any, ...], Record | None] = OrderedDict()
_records_lock = threading.Lock()


class ParquetReferenceStore(ReferenceStoreBase):
    """A read-only store over a kerchunk / VirtualiZarr Parquet reference directory.

    Parameters
    ----------
    url
        The reference directory (local path or any fsspec URL).
    storage_options
        fsspec options for reading the reference directory.
    remote_protocol, remote_options, allowed_protocols, max_gap, max_concurrency
        As for :class:`~xzaro.stores.references.kerchunk.ReferenceStore` (``storage_options`` reach
        targets only on the directory's own host or bucket).
    max_reference_bytes
        The most bytes ``.zmetadata`` may hold once decompressed, and the most bytes one record
        file's columns may take uncompressed (default
        :data:`~xzaro.stores.references.documents.DEFAULT_MAX_REFERENCE_BYTES`, 2 GiB).

    Notes
    -----
    The store serves the metadata documents (and a consolidated ``.zmetadata``) from the
    directory's ``.zmetadata`` and every chunk key from the record files. Relative target paths
    resolve against the directory that holds the reference directory, as for a JSON reference
    file in its place. The store pickles as its URL and options; metadata and record files are
    read lazily in each process. Record files are validated before use (see the module
    documentation); a missing record file, or a row with neither path nor raw, is a missing
    chunk.
    """

    def _forget_loaded(self) -> None:
        size = len(self._cache_key)
        with _records_lock:
            for stale in [k for k in _records if k[:size] == self._cache_key]:
                del _records[stale]

    def _relative_to(self, url: str) -> str:
        self.directory = open_file_store(url, self.storage_options)
        # relative targets resolve against the directory holding the reference directory, as
        # for a JSON file in its place
        return self.directory.url

    # --- metadata ------------------------------------------------------------------------

    @property
    def layout(self) -> _Layout:
        """The parsed ``.zmetadata``: metadata documents, record size, chunk grids."""
        layout: _Layout = self.loaded()
        return layout

    def _load(self) -> _Layout:
        limit = self.max_reference_bytes
        what = ".zmetadata of the Parquet reference directory"
        raw = read_bounded(self.directory, ".zmetadata", limit, what, self.url)
        try:
            doc = json.loads(decompress_if_zstd(raw, self.url, limit, ".zmetadata"))
        except (ValueError, RecursionError) as exc:
            raise MetadataError(
                f".zmetadata is not valid JSON: {exc}", url=self.url, key=".zmetadata"
            ) from exc
        metadata = doc.get("metadata") if isinstance(doc, dict) else None
        record_size = doc.get("record_size") if isinstance(doc, dict) else None
        if not isinstance(metadata, dict):
            raise MetadataError(
                ".zmetadata has no 'metadata' object",
                url=self.url,
                key=".zmetadata",
                field="metadata",
            )
        if not isinstance(record_size, int) or isinstance(record_size, bool) or record_size < 1:
            raise MetadataError(
                f".zmetadata needs a positive integer record_size, got {record_size!r}",
                url=self.url,
                key=".zmetadata",
                field="record_size",
            )
        return _Layout(metadata, record_size, chunk_grids(metadata, self.url))

    def _metadata_bytes(self, key: str) -> bytes | None:
        layout = self.layout
        if key == ".zmetadata":
            doc = {"zarr_consolidated_format": 1, "metadata": layout.metadata}
            return json.dumps(doc).encode()
        value = layout.metadata.get(key)
        if value is None:
            return None
        if isinstance(value, bytes):
            return value
        return value.encode() if isinstance(value, str) else json.dumps(value).encode()

    # --- record files ----------------------------------------------------------------------

    def _record(self, variable: str, record: int) -> Record | None:
        full_key = (*self._cache_key, variable, record)
        with _records_lock:
            if full_key in _records:
                _records.move_to_end(full_key)
                return _records[full_key]
        name = f"{variable}/refs.{record}.parq"
        data = self.directory.get_ranges([(name, 0, self.max_reference_bytes + 1)])[0]
        loaded = None if data is None else self._parse_record(variable, record, name, data)
        with _records_lock:
            _records[full_key] = loaded
            while len(_records) > RECORD_CACHE_SIZE:
                _records.popitem(last=False)
        return loaded

    def _parse_record(self, variable: str, record: int, name: str, data: bytes) -> Record:
        import pyarrow.parquet as pq

        layout = self.layout
        limit = self.max_reference_bytes
        if len(data) > limit:
            raise too_large("the record file", limit, self.url, name)
        total = layout.grids[variable].nchunks
        expected = min(layout.record_size, total - record * layout.record_size)
        try:
            parquet = pq.ParquetFile(io.BytesIO(data))
            meta = parquet.metadata
            check_rows(meta.num_rows, expected, layout.record_size, self.url, name)
            unpacked = sum(
                meta.row_group(g).column(c).total_uncompressed_size
                for g in range(meta.num_row_groups)
                for c in range(meta.num_columns)
            )
            if unpacked > limit:
                raise MetadataError(
                    f"the record file's columns take {unpacked} bytes uncompressed, more than "
                    f"max_reference_bytes={limit}; open the store with a larger "
                    "max_reference_bytes to read it",
                    url=self.url,
                    key=name,
                )
            table = parquet.read()
        except MetadataError:
            raise
        except Exception as exc:
            raise StoreError(
                f"cannot read the reference file: {type(exc).__name__}: {exc}",
                url=self.url,
                key=name,
            ) from exc
        return Record(table, expected, layout.record_size, self.url, name)

    def _lookup_many(self, keys: Sequence[str]) -> list[Reference | None]:
        layout = self.layout
        out: list[Reference | None] = [None] * len(keys)
        by_record: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
        for i, key in enumerate(keys):
            name = key.rpartition("/")[2]
            if name in META_NAMES or key == ".zmetadata" or key in layout.metadata:
                out[i] = self._metadata_bytes(key)
                continue
            found = locate_chunk(layout.grids, key)
            if found is None:
                continue
            variable, index = found
            record, row = divmod(index, layout.record_size)
            by_record[(variable, record)].append((i, row))
        for (variable, record), members in by_record.items():
            loaded = self._record(variable, record)
            if loaded is None:
                continue
            refs = loaded.rows([row for _, row in members])
            for (i, _), ref in zip(members, refs):
                out[i] = ref
        return out

    def _keys(self, prefix: str) -> Iterable[str]:
        """Metadata keys, plus the chunk keys with a reference of the arrays under ``prefix``.

        Listing chunk keys reads every record file of those arrays.
        """
        layout = self.layout
        keys = [".zmetadata", *layout.metadata]
        for variable, grid in layout.grids.items():
            if prefix and not (
                variable == prefix
                or variable.startswith(prefix + "/")
                or prefix.startswith(variable + "/")
            ):
                continue
            total = grid.nchunks
            for record in range(math.ceil(total / layout.record_size)):
                loaded = self._record(variable, record)
                if loaded is None:
                    continue
                first = record * layout.record_size
                rows = list(range(min(layout.record_size, total - first)))
                for row, ref in zip(rows, loaded.rows(rows)):
                    if ref is None:
                        continue
                    keys.append(f"{variable}/{grid.chunk_name(first + row)}")
        return keys
