"""``ParquetReferenceStore``: the Parquet reference layout that kerchunk and VirtualiZarr write.

Layout of a reference directory::

    .zmetadata                    {"metadata": {".zgroup": {...}, "v/.zarray": {...}, ...},
                                   "record_size": N}
    <variable>/refs.<R>.parq      columns path, offset, size, raw; N rows each

A chunk key of a variable maps to its C-order linear index ``i`` in the chunk grid, then to row
``i % N`` of record file ``i // N``. A row with ``raw`` holds the chunk inline; otherwise ``path``,
``offset`` and ``size`` point into a target file (offset 0 and size 0: the whole file); a row
whose ``path`` and ``raw`` are both null (padding) is a missing chunk. Record files are read on
first use and kept in a bounded per-process LRU cache, so opening a dataset with millions of
references reads none of them.
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xzaro.errors import MetadataError, NodeNotFoundError, StoreError
from xzaro.stores.fsspec_store import FsspecStore
from xzaro.stores.reference import decompress_if_zstd
from xzaro.stores.targets import (
    Reference,
    ReferenceStoreBase,
    TargetResolver,
)

#: Record files kept in memory per process (each holds ``record_size`` rows).
RECORD_CACHE_SIZE = 64
_META_NAMES = (".zarray", ".zattrs", ".zgroup", "zarr.json")


@dataclass(frozen=True)
class ChunkGrid:
    """The chunk grid of one array and how its chunk keys are spelled."""

    grid: tuple[int, ...]
    separator: str
    v3_prefix: bool  # V3 default chunk keys start with "c"


@dataclass
class _Layout:
    metadata: dict[str, Any]
    record_size: int
    grids: dict[str, ChunkGrid]


class _Record:
    """One loaded record file: columns as pyarrow arrays / numpy."""

    def __init__(self, table: Any) -> None:
        import numpy as np

        n = table.num_rows
        names = set(table.column_names)
        self.n = n
        self.path = table.column("path").combine_chunks() if "path" in names else None
        self.raw = table.column("raw").combine_chunks() if "raw" in names else None
        zeros = np.zeros(n, dtype=np.int64)
        self.offset = table.column("offset").fill_null(0).to_numpy() if "offset" in names else zeros
        self.size = table.column("size").fill_null(0).to_numpy() if "size" in names else zeros

    def rows(self, rows: Sequence[int]) -> list[Reference | None]:
        """The references of ``rows`` (``None``: padding row or past the end)."""
        import pyarrow as pa

        inside = [r for r in rows if 0 <= r < self.n]
        index = pa.array(inside, type=pa.int64())
        paths = self.path.take(index).to_pylist() if self.path is not None else [None] * len(inside)
        raws = self.raw.take(index).to_pylist() if self.raw is not None else [None] * len(inside)
        found: dict[int, Reference | None] = {}
        for r, path, raw in zip(inside, paths, raws):
            if raw is not None:
                found[r] = raw if isinstance(raw, bytes) else str(raw).encode()
            elif path:
                off, size = int(self.offset[r]), int(self.size[r])
                found[r] = (
                    (str(path), 0, None) if off == 0 and size == 0 else (str(path), off, size)
                )
            else:
                found[r] = None
        return [found.get(r) for r in rows]


_records: OrderedDict[tuple[Any, ...], _Record | None] = OrderedDict()
_records_lock = threading.Lock()


def _parse_grid(doc: Any, key: str, url: str) -> ChunkGrid | None:
    """The chunk grid of an array document (``None`` for a group)."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise MetadataError(f"invalid JSON: {exc}", url=url, key=key) from exc
    if not isinstance(doc, dict):
        raise MetadataError("array metadata must be a JSON object", url=url, key=key)
    try:
        if key.endswith("zarr.json"):
            if doc.get("node_type") != "array":
                return None
            shape = doc["shape"]
            chunks = doc["chunk_grid"]["configuration"]["chunk_shape"]
            encoding = doc.get("chunk_key_encoding") or {"name": "default"}
            name = encoding.get("name", "default")
            separator = (encoding.get("configuration") or {}).get(
                "separator", "/" if name == "default" else "."
            )
            v3_prefix = name == "default"
        else:
            shape, chunks = doc["shape"], doc["chunks"]
            separator = doc.get("dimension_separator") or "."
            v3_prefix = False
        grid = tuple(math.ceil(s / c) if c else 0 for s, c in zip(shape, chunks))
    except (KeyError, TypeError, ValueError) as exc:
        raise MetadataError(f"cannot read the chunk grid: {exc!r}", url=url, key=key) from exc
    return ChunkGrid(grid, separator, v3_prefix)


def locate_chunk(grids: Mapping[str, ChunkGrid], key: str) -> tuple[str, int] | None:
    """``(array path, C-order linear chunk index)`` of a chunk key, or ``None`` if not one.

    Parameters
    ----------
    grids
        The chunk grids by array path (:func:`chunk_grids`).
    key
        A store key.

    Returns
    -------
    tuple of (str, int) or None
    """
    cut = len(key)
    while True:
        cut = key.rfind("/", 0, cut)
        if cut <= 0:
            return None
        grid = grids.get(key[:cut])
        if grid is not None:
            break
    variable, rest = key[:cut], key[cut + 1 :]
    if grid.v3_prefix:
        if rest == "c" and not grid.grid:
            return variable, 0
        if not rest.startswith("c" + grid.separator):
            return None
        rest = rest[2:]
    parts = rest.split(grid.separator)
    if not grid.grid:
        return (variable, 0) if parts == ["0"] else None
    if len(parts) != len(grid.grid):
        return None
    index = 0
    for p, n in zip(parts, grid.grid):
        if not p.isdigit():
            return None
        i = int(p)
        if i >= n:
            return None
        index = index * n + i
    return variable, index


def chunk_grids(metadata: Mapping[str, Any], url: str = "") -> dict[str, ChunkGrid]:
    """The chunk grid of every array described in a consolidated ``metadata`` mapping.

    Parameters
    ----------
    metadata
        ``{"var/.zarray": {...}, ...}`` (V2) or ``{"var/zarr.json": {...}}`` (V3); values may be
        JSON objects or JSON text.
    url
        Where the metadata came from, for messages.

    Returns
    -------
    dict
        ``{array path: ChunkGrid}``.
    """
    grids: dict[str, ChunkGrid] = {}
    for key, value in metadata.items():
        path, _, name = key.rpartition("/")
        if name in (".zarray", "zarr.json") and path:
            grid = _parse_grid(value, key, url)
            if grid is not None:
                grids[path] = grid
    return grids


def chunk_name(grid: ChunkGrid, index: int) -> str:
    """The chunk key (relative to its array) of linear chunk ``index``."""
    coords: list[str] = []
    for n in reversed(grid.grid):
        index, c = divmod(index, n)
        coords.append(str(c))
    coords.reverse()
    if grid.v3_prefix:
        return grid.separator.join(["c", *coords])
    return grid.separator.join(coords) if coords else "0"


class ParquetReferenceStore(ReferenceStoreBase):
    """A read-only store over a kerchunk / VirtualiZarr Parquet reference directory.

    Parameters
    ----------
    url
        The reference directory (local path or any fsspec URL).
    storage_options
        fsspec options for reading the reference directory.
    remote_protocol, remote_options, allowed_protocols, max_gap, max_concurrency
        As for :class:`~xzaro.stores.reference.ReferenceStore`.

    Notes
    -----
    The store serves the metadata documents (and a consolidated ``.zmetadata``) from the
    directory's ``.zmetadata`` and every chunk key from the record files. Relative target paths
    resolve against the directory that holds the reference directory, as for a JSON reference
    file in its place. The store pickles as
    its URL and options; metadata and record files are read lazily in each process.
    """

    def _forget_loaded(self) -> None:
        with _records_lock:
            for stale in [k for k in _records if k[:2] == self._cache_key]:
                del _records[stale]

    def _init(
        self,
        url: str,
        storage_options: dict[str, Any],
        remote_protocol: str | None,
        remote_options: dict[str, Any] | None,
        allowed_protocols: list[str] | None,
        max_gap: int,
        max_concurrency: int,
    ) -> None:
        self.storage_options = storage_options
        self.remote_protocol = remote_protocol
        self.remote_options = remote_options
        self.allowed_protocols = allowed_protocols
        self.max_gap = max_gap
        self.max_concurrency = max_concurrency
        self.directory = FsspecStore(url, storage_options)
        self.resolver = TargetResolver(
            # relative targets resolve against the directory holding the reference directory,
            # as for a JSON file in its place
            self.directory.url,
            storage_options,
            remote_protocol=remote_protocol,
            remote_options=remote_options,
            allowed_protocols=allowed_protocols,
        )
        self.url = self.resolver.reference_url
        self._cache_key = (self.url, json.dumps(storage_options, sort_keys=True, default=repr))
        self._layout_cache: _Layout | None = None
        self._layout_pid = -1
        self._lock = threading.Lock()
        self._fetcher_cache = None

    # --- metadata ------------------------------------------------------------------------

    @property
    def layout(self) -> _Layout:
        """The parsed ``.zmetadata``: metadata documents, record size, chunk grids."""
        layout = self._layout_cache
        if layout is not None and self._layout_pid == os.getpid():
            return layout
        with self._lock:
            if self._layout_cache is None or self._layout_pid != os.getpid():
                self._layout_cache = self._read_layout()
                self._layout_pid = os.getpid()
            return self._layout_cache

    def _read_layout(self) -> _Layout:
        raw = self.directory.get(".zmetadata")
        if raw is None:
            raise NodeNotFoundError(
                "no .zmetadata in the Parquet reference directory", url=self.url
            )
        try:
            doc = json.loads(decompress_if_zstd(bytes(raw), self.url))
        except ValueError as exc:
            raise MetadataError(f".zmetadata is not valid JSON: {exc}", url=self.url) from exc
        metadata = doc.get("metadata") if isinstance(doc, dict) else None
        record_size = doc.get("record_size") if isinstance(doc, dict) else None
        if not isinstance(metadata, dict):
            raise MetadataError(".zmetadata has no 'metadata' object", url=self.url)
        if not isinstance(record_size, int) or isinstance(record_size, bool) or record_size < 1:
            raise MetadataError(
                f".zmetadata needs a positive integer record_size, got {record_size!r}",
                url=self.url,
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

    def _record(self, variable: str, record: int) -> _Record | None:
        full_key = (*self._cache_key, variable, record)
        with _records_lock:
            if full_key in _records:
                _records.move_to_end(full_key)
                return _records[full_key]
        name = f"{variable}/refs.{record}.parq"
        data = self.directory.get(name)
        loaded = None if data is None else self._parse_record(name, data)
        with _records_lock:
            _records[full_key] = loaded
            while len(_records) > RECORD_CACHE_SIZE:
                _records.popitem(last=False)
        return loaded

    def _parse_record(self, name: str, data: bytes) -> _Record:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:
            raise StoreError(
                f"cannot read the reference file: {type(exc).__name__}: {exc}",
                url=self.url,
                key=name,
            ) from exc
        return _Record(table)

    def _lookup_many(self, keys: Sequence[str]) -> list[Reference | None]:
        layout = self.layout
        out: list[Reference | None] = [None] * len(keys)
        by_record: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
        for i, key in enumerate(keys):
            name = key.rpartition("/")[2]
            if name in _META_NAMES or key == ".zmetadata" or key in layout.metadata:
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
            total = math.prod(grid.grid)
            for record in range(math.ceil(total / layout.record_size)):
                loaded = self._record(variable, record)
                if loaded is None:
                    continue
                first = record * layout.record_size
                rows = list(range(min(layout.record_size, total - first)))
                for row, ref in zip(rows, loaded.rows(rows)):
                    if ref is None:
                        continue
                    keys.append(f"{variable}/{chunk_name(grid, first + row)}")
        return keys
