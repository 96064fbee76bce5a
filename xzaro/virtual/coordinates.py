"""The concatenation coordinate: its order, its _direction, its one encoding, and its check.

The inputs are ordered by their decoded coordinate values (CF times decoded, so files with
different epochs combine); the combined coordinate is written inline in the first encoding
that decodes back to exactly the inputs' values, in order and monotonic.
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

from xzaro.errors import MetadataError, NameMismatchError
from xzaro.log import info
from xzaro.stores.references.targets import TargetResolver
from xzaro.virtual.inputs import (
    ReferenceInput,
    array_dims,
    encoding,
    load_coordinates,
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


def order_inputs(items: list[ReferenceInput], dim: str) -> tuple[list[ReferenceInput], int]:
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
    items: Sequence[ReferenceInput], dim: str
) -> list[tuple[dict[str, Any], np.ndarray, Any]]:
    """Candidate ``(attributes, stored values, fill value)`` of the combined coordinate.

    Files that store the coordinate alike are joined as stored. CF times stored in different
    units are re-encoded, without a fill value (no time is missing): first in the first file's
    units, calendar and dtype, then in the integer units xarray infers from the values. The
    caller keeps the first candidate that decodes back to exactly the inputs' values.
    """
    import xarray as xr

    first = items[0]
    encodings = [encoding(item, dim) for item in items]
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


def check_concat_coordinate(item: ReferenceInput, dim: str) -> None:
    """``item`` holds a one-dimensional coordinate variable ``dim``."""
    if dim not in item.zarrays:
        raise NameMismatchError(
            f"no coordinate variable {dim!r} to combine the files on", url=item.name, key=dim
        )
    if array_dims(item, dim) != [dim]:
        raise MetadataError(
            f"{dim!r} must be a one-dimensional coordinate along {dim!r}, its dimensions are "
            f"{array_dims(item, dim)}",
            url=item.name,
            key=dim,
        )


def check_other_coordinates(
    ordered: Sequence[ReferenceInput], names: Sequence[str], dim: str
) -> None:
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


def write_checked_coordinate(
    ordered: Sequence[ReferenceInput],
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
        check = ReferenceInput("the combined references", out, {}, {}, {}, {})
        load_coordinates([check], [dim], resolver)
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
