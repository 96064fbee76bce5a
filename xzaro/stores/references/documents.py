"""Reading reference documents with a ceiling on their size, compressed or not.

A reference document (a Kerchunk JSON file, a Parquet directory's ``.zmetadata``, a record
file) is read whole, so it is read bounded: at most ``max_reference_bytes`` bytes, also after
Zstandard decompression, or a :class:`~xzaro.errors.MetadataError` naming the URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xzaro.errors import MetadataError, NodeNotFoundError, StoreError
from xzaro.stores.base import Store
from xzaro.stores.filesystem import open_file_store

#: The default ceiling on a reference document (a Kerchunk JSON file, decompressed, or a Parquet
#: directory's ``.zmetadata``) and on one Parquet record file's uncompressed columns: 2 GiB. A
#: JSON document that large takes several times as much memory to parse; raise it with the
#: stores' ``max_reference_bytes``.
DEFAULT_MAX_REFERENCE_BYTES = 2 * 2**30
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: Decompressed bytes read at a time.
_ZSTD_STEP = 64 * 2**20


def check_max_reference_bytes(value: Any) -> int:
    """``value`` if it is a valid ``max_reference_bytes`` (an integer >= 1)."""
    if type(value) is not int or value < 1:
        raise ValueError(f"max_reference_bytes must be an integer >= 1, got {value!r}")
    return value


def too_large(what: str, max_bytes: int, url: str, key: str | None) -> MetadataError:
    """The error for a reference document (``what``) larger than ``max_bytes``."""
    return MetadataError(
        f"{what} holds more than max_reference_bytes={max_bytes} bytes; "
        "open the store with a larger max_reference_bytes to read it",
        url=url,
        key=key,
    )


def read_bounded(
    store: Store, key: str, max_bytes: int, what: str, url: str | None = None
) -> bytes:
    """The object at ``key`` of ``store``, reading at most ``max_bytes + 1`` bytes of it.

    Parameters
    ----------
    store
        Where the object is.
    key
        Its key (``""``: the store's URL itself).
    max_bytes
        The most bytes it may hold.
    what
        What it is, for messages (``"the reference file"``).
    url
        The URL to name in errors (default: the store's).

    Raises
    ------
    NodeNotFoundError
        It does not exist.
    MetadataError
        It holds more than ``max_bytes`` bytes.
    """
    url = store.url if url is None else url
    data = store.get_ranges([(key, 0, max_bytes + 1)])[0]
    if data is None:
        raise NodeNotFoundError(f"{what} does not exist", url=url, key=key or None)
    if len(data) > max_bytes:
        raise too_large(what, max_bytes, url, key or None)
    return bytes(data)


def decompress_if_zstd(
    data: bytes, url: str, max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES, key: str | None = None
) -> bytes:
    """Decompress Zstandard-compressed reference data (recognised by its magic number).

    Decompression streams and stops after ``max_bytes + 1`` bytes, so a small compressed
    document can never expand without bound. Concatenated frames are read as one stream.

    Raises
    ------
    MetadataError
        The decompressed data holds more than ``max_bytes`` bytes.
    StoreError
        The data is not valid Zstandard, or the ``zstandard`` package is missing.
    """
    if not data.startswith(_ZSTD_MAGIC):
        return data
    try:
        import zstandard
    except ImportError as exc:
        raise StoreError(
            "reading a Zstandard-compressed reference document needs the zstandard package "
            "(pip install 'xzaro[refs]')",
            url=url,
            key=key,
        ) from exc
    parts: list[bytes] = []
    total = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
            while True:
                part = reader.read(min(max_bytes + 1 - total, _ZSTD_STEP))
                if not part:
                    break
                parts.append(part)
                total += len(part)
                if total > max_bytes:
                    raise too_large("the decompressed reference document", max_bytes, url, key)
    except zstandard.ZstdError as exc:
        raise StoreError(
            f"could not decompress the zstd reference document: {exc}", url=url, key=key
        ) from exc
    return b"".join(parts)


def read_reference_bytes(
    url: str, storage_options: Mapping[str, Any], max_bytes: int = DEFAULT_MAX_REFERENCE_BYTES
) -> bytes:
    """Read a reference file (any fsspec URL, optionally Zstandard-compressed), decompressed.

    Raises
    ------
    NodeNotFoundError
        The file does not exist.
    MetadataError
        The file, or its decompressed content, holds more than ``max_bytes`` bytes.
    """
    data = read_bounded(open_file_store(url, storage_options), "", max_bytes, "the reference file")
    return decompress_if_zstd(data, url, max_bytes)
