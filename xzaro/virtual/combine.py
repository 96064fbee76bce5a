"""Joining single-file Kerchunk references along one dimension, exactly.

The inputs are ordered by their decoded coordinate values (:mod:`xzaro.virtual.coordinates`),
chunk references are shifted along the dimension, the coordinate is written inline in one
encoding, and the result is checked (length, union of values, monotonic) before anything is
returned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.errors import MetadataError, NameMismatchError
from xzaro.log import info
from xzaro.stores.references.targets import TargetResolver
from xzaro.virtual.coordinates import (
    Extent,
    check_concat_coordinate,
    check_other_coordinates,
    order_inputs,
    write_checked_coordinate,
)
from xzaro.virtual.inputs import (
    ReferenceInput,
    array_dims,
    encoding,
    load_coordinates,
    split_references,
    target_protocols,
)


def _differ(
    what: str, path: str, a: ReferenceInput, b: ReferenceInput, va: Any, vb: Any
) -> MetadataError:
    return MetadataError(
        f"{what} of {path!r} differs between {a.name} ({va!r}) and {b.name} ({vb!r}); the "
        "files cannot share one set of metadata",
        url=b.name,
        key=path,
    )


def _check_same_arrays(items: Sequence[ReferenceInput]) -> None:
    first = items[0]
    for item in items[1:]:
        if set(item.zarrays) != set(first.zarrays):
            extra = sorted(set(item.zarrays) ^ set(first.zarrays))
            raise MetadataError(
                f"{first.name} and {item.name} hold different variables ({', '.join(extra)} "
                "only in one of them)",
                url=item.name,
            )


def _concat_array(
    path: str, items: Sequence[ReferenceInput], dim: str, axis: int, sizes: Sequence[int], out: dict
) -> None:
    """Metadata and shifted chunk references of an array concatenated along ``axis``."""
    first = items[0]
    base = {k: v for k, v in first.zarrays[path].items() if k != "shape"}
    for item in items[1:]:
        other = {k: v for k, v in item.zarrays[path].items() if k != "shape"}
        for field in sorted(set(base) | set(other)):
            if base.get(field) != other.get(field):
                raise _differ(f"the {field}", path, first, item, base.get(field), other.get(field))
        shape_a, shape_b = first.zarrays[path]["shape"], item.zarrays[path]["shape"]
        if [s for i, s in enumerate(shape_a) if i != axis] != [
            s for i, s in enumerate(shape_b) if i != axis
        ]:
            raise _differ("the shape", path, first, item, shape_a, shape_b)
        ea, eb = encoding(first, path), encoding(item, path)
        if ea != eb:
            key = next(k for k in sorted(set(ea) | set(eb)) if ea.get(k) != eb.get(k))
            raise _differ(f"the encoding ({key})", path, first, item, ea.get(key), eb.get(key))
    chunk = int(base["chunks"][axis])
    separator = base.get("dimension_separator") or "."
    keys = ChunkKeyEncoding("v2", separator)
    start = 0
    for n, (item, size) in enumerate(zip(items, sizes)):
        if item.zarrays[path]["shape"][axis] != size:
            raise MetadataError(
                f"{path!r} has {item.zarrays[path]['shape'][axis]} values along {dim!r} but the "
                f"coordinate has {size}",
                url=item.name,
                key=path,
            )
        if start % chunk:
            previous = items[n - 1]
            raise MetadataError(
                f"cannot combine {path!r} by reference: {previous.name} holds "
                f"{sizes[n - 1]} steps along {dim!r}, not a multiple of the chunk size {chunk}, "
                f"so the chunks of {item.name} would not start on a chunk boundary",
                url=item.name,
                key=path,
            )
        shift = start // chunk
        for index, ref in item.chunks[path].items():
            moved = list(index)
            moved[axis] += shift
            out[f"{path}/{keys.chunk_key(tuple(moved))}"] = ref
        start += size
    zarray = dict(first.zarrays[path])
    zarray["shape"] = [start if i == axis else s for i, s in enumerate(zarray["shape"])]
    out[f"{path}/.zarray"] = json.dumps(zarray)
    out[f"{path}/.zattrs"] = json.dumps(first.zattrs[path])


def _copy_array(path: str, items: Sequence[ReferenceInput], out: dict) -> None:
    """An array without the concatenation dimension: the first file's, if all files agree."""
    first = items[0]
    for item in items[1:]:
        if item.zarrays[path] != first.zarrays[path]:
            field = next(
                k
                for k in sorted(set(first.zarrays[path]) | set(item.zarrays[path]))
                if first.zarrays[path].get(k) != item.zarrays[path].get(k)
            )
            raise _differ(
                f"the {field}",
                path,
                first,
                item,
                first.zarrays[path].get(field),
                item.zarrays[path].get(field),
            )
    out[f"{path}/.zarray"] = json.dumps(first.zarrays[path])
    out[f"{path}/.zattrs"] = json.dumps(first.zattrs[path])
    keys = ChunkKeyEncoding("v2", first.zarrays[path].get("dimension_separator") or ".")
    for index, ref in first.chunks[path].items():
        out[f"{path}/{keys.chunk_key(index)}"] = ref


def combine_references(
    docs: Sequence[Mapping[str, Any]],
    concat_dim: str,
    *,
    names: Sequence[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Combine single-file reference documents into one along ``concat_dim``.

    The files are ordered by their decoded ``concat_dim`` coordinate (increasing, or
    decreasing when every file decreases), as ``xr.combine_by_coords`` orders them. CF times
    stored with different units (each file its own epoch, as xarray writes by default) are
    compared decoded and the combined coordinate is re-encoded in one unit. Arrays along
    ``concat_dim`` have their chunk references shifted; the others are taken from the first
    file once every file agrees on their metadata (and, for dimension coordinates, their
    values). The combined coordinate is then decoded again and must equal the inputs' values
    exactly.

    Parameters
    ----------
    docs
        Kerchunk reference documents (Zarr V2), one per file, in any order.
    concat_dim
        The dimension to concatenate along; every document needs a coordinate variable of
        that name at its root.
    names
        What to call each document in messages (default: ``references #1``, ...).
    storage_options
        fsspec options for reading the referenced files (the coordinates are read).

    Returns
    -------
    dict
        A version 1 reference document.

    Raises
    ------
    NameMismatchError
        A document has no coordinate variable ``concat_dim``.
    MetadataError
        The files overlap or repeat values along ``concat_dim``, a coordinate is not
        monotonic, the files hold different variables, metadata, encodings or other
        coordinates, or a file's chunks would not start on a chunk boundary. The message
        names the files.
    """
    if not docs:
        raise ValueError("no references to combine")
    labels = (
        list(names) if names is not None else [f"references #{i + 1}" for i in range(len(docs))]
    )
    if len(labels) != len(docs):
        raise ValueError(f"{len(labels)} names for {len(docs)} reference documents")
    items = [split_references(doc, label) for doc, label in zip(docs, labels)]
    dim = concat_dim
    for item in items:
        check_concat_coordinate(item, dim)
    _check_same_arrays(items)
    index_coords = [p for p in items[0].zarrays if "/" not in p and array_dims(items[0], p) == [p]]
    protocols = {p for item in items for p in target_protocols(item.refs)}
    resolver = TargetResolver(
        "memory://",
        remote_options=dict(storage_options or {}),
        allowed_protocols=sorted(protocols) or None,
    )
    load_coordinates(items, index_coords, resolver)
    ordered, direction = order_inputs(items, dim)
    check_other_coordinates(ordered, [name for name in index_coords if name != dim], dim)
    sizes = [int(item.coordinate(dim).size) for item in ordered]
    out = _combined_arrays(ordered, dim, sizes)
    extent = write_checked_coordinate(ordered, dim, direction, sizes, resolver, out)
    info("combined %d files along %r: %s", len(ordered), dim, extent)
    return {"version": 1, "refs": out}


def _combined_arrays(
    ordered: Sequence[ReferenceInput], dim: str, sizes: Sequence[int]
) -> dict[str, Any]:
    """The group metadata and every array but the ``dim`` coordinate, combined: arrays along
    ``dim`` concatenated, the others copied from the first file."""
    first = ordered[0]
    out: dict[str, Any] = dict(first.groups)
    for path in first.zarrays:
        if path == dim:
            continue
        dims = array_dims(first, path)
        if dims.count(dim) > 1:
            raise MetadataError(
                f"{path!r} has the dimension {dim!r} twice", url=first.name, key=path
            )
        if dim in dims:
            _concat_array(path, ordered, dim, dims.index(dim), sizes, out)
        else:
            _copy_array(path, ordered, out)
    return out


def concat_extent(
    refs: Mapping[str, Any], dim: str, *, storage_options: Mapping[str, Any] | None = None
) -> Extent:
    """The extent of a reference document along ``dim``: its size and first and last values.

    Parameters
    ----------
    refs
        A reference document (as :func:`scan` or :func:`combine_references` return).
    dim
        A dimension with a coordinate variable at the root.
    storage_options
        fsspec options for reading the referenced files (if the coordinate is not inline).

    Returns
    -------
    Extent
        ``str(extent)`` reads ``time: 20 steps, 2000-01-01 … 2000-01-20``.
    """
    item = split_references(refs, "<references>")
    if dim not in item.zarrays:
        raise NameMismatchError(f"no coordinate variable {dim!r}", url=item.name, key=dim)
    resolver = TargetResolver("memory://", remote_options=dict(storage_options or {}))
    load_coordinates([item], [dim], resolver)
    values = item.coordinate(dim)
    if values.size == 0:
        return Extent(dim, 0, None, None)
    return Extent(dim, int(values.size), values[0], values[-1])
