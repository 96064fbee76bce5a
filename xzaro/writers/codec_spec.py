"""``codec_encoding``: the codec entries of one variable's encoding, in every spelling users have,
as the codecs :func:`~xzaro.writers.layout.array_meta` writes.

The keys are xzaro's own ``compressor`` (a :class:`~xzaro.writers.BloscCompressionParams`, an
xzaro codec, a list of them or ``None``; also zarr-python 2's single numcodecs object) and
xarray's with zarr-python 3: ``compressors`` (one codec or a sequence; ``None`` or ``()`` for
none), ``filters`` and ``serializer``. Each codec may be given as

- an xzaro codec (:mod:`xzaro.codecs`) or a ``BloscCompressionParams``;
- a numcodecs codec object (``numcodecs.Zstd(level=9)``) or its V2 JSON
  (``{"id": "zstd", "level": 9}``);
- V3 JSON (``{"name": "zstd", "configuration": {"level": 9}}``) or a bare V3 name (``"zstd"``,
  ``"crc32c"``) for codecs whose configuration is optional;
- a zarr-python codec object, or any object whose ``to_dict()`` gives V3 JSON.

What each target format can hold:

- V2 has one compressor: several are written as :func:`xzaro.codecs.v2_codec_json` maps a chain
  (those before the last as V2 filters, which V2 readers apply in the same order). V2 has no
  serializer: ``bytes`` is implied by the dtype (a byte order other than the dtype's cannot be
  stored) and a string array's ``vlen-utf8``/``vlen-bytes`` is its object codec (zarr-python's
  V2 arrays, and xarray's encoding of them, list it last under ``filters``: that spelling is
  accepted in both formats). ``transpose`` and ``sharding_indexed`` are V3 only. A numcodecs
  codec given in a V2 spelling is a V2 filter whatever its kind, as V2 defines filters.
- V3 filters are array->array codecs: a numcodecs bytes->bytes codec used as a V2 filter
  (``Shuffle``, ``Zstd``) cannot be one.

With ``strict=False`` (encoding carried from reading a source, written to another format or
re-encoded by CF encoding) the entries that cannot apply to the target are dropped, and logged,
instead of raising: a serializer V2 cannot store or that does not fit the dtype, V3-only filters
in V2, V2 bytes->bytes filters in V3, every filter when the first one declares a dtype other than
the variable's, and a ``sharding_indexed`` serializer (shards come from ``shards``). Invalid
values (unknown codecs, wrong types, codecs of the wrong kind for their key, bad configurations)
raise in either mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xzaro.codecs import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    BytesCodec,
    Codec,
    NumcodecsCodec,
    ShardingCodec,
    TransposeCodec,
    V3CodecLike,
    VLenCodec,
    codec_from_json,
    codec_from_v2,
)
from xzaro.errors import MetadataError, ZaroError
from xzaro.log import info
from xzaro.writers.compression import BloscCompressionParams
from xzaro.writers.layout import default_serializer, storage_dtype

#: The encoding keys :func:`codec_encoding` reads.
CODEC_KEYS = ("compressor", "compressors", "filters", "serializer")

_KIND_KEY = {ARRAY_ARRAY: "filters", ARRAY_BYTES: "serializer", BYTES_BYTES: "compressors"}
_KIND_NAME = {
    ARRAY_ARRAY: "an array->array",
    ARRAY_BYTES: "an array->bytes",
    BYTES_BYTES: "a bytes->bytes",
}


class _Target:
    """The variable being written and what its format allows."""

    def __init__(self, name: str, zarr_format: int, dtype: np.dtype, strict: bool) -> None:
        self.name = name
        self.zarr_format = zarr_format
        self.dtype = dtype
        self.strict = strict

    def error(self, message: str, field: str) -> MetadataError:
        return MetadataError(f"variable {self.name!r}: {message}", key=self.name, field=field)

    def cannot_apply(self, message: str, field: str) -> None:
        """Raise (strict) or log that an entry is dropped."""
        if self.strict:
            raise self.error(message, field)
        info("variable %r: encoding %r: %s; dropped", self.name, field, message)


def codec_encoding(
    enc: Mapping[str, Any], *, zarr_format: int, dtype: np.dtype, name: str, strict: bool
) -> dict[str, Any]:
    """The codecs one variable's encoding asks for, as keyword arguments of
    :func:`~xzaro.writers.layout.array_meta`.

    Parameters
    ----------
    enc
        The variable's encoding; only the keys in :data:`CODEC_KEYS` are read.
    zarr_format
        The format being written, 2 or 3.
    dtype
        The dtype of the CF-encoded variable (as it will be stored).
    name
        The variable's name, for error messages.
    strict
        ``True`` for encoding the caller gave: anything that cannot be written raises.
        ``False`` for encoding carried from reading a source: entries that cannot apply to this
        format or dtype are dropped (see the module's documentation for which).

    Returns
    -------
    ``compressor`` (a tuple of codecs, or ``None`` for no compression), ``filters`` (a tuple of
    array->array codecs) and ``serializer`` (an array->bytes codec), each only when the
    encoding decides it. Call once per source of encoding and let the caller's result override
    the carried one key by key.

    Raises
    ------
    MetadataError
        Naming the variable (``key``) and the encoding key (``field``).
    """
    target = _Target(str(name), zarr_format, storage_dtype(dtype, zarr_format), strict)
    if "compressor" in enc and "compressors" in enc:
        raise target.error("give 'compressor' or 'compressors', not both", "compressors")
    out: dict[str, Any] = {}
    object_codec = None
    if "filters" in enc:
        out["filters"], object_codec = _filters(enc["filters"], target)
    serializer, field = object_codec, "filters"
    if enc.get("serializer") is not None:
        serializer, field = _parse(enc["serializer"], "serializer", target), "serializer"
        if object_codec is not None and object_codec != serializer:
            raise target.error(
                f"the object codec {object_codec.label()!r} in 'filters' contradicts the "
                f"serializer {serializer.label()!r}",
                "serializer",
            )
    if zarr_format == 2 and serializer is None and enc.get("compressor") is not None:
        # V2 stores an array->bytes codec (pcodec, zfpy) as its compressor.
        items = _items(enc["compressor"])
        first = _parse(items[0], "compressor", target) if len(items) == 1 else None
        if first is not None and first.kind == ARRAY_BYTES:
            serializer, field = first, "compressor"
            enc = {k: v for k, v in enc.items() if k != "compressor"}
            out["compressor"] = None
    if serializer is not None:
        serializer = _serializer(serializer, field, target)
        if serializer is not None:
            out["serializer"] = serializer
    for key in ("compressor", "compressors"):
        if key in enc:
            out["compressor"] = _compressors(enc[key], key, target)
    return out


def _items(value: Any) -> list[Any]:
    """A codec, or a list or tuple of them (``None`` is none)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _parse(item: Any, field: str, target: _Target, *, v2_filter: bool = False) -> Codec:
    """One codec in any spelling; ``v2_filter`` reads the V2 spellings as V2 filters."""
    try:
        if isinstance(item, Codec):
            return item
        if isinstance(item, BloscCompressionParams):
            return item.codec(target.dtype)
        if _is_numcodecs(item):
            item = item.get_config()
        elif isinstance(item, V3CodecLike) and not isinstance(item, Mapping):
            item = item.to_dict()
        if isinstance(item, str):
            codec = codec_from_json(item, allow_unsafe=True)
        elif isinstance(item, Mapping) and "id" in item:
            codec = codec_from_v2(dict(item), filter=v2_filter, allow_unsafe=True)
        elif isinstance(item, Mapping) and "name" in item:
            codec = codec_from_json(dict(item), allow_unsafe=True)
        else:
            raise MetadataError(
                f"{item!r:.100} ({type(item).__name__}) is not a codec: give an xzaro or "
                "numcodecs codec, its V2 JSON ({'id': ...}) or V3 JSON ({'name': ...})"
            )
    except ZaroError as e:
        raise type(e)(f"variable {target.name!r}: {e.message}", key=target.name, field=field) from e
    if codec is None:
        raise target.error(f"codec {item!r:.100} is marked must_understand: false", field)
    return codec


def _is_numcodecs(item: Any) -> bool:
    from numcodecs.abc import Codec as NumcodecsAbc

    return isinstance(item, NumcodecsAbc)


def _is_v2_spelling(item: Any) -> bool:
    return _is_numcodecs(item) or (isinstance(item, Mapping) and "id" in item)


def _wrong_kind(codec: Codec, field: str, target: _Target) -> MetadataError:
    return target.error(
        f"{codec.label()!r} is {_KIND_NAME[codec.kind]} codec: give it in "
        f"{_KIND_KEY[codec.kind]!r}",
        field,
    )


def _filters(value: Any, target: _Target) -> tuple[tuple[Codec, ...], Codec | None]:
    """The filters, and the object codec listed last among them (V2's convention)."""
    items = _items(value)
    parsed = [(_parse(i, "filters", target, v2_filter=_is_v2_spelling(i)), i) for i in items]
    object_codec = None
    if parsed and isinstance(parsed[-1][0], VLenCodec):
        object_codec = parsed.pop()[0]
    filters: list[Codec] = []
    for codec, item in parsed:
        if isinstance(codec, NumcodecsCodec) and codec.kind != ARRAY_BYTES:
            if target.zarr_format == 2 and _is_v2_spelling(item):
                codec = NumcodecsCodec(codec.codec_id, codec.config, v2_filter=True)
            elif codec.v2_filter:
                codec = NumcodecsCodec(codec.codec_id, codec.config)
                if codec.kind == BYTES_BYTES:
                    target.cannot_apply(
                        f"{codec.codec_id!r} is a V2 filter on bytes, which a V3 array cannot "
                        "hold among its filters (give it in 'compressors')",
                        "filters",
                    )
                    continue
        if codec.kind != ARRAY_ARRAY:
            raise _wrong_kind(codec, "filters", target)
        if target.zarr_format == 2 and isinstance(codec, TransposeCodec):
            target.cannot_apply("'transpose' is a Zarr V3 codec", "filters")
            continue
        filters.append(codec)
    if filters:
        declared = _declared_dtype(filters[0])
        if declared is not None and declared != target.dtype:
            target.cannot_apply(
                f"the first filter {filters[0].label()!r} works on {declared}, the variable is "
                f"{target.dtype}",
                "filters",
            )
            filters = []
    return tuple(filters), object_codec


def _declared_dtype(codec: Codec) -> np.dtype | None:
    """The input dtype a numcodecs filter is configured for, if it names one."""
    if not isinstance(codec, NumcodecsCodec):
        return None
    declared = codec.config.get("decode_dtype" if codec.codec_id == "astype" else "dtype")
    try:
        return None if declared is None else np.dtype(declared)
    except TypeError:
        return None


def _serializer(codec: Codec, field: str, target: _Target) -> Codec | None:
    """The serializer to write, ``None`` for the default (or when dropped)."""
    if codec.kind != ARRAY_BYTES:
        raise _wrong_kind(codec, field, target)
    if isinstance(codec, ShardingCodec):
        target.cannot_apply("sharding is set with 'shards', not as a serializer", field)
        return None
    is_object = target.dtype.kind == "O"
    if isinstance(codec, VLenCodec) != is_object:
        what = "a variable-length" if is_object else "a fixed-size"
        target.cannot_apply(
            f"{codec.label()!r} does not serialise {what} dtype {target.dtype}", field
        )
        return None
    if target.zarr_format == 3 or is_object:
        return codec
    default = default_serializer(target.dtype, 2)
    assert isinstance(default, BytesCodec)
    if isinstance(codec, BytesCodec):
        if codec.stored_dtype(target.dtype) == default.stored_dtype(target.dtype):
            return None  # V2's implied serializer
        target.cannot_apply(
            f"a V2 array keeps its byte order in the dtype ({target.dtype.str}); cast the "
            f"variable instead of asking for {codec.label()!r}",
            field,
        )
        return None
    if isinstance(codec, NumcodecsCodec):
        return codec  # written as the V2 compressor (or a filter before one)
    target.cannot_apply(f"Zarr V2 has no serializer {codec.label()!r}", field)
    return None


def _compressors(value: Any, field: str, target: _Target) -> tuple[Codec, ...] | None:
    codecs: list[Codec] = []
    for item in _items(value):
        codec = _parse(item, field, target)
        if codec.kind != BYTES_BYTES:
            raise _wrong_kind(codec, field, target)
        _check_encodes(codec, field, target)
        codecs.append(codec)
    return tuple(codecs) or None


def _check_encodes(codec: Codec, field: str, target: _Target) -> None:
    """Refuse a compressor whose configuration cannot encode (a bad level, a wrong type)."""
    try:
        codec.encode_bytes(bytes(64))  # type: ignore[attr-defined]
    except Exception as e:
        raise target.error(
            f"{codec.label()!r} cannot encode with {codec.to_json()}: {e}", field
        ) from e
