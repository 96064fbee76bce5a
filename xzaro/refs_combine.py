"""Joining single-file Kerchunk references along one dimension, exactly.

The inputs are ordered by their decoded coordinate values (CF times decoded, so files with
different epochs combine), chunk references are shifted along the dimension, the coordinate is
written inline in one encoding, and the result is checked (length, union of values,
monotonic) before anything is returned.
"""

from __future__ import annotations

import base64
import itertools
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.errors import MetadataError, NameMismatchError, UnsupportedError, ZaroError
from xzaro.log import info
from xzaro.stores.memory import MemoryStore
from xzaro.stores.parquet_reference import chunk_grids, locate_chunk
from xzaro.stores.reference import parse_references, reference_value
from xzaro.stores.targets import TargetFetcher, TargetResolver, url_protocols

#: The metadata keys of a Zarr hierarchy, as they appear in references.
META_NAMES = (".zarray", ".zattrs", ".zgroup", "zarr.json")


#: Attributes that change what a variable's stored numbers mean: files whose variables differ
#: in one of these cannot share one set of metadata.
_ENCODING_ATTRS = (
    "_ARRAY_DIMENSIONS",
    "units",
    "calendar",
    "scale_factor",
    "add_offset",
    "_FillValue",
    "missing_value",
    "_Unsigned",
    "dtype",
)


@dataclass(frozen=True)
class Extent:
    """How far a reference set reaches along its concatenation dimension.

    ``first`` and ``last`` are decoded values (``numpy.datetime64`` or cftime dates for CF
    times, numbers otherwise); ``str(extent)`` reads ``time: 20 steps, 2000-01-01 … 2000-01-20``.
    """

    dim: str
    size: int
    first: Any
    last: Any

    def __str__(self) -> str:
        if self.size == 0:
            return f"{self.dim}: 0 values"
        unit = "steps" if _is_time(np.asarray([self.first])) else "values"
        return f"{self.dim}: {self.size} {unit}, {_show(self.first)} … {_show(self.last)}"


def _is_time(values: np.ndarray) -> bool:
    if values.dtype.kind == "M":
        return True
    return (
        values.dtype == object
        and values.size > 0
        and type(values.flat[0]).__module__.startswith("cftime")
    )


def _show(value: Any) -> str:
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="auto"))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


@dataclass
class _Input:
    """One file's references, split into metadata and chunk references per array."""

    name: str
    refs: dict[str, Any]
    zarrays: dict[str, dict[str, Any]]  # array path -> .zarray
    zattrs: dict[str, dict[str, Any]]  # array path -> .zattrs
    chunks: dict[str, dict[tuple[int, ...], Any]]  # array path -> chunk index -> reference
    groups: dict[str, Any]  # group metadata keys -> values
    decoded: Any = None  # the decoded dimension coordinates (xarray.Dataset)
    raw: Any = None  # the same, as stored (xarray.Dataset)

    def coordinate(self, dim: str) -> np.ndarray:
        return np.asarray(self.decoded[dim].values)


def _json(key: str, value: Any, url: str) -> dict[str, Any]:
    raw = reference_value(key, value, url)
    if not isinstance(raw, bytes):
        raise MetadataError("metadata must be stored inline in the references", url=url, key=key)
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise MetadataError(f"invalid JSON: {exc}", url=url, key=key) from exc
    if not isinstance(doc, dict):
        raise MetadataError("metadata must be a JSON object", url=url, key=key)
    return doc


def _split(doc: Mapping[str, Any], name: str) -> _Input:
    refs = parse_references(dict(doc), name)
    if any(key.rpartition("/")[2] == "zarr.json" for key in refs):
        raise UnsupportedError(
            "only Zarr V2 references (as kerchunk writes them) can be combined", url=name
        )
    metadata = {k: v for k, v in refs.items() if k.rpartition("/")[2] in META_NAMES}
    grids = chunk_grids({k: v for k, v in metadata.items() if k.endswith(".zarray")}, name)
    zarrays = {path: _json(f"{path}/.zarray", refs[f"{path}/.zarray"], name) for path in grids}
    zattrs = {
        path: _json(f"{path}/.zattrs", refs[f"{path}/.zattrs"], name)
        if f"{path}/.zattrs" in refs
        else {}
        for path in grids
    }
    groups = {
        k: v
        for k, v in metadata.items()
        if k.rpartition("/")[0] not in grids and k.rpartition("/")[2] in (".zgroup", ".zattrs")
    }
    chunks: dict[str, dict[tuple[int, ...], Any]] = {path: {} for path in grids}
    for key, value in refs.items():
        if key in metadata:
            continue
        found = locate_chunk(grids, key)
        if found is None:
            raise MetadataError("neither metadata nor a chunk of an array", url=name, key=key)
        path, linear = found
        index: list[int] = []
        for n in reversed(grids[path].grid):
            linear, i = divmod(linear, n)
            index.append(i)
        chunks[path][tuple(reversed(index))] = value
    return _Input(name, refs, zarrays, zattrs, chunks, groups)


def _dims(item: _Input, path: str) -> list[str]:
    dims = item.zattrs[path].get("_ARRAY_DIMENSIONS")
    if not isinstance(dims, list) or len(dims) != len(item.zarrays[path]["shape"]):
        raise MetadataError(
            "the array has no dimension names (_ARRAY_DIMENSIONS) for its shape",
            url=item.name,
            key=f"{path}/.zattrs",
            field="_ARRAY_DIMENSIONS",
        )
    return dims


def _load_coordinates(
    items: Sequence[_Input], paths: Sequence[str], resolver: TargetResolver
) -> None:
    """Read the arrays ``paths`` of every input into ``item.decoded`` / ``item.raw``.

    The chunks are fetched in one batch, then each input is opened with the ``zaro`` engine
    from memory, so that the values decode exactly as they will from the combined references.
    """
    import xarray as xr

    stores: list[dict[str, bytes]] = []
    requests: list[tuple[str, str, int, int | None]] = []
    whole: list[int] = []
    where: list[tuple[int, str]] = []
    for n, item in enumerate(items):
        data: dict[str, bytes] = {".zgroup": b'{"zarr_format": 2}'}
        for path in paths:
            for key in (f"{path}/.zarray", f"{path}/.zattrs"):
                if key in item.refs:
                    data[key] = json.dumps(_json(key, item.refs[key], item.name)).encode()
            prefix = f"{path}/"
            for key, value in item.refs.items():
                if not key.startswith(prefix) or key in data:
                    continue
                ref = reference_value(key, value, item.name)
                if isinstance(ref, bytes):
                    data[key] = ref
                else:
                    if ref[2] is None:
                        whole.append(len(requests))
                    requests.append((key, *ref))
                    where.append((n, key))
        stores.append(data)
    fetcher = TargetFetcher(resolver, resolver.reference_url)
    for (n, key), value in zip(where, fetcher.fetch(requests, may_be_short=whole)):
        stores[n][key] = bytes(value)
    for item, data in zip(items, stores):
        store = MemoryStore(data)
        try:
            item.decoded = xr.open_dataset(store, engine="zaro", consolidated=False).load()
            item.raw = xr.open_dataset(
                store, engine="zaro", consolidated=False, decode_cf=False
            ).load()
        except (ValueError, TypeError, OverflowError) as exc:
            if isinstance(exc, ZaroError):
                raise
            raise MetadataError(
                f"cannot decode the coordinates {list(paths)}: {exc}", url=item.name
            ) from exc


def _direction(values: np.ndarray, name: str, dim: str) -> int:
    """+1 if strictly increasing, -1 if strictly decreasing, 0 for a single value."""
    if values.size == 0:
        raise MetadataError(f"the file holds no values along {dim!r}", url=name, key=dim)
    if values.size == 1:
        return 0
    try:
        up = np.asarray(values[1:] > values[:-1], dtype=bool)
        down = np.asarray(values[1:] < values[:-1], dtype=bool)
    except TypeError as exc:
        raise MetadataError(f"the values of {dim!r} cannot be ordered: {exc}", url=name) from exc
    if up.all():
        return 1
    if down.all():
        return -1
    bad = int(np.flatnonzero(~up if up[0] else ~down)[0])
    raise MetadataError(
        f"{dim!r} is not strictly monotonic in this file: {_show(values[bad])} is followed by "
        f"{_show(values[bad + 1])} (duplicated, missing or unsorted values)",
        url=name,
        key=dim,
    )


def _order(items: list[_Input], dim: str) -> tuple[list[_Input], int]:
    """The inputs ordered along ``dim`` and the direction (+1 or -1) of the combined values."""
    directions = {item.name: _direction(item.coordinate(dim), item.name, dim) for item in items}
    up = [n for n, d in directions.items() if d > 0]
    down = [n for n, d in directions.items() if d < 0]
    if up and down:
        raise MetadataError(
            f"{dim!r} increases in {up[0]} but decreases in {down[0]}; the files cannot be "
            "combined into one monotonic coordinate",
            key=dim,
        )
    direction = -1 if down else 1
    try:
        ordered = sorted(items, key=lambda item: item.coordinate(dim)[0], reverse=direction < 0)
    except TypeError as exc:
        raise MetadataError(
            f"the values of {dim!r} in {items[0].name} and the other files cannot be compared "
            f"(different calendars or types?): {exc}",
            key=dim,
        ) from exc
    for a, b in itertools.pairwise(ordered):
        last, first = a.coordinate(dim)[-1], b.coordinate(dim)[0]
        if (last < first) if direction > 0 else (last > first):
            continue
        va, vb = a.coordinate(dim), b.coordinate(dim)
        what = "both hold" if last == first else "overlap along"
        raise MetadataError(
            f"{a.name} and {b.name} {what} {dim!r}: {a.name} covers {_show(va[0])} … "
            f"{_show(va[-1])}, {b.name} covers {_show(vb[0])} … {_show(vb[-1])}; combining them "
            "would duplicate or drop steps",
            key=dim,
        )
    return ordered, direction


def _encoding(item: _Input, path: str) -> dict[str, Any]:
    attrs = {k: item.zattrs[path][k] for k in _ENCODING_ATTRS if k in item.zattrs[path]}
    zarray = item.zarrays[path]
    return {**attrs, "<dtype>": zarray.get("dtype"), "<fill_value>": zarray.get("fill_value")}


def _differ(what: str, path: str, a: _Input, b: _Input, va: Any, vb: Any) -> MetadataError:
    return MetadataError(
        f"{what} of {path!r} differs between {a.name} ({va!r}) and {b.name} ({vb!r}); the "
        "files cannot share one set of metadata",
        url=b.name,
        key=path,
    )


def _check_same_arrays(items: Sequence[_Input]) -> None:
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
    path: str, items: Sequence[_Input], dim: str, axis: int, sizes: Sequence[int], out: dict
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
        ea, eb = _encoding(first, path), _encoding(item, path)
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


def _copy_array(path: str, items: Sequence[_Input], out: dict) -> None:
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


def _coordinate_array(
    dim: str, attrs: Mapping[str, Any], data: np.ndarray, fill_value: Any, out: dict
) -> None:
    """Write the combined coordinate as one uncompressed inline chunk."""
    data = np.ascontiguousarray(data)
    meta = {
        "zarr_format": 2,
        "shape": [int(data.size)],
        "chunks": [max(int(data.size), 1)],
        "dtype": data.dtype.str,
        "compressor": None,
        "filters": None,
        "fill_value": fill_value,
        "order": "C",
        "dimension_separator": ".",
    }
    out[f"{dim}/.zarray"] = json.dumps(meta)
    out[f"{dim}/.zattrs"] = json.dumps(dict(attrs))
    out[f"{dim}/0"] = "base64:" + base64.b64encode(data.tobytes()).decode()


def _combined_coordinates(
    items: Sequence[_Input], dim: str
) -> list[tuple[dict[str, Any], np.ndarray, Any]]:
    """Candidate ``(attributes, stored values, fill value)`` of the combined coordinate.

    Files that store the coordinate alike are joined as stored. CF times stored in different
    units are re-encoded, without a fill value (no time is missing): first in the first file's
    units, calendar and dtype, then in the integer units xarray infers from the values. The
    caller keeps the first candidate that decodes back to exactly the inputs' values.
    """
    import xarray as xr

    first = items[0]
    encodings = [_encoding(item, dim) for item in items]
    if all(e == encodings[0] for e in encodings[1:]):
        raw = np.concatenate([np.asarray(item.raw[dim].values) for item in items])
        return [(dict(first.zattrs[dim]), raw, first.zarrays[dim].get("fill_value"))]
    decoded = np.concatenate([item.coordinate(dim) for item in items])
    differing = next(
        (k, e.get(k), item.name)
        for item, e in zip(items, encodings)
        for k in sorted(set(e) | set(encodings[0]))
        if e.get(k) != encodings[0].get(k)
    )
    if not _is_time(decoded):
        raise MetadataError(
            f"the files store {dim!r} differently ({differing[0]}={differing[1]!r} in "
            f"{differing[2]}, {encodings[0].get(differing[0])!r} in {first.name}); only CF "
            "times can be re-encoded",
            url=differing[2],
            key=dim,
        )
    coder = xr.coders.CFDatetimeCoder()
    stored = first.decoded[dim].encoding
    calendar = first.zattrs[dim].get("calendar", "standard")
    attrs = {
        k: v
        for k, v in first.zattrs[dim].items()
        if k
        not in ("units", "calendar", "scale_factor", "add_offset", "_FillValue", "missing_value")
    }
    candidates = []
    for units, dtype in ((first.zattrs[dim].get("units"), stored.get("dtype")), (None, "int64")):
        variable = xr.Variable(
            (dim,), decoded, encoding={"units": units, "calendar": calendar, "dtype": dtype}
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            encoded = coder.encode(variable, dim)
        for w in caught:
            info("re-encoding %r: %s", dim, w.message)
        candidates.append(({**attrs, **encoded.attrs}, np.asarray(encoded.values), None))
    return candidates


def _check_concat_coordinate(item: _Input, dim: str) -> None:
    """``item`` holds a one-dimensional coordinate variable ``dim``."""
    if dim not in item.zarrays:
        raise NameMismatchError(
            f"no coordinate variable {dim!r} to combine the files on", url=item.name, key=dim
        )
    if _dims(item, dim) != [dim]:
        raise MetadataError(
            f"{dim!r} must be a one-dimensional coordinate along {dim!r}, its dimensions are "
            f"{_dims(item, dim)}",
            url=item.name,
            key=dim,
        )


def _check_other_coordinates(ordered: Sequence[_Input], names: Sequence[str], dim: str) -> None:
    """Every file holds the same values of the dimension coordinates ``names``."""
    first = ordered[0]
    for name in names:
        for item in ordered[1:]:
            if not item.decoded[name].variable.equals(first.decoded[name].variable):
                raise MetadataError(
                    f"{first.name} and {item.name} hold different values of the coordinate "
                    f"{name!r}; the files can only be combined along {dim!r}",
                    url=item.name,
                    key=name,
                )


def _write_checked_coordinate(
    ordered: Sequence[_Input],
    dim: str,
    direction: int,
    sizes: Sequence[int],
    resolver: TargetResolver,
    out: dict,
) -> Extent:
    """Write the combined ``dim`` coordinate into ``out`` in the first encoding that decodes
    back to exactly the files' values, in order and monotonic; its extent."""
    expected = np.concatenate([item.coordinate(dim) for item in ordered])
    problem = ""
    for attrs, data, fill_value in _combined_coordinates(ordered, dim):
        _coordinate_array(dim, attrs, data, fill_value, out)
        check = _Input("the combined references", out, {}, {}, {}, {})
        _load_coordinates([check], [dim], resolver)
        got = check.coordinate(dim)
        if got.size != sum(sizes):
            problem = f"{got.size} values along {dim!r} instead of {sum(sizes)}"
        elif not np.array_equal(got, expected):
            problem = f"{dim!r} decodes to other values than the files hold"
        elif got.size > 1 and _direction(got, check.name, dim) != direction:
            problem = f"{dim!r} is not monotonic"
        else:
            problem = ""
            break
    if problem:
        raise MetadataError(
            f"combining {', '.join(item.name for item in ordered)} gives {problem}; "
            "no references written",
            key=dim,
        )
    return Extent(dim, int(got.size), got[0], got[-1])


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
    items = [_split(doc, label) for doc, label in zip(docs, labels)]
    dim = concat_dim
    for item in items:
        _check_concat_coordinate(item, dim)
    _check_same_arrays(items)
    index_coords = [p for p in items[0].zarrays if "/" not in p and _dims(items[0], p) == [p]]
    protocols = {p for item in items for p in _target_protocols(item.refs)}
    resolver = TargetResolver(
        "memory://",
        remote_options=dict(storage_options or {}),
        allowed_protocols=sorted(protocols) or None,
    )
    _load_coordinates(items, index_coords, resolver)
    ordered, direction = _order(items, dim)
    first = ordered[0]
    _check_other_coordinates(ordered, [name for name in index_coords if name != dim], dim)
    sizes = [int(item.coordinate(dim).size) for item in ordered]
    out: dict[str, Any] = dict(first.groups)
    for path in first.zarrays:
        if path == dim:
            continue
        dims = _dims(first, path)
        if dims.count(dim) > 1:
            raise MetadataError(
                f"{path!r} has the dimension {dim!r} twice", url=first.name, key=path
            )
        if dim in dims:
            _concat_array(path, ordered, dim, dims.index(dim), sizes, out)
        else:
            _copy_array(path, ordered, out)
    extent = _write_checked_coordinate(ordered, dim, direction, sizes, resolver, out)
    info("combined %d files along %r: %s", len(ordered), dim, extent)
    return {"version": 1, "refs": out}


def _target_protocols(refs: Mapping[str, Any]) -> set[str]:
    """The protocols of the files the references point to."""
    found: set[str] = set()
    for value in refs.values():
        if isinstance(value, list) and value and isinstance(value[0], str):
            found.update(url_protocols(value[0]))
    return found


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
    item = _split(refs, "<references>")
    if dim not in item.zarrays:
        raise NameMismatchError(f"no coordinate variable {dim!r}", url=item.name, key=dim)
    resolver = TargetResolver("memory://", remote_options=dict(storage_options or {}))
    _load_coordinates([item], [dim], resolver)
    values = item.coordinate(dim)
    if values.size == 0:
        return Extent(dim, 0, None, None)
    return Extent(dim, int(values.size), values[0], values[-1])
