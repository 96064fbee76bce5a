"""Where the Parquet reference layout keeps a chunk's reference: chunk grids and linear indices.

A chunk key of an array maps to its C-order linear index ``i`` in the chunk grid, then to row
``i % record_size`` of record file ``i // record_size`` (``<array>/refs.<record>.parq``). The
chunk grids and key encodings come from the arrays' metadata documents (V2 ``.zarray`` or V3
``zarr.json``), read by :func:`~xzaro.chunk_keys.array_chunk_keys`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xzaro.chunk_grid import ChunkGrid
from xzaro.chunk_keys import ChunkKeyEncoding, array_chunk_keys
from xzaro.errors import MetadataError

#: The names of a Zarr hierarchy's metadata documents, as they appear in references.
META_NAMES = (".zarray", ".zattrs", ".zgroup", "zarr.json")


@dataclass(frozen=True)
class ArrayChunks:
    """The chunk grid of one array and how its chunk keys are spelled."""

    grid: ChunkGrid
    encoding: ChunkKeyEncoding

    @property
    def nchunks(self) -> int:
        """Chunks in the grid: rows of the array's records."""
        return self.grid.nchunks

    def chunk_name(self, index: int) -> str:
        """The chunk key (relative to its array) of linear chunk ``index``."""
        return self.encoding.chunk_key(self.grid.chunk_at(index))

    def linear_index(self, name: str) -> int | None:
        """The linear index of the chunk key ``name`` (relative to the array), or ``None``
        when it is not the key of a chunk of the grid."""
        try:
            return self.grid.linear_index(self.encoding.chunk_index(name, self.grid.grid_shape))
        except MetadataError:
            return None


def _array_chunks(doc: Any, key: str, url: str) -> ArrayChunks | None:
    """The chunks of an array document (``None`` for a group)."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except (ValueError, RecursionError) as exc:
            raise MetadataError(f"invalid JSON: {exc}", url=url, key=key) from exc
    if not isinstance(doc, dict):
        raise MetadataError("array metadata must be a JSON object", url=url, key=key)
    if key.endswith("zarr.json"):
        if doc.get("node_type") != "array":
            return None
        doc = {**doc, "zarr_format": 3}
    try:
        grid, encoding = array_chunk_keys(doc)
    except MetadataError as exc:
        raise MetadataError(
            f"cannot read the chunk grid: {exc.message}", url=url, key=key, field=exc.field
        ) from exc
    return ArrayChunks(grid, encoding)


def locate_chunk(grids: Mapping[str, ArrayChunks], key: str) -> tuple[str, int] | None:
    """``(array path, C-order linear chunk index)`` of a chunk key, or ``None`` if not one.

    Parameters
    ----------
    grids
        The chunks of each array by its path (:func:`chunk_grids`).
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
        chunks = grids.get(key[:cut])
        if chunks is not None:
            break
    index = chunks.linear_index(key[cut + 1 :])
    return None if index is None else (key[:cut], index)


def chunk_grids(metadata: Mapping[str, Any], url: str = "") -> dict[str, ArrayChunks]:
    """The chunks of every array described in a consolidated ``metadata`` mapping.

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
        ``{array path: ArrayChunks}``.
    """
    grids: dict[str, ArrayChunks] = {}
    for key, value in metadata.items():
        path, _, name = key.rpartition("/")
        if name in (".zarray", "zarr.json") and path:
            chunks = _array_chunks(value, key, url)
            if chunks is not None:
                grids[path] = chunks
    return grids
