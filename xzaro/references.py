"""Creating references: scan NetCDF4/HDF5 files with kerchunk, write JSON or Parquet references.

The references read like a Zarr store through :func:`xzaro.stores.open_store` (and
``xr.open_dataset(url, engine="zaro")``) and through fsspec's ``reference://`` file system.
Scanning needs the optional packages ``kerchunk``, ``h5py`` and ``h5netcdf``
(``pip install 'xzaro[refs]'``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from xzaro.refs_combine import META_NAMES, combine_references
from xzaro.stores.parquet_reference import chunk_grids, locate_chunk
from xzaro.stores.reference import parse_references, reference_value
from xzaro.stores.targets import url_protocols

#: Rows per Parquet record file, as kerchunk and VirtualiZarr write them by default.
DEFAULT_RECORD_SIZE = 100_000
#: Chunks up to this many bytes are stored inline in the references (kerchunk's meaning).
DEFAULT_INLINE_THRESHOLD = 500


def _kerchunk() -> Any:
    try:
        import kerchunk.hdf
    except ImportError as exc:
        raise ImportError(
            "scanning NetCDF4/HDF5 files needs kerchunk and h5py: pip install 'xzaro[refs]'"
        ) from exc
    return kerchunk


def _absolute(url: str) -> str:
    if "::" not in url and url_protocols(url)[-1] == "file":
        return os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
    return url


def scan(
    urls: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    concat_dim: str | None = None,
    inline_threshold: int = DEFAULT_INLINE_THRESHOLD,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Kerchunk references to one or more NetCDF4/HDF5 files.

    Each file is scanned with kerchunk; several files are then joined along ``concat_dim`` by
    :func:`combine_references` (ordered by the decoded coordinate values, CF times re-encoded
    in one unit, the result checked). The extent written is logged on the ``xzaro`` logger;
    :func:`concat_extent` returns it.

    Parameters
    ----------
    urls
        A file, or several files to combine along ``concat_dim`` (local paths or fsspec URLs),
        in any order. Local paths are written as absolute paths.
    concat_dim
        The dimension to concatenate several files along (required for more than one file).
        Every file must hold a coordinate variable of that name.
    inline_threshold
        Chunks of at most this many bytes are stored inline in the references.
    storage_options
        fsspec options for reading the files.

    Returns
    -------
    dict
        A version 1 reference document (``{"version": 1, "refs": {...}}``).

    Raises
    ------
    ImportError
        kerchunk or h5py is not installed.
    ValueError
        No file, or several files without ``concat_dim``.
    MetadataError
        The files cannot be combined exactly (see :func:`combine_references`).
    """
    items = [urls] if isinstance(urls, (str, os.PathLike)) else list(urls)
    names = [_absolute(os.fspath(u)) for u in items]
    if not names:
        raise ValueError("no files to scan")
    if len(names) > 1 and concat_dim is None:
        raise ValueError("several files need concat_dim= to be combined")
    kerchunk = _kerchunk()
    options = dict(storage_options or {})
    singles = [
        kerchunk.hdf.SingleHdf5ToZarr(
            name, storage_options=options or None, inline_threshold=inline_threshold
        ).translate()
        for name in names
    ]
    if len(singles) == 1:
        return singles[0]
    assert concat_dim is not None  # checked above
    return combine_references(singles, concat_dim, names=names, storage_options=options)


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
    import io

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
