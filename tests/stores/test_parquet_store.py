"""The Parquet reference store (the kerchunk / VirtualiZarr layout): rows, padding, missing
chunks, and opening a million-chunk array without reading its record files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from reference_docs import VALUES, ZARRAY, ZATTRS, read_x, target_files, v0_doc, with_fill

from xzaro.stores import open_store
from xzaro.stores.references import ParquetReferenceStore
from xzaro.virtual import write_references


def _write_parquet_refs(root: Path, record_size: int, rows: dict[int, tuple[Any, ...]]) -> None:
    """A Parquet reference directory for array ``x`` written by hand (kerchunk's layout).

    ``rows`` maps a chunk number to ``(path, offset, size, raw)``; other rows are padding.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = {
        "metadata": {
            ".zgroup": {"zarr_format": 2},
            "x/.zarray": ZARRAY,
            "x/.zattrs": json.loads(ZATTRS),
        },
        "record_size": record_size,
    }
    (root / ".zmetadata").write_text(json.dumps(meta))
    (root / "x").mkdir()
    for record in range(-(-4 // record_size)):
        cols: dict[str, list[Any]] = {"path": [], "offset": [], "size": [], "raw": []}
        for row in range(record_size):
            path, offset, size, raw = rows.get(record * record_size + row, (None, 0, 0, None))
            for name, value in zip(cols, (path, offset, size, raw)):
                cols[name].append(value)
        table = pa.table(
            {
                "path": pa.array(cols["path"], pa.string()).dictionary_encode(),
                "offset": pa.array(cols["offset"], pa.int64()),
                "size": pa.array(cols["size"], pa.int64()),
                "raw": pa.array(cols["raw"], pa.binary()),
            }
        )
        pq.write_table(table, root / "x" / f"refs.{record}.parq")


def test_parquet_rows_and_padding(tmp_path: Path) -> None:
    target_files(tmp_path)
    refs = tmp_path / "refs.parq"
    refs.mkdir()
    _write_parquet_refs(
        refs,
        record_size=3,
        rows={
            0: (str(tmp_path / "data.bin"), 16, 8, None),
            1: (None, 0, 0, VALUES[2:4].tobytes()),  # inline
            # 2: padding row (null path and raw): fill
            3: (str(tmp_path / "whole.bin"), 0, 0, None),  # offset 0, size 0: whole file
        },
    )
    store = open_store(str(refs))  # recognised by its .zmetadata
    assert isinstance(store, ParquetReferenceStore)
    expected = VALUES.copy()
    expected[4:6] = -1
    expected[6:8] = VALUES[4:6]
    np.testing.assert_array_equal(read_x(str(refs)), expected)
    assert store.get("x/2") is None and store.get("x/9") is None and store.get("x/a") is None
    assert store.list("x") == ["x/.zarray", "x/.zattrs", "x/0", "x/1", "x/3"]
    assert store.get_ranges([("x/0", 4, None), ("x/3", -4, None)]) == [
        VALUES[1:2].tobytes(),
        VALUES[5:6].tobytes(),
    ]
    ds = xr.open_dataset(f"reference+parquet://{refs}", engine="zaro", mask_and_scale=False)
    np.testing.assert_array_equal(ds["x"].values, expected)


def test_parquet_written_by_xzaro_has_padding(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    target_files(tmp_path)
    doc = v0_doc(str(tmp_path / "data.bin"), str(tmp_path / "whole.bin"))
    write_references(doc, tmp_path / "refs.parq", record_size=6)
    table = pq.read_table(tmp_path / "refs.parq" / "x" / "refs.0.parq")
    assert table.num_rows == 6  # padded to the record size, like kerchunk
    assert table.column("path").to_pylist()[3:] == [None, None, None]
    assert table.column("raw").to_pylist()[3:] == [None, None, None]
    np.testing.assert_array_equal(read_x(str(tmp_path / "refs.parq")), with_fill(VALUES, [3]))


def test_parquet_opens_without_reading_references(tmp_path: Path) -> None:
    """A million-chunk array opens (and reads one chunk) touching one record file."""
    from xzaro.stores.references import parquet as parquet_reference

    root = tmp_path / "big.parq"
    root.mkdir()
    zarray = dict(ZARRAY, shape=[2_000_000], chunks=[2])
    meta = {
        "metadata": {
            ".zgroup": {"zarr_format": 2},
            "x/.zarray": zarray,
            "x/.zattrs": {"_ARRAY_DIMENSIONS": ["i"]},  # not an index: xarray reads nothing
        },
        "record_size": 100_000,
    }
    (root / ".zmetadata").write_text(json.dumps(meta))
    (root / "x").mkdir()  # no record file exists: every chunk is missing
    ds = xr.open_dataset(str(root), engine="zaro", chunks={}, mask_and_scale=False)
    assert ds["x"].shape == (2_000_000,)
    url = ParquetReferenceStore(root).url
    assert not [k for k in parquet_reference._records if k[0] == url]
    assert (ds["x"][:4].values == -1).all()
    assert len([k for k in parquet_reference._records if k[0] == url]) == 1
