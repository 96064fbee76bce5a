"""Where the Parquet reference layout keeps a chunk's reference: chunk grids and linear indices.

A chunk key of an array maps to its C-order linear index ``i`` in the chunk grid, then to row
``i % record_size`` of record file ``i // record_size`` (``<array>/refs.<record>.parq``). The
chunk grids come from the arrays' metadata documents (V2 ``.zarray`` or V3 ``zarr.json``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xzaro.errors import MetadataError

#: The names of a Zarr hierarchy's metadata documents, as they appear in references.
META_NAMES = (".zarray", ".zattrs", ".zgroup", "zarr.json")


@dataclass(frozen=True)
class ChunkGrid:
    """The chunk grid of one array and how its chunk keys are spelled."""

    grid: tuple[int, ...]
    separator: str
    v3_prefix: bool  # V3 default chunk keys start with "c"


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
