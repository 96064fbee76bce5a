"""Parsing the V3 ``chunk_grid`` member: ``regular`` and ``rectilinear`` (zarr-extensions).

A rectilinear dimension is one integer (a regular step, repeated to cover the extent) or a list
of edge lengths and run-length encoded ``[size, count]`` pairs, which must reach the extent.
Every malformed value is a :class:`~xzaro.errors.MetadataError` naming the field.
"""

from __future__ import annotations

from typing import Any

from xzaro.chunk_grid.dimensions import DimensionGrid, RectilinearDimension, RegularDimension
from xzaro.errors import MetadataError, UnsupportedError, brief

#: Extents and chunk edge lengths are signed 64-bit integers in every implementation.
MAX_EXTENT = 2**63
#: Entries (edge lengths and ``[size, count]`` pairs) one dimension of a rectilinear grid may
#: list; a run-length encoded pair counts once, whatever its count.
MAX_RECTILINEAR_ENTRIES = 2**20

REGULAR = "regular"
RECTILINEAR = "rectilinear"


def parse_chunk_grid(doc: Any, shape: tuple[int, ...]) -> tuple[str, list[DimensionGrid]]:
    """The name and the dimension grids of a V3 ``chunk_grid`` member (object or bare name)."""
    name = doc.get("name") if isinstance(doc, dict) else doc
    if name not in (REGULAR, RECTILINEAR):
        raise UnsupportedError(f"unknown chunk grid {brief(name)}", field="chunk_grid")
    config = (doc.get("configuration") if isinstance(doc, dict) else None) or {}
    if not isinstance(config, dict):
        raise MetadataError(
            f"chunk_grid configuration must be an object, got {brief(config)}",
            field="chunk_grid.configuration",
        )
    if name == RECTILINEAR:
        return name, _rectilinear_dimensions(config, shape)
    chunks = parse_extents(config.get("chunk_shape"), "chunk_grid.chunk_shape", positive=True)
    _check_ndim(chunks, shape, "chunk_shape")
    return name, [RegularDimension(c, n) for c, n in zip(chunks, shape)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_extents(value: Any, field: str, *, positive: bool = False) -> tuple[int, ...]:
    """A metadata list of extents or chunk sizes: integers below ``2**63``, at least 1 when
    ``positive`` (chunk sizes), else at least 0 (shapes).

    Raises
    ------
    MetadataError
        Naming ``field``, for anything else.
    """
    low = 1 if positive else 0
    if not isinstance(value, (list, tuple)) or not all(
        _is_int(n) and low <= n < MAX_EXTENT for n in value
    ):
        need = "positive" if positive else "non-negative"
        raise MetadataError(
            f"{field} must be a list of {need} integers below 2**63, got {value!r:.200}",
            field=field,
        )
    return tuple(value)


def _check_ndim(per_dimension: Any, shape: tuple[int, ...], member: str) -> None:
    if len(per_dimension) != len(shape):
        raise MetadataError(
            f"{member} {brief(per_dimension)} has {len(per_dimension)} dimensions, shape has "
            f"{len(shape)}",
            field="chunk_grid",
        )


def _rectilinear_dimensions(config: dict[str, Any], shape: tuple[int, ...]) -> list[DimensionGrid]:
    kind = config.get("kind")
    if kind != "inline":
        raise UnsupportedError(
            f"rectilinear chunk grid kind must be 'inline', got {brief(kind)}",
            field="chunk_grid.kind",
        )
    shapes = config.get("chunk_shapes")
    if not isinstance(shapes, list):
        raise MetadataError(
            f"chunk_shapes must be a list with one entry per dimension, got {brief(shapes)}",
            field="chunk_grid.chunk_shapes",
        )
    _check_ndim(shapes, shape, "chunk_shapes")
    dims: list[DimensionGrid] = []
    for axis, (entry, extent) in enumerate(zip(shapes, shape)):
        if _is_int(entry):
            dims.append(RegularDimension(_edge(entry, axis, "edge length"), extent))
        else:
            dims.append(RectilinearDimension(_runs(entry, axis), extent))
    return dims


def _edge(value: Any, axis: int, what: str) -> int:
    if not _is_int(value) or not 1 <= value < MAX_EXTENT:
        raise MetadataError(
            f"dimension {axis}: a chunk {what} must be an integer from 1 to 2**63-1, "
            f"got {brief(value)}",
            field="chunk_grid.chunk_shapes",
        )
    return int(value)


def _runs(entry: Any, axis: int) -> list[tuple[int, int]]:
    """One dimension's edge lengths (integers and ``[size, count]`` pairs) as runs."""
    if not isinstance(entry, list) or not entry:
        raise MetadataError(
            f"dimension {axis}: chunk edge lengths must be an integer or a non-empty list, "
            f"got {brief(entry)}",
            field="chunk_grid.chunk_shapes",
        )
    if len(entry) > MAX_RECTILINEAR_ENTRIES:
        raise MetadataError(
            f"dimension {axis}: {len(entry)} chunk edge entries, more than the "
            f"{MAX_RECTILINEAR_ENTRIES} xzaro reads (run-length encode repeated edges)",
            field="chunk_grid.chunk_shapes",
        )
    runs: list[tuple[int, int]] = []
    for item in entry:
        if isinstance(item, list):
            if len(item) != 2:
                raise MetadataError(
                    f"dimension {axis}: a run-length encoded entry is [size, count], "
                    f"got {brief(item)}",
                    field="chunk_grid.chunk_shapes",
                )
            runs.append((_edge(item[0], axis, "edge length"), _edge(item[1], axis, "count")))
        else:
            runs.append((_edge(item, axis, "edge length"), 1))
    return runs
