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
from xzaro.errors import MetadataError, MetadataTypeError, NameMismatchError
from xzaro.writers.codec_spec import CODEC_KEYS, codec_encoding
from xzaro.writers.layout import DEFAULT_COMPRESSOR, auto_chunks

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
    if "compressor" not in kwargs:
        kwargs["compressor"] = DEFAULT_COMPRESSOR if compressor is UNSET else compressor
    return kwargs


def chunk_shape_for(
    var: Any,
    dims: tuple[str, ...],
    enc: Mapping[str, Any],
    strict: bool,
    call: dict[str, int],
) -> tuple[int, ...]:
    """Stored chunk shape: the caller's encoding, then ``chunks=``, then the chunks the
    variable was read with, then its Dask chunks, then about 4 MiB."""
    shape = tuple(int(n) for n in var.shape)
    from_enc = parse_sizes(enc.get("chunks"), shape, dims, "chunks", strict=strict)
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
    return tuple(max(1, min(c, max(1, n))) for c, n in zip(base, shape))


def shard_shape_for(
    var: Any,
    dims: tuple[str, ...],
    enc: Mapping[str, Any],
    strict: bool,
    call: dict[str, int],
    chunk_shape: tuple[int, ...],
    *,
    name: str,
    url: str,
) -> tuple[int, ...] | None:
    """Stored shard shape (V3): the caller's encoding, then ``shards=`` (capped at the array's
    extent in whole chunks), then the shards the variable was read with when they still hold
    whole chunks."""
    shape = tuple(int(n) for n in var.shape)
    from_enc = parse_sizes(enc.get("shards"), shape, dims, "shards", strict=strict)
    if strict and from_enc is not None:
        return from_enc
    if call:
        return tuple(
            min(call.get(d, c), -(-max(1, n) // c) * c) for d, c, n in zip(dims, chunk_shape, shape)
        )
    if from_enc is None:
        return None
    if all(s % c == 0 for s, c in zip(from_enc, chunk_shape)):
        return from_enc
    enc_chunks = parse_sizes(enc.get("chunks"), shape, dims, "chunks", strict=False)
    if enc_chunks is not None and tuple(min(c, max(1, n)) for c, n in zip(enc_chunks, shape)) == (
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


def chunk_key_encoding_for(value: Any, zarr_format: int) -> ChunkKeyEncoding:
    """A ``chunk_key_encoding`` encoding entry (V3 JSON, a name, or a mapping)."""
    ckey = ChunkKeyEncoding.from_json(value)
    if zarr_format == 2 and ckey.name != "v2":
        raise MetadataError(
            "Zarr V2 arrays use the 'v2' chunk key encoding", field="chunk_key_encoding"
        )
    return ckey
