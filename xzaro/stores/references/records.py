"""One Parquet record file of references, loaded and validated before use.

A record file has the columns ``path`` (text), ``offset`` and ``size`` (integers) and ``raw``
(bytes or text). A row with ``raw`` holds a chunk inline; otherwise ``path``, ``offset`` and
``size`` point into a target file (offset 0 and size 0: the whole file); a row whose ``path`` and
``raw`` are both null is a missing chunk. Anything else raises a
:class:`~xzaro.errors.MetadataError` naming the record file (``key``) and the column
(``field``): an unknown column or one of the wrong type, a ``path`` without ``offset`` and
``size``, neither ``path`` nor ``raw``, too few or too many rows, a negative, null or too large
offset or size where a row points into a target, or an empty path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xzaro.errors import MetadataError
from xzaro.stores.references.fetch import Reference

_COLUMNS = ("path", "offset", "size", "raw")
_INT64_MAX = 2**63 - 1
#: What each column may hold (a column of nulls is always allowed): its description and the
#: ``pyarrow.types`` checks that accept it.
_COLUMN_TYPES = {
    "path": ("text", ("is_string", "is_large_string")),
    "offset": ("integers", ("is_integer",)),
    "size": ("integers", ("is_integer",)),
    "raw": ("bytes or text", ("is_binary", "is_large_binary", "is_string", "is_large_string")),
}


class Record:
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
        check_rows(n, expected, record_size, url, key)
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
            if column.type == pa.uint64():  # numbers from 2**63 are not an int64's
                too_big = pc.greater(column, pa.scalar(_INT64_MAX, pa.uint64()))
            else:
                self._refuse(pc.fill_null(pc.less(column, 0), False), name, f"a negative {name}")
                too_big = pc.greater(column, _INT64_MAX)
            self._refuse(pc.fill_null(too_big, False), name, f"{name} >= 2**63")
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
                raise self._error(
                    f"record file has a column {name!r}; the columns are path, offset, size, raw",
                    name,
                )
            column = table.column(name).combine_chunks()
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            kind = column.type
            wanted, checks = _COLUMN_TYPES[name]
            if not pa.types.is_null(kind) and not any(
                getattr(pa.types, check)(kind) for check in checks
            ):
                raise self._error(f"record file column {name!r} holds {kind}, not {wanted}", name)
            out[name] = None if pa.types.is_null(kind) and name in ("path", "raw") else column
        names = {name for name in table.column_names if name in _COLUMNS}
        if not names & {"path", "raw"}:
            raise self._error("record file has neither a path nor a raw column", "path")
        if "path" in names:
            for name in ("offset", "size"):
                if name not in names:
                    raise self._error(f"record file has a path column but no {name} column", name)
        return out

    def _error(self, message: str, column: str) -> MetadataError:
        return MetadataError(message, url=self.url, key=self.key, field=column)

    def _refuse(self, mask: Any, name: str, what: str) -> None:
        """Raise naming the first row where ``mask`` is true, if any."""
        import pyarrow.compute as pc

        if not pc.any(mask).as_py():
            return
        row = pc.index(mask, True).as_py()
        raise self._error(f"record file row {row} holds {what}", name)

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


def check_rows(n: int, expected: int, record_size: int, url: str, key: str) -> None:
    """Raise unless a record file of ``n`` rows may stand for ``expected`` chunks."""
    if not expected <= n <= record_size:
        wanted = f"{expected}" if expected == record_size else f"{expected} to {record_size}"
        raise MetadataError(
            f"record file holds {n} rows, but must hold {wanted} (the chunks it stands for, "
            f"record_size={record_size})",
            url=url,
            key=key,
            field="record_size",
        )
