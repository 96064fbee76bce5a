"""``ZaroMeta`` and ``GroupMeta``: one metadata model for Zarr V2 and V3 arrays and groups.

V2 (``.zarray``/``.zattrs``/``.zgroup``, consolidated ``.zmetadata``) and V3 (``zarr.json``,
consolidated metadata inside the root ``zarr.json``) both parse into the same frozen objects. A V2
array's ``order``, dtype byte order, filters and compressor become the V3-style codec chain that
the codec layer decodes, so the rest of xzaro never branches on the format.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xzaro.chunk_keys import ChunkKeyEncoding
from xzaro.codecs import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BytesCodec,
    Codec,
    NumcodecsCodec,
    ShardingCodec,
    TransposeCodec,
    VLenBytesCodec,
    VLenUTF8Codec,
    codec_from_json,
    codec_from_v2,
    v2_codec_json,
)
from xzaro.dtypes import (
    OBJECT,
    default_fill_value,
    extension_name,
    fill_value_to_json,
    parse_fill_value,
    parse_v2_dtype,
    parse_v3_dtype,
    swaps_exactly,
    v2_dtype_to_json,
    v3_dtype_to_json,
)
from xzaro.errors import MetadataError, UnsupportedError, brief
from xzaro.log import info

V2_ARRAY = ".zarray"
V2_GROUP = ".zgroup"
V2_ATTRS = ".zattrs"
V2_CONSOLIDATED = ".zmetadata"
V3_NODE = "zarr.json"
V2_DIMENSIONS_ATTR = "_ARRAY_DIMENSIONS"

_V2_OBJECT_CODECS = frozenset(
    {"vlen-utf8", "vlen-bytes", "vlen-array", "json2", "msgpack2", "pickle"}
)
_V3_ARRAY_KEYS = frozenset(
    {
        "zarr_format",
        "node_type",
        "shape",
        "data_type",
        "chunk_grid",
        "chunk_key_encoding",
        "fill_value",
        "codecs",
        "attributes",
        "dimension_names",
        "storage_transformers",
    }
)
_V3_GROUP_KEYS = frozenset({"zarr_format", "node_type", "attributes", "consolidated_metadata"})


def loads(data: bytes | str, *, url: str | None = None, key: str | None = None) -> Any:
    """Parse a metadata document.

    Python's own ``json`` writes bare ``NaN``, ``Infinity`` and ``-Infinity``; they parse as
    floats here, as tokens only, so a string that merely contains those words is never changed.
    """
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise MetadataError(f"invalid JSON: {e}", url=url, key=key) from e
    except RecursionError as e:
        raise MetadataError(f"JSON nested too deeply to parse: {e}", url=url, key=key) from e


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return base64.standard_b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be stored in Zarr metadata: {value!r:.80}")


def dumps(doc: Any) -> bytes:
    """Serialise a metadata document, indented.

    Fill values are already JSON (``"NaN"`` strings, hex bit patterns); numpy values in
    attributes become Python numbers and lists, and a NaN or infinite attribute is written as
    Python writes it (bare ``NaN``), as zarr-python does; :func:`loads` reads it back.
    """
    return json.dumps(doc, indent=2, default=_json_default).encode()


#: Extents and chunk sizes are signed 64-bit integers in every implementation.
_MAX_EXTENT = 2**63


def _shape(value: Any, field_name: str, ctx: dict, *, positive: bool = False) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(n, int) and not isinstance(n, bool) and (1 if positive else 0) <= n < _MAX_EXTENT
        for n in value
    ):
        need = "positive" if positive else "non-negative"
        raise MetadataError(
            f"{field_name} must be a list of {need} integers below 2**63, got {value!r:.200}",
            field=field_name,
            **ctx,
        )
    return tuple(value)


@dataclass(frozen=True)
class ZaroMeta:
    """Metadata of one array, V2 or V3.

    Attributes
    ----------
    zarr_format
        2 or 3.
    shape, dtype
        The array's shape and numpy dtype (V2 keeps the stored byte order).
    chunk_shape
        The chunk shape; for sharded arrays the inner chunk shape.
    shard_shape
        The shard shape for sharded arrays, else ``None``.
    codecs
        The normalised codec chain (V2 order/filters/compressor mapped onto it).
    fill_value
        A numpy scalar of ``dtype``, or ``None`` (V2 ``null``).
    order
        ``"C"`` or ``"F"`` (the V2 memory order; V3 arrays are ``"C"``).
    dimension_names
        Names of the dimensions (V3 ``dimension_names``, V2 ``_ARRAY_DIMENSIONS``), or ``None``.
    attributes
        User attributes (without ``_ARRAY_DIMENSIONS``).
    chunk_key_encoding
        How chunk grid indices become store keys.
    raw
        The metadata document as stored (``.zarray`` or ``zarr.json``).
    """

    zarr_format: int
    shape: tuple[int, ...]
    dtype: np.dtype
    chunk_shape: tuple[int, ...]
    codecs: tuple[Codec, ...]
    fill_value: Any
    chunk_key_encoding: ChunkKeyEncoding
    order: str = "C"
    shard_shape: tuple[int, ...] | None = None
    dimension_names: tuple[str | None, ...] | None = None
    attributes: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    node_type: str = "array"

    # --------------------------------------------------------------------------- derived
    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def storage_shape(self) -> tuple[int, ...]:
        """Shape of one stored object: the shard if sharded, else the chunk."""
        return self.shard_shape or self.chunk_shape

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Stored objects along each dimension."""
        return tuple(math.ceil(s / c) for s, c in zip(self.shape, self.storage_shape))

    @property
    def sharding(self) -> ShardingCodec | None:
        """The sharding codec when shards can be read partially (nothing follows the codec)."""
        if self.shard_shape is None or len(self.codecs) != 1:
            return None
        codec = self.codecs[0]
        return codec if isinstance(codec, ShardingCodec) else None

    @property
    def fill_value_or_default(self) -> Any:
        """What a missing chunk reads as: the fill value, or the dtype's zero for ``null``."""
        if self.fill_value is None:
            return default_fill_value(self.dtype)
        return self.fill_value

    @property
    def nbytes(self) -> int:
        """Uncompressed size in bytes (object arrays count their pointers)."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def chunk_key(self, index: tuple[int, ...]) -> str:
        """The store key, relative to the array, of the stored object at grid ``index``."""
        return self.chunk_key_encoding.chunk_key(index)

    def describe_codecs(self) -> str:
        """The codec chain as ``bytes -> blosc(lz4) -> crc32c``."""
        return " -> ".join(c.label() for c in self.codecs)

    # --------------------------------------------------------------------------- parsing
    @classmethod
    def from_json(
        cls,
        doc: dict,
        attributes: dict | None = None,
        *,
        allow_unsafe_codecs: bool = False,
        url: str | None = None,
        key: str | None = None,
    ) -> ZaroMeta:
        """Parse a ``.zarray`` (with its ``.zattrs``) or an array ``zarr.json``."""
        if not isinstance(doc, dict):
            raise MetadataError(
                f"array metadata must be an object, got {type(doc).__name__}", url=url, key=key
            )
        fmt = doc.get("zarr_format")
        try:
            if fmt == 2:
                return _parse_v2_array(doc, attributes or {}, allow_unsafe_codecs, url, key)
            if fmt == 3:
                return _parse_v3_array(doc, allow_unsafe_codecs, url, key)
        except RecursionError:
            raise MetadataError("metadata nests too deeply", url=url, key=key) from None
        raise UnsupportedError(
            f"unsupported zarr_format {brief(fmt)}", url=url, key=key, field="zarr_format"
        )

    def to_json(self) -> dict:
        """The metadata document (``zarr.json`` for V3, ``.zarray`` for V2)."""
        if self.zarr_format == 3:
            return _emit_v3_array(self)
        return _emit_v2_array(self)

    def attributes_json(self) -> dict:
        """The attributes as stored (V2 ``.zattrs`` carries ``_ARRAY_DIMENSIONS``)."""
        attrs = dict(self.attributes)
        if self.zarr_format == 2 and self.dimension_names is not None:
            attrs[V2_DIMENSIONS_ATTR] = list(self.dimension_names)
        return attrs


@dataclass(frozen=True)
class GroupMeta:
    """Metadata of one group, V2 or V3.

    ``consolidated`` maps paths (relative to this group) to the metadata documents of every node
    below it, when the group carries consolidated metadata, else ``None``.
    """

    zarr_format: int
    attributes: dict = field(default_factory=dict)
    consolidated: dict[str, dict] | None = field(default=None, repr=False)
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    node_type: str = "group"

    def to_json(self) -> dict:
        """The metadata document (``zarr.json`` for V3, ``.zgroup`` for V2)."""
        if self.zarr_format == 3:
            return {"zarr_format": 3, "node_type": "group", "attributes": dict(self.attributes)}
        return {"zarr_format": 2}

    @classmethod
    def from_json(
        cls,
        doc: dict,
        attributes: dict | None = None,
        *,
        allow_unsafe_codecs: bool = False,
        url: str | None = None,
        key: str | None = None,
    ) -> GroupMeta:
        """Parse a ``.zgroup`` (with its ``.zattrs``) or a group ``zarr.json``."""
        fmt = doc.get("zarr_format") if isinstance(doc, dict) else None
        if fmt == 2:
            return cls(2, dict(attributes or {}), raw=doc)
        if fmt != 3:
            raise UnsupportedError(
                f"unsupported zarr_format {brief(fmt)}", url=url, key=key, field="zarr_format"
            )
        _check_extensions(doc, _V3_GROUP_KEYS, url, key)
        attrs = doc.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise MetadataError(
                "attributes must be an object", url=url, key=key, field="attributes"
            )
        consolidated = None
        cm = doc.get("consolidated_metadata")
        if isinstance(cm, dict) and isinstance(cm.get("metadata"), dict):
            # Kept as documents: each node is parsed when it is used, so one node xzaro
            # cannot read does not make the others unreachable.
            consolidated = {path.strip("/"): node for path, node in cm["metadata"].items()}
        return cls(3, attrs, consolidated, raw=doc)


def node_from_json(
    doc: Any,
    attributes: dict | None = None,
    *,
    allow_unsafe_codecs: bool = False,
    url: str | None = None,
    key: str | None = None,
) -> ZaroMeta | GroupMeta:
    """Parse any node document (array or group, V2 or V3)."""
    if not isinstance(doc, dict):
        raise MetadataError(
            f"metadata must be a JSON object, got {type(doc).__name__}", url=url, key=key
        )
    node_type = doc.get("node_type")
    is_array = node_type == "array" if doc.get("zarr_format") == 3 else "shape" in doc
    if doc.get("zarr_format") == 3 and node_type not in ("array", "group"):
        raise MetadataError(
            f"node_type must be 'array' or 'group', got {brief(node_type)}",
            url=url,
            key=key,
            field="node_type",
        )
    cls = ZaroMeta if is_array else GroupMeta
    return cls.from_json(doc, attributes, allow_unsafe_codecs=allow_unsafe_codecs, url=url, key=key)


# ------------------------------------------------------------------------------ V3 parsing
def _check_extensions(doc: dict, known: frozenset, url: str | None, key: str | None) -> None:
    for name, value in doc.items():
        if name in known:
            continue
        if isinstance(value, dict) and value.get("must_understand") is False:
            continue
        raise UnsupportedError(
            f"unknown metadata extension {name!r} (not marked must_understand: false)",
            url=url,
            key=key,
            field=name,
        )


def _parse_v3_array(doc: dict, allow_unsafe: bool, url: str | None, key: str | None) -> ZaroMeta:
    ctx: dict[str, Any] = {"url": url, "key": key}
    _check_extensions(doc, _V3_ARRAY_KEYS, url, key)
    for required in (
        "shape",
        "data_type",
        "chunk_grid",
        "chunk_key_encoding",
        "fill_value",
        "codecs",
    ):
        if required not in doc:
            raise MetadataError(f"missing required member {required!r}", field=required, **ctx)
    shape = _shape(doc["shape"], "shape", ctx)
    dtype = parse_v3_dtype(doc["data_type"], **ctx)

    grid = doc["chunk_grid"]
    grid_name = grid.get("name") if isinstance(grid, dict) else grid
    if grid_name != "regular":
        raise UnsupportedError(f"unknown chunk grid {grid_name!r}", field="chunk_grid", **ctx)
    grid_config = (grid.get("configuration") if isinstance(grid, dict) else None) or {}
    if not isinstance(grid_config, dict):
        raise MetadataError(
            f"chunk_grid configuration must be an object, got {grid_config!r:.80}",
            field="chunk_grid.configuration",
            **ctx,
        )
    grid_chunks = _shape(
        grid_config.get("chunk_shape"),
        "chunk_grid.chunk_shape",
        ctx,
        positive=True,
    )
    if len(grid_chunks) != len(shape):
        raise MetadataError(
            f"chunk_shape {list(grid_chunks)} has {len(grid_chunks)} dimensions, shape has "
            f"{len(shape)}",
            field="chunk_grid",
            **ctx,
        )

    try:
        encoding = ChunkKeyEncoding.from_json(doc["chunk_key_encoding"])
    except MetadataError as e:
        raise type(e)(e.message, field="chunk_key_encoding", **ctx) from e

    transformers = doc.get("storage_transformers") or []
    if not isinstance(transformers, list):
        raise MetadataError(
            f"storage_transformers must be a list, got {brief(transformers)}",
            field="storage_transformers",
            **ctx,
        )
    if transformers:
        names = [t.get("name") if isinstance(t, dict) else t for t in transformers]
        raise UnsupportedError(
            f"unknown storage transformers {names}", field="storage_transformers", **ctx
        )

    if not isinstance(doc["codecs"], list) or not doc["codecs"]:
        raise MetadataError("codecs must be a non-empty list", field="codecs", **ctx)
    codecs = tuple(
        c
        for c in (codec_from_json(d, allow_unsafe=allow_unsafe, **ctx) for d in doc["codecs"])
        if c is not None
    )
    dtype = _with_serialiser_byte_order(dtype, codecs, ctx)
    fill = _object_fill(
        parse_fill_value(doc["fill_value"], dtype, zarr_format=3, **ctx), codecs, ctx
    )

    dims = doc.get("dimension_names")
    if dims is not None:
        if (
            not isinstance(dims, list)
            or len(dims) != len(shape)
            or not all(d is None or isinstance(d, str) for d in dims)
        ):
            raise MetadataError(
                f"dimension_names must list {len(shape)} names or nulls, got {dims!r}",
                field="dimension_names",
                **ctx,
            )
        dims = tuple(dims)
    attrs = doc.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise MetadataError("attributes must be an object", field="attributes", **ctx)

    chunk_shape, shard_shape = grid_chunks, None
    first = codecs[0] if codecs else None
    if isinstance(first, ShardingCodec):
        try:
            first.chunks_per_shard(grid_chunks)
        except MetadataError as e:
            raise MetadataError(e.message, field="codecs", **ctx) from e
        chunk_shape, shard_shape = first.chunk_shape, grid_chunks
    meta = ZaroMeta(
        3, shape, dtype, chunk_shape, codecs, fill, encoding, "C", shard_shape, dims, attrs, doc
    )
    _check_chain(meta, ctx)
    return meta


def _serialiser(codecs: tuple[Codec, ...]) -> Codec | None:
    """The codec that serialises array elements (inside the shards of a sharded array)."""
    codec = next((c for c in codecs if c.kind == ARRAY_BYTES), None)
    if isinstance(codec, ShardingCodec):
        return _serialiser(codec.codecs)
    return codec


def _with_serialiser_byte_order(dtype: np.dtype, codecs: tuple[Codec, ...], ctx: dict) -> np.dtype:
    """A structured (or ``ml_dtypes``) dtype as the ``bytes`` codec stores it.

    The ``endian`` of ``bytes`` applies to every field of a structured array. Without one (as
    zarr-python 3.1 writes), the registry says to read the fields little-endian; numpy cannot
    swap ``ml_dtypes``' complex types, nor its types inside a structured dtype, so those are
    refused big-endian.
    """
    if dtype.fields is None and extension_name(dtype) is None:
        return dtype
    serialiser = _serialiser(codecs)
    endian = serialiser.endian if isinstance(serialiser, BytesCodec) else "little"
    multi_byte = dtype.newbyteorder("<") != dtype.newbyteorder(">")
    if endian is None and dtype.fields is not None and multi_byte:
        info(
            "array %s: the bytes codec gives no endian for the structured data type %s; "
            "reading its fields little-endian",
            ctx.get("key"),
            dtype,
        )
        return dtype.newbyteorder("<")
    if endian == "big" and not swaps_exactly(dtype):
        raise UnsupportedError(
            f"data type {dtype} cannot be read big-endian (numpy cannot swap the bytes of "
            f"ml_dtypes' complex types, or of its types inside a structured dtype)",
            field="codecs",
            **ctx,
        )
    return dtype


def _object_fill(fill: Any, codecs: Any, ctx: dict) -> Any:
    """A bytes array's fill value is stored base64-encoded (``""`` is ``b""``) or as a list of
    its bytes. A string
    array's fill value that is a JSON number or boolean (zarrs' test data has ``0``) is that
    value as a string, as zarr-python reads it: never a number inside a string array."""
    binary = any(isinstance(c, VLenBytesCodec) for c in codecs)
    if binary and isinstance(fill, str):
        try:
            return base64.standard_b64decode(fill)
        except ValueError:
            return fill.encode()
    if binary and fill is not None and not isinstance(fill, bytes):
        # The zarr-extensions ``bytes`` data type also writes the fill value as its bytes.
        if isinstance(fill, list) and all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in fill
        ):
            return bytes(fill)
        raise MetadataError(
            f"a bytes array's fill_value must be base64 text or a list of integers 0-255, "
            f"got {fill!r}",
            field="fill_value",
            **ctx,
        )
    text = any(isinstance(c, VLenUTF8Codec) for c in codecs)
    if text and fill is not None and not isinstance(fill, str):
        if isinstance(fill, (bool, int, float, np.number, np.bool_)):
            return str(fill.item() if isinstance(fill, np.generic) else fill)
        raise MetadataError(
            f"a string array's fill_value must be a string, got {fill!r}",
            field="fill_value",
            **ctx,
        )
    return fill


def _check_chain(meta: ZaroMeta, ctx: dict) -> None:
    from xzaro.codecs import pipeline_for

    try:
        pipeline_for(meta)
    except MetadataError as e:
        raise type(e)(e.message, field=e.field or "codecs", **ctx) from e


def _emit_v3_array(meta: ZaroMeta) -> dict:
    object_codec = next((c.name for c in meta.codecs if c.kind == ARRAY_BYTES), None)
    doc: dict[str, Any] = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(meta.shape),
        "data_type": v3_dtype_to_json(meta.dtype, object_codec=object_codec),
        "chunk_grid": {
            "name": "regular",
            "configuration": {"chunk_shape": list(meta.storage_shape)},
        },
        "chunk_key_encoding": meta.chunk_key_encoding.to_json(),
        "fill_value": fill_value_to_json(meta.fill_value, meta.dtype, zarr_format=3),
        "codecs": [c.to_json() for c in meta.codecs],
        "attributes": dict(meta.attributes),
    }
    if meta.dimension_names is not None:
        doc["dimension_names"] = list(meta.dimension_names)
    return doc


# ------------------------------------------------------------------------------ V2 parsing
def _endian_of(dtype: np.dtype) -> str | None:
    if dtype.fields is not None or dtype.itemsize <= 1:
        return None
    return {"<": "little", ">": "big"}.get(dtype.byteorder)


def _parse_v2_array(
    doc: dict, attrs: dict, allow_unsafe: bool, url: str | None, key: str | None
) -> ZaroMeta:
    ctx: dict[str, Any] = {"url": url, "key": key}
    for required in ("shape", "chunks", "dtype", "compressor", "fill_value", "order"):
        if required not in doc:
            raise MetadataError(f"missing required member {required!r}", field=required, **ctx)
    shape = _shape(doc["shape"], "shape", ctx)
    chunks = _shape(doc["chunks"], "chunks", ctx, positive=True)
    if len(chunks) != len(shape):
        raise MetadataError(
            f"chunks {list(chunks)} and shape {list(shape)} differ in length", field="chunks", **ctx
        )
    dtype = parse_v2_dtype(doc["dtype"], **ctx)
    order = doc["order"]
    if order not in ("C", "F"):
        raise MetadataError(f"order must be 'C' or 'F', got {order!r}", field="order", **ctx)
    separator = doc.get("dimension_separator", ".") or "."
    if separator not in (".", "/"):
        raise MetadataError(
            f"dimension_separator must be '.' or '/', got {separator!r}",
            field="dimension_separator",
            **ctx,
        )
    filters = doc.get("filters") or []
    if not isinstance(filters, list):
        raise MetadataError("filters must be null or a list", field="filters", **ctx)

    chain: list[Codec] = []
    if order == "F" and len(shape) > 1:
        chain.append(TransposeCodec(tuple(range(len(shape) - 1, -1, -1))))
    filter_codecs = []
    for f in filters:
        try:
            filter_codecs.append(codec_from_v2(f, filter=True, allow_unsafe=allow_unsafe, **ctx))
        except MetadataError as e:
            raise type(e)(e.message, field="filters", **ctx) from e
    if dtype == OBJECT:
        ids = [f.get("id") for f in filters]
        at = next((i for i, fid in enumerate(ids) if fid in _V2_OBJECT_CODECS), None)
        if at is None and "categorize" in ids:
            # Categorize turns the objects into integer codes, which serialise as usual.
            chain.extend(filter_codecs)
            astype = parse_v2_dtype(filters[ids.index("categorize")].get("astype", "|u1"), **ctx)
            chain.append(BytesCodec(_endian_of(astype)))
        elif at is None:
            raise MetadataError(
                f"object dtype needs an object codec (such as vlen-utf8) in filters, got {ids}",
                field="filters",
                **ctx,
            )
        else:
            chain.extend(filter_codecs[:at])
            chain.append(_as_array_bytes(filter_codecs[at]))
            chain.extend(_after_object_codec(c) for c in filter_codecs[at + 1 :])
    else:
        chain.extend(_v2_numeric_filters(filter_codecs))
    compressor = None
    if doc["compressor"] is not None:
        try:
            compressor = codec_from_v2(doc["compressor"], allow_unsafe=allow_unsafe, **ctx)
        except MetadataError as e:
            raise type(e)(e.message, field="compressor", **ctx) from e
    if dtype != OBJECT and not any(_serialises_numbers(c) for c in chain):
        if compressor is not None and _serialises_numbers(compressor):
            # pcodec, zfpy: zarr-python 2 hands the compressor the chunk array (after the
            # filters), so it is the chain's serialiser, in place of ``bytes``.
            chain.append(compressor)
            compressor = None
        else:
            chain.append(BytesCodec(_endian_of(dtype)))
    if compressor is not None:
        chain.append(compressor)
    fill = _object_fill(
        parse_fill_value(doc["fill_value"], dtype, zarr_format=2, **ctx), chain, ctx
    )

    attrs = dict(attrs)
    dims = attrs.pop(V2_DIMENSIONS_ATTR, None)
    if dims is not None:
        if not isinstance(dims, list) or len(dims) != len(shape):
            raise MetadataError(
                f"_ARRAY_DIMENSIONS must list {len(shape)} names, got {dims!r}",
                field=V2_DIMENSIONS_ATTR,
                **ctx,
            )
        dims = tuple(dims)
    meta = ZaroMeta(
        2,
        shape,
        dtype,
        chunks,
        tuple(chain),
        fill,
        ChunkKeyEncoding("v2", separator),
        order,
        None,
        dims,
        attrs,
        doc,
    )
    _check_chain_v2(meta, ctx)
    return meta


def _serialises_numbers(codec: Codec) -> bool:
    """An array->bytes numcodecs codec of numeric arrays (pcodec, zfpy)."""
    return (
        isinstance(codec, NumcodecsCodec)
        and codec.kind == ARRAY_BYTES
        and not codec.serialises_objects
    )


def _v2_numeric_filters(filters: list[Codec]) -> list[Codec]:
    """The filters of a numeric V2 array as chain members: an array->bytes filter (pcodec,
    zfpy) serialises the chunk, and the filters after it work on its bytes."""
    at = next((i for i, c in enumerate(filters) if _serialises_numbers(c)), None)
    if at is None:
        return list(filters)
    return [*filters[: at + 1], *(_after_object_codec(c) for c in filters[at + 1 :])]


def _after_object_codec(codec: Codec) -> Codec:
    """V2 filters after the object codec work on its bytes: bytes->bytes codecs there."""
    if isinstance(codec, NumcodecsCodec) and codec.v2_filter:
        return NumcodecsCodec(codec.codec_id, codec.config)
    return codec


def _as_array_bytes(codec: Codec) -> Codec:
    """A V2 object filter acts as the chain's array->bytes codec."""
    if codec.kind == ARRAY_BYTES:
        return codec
    raise MetadataError(f"{codec.name} cannot serialise an object array", field="filters")


def _check_chain_v2(meta: ZaroMeta, ctx: dict) -> None:
    kinds = [c.kind for c in meta.codecs]
    # V2 filters after the serialiser work on bytes; they behave as bytes->bytes codecs there.
    if kinds.count(ARRAY_BYTES) == 1:
        i = kinds.index(ARRAY_BYTES)
        if any(k == ARRAY_ARRAY for k in kinds[i + 1 :]):
            raise MetadataError(
                "array filters after the object codec are not supported", field="filters", **ctx
            )
    _check_chain(meta, ctx)


def _emit_v2_array(meta: ZaroMeta) -> dict:
    raw = meta.raw or {}
    filters = raw.get("filters")
    compressor = raw.get("compressor")
    if not raw:
        filters, compressor = v2_codec_json(meta.codecs)
    return {
        "zarr_format": 2,
        "shape": list(meta.shape),
        "chunks": list(meta.chunk_shape),
        "dtype": v2_dtype_to_json(meta.dtype),
        "compressor": compressor,
        "fill_value": fill_value_to_json(meta.fill_value, meta.dtype, zarr_format=2),
        "order": meta.order,
        "filters": filters,
        "dimension_separator": meta.chunk_key_encoding.separator,
    }
