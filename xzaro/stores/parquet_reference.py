"""``ParquetReferenceStore``: the Parquet reference layout that kerchunk and VirtualiZarr write.

Layout of a reference directory::

    .zmetadata                    {"metadata": {".zgroup": {...}, "v/.zarray": {...}, ...},
                                   "record_size": N}
    <variable>/refs.<R>.parq      columns path, offset, size, raw; N rows each

A chunk key of a variable maps to its C-order linear index ``i`` in the chunk grid, then to row
``i % N`` of record file ``i // N``. A row with ``raw`` holds the chunk inline; otherwise ``path``,
``offset`` and ``size`` point into a target file (offset 0 and size 0: the whole file); a row
whose ``path`` and ``raw`` are both null (padding, or a chunk deleted through fsspec's
``LazyReferenceMapper``) is a missing chunk, and so is every chunk of a record file that does not
exist. Record files are read on first use and kept in a bounded per-process LRU cache, so opening
a dataset with millions of references reads none of them.

Nothing else reads as missing: a record file is checked before it is used and a
:class:`~xzaro.errors.MetadataError` naming the record file (``key``) and the column (``field``)
is raised when

* a column is not one of ``path`` (text), ``offset`` and ``size`` (integers), ``raw`` (bytes or
  text), or ``path`` comes without ``offset`` and ``size``, or neither ``path`` nor ``raw`` is
  there;
* it holds fewer rows than the chunks it stands for (``record_size``, or the remaining chunks
  for the last record) or more than ``record_size`` (field ``record_size``);
* an offset or size is negative, null, or 2**63 or more where a row points into a target, or a
  path is empty;
* its columns would take more than ``max_reference_bytes`` uncompressed (a Parquet page bomb).
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

from xzaro.errors import MetadataError, StoreError
from xzaro.stores.fsspec_store import FsspecStore
from xzaro.stores.targets import (
    Reference,
    ReferenceStoreBase,
    TargetResolver,
    decompress_if_zstd,
    read_bounded,
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


_COLUMNS = ("path", "offset", "size", "raw")
_INT64_MAX = 2**63 - 1


class _Record:
    """One loaded, validated record file: columns as pyarrow arrays and numpy.

    Parameters
    ----------
    table
        The record file's table.
    expected
        The rows it must hold at least (its chunks); at most ``record_size``.
    record_size
        Rows per record file.
    url, key
        The reference store and the record file, for messages.
    """

    def __init__(self, table: Any, expected: int, record_size: int, url: str, key: str) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        self.url, self.key = url, key
        n = table.num_rows
        _check_rows(n, expected, record_size, url, key)
        columns = self._columns(table)
        self.n = n
        self.path = columns.get("path")
        self.raw = columns.get("raw")
        false = pa.array(np.zeros(n, dtype=bool))
        has_raw = pc.is_valid(self.raw) if self.raw is not None else false
        points = (
            pc.and_(pc.is_valid(self.path), pc.invert(has_raw)) if self.path is not None else false
        )
        if self.path is not None:
            self._refuse(
                pc.and_(points, pc.equal(pc.utf8_length(self.path), 0)), "path", "an empty path"
            )
        zeros = np.zeros(n, dtype=np.int64)
        self.offset, self.size = zeros, zeros
        for name in ("offset", "size"):
            column = columns.get(name)
            if column is None:
                continue
            if pa.types.is_null(column.type):
                self._refuse(points, name, f"a null {name}")
                continue
            self._refuse(pc.and_(points, pc.is_null(column)), name, f"a null {name}")
            self._refuse(pc.fill_null(pc.less(column, 0), False), name, f"a negative {name}")
            self._refuse(
                pc.fill_null(pc.greater(column, _INT64_MAX), False), name, f"{name} >= 2**63"
            )
            values = pc.fill_null(column, 0).cast(pa.int64()).to_numpy(zero_copy_only=False)
            setattr(self, name, values)

    def _columns(self, table: Any) -> dict[str, Any]:
        """The record's columns by name, of the types the format allows."""
        import pyarrow as pa

        out: dict[str, Any] = {}
        for name in table.column_names:
            if name.startswith("__index_level_"):  # a pandas index written along
                continue
            if name not in _COLUMNS:
                raise MetadataError(
                    f"record file has a column {name!r}; the columns are path, offset, size, raw",
                    url=self.url,
                    key=self.key,
                    field=name,
                )
            column = table.column(name).combine_chunks()
            kind = column.type
            if pa.types.is_dictionary(kind):
                column = column.dictionary_decode()
                kind = column.type
            if name in ("offset", "size"):
                ok = pa.types.is_integer(kind) or pa.types.is_null(kind)
            elif name == "path":
                ok = (
                    pa.types.is_string(kind)
                    or pa.types.is_large_string(kind)
                    or pa.types.is_null(kind)
                )
            else:
                ok = any(
                    check(kind)
                    for check in (
                        pa.types.is_binary,
                        pa.types.is_large_binary,
                        pa.types.is_string,
                        pa.types.is_large_string,
                        pa.types.is_null,
                    )
                )
            if not ok:
                wanted = {"path": "text", "raw": "bytes or text"}.get(name, "integers")
                raise MetadataError(
                    f"record file column {name!r} holds {kind}, not {wanted}",
                    url=self.url,
                    key=self.key,
                    field=name,
                )
            out[name] = None if pa.types.is_null(kind) and name in ("path", "raw") else column
        names = {name for name in table.column_names if name in _COLUMNS}
        if not names & {"path", "raw"}:
            raise MetadataError(
                "record file has neither a path nor a raw column",
                url=self.url,
                key=self.key,
                field="path",
            )
        if "path" in names:
            for name in ("offset", "size"):
                if name not in names:
                    raise MetadataError(
                        f"record file has a path column but no {name} column",
                        url=self.url,
                        key=self.key,
                        field=name,
                    )
        return out

    def _refuse(self, mask: Any, name: str, what: str) -> None:
        """Raise naming the first row where ``mask`` is true, if any."""
        import pyarrow.compute as pc

        if not pc.any(mask).as_py():
            return
        row = pc.index(mask, True).as_py()
        raise MetadataError(
            f"record file row {row} holds {what}", url=self.url, key=self.key, field=name
        )

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
            elif path is not None:
                off, size = int(self.offset[r]), int(self.size[r])
                found[r] = (path, 0, None) if off == 0 and size == 0 else (path, off, size)
            else:
                found[r] = None
        return [found.get(r) for r in rows]


def _check_rows(n: int, expected: int, record_size: int, url: str, key: str) -> None:
    if not expected <= n <= record_size:
        wanted = f"{expected}" if expected == record_size else f"{expected} to {record_size}"
        raise MetadataError(
            f"record file holds {n} rows, but must hold {wanted} (the chunks it stands for, "
            f"record_size={record_size})",
            url=url,
            key=key,
            field="record_size",
        )


_records: OrderedDict[tuple[Any, ...], _Record | None] = OrderedDict()
_records_lock = threading.Lock()


def _parse_grid(doc: Any, key: str, url: str) -> ChunkGrid | None:
    """The chunk grid of an array document (``None`` for a group)."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except (ValueError, RecursionError) as exc:
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
    except (KeyError, TypeError, AttributeError) as exc:
        raise MetadataError(f"cannot read the chunk grid: {exc!r}", url=url, key=key) from exc
    if (
        not isinstance(shape, list)
        or not isinstance(chunks, list)
        or len(shape) != len(chunks)
        or not all(type(v) is int and v >= 0 for v in shape)
        or not all(type(v) is int and v >= 1 for v in chunks)
    ):
        raise MetadataError(
            f"shape {shape!r} and chunks {chunks!r} must be lists of as many integers "
            "(shape >= 0, chunks >= 1)",
            url=url,
            key=key,
        )
    if separator not in (".", "/"):
        raise MetadataError(f"invalid chunk key separator {separator!r}", url=url, key=key)
    grid = tuple(-(-s // c) for s, c in zip(shape, chunks))
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
        # chunk keys are plain decimal numbers: no signs, other digits or leading zeros
        if not (p.isascii() and p.isdigit()) or len(p) > 19 or (p[0] == "0" and p != "0"):
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
        As for :class:`~xzaro.stores.reference.ReferenceStore` (``storage_options`` reach
        targets only on the directory's own host or bucket).
    max_reference_bytes
        The most bytes ``.zmetadata`` may hold once decompressed, and the most bytes one record
        file's columns may take uncompressed (default
        :data:`~xzaro.stores.targets.DEFAULT_MAX_REFERENCE_BYTES`, 2 GiB).

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

    def _init(
        self,
        url: str,
        storage_options: dict[str, Any],
        remote_protocol: str | None,
        remote_options: dict[str, Any] | None,
        allowed_protocols: list[str] | None,
        max_gap: int,
        max_concurrency: int,
        max_reference_bytes: int,
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
        self.max_reference_bytes = max_reference_bytes
        options = json.dumps(storage_options, sort_keys=True, default=repr)
        self._cache_key = (self.url, options, max_reference_bytes)
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

    def _record(self, variable: str, record: int) -> _Record | None:
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

    def _parse_record(self, variable: str, record: int, name: str, data: bytes) -> _Record:
        import pyarrow.parquet as pq

        layout = self.layout
        limit = self.max_reference_bytes
        if len(data) > limit:
            raise MetadataError(
                f"the record file holds more than max_reference_bytes={limit} bytes; open the "
                "store with a larger max_reference_bytes to read it",
                url=self.url,
                key=name,
            )
        total = math.prod(layout.grids[variable].grid)
        expected = min(layout.record_size, total - record * layout.record_size)
        try:
            parquet = pq.ParquetFile(io.BytesIO(data))
            meta = parquet.metadata
            _check_rows(meta.num_rows, expected, layout.record_size, self.url, name)
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
        return _Record(table, expected, layout.record_size, self.url, name)

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
