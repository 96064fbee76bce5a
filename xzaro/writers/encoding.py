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

import numpy as np

from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.errors import MetadataError, MetadataTypeError, NameMismatchError, brief
from xzaro.writers.codec_spec import CODEC_KEYS, codec_encoding
from xzaro.writers.layout import DEFAULT_COMPRESSOR, DimSizes, auto_chunks, regular_sizes

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


def _edges(value: Sequence[Any], extent: int, what: str, strict: bool) -> DimSizes | None:
    """The size of every chunk along a dimension of ``extent`` (a rectilinear dimension), or
    one size where they are all one but the last, which is no larger; ``None`` for sizes
    carried from a read (not ``strict``) that no longer sum to ``extent``.

    Raises
    ------
    MetadataError
        Naming ``what``, for sizes that are not positive integers or (``strict``) do not sum
        to ``extent``.
    """
    sizes = tuple(value)
    if not sizes or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) <= 0 for v in sizes
    ):
        raise MetadataError(
            f"{what} sizes along a dimension must be positive integers, got {brief(sizes)}",
            field=what,
        )
    edges = tuple(int(v) for v in sizes)
    if sum(edges) != extent:
        if not strict:
            return None
        raise MetadataError(
            f"{what} sizes {brief(edges)} sum to {sum(edges)}, not the dimension's length {extent}",
            field=what,
        )
    if len(set(edges[:-1])) <= 1 and edges[-1] <= edges[0]:
        return edges[0]
    return edges


def _dim_sizes(
    value: Any, extent: int, what: str, *, strict: bool, rectilinear: bool
) -> DimSizes | None:
    """One dimension's entry: a size (see :func:`_size`) or, with ``rectilinear``, the size of
    every chunk (see :func:`_edges`)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        return _size(value, extent, what)
    if not rectilinear:
        raise MetadataError(
            f"{what} {brief(value)}: one size per dimension (rectilinear grids are not written "
            "here)",
            field=what,
        )
    return _edges(value, extent, what, strict)


def _all_or_none(sizes: Sequence[DimSizes | None]) -> tuple[DimSizes, ...] | None:
    found = tuple(s for s in sizes if s is not None)
    return found if len(found) == len(sizes) else None


def parse_sizes(
    value: Any, shape: tuple[int, ...], dims: tuple[str, ...], what: str, *, strict: bool
) -> tuple[int, ...] | None:
    """A chunk or shard shape from an encoding entry: an integer for every dimension, one per
    dimension, or a mapping by dimension name (dimensions it leaves out take their extent).

    ``None`` when there is none. With ``strict`` a shape that does not fit the variable is an
    error; otherwise (encoding carried from a read, now stale) it is dropped, as xarray does.
    """
    sizes = _parse_sizes(value, shape, dims, what, strict=strict, rectilinear=False)
    return None if sizes is None else regular_sizes(sizes)


def parse_grid_sizes(
    value: Any, shape: tuple[int, ...], dims: tuple[str, ...], what: str, *, strict: bool
) -> tuple[DimSizes, ...] | None:
    """As :func:`parse_sizes`, where a dimension's entry may also list the size of every
    chunk along it (a rectilinear grid)."""
    return _parse_sizes(value, shape, dims, what, strict=strict, rectilinear=True)


def _parse_sizes(
    value: Any,
    shape: tuple[int, ...],
    dims: tuple[str, ...],
    what: str,
    *,
    strict: bool,
    rectilinear: bool,
) -> tuple[DimSizes, ...] | None:
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
        return _all_or_none(
            [
                _dim_sizes(value.get(d, n), n, what, strict=strict, rectilinear=rectilinear)
                for d, n in zip(dims, shape)
            ]
        )
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
    return _all_or_none(
        [
            _dim_sizes(v, n, what, strict=strict, rectilinear=rectilinear)
            for v, n in zip(value, shape)
        ]
    )


def call_sizes(
    value: Any, dims: tuple[str, ...], shape: tuple[int, ...], what: str
) -> dict[str, int]:
    """The ``chunks=``/``shards=`` argument of a call as sizes by dimension name, for the
    dimensions it names. A tuple sizes only the variables with that many dimensions; a size
    of ``-1`` (or ``None``, or ``0``, as before) takes the whole dimension."""
    sizes = _call_sizes(value, dims, shape, what, rectilinear=False)
    return dict(zip(sizes, regular_sizes(tuple(sizes.values()))))


def call_grid_sizes(
    value: Any, dims: tuple[str, ...], shape: tuple[int, ...], what: str
) -> dict[str, DimSizes]:
    """As :func:`call_sizes`, where a dimension may also be given the size of every chunk
    along it (a rectilinear grid)."""
    return _call_sizes(value, dims, shape, what, rectilinear=True)


def _call_sizes(
    value: Any, dims: tuple[str, ...], shape: tuple[int, ...], what: str, *, rectilinear: bool
) -> dict[str, DimSizes]:
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
    found: dict[str, DimSizes] = {}
    for d, v in sizes.items():
        size = None if isinstance(v, numbers.Integral) and v == 0 else v
        entry = _dim_sizes(size, extent[d], what, strict=True, rectilinear=rectilinear)
        assert entry is not None  # strict: sizes that do not fit are errors
        found[d] = entry
    return found


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


class _Unset:
    """The default of an argument the caller did not give."""

    def __repr__(self) -> str:
        return "UNSET"


#: ``compressor=`` not given: the variable's own encoding, else the default, decides.
UNSET: Any = _Unset()


def codec_kwargs(
    enc: Mapping[str, Any],
    *,
    strict: bool,
    compressor: Any,
    zarr_format: int,
    dtype: np.dtype,
    name: str,
) -> dict[str, Any]:
    """The codecs of a new array: from the caller's encoding, else the ``compressor=``
    argument, else the encoding the variable carries, else the default."""
    given = {k: enc[k] for k in CODEC_KEYS if k in enc}
    kwargs: dict[str, Any] = {}
    if given and (strict or compressor is UNSET):
        kwargs = codec_encoding(
            given, zarr_format=zarr_format, dtype=dtype, name=name, strict=strict
        )
    if "compressor" not in kwargs and compressor is UNSET:
        kwargs["compressor"] = DEFAULT_COMPRESSOR
    elif "compressor" not in kwargs:
        # the argument takes every spelling encoding["compressor"] takes, checked the same way
        call = codec_encoding(
            {"compressor": compressor}, zarr_format=zarr_format, dtype=dtype, name=name, strict=True
        )
        kwargs = {**call, **kwargs}
    return kwargs


def chunk_shape_for(
    var: Any,
    dims: tuple[str, ...],
    enc: Mapping[str, Any],
    strict: bool,
    call: dict[str, DimSizes],
) -> tuple[DimSizes, ...]:
    """Stored chunk shape: the caller's encoding, then ``chunks=``, then the chunks the
    variable was read with, then its Dask chunks, then about 4 MiB. A dimension may list the
    size of every chunk along it (a rectilinear grid)."""
    shape = tuple(int(n) for n in var.shape)
    from_enc = parse_grid_sizes(enc.get("chunks"), shape, dims, "chunks", strict=strict)
    if strict and from_enc is not None:
        base = list(from_enc)
    else:
        base = list(auto_chunks(shape, var.dtype.itemsize))
        dask_chunks = var.data.chunks if hasattr(var.data, "dask") else None
        if from_enc is not None:
            base = list(from_enc)
        elif dask_chunks is not None:
            base = [max(1, c[0]) if c else 1 for c in dask_chunks]
        for i, dim in enumerate(dims):
            if dim in call:
                base[i] = call[dim]
    return tuple(_clipped(c, n) for c, n in zip(base, shape))


def _clipped(size: DimSizes, extent: int) -> DimSizes:
    """A chunk size no larger than the dimension (at least 1); sizes of every chunk as given."""
    return size if isinstance(size, tuple) else max(1, min(size, max(1, extent)))


def _whole_chunks(shards: Sequence[DimSizes], chunk_shape: Sequence[DimSizes]) -> bool:
    """Whether every shard is a whole number of (regular) chunks along every dimension."""
    for s, c in zip(shards, chunk_shape):
        edges = s if isinstance(s, tuple) else (s,)
        if isinstance(c, tuple) or any(e % c for e in edges):
            return False
    return True


def shard_shape_for(
    var: Any,
    dims: tuple[str, ...],
    enc: Mapping[str, Any],
    strict: bool,
    call: dict[str, DimSizes],
    chunk_shape: tuple[DimSizes, ...],
    *,
    name: str,
    url: str,
) -> tuple[DimSizes, ...] | None:
    """Stored shard shape (V3): the caller's encoding, then ``shards=`` (capped at the array's
    extent in whole chunks), then the shards the variable was read with when they still hold
    whole chunks. A dimension may list the size of every shard along it."""
    shape = tuple(int(n) for n in var.shape)
    from_enc = parse_grid_sizes(enc.get("shards"), shape, dims, "shards", strict=strict)
    if strict and from_enc is not None:
        return from_enc
    if call:
        return tuple(_capped(call.get(d, c), c, n) for d, c, n in zip(dims, chunk_shape, shape))
    if from_enc is None:
        return None
    if _whole_chunks(from_enc, chunk_shape):
        return from_enc
    enc_chunks = parse_grid_sizes(enc.get("chunks"), shape, dims, "chunks", strict=False)
    if enc_chunks is not None and tuple(_clipped(c, n) for c, n in zip(enc_chunks, shape)) == (
        chunk_shape
    ):
        # The variable's own encoding pairs these shards with these chunks: a contradiction.
        raise MetadataError(
            f"encoding shards {from_enc} are not whole multiples of the chunks {chunk_shape}",
            url=url,
            key=name,
            field="shards",
        )
    return None  # chunks chosen by the call: the carried shards no longer fit them


def _capped(shard: DimSizes, chunk: DimSizes, extent: int) -> DimSizes:
    """A ``shards=`` size capped at the dimension's extent in whole chunks (sizes of every
    shard, or beside chunks of every size, as given)."""
    if isinstance(shard, tuple) or isinstance(chunk, tuple):
        return shard
    return min(shard, -(-max(1, extent) // chunk) * chunk)


def chunk_key_encoding_for(value: Any, zarr_format: int) -> ChunkKeyEncoding:
    """A ``chunk_key_encoding`` encoding entry: a name, V3 JSON (``{"name": ...,
    "configuration": {"separator": ...}}``), zarr-python's spelling (``{"name": ...,
    "separator": ...}``) or a :class:`~xzaro.chunk_keys.ChunkKeyEncoding`."""
    if isinstance(value, ChunkKeyEncoding):
        value = value.to_json()
    if isinstance(value, Mapping) and "separator" in value:
        if "configuration" in value:
            raise MetadataError(
                "chunk_key_encoding gives a separator both beside and in its configuration: "
                f"{brief(dict(value))}",
                field="chunk_key_encoding",
            )
        flat = dict(value)
        separator = flat.pop("separator")
        value = {**flat, "configuration": {"separator": separator}}
    ckey = ChunkKeyEncoding.from_json(dict(value) if isinstance(value, Mapping) else value)
    if zarr_format == 2 and ckey.name != "v2":
        raise MetadataError(
            "Zarr V2 arrays use the 'v2' chunk key encoding", field="chunk_key_encoding"
        )
    return ckey
