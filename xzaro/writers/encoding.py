"""Which encoding each variable is written with.

Encoding reaches a write from three places, in this order of precedence: the ``encoding=``
argument (checked strictly: an unknown key or a bad value is an error), the call's own
arguments (``chunks=``, ``shards=``, ``compressor=``, ``write_empty_chunks=``), and what the
variable carries from being read (``var.encoding``: kept where it still applies, dropped where it
does not, as xarray's zarr writer does).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from xzaro.errors import MetadataError, MetadataTypeError, NameMismatchError

#: Keys xarray's CF coders consume while encoding a variable.
CF_KEYS = frozenset(
    {"dtype", "scale_factor", "add_offset", "_FillValue", "missing_value", "units", "calendar"}
)
#: Keys that describe how the encoded variable is stored.
STORAGE_KEYS = frozenset(
    {
        "chunks",
        "shards",
        "compressor",
        "compressors",
        "filters",
        "serializer",
        "fill_value",
        "write_empty_chunks",
        "chunk_key_encoding",
    }
)
#: Keys that carry no storage decision and are dropped (dask's chunk hint, the source file,
#: zarr-python's metadata cache switch).
IGNORED_KEYS = frozenset({"preferred_chunks", "source", "original_shape", "cache_metadata"})
VALID_KEYS = CF_KEYS | STORAGE_KEYS | IGNORED_KEYS


def check_user_encoding(
    encoding: Any, variables: Sequence[str], *, url: str | None
) -> dict[str, dict[str, Any]]:
    """The ``encoding=`` argument, checked: a mapping from variable names of the dataset to
    mappings of known keys."""
    if encoding is None:
        return {}
    if not isinstance(encoding, Mapping):
        raise MetadataTypeError(
            f"encoding must be a mapping of variable names to mappings, got {type(encoding)}",
            url=url,
            field="encoding",
        )
    unknown_vars = [name for name in encoding if name not in variables]
    if unknown_vars:
        raise NameMismatchError(
            f"encoding names variables that are not in the dataset: {unknown_vars}",
            url=url,
            field="encoding",
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, enc in encoding.items():
        if not isinstance(enc, Mapping):
            raise MetadataError(
                f"encoding of {name!r} must be castable to a mapping, got {type(enc).__name__}",
                url=url,
                key=str(name),
                field="encoding",
            )
        unknown = sorted(str(k) for k in enc if k not in VALID_KEYS)
        if unknown:
            raise MetadataError(
                f"unexpected encoding parameters for {name!r}: {unknown}; "
                f"the known ones are {sorted(VALID_KEYS - IGNORED_KEYS)}",
                url=url,
                key=str(name),
                field="encoding",
            )
        checked[name] = dict(enc)
    return checked


def storage_encoding(
    encoding: Mapping[str, Any], *, strict: bool, url: str | None = None, key: str | None = None
) -> dict[str, Any]:
    """What is left of a CF-encoded variable's encoding that decides how it is stored.

    With ``strict`` (the encoding came from the caller) an unknown key is an error; encoding
    carried from a read keeps only the storage keys.
    """
    if strict:
        unknown = sorted(
            str(k)
            for k, v in encoding.items()
            if k not in STORAGE_KEYS | IGNORED_KEYS and not (k in CF_KEYS and v is None)
        )
        if unknown:
            raise MetadataError(
                f"unexpected encoding parameters left after CF encoding: {unknown}",
                url=url,
                key=key,
                field="encoding",
            )
    return {k: v for k, v in encoding.items() if k in STORAGE_KEYS}


def _size(value: Any, extent: int, what: str) -> int:
    if value is None or (isinstance(value, numbers.Integral) and int(value) == -1):
        return max(1, extent)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise MetadataTypeError(
            f"{what} sizes must be positive integers (-1 or None for the whole dimension), "
            f"got {value!r}",
            field=what,
        )
    if int(value) <= 0:
        raise MetadataError(
            f"{what} sizes must be positive integers (-1 or None for the whole dimension), "
            f"got {value!r}",
            field=what,
        )
    return int(value)


def parse_sizes(
    value: Any, shape: tuple[int, ...], dims: tuple[str, ...], what: str, *, strict: bool
) -> tuple[int, ...] | None:
    """A chunk or shard shape from an encoding entry: an integer for every dimension, one per
    dimension, or a mapping by dimension name (dimensions it leaves out take their extent).

    ``None`` when there is none. With ``strict`` a shape that does not fit the variable is an
    error; otherwise (encoding carried from a read, now stale) it is dropped, as xarray does.
    """
    if value is None or (isinstance(value, str) and value == "auto"):
        return None
    if isinstance(value, Mapping):
        extra = [d for d in value if d not in dims]
        if extra:
            if strict:
                raise MetadataError(
                    f"{what} names dimensions {extra} that the variable does not have {dims}",
                    field=what,
                )
            return None
        return tuple(_size(value.get(d, n), n, what) for d, n in zip(dims, shape))
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return tuple(_size(value, n, what) for n in shape)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        if strict:
            raise MetadataTypeError(
                f"{what} must be an integer, one integer per dimension or a mapping by "
                f"dimension name, got {value!r}",
                field=what,
            )
        return None
    if len(value) != len(shape):
        if strict:
            raise MetadataError(
                f"{what} {tuple(value)} has {len(value)} entries for a variable with "
                f"{len(shape)} dimensions {dims}",
                field=what,
            )
        return None
    if any(isinstance(v, (Sequence, Mapping)) for v in value):
        raise MetadataError(
            f"{what} {tuple(value)}: one size per dimension (rectilinear grids are not written)",
            field=what,
        )
    return tuple(_size(v, n, what) for v, n in zip(value, shape))


def call_sizes(
    value: Any, dims: tuple[str, ...], shape: tuple[int, ...], what: str
) -> dict[str, int]:
    """The ``chunks=``/``shards=`` argument of a call as sizes by dimension name, for the
    dimensions it names. A tuple sizes only the variables with that many dimensions; a size
    of ``-1`` (or ``None``, or ``0``, as before) takes the whole dimension."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        sizes = {str(k): v for k, v in value.items() if k in dims}
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        sizes = dict.fromkeys(dims, value)
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != len(dims):
            return {}
        sizes = dict(zip(dims, value))
    else:
        raise MetadataError(
            f"{what}= must be a mapping by dimension name, a tuple or an integer, got {value!r}",
            field=what,
        )
    extent = dict(zip(dims, shape))
    return {
        d: _size(None if isinstance(v, numbers.Integral) and v == 0 else v, extent[d], what)
        for d, v in sizes.items()
    }


def check_call_sizes(value: Any, dataset_dims: Mapping[str, int], what: str) -> None:
    """Refuse a ``chunks=``/``shards=`` mapping that names a dimension no variable has."""
    if isinstance(value, Mapping):
        extra = [d for d in value if d not in dataset_dims]
        if extra:
            raise MetadataError(
                f"{what}= names dimensions {extra} that the dataset does not have "
                f"{list(dataset_dims)}",
                field=what,
            )
