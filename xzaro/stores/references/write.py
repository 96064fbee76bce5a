"""Writing reference documents: Kerchunk JSON (optionally Zstandard-compressed) and the Parquet
layout of kerchunk and VirtualiZarr (:mod:`xzaro.stores.references.parquet` reads it back).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from typing import Any

from xzaro.stores.references.kerchunk import parse_references, reference_value
from xzaro.stores.references.parquet_layout import META_NAMES, chunk_grids, locate_chunk

#: Rows per Parquet record file, as kerchunk and VirtualiZarr write them by default.
DEFAULT_RECORD_SIZE = 100_000


def _zstd_compress(data: bytes) -> bytes:
    try:
        import zstandard

        return zstandard.ZstdCompressor(level=9).compress(data)
    except ImportError:
        from numcodecs import Zstd

        return bytes(Zstd(level=9).encode(data))


def _write_bytes(url: str, data: bytes, storage_options: Mapping[str, Any]) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    parent = path.rsplit("/", 1)[0]
    if parent and parent != path:
        fs.makedirs(parent, exist_ok=True)
    fs.pipe_file(path, data)


def write_references(
    refs: Mapping[str, Any],
    out: str | os.PathLike[str],
    *,
    record_size: int = DEFAULT_RECORD_SIZE,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Write a reference document as JSON (``.json``, ``.json.zst``) or Parquet (``.parq``).

    Parameters
    ----------
    refs
        A Kerchunk reference document, version 0 or 1.
    out
        Where to write: a path or fsspec URL ending in ``.json``, ``.json.zst`` (Zstandard
        compressed JSON), or ``.parq``/``.parquet`` (a directory in the kerchunk/VirtualiZarr
        Parquet layout: ``.zmetadata`` plus ``<variable>/refs.<R>.parq``).
    record_size
        Rows per Parquet record file.
    storage_options
        fsspec options for writing.

    Returns
    -------
    str
        ``out`` as a string.
    """
    url = os.fspath(out)
    options = dict(storage_options or {})
    lower = url.lower().rstrip("/")
    if lower.endswith((".json", ".json.zst")):
        data = json.dumps(dict(refs), separators=(",", ":")).encode()
        _write_bytes(url, _zstd_compress(data) if lower.endswith(".zst") else data, options)
    elif lower.endswith((".parq", ".parquet")):
        _write_parquet(parse_references(dict(refs), url), url, record_size, options)
    else:
        raise ValueError(f"out must end in .json, .json.zst, .parq or .parquet, got {url!r}")
    return url


def _clear_parquet_dir(url: str, options: Mapping[str, Any]) -> None:
    """Remove an earlier Parquet reference directory at ``url`` (refuse any other directory)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **options)
    if not fs.exists(path):
        return
    if not fs.isdir(path):
        raise ValueError(f"{url!r} exists and is not a directory")
    if not fs.ls(path):
        return
    try:
        previous = json.loads(fs.cat_file(f"{path}/.zmetadata"))
    except (FileNotFoundError, ValueError):
        previous = None
    if not isinstance(previous, dict) or "record_size" not in previous:
        raise ValueError(f"{url!r} is a directory that holds no Parquet references; not replaced")
    fs.rm(path, recursive=True)


def parquet_schema() -> Any:
    """The Arrow schema of a record file, as kerchunk writes it."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("path", pa.string()),
            pa.field("offset", pa.int64(), nullable=False),
            pa.field("size", pa.int64(), nullable=False),
            pa.field("raw", pa.binary()),
        ]
    )


def _write_parquet(
    refs: Mapping[str, Any], url: str, record_size: int, options: Mapping[str, Any]
) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if record_size < 1:
        raise ValueError(f"record_size must be >= 1, got {record_size}")
    _clear_parquet_dir(url, options)
    metadata: dict[str, Any] = {}
    for key, value in refs.items():
        if key.rpartition("/")[2] in META_NAMES:
            raw = reference_value(key, value, url)
            if not isinstance(raw, bytes):
                raise ValueError(f"metadata key {key!r} must be inline, got {value!r}")
            metadata[key] = json.loads(raw)
    grids = chunk_grids(metadata, url)
    records: dict[tuple[str, int], dict[int, Any]] = {}
    for key, value in refs.items():
        if key in metadata or key == ".zmetadata":
            continue
        found = locate_chunk(grids, key)
        if found is None:
            raise ValueError(f"{key!r} is neither metadata nor a chunk of an array")
        variable, index = found
        record, row = divmod(index, record_size)
        records.setdefault((variable, record), {})[row] = reference_value(key, value, url)
    for (variable, record), rows in sorted(records.items()):
        paths: list[str | None] = [None] * record_size
        offsets = [0] * record_size
        sizes = [0] * record_size
        raws: list[bytes | None] = [None] * record_size
        for row, ref in rows.items():
            if isinstance(ref, bytes):
                raws[row] = ref
            else:
                paths[row], offsets[row] = ref[0], ref[1]
                sizes[row] = 0 if ref[2] is None else ref[2]
        frame = pd.DataFrame({"path": paths, "offset": offsets, "size": sizes, "raw": raws})
        # with pandas' schema metadata, fastparquet-based readers (fsspec) get int64 offsets
        table = pa.Table.from_pandas(frame, schema=parquet_schema(), preserve_index=False)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd", write_statistics=False)
        _write_bytes(f"{url}/{variable}/refs.{record}.parq", buffer.getvalue(), options)
    zmetadata = {"metadata": metadata, "record_size": record_size}
    _write_bytes(f"{url}/.zmetadata", json.dumps(zmetadata).encode(), options)
