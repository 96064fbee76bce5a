"""``ZaroMeta``: one array's metadata, parsed from and emitted to V2 and V3 documents.

Both formats parse into the same frozen object: a V2 array's ``order``, dtype byte order,
filters and compressor become the V3-style codec chain (:mod:`xzaro.meta.v2_codecs`), and
every array carries its chunk grid (:mod:`xzaro.chunk_grid`): a V2 array's ``chunks`` and a V3
``regular`` grid are regular grids; a V3 ``rectilinear`` grid has chunks of explicit sizes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xzaro.chunk_grid import REGULAR, ChunkGrid
from xzaro.chunk_keys import ChunkKeyEncoding, array_chunk_keys
from xzaro.codecs import (
    ARRAY_BYTES,
    Codec,
    ShardingCodec,
    VLenBytesCodec,
    codec_from_json,
    pipeline_for,
    v2_codec_json,
)
from xzaro.dtypes import (
    OBJECT,
    default_fill_value,
    fill_value_to_json,
    parse_fill_value,
    parse_v2_dtype,
    parse_v3_dtype,
    v2_dtype_to_json,
    v3_dtype_to_json,
)
from xzaro.errors import MetadataError, UnsupportedError, brief
from xzaro.meta.documents import V2_DIMENSIONS_ATTR
from xzaro.meta.fields import (
    check_extensions,
    codecs_within,
    in_document,
    object_fill,
    parse_attributes,
    parse_dimension_names,
    parse_shape,
    require_members,
    with_serialiser_byte_order,
)
from xzaro.meta.v2_codecs import v2_codec_chain

V3_ARRAY_KEYS = frozenset(
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
_V3_REQUIRED = ("shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value", "codecs")
_V2_REQUIRED = ("shape", "chunks", "dtype", "compressor", "fill_value", "order")


@dataclass(frozen=True)
class ChunkInfo:
    """The chunk layout of an array, as ``ZaroMeta.chunk_info()`` reports it."""

    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    shard_shape: tuple[int, ...] | None
    chunk_grid_shape: tuple[int, ...]
    shard_grid_shape: tuple[int, ...] | None
    nchunks: int
    chunk_nbytes: int
    codecs: str
    chunk_key_encoding: str


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
        The chunk shape; for sharded arrays the inner chunk shape. For a rectilinear grid of
        chunks, whose chunks differ in size, the largest edge length along each dimension (a
        shape every chunk fits in): arithmetic on chunks goes through :attr:`chunk_grid`.
    shard_shape
        The shard shape for sharded arrays (for a rectilinear grid of shards the largest),
        else ``None``.
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
    storage_grid
        The grid of stored objects (shards of a sharded array, else chunks): what the V3
        ``chunk_grid`` member declares. A regular grid (the default) is made from
        ``shard_shape`` (or ``chunk_shape``); a rectilinear one is rebound to ``shape``.
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
    attributes: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    node_type: str = "array"
    storage_grid: ChunkGrid = field(default=ChunkGrid(()), kw_only=True, repr=False)

    def __post_init__(self) -> None:
        grid = self.storage_grid
        if grid.name == REGULAR:  # made from the chunk and shard shapes
            grid = ChunkGrid.regular(self.shape, self.shard_shape or self.chunk_shape)
        elif grid.shape != tuple(self.shape):
            grid = grid.with_shape(self.shape)
        object.__setattr__(self, "storage_grid", grid)

    # --------------------------------------------------------------------------- derived
    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @functools.cached_property
    def chunk_grid(self) -> ChunkGrid:
        """The grid of chunks: :attr:`storage_grid`, or for a sharded array the regular grid of
        its inner chunks over the whole array (every shard is a whole number of them)."""
        if self.shard_shape is None:
            return self.storage_grid
        return ChunkGrid.regular(self.shape, self.chunk_shape)

    @property
    def storage_shape(self) -> tuple[int, ...]:
        """Shape of one stored object: the shard if sharded, else the chunk.

        Raises
        ------
        UnsupportedError
            For a rectilinear grid, whose stored objects differ in shape (ask
            :attr:`storage_grid`).
        """
        if not self.storage_grid.is_regular:
            raise UnsupportedError(
                "the chunk grid is rectilinear: its chunks have no one shape", field="chunk_grid"
            )
        return self.shard_shape or self.chunk_shape

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Stored objects along each dimension."""
        return self.storage_grid.grid_shape

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
            if self.dtype == OBJECT and any(
                isinstance(c, VLenBytesCodec) for c in codecs_within(self.codecs)
            ):
                return b""  # a bytes array's, as zarr-python reads it
            return default_fill_value(self.dtype)
        return self.fill_value

    @property
    def nbytes(self) -> int:
        """Uncompressed size in bytes (object arrays count their pointers)."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def chunk_key(self, index: tuple[int, ...]) -> str:
        """The store key, relative to the array, of the stored object at grid ``index``."""
        return self.chunk_key_encoding.chunk_key(index)

    def chunk_info(self) -> ChunkInfo:
        """The chunk layout (for a rectilinear grid, the largest chunk and shard)."""
        grid = self.chunk_grid
        return ChunkInfo(
            shape=self.shape,
            chunk_shape=self.chunk_shape,
            shard_shape=self.shard_shape,
            chunk_grid_shape=grid.grid_shape,
            shard_grid_shape=self.grid_shape if self.shard_shape else None,
            nchunks=grid.nchunks,
            chunk_nbytes=math.prod(self.chunk_shape) * self.dtype.itemsize,
            codecs=self.describe_codecs(),
            chunk_key_encoding=self.chunk_key_encoding.name,
        )

    def describe_codecs(self) -> str:
        """The codec chain as ``bytes -> blosc(lz4) -> crc32c``."""
        return " -> ".join(c.label() for c in self.codecs)

    # --------------------------------------------------------------------------- parsing
    @classmethod
    def from_json(
        cls,
        doc: dict[str, Any],
        attributes: dict[str, Any] | None = None,
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
        ctx: dict[str, Any] = {"url": url, "key": key}
        try:
            if fmt == 2:
                return _parse_v2_array(doc, attributes or {}, allow_unsafe_codecs, ctx)
            if fmt == 3:
                return _parse_v3_array(doc, allow_unsafe_codecs, ctx)
        except RecursionError:
            raise MetadataError("metadata nests too deeply", url=url, key=key) from None
        raise UnsupportedError(
            f"unsupported zarr_format {brief(fmt)}", url=url, key=key, field="zarr_format"
        )

    def to_json(self) -> dict[str, Any]:
        """The metadata document (``zarr.json`` for V3, ``.zarray`` for V2)."""
        if self.zarr_format == 3:
            return _emit_v3_array(self)
        return _emit_v2_array(self)

    def attributes_json(self) -> dict[str, Any]:
        """The attributes as stored (V2 ``.zattrs`` carries ``_ARRAY_DIMENSIONS``)."""
        attrs = dict(self.attributes)
        if self.zarr_format == 2 and self.dimension_names is not None:
            attrs[V2_DIMENSIONS_ATTR] = list(self.dimension_names)
        return attrs


# ------------------------------------------------------------------------------ V3
def _parse_v3_array(doc: dict[str, Any], allow_unsafe: bool, ctx: dict[str, Any]) -> ZaroMeta:
    check_extensions(doc, V3_ARRAY_KEYS, ctx["url"], ctx["key"])
    require_members(doc, _V3_REQUIRED, ctx)
    shape = parse_shape(doc["shape"], ctx)
    dtype = parse_v3_dtype(doc["data_type"], **ctx)
    with in_document(ctx):
        grid, encoding = array_chunk_keys(doc)
    _refuse_storage_transformers(doc.get("storage_transformers") or [], ctx)
    if not isinstance(doc["codecs"], list) or not doc["codecs"]:
        raise MetadataError("codecs must be a non-empty list", field="codecs", **ctx)
    codecs = tuple(
        c
        for c in (codec_from_json(d, allow_unsafe=allow_unsafe, **ctx) for d in doc["codecs"])
        if c is not None
    )
    dtype = with_serialiser_byte_order(dtype, codecs, ctx)
    fill = object_fill(
        parse_fill_value(doc["fill_value"], dtype, zarr_format=3, **ctx), codecs, ctx
    )
    chunk_shape, shard_shape = _chunk_and_shard_shape(grid, codecs, ctx)
    meta = ZaroMeta(
        zarr_format=3,
        shape=shape,
        dtype=dtype,
        chunk_shape=chunk_shape,
        codecs=codecs,
        fill_value=fill,
        chunk_key_encoding=encoding,
        shard_shape=shard_shape,
        dimension_names=parse_dimension_names(
            doc.get("dimension_names"), len(shape), "dimension_names", ctx, nulls=True
        ),
        attributes=parse_attributes(doc.get("attributes"), ctx),
        raw=doc,
        storage_grid=grid,
    )
    _check_chain(meta, ctx)
    return meta


def _refuse_storage_transformers(transformers: Any, ctx: dict[str, Any]) -> None:
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


def _chunk_and_shard_shape(
    grid: ChunkGrid, codecs: tuple[Codec, ...], ctx: dict[str, Any]
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """The chunk shape and (when the chain starts with sharding) the shard shape.

    Every shard must be a whole number of inner chunks: along a rectilinear dimension, every
    edge length it declares (as zarr-python checks it).
    """
    first = codecs[0] if codecs else None
    if not isinstance(first, ShardingCodec):
        return grid.chunk_shape, None
    with in_document(ctx, "codecs"):
        first.chunks_per_shard(grid.chunk_shape)
    for axis, (dim, inner) in enumerate(zip(grid.dimensions, first.chunk_shape)):
        uneven = [edge for edge in dim.edge_lengths() if edge % inner]
        if uneven:
            raise MetadataError(
                f"sharding chunk_shape {list(first.chunk_shape)} must evenly divide every "
                f"shard: dimension {axis} has shards of {uneven[0]}",
                field="codecs",
                **ctx,
            )
    return first.chunk_shape, grid.chunk_shape


def _check_chain(meta: ZaroMeta, ctx: dict[str, Any]) -> None:
    try:
        pipeline_for(meta)
    except MetadataError as e:
        raise type(e)(e.message, field=e.field or "codecs", **ctx) from e


def _emit_v3_array(meta: ZaroMeta) -> dict[str, Any]:
    object_codec = next((c.name for c in meta.codecs if c.kind == ARRAY_BYTES), None)
    doc: dict[str, Any] = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(meta.shape),
        "data_type": v3_dtype_to_json(meta.dtype, object_codec=object_codec),
        "chunk_grid": meta.storage_grid.to_json(),
        "chunk_key_encoding": meta.chunk_key_encoding.to_json(),
        "fill_value": fill_value_to_json(meta.fill_value, meta.dtype, zarr_format=3),
        "codecs": [c.to_json() for c in meta.codecs],
        "attributes": dict(meta.attributes),
    }
    if meta.dimension_names is not None:
        doc["dimension_names"] = list(meta.dimension_names)
    return doc


# ------------------------------------------------------------------------------ V2
def _parse_v2_array(
    doc: dict[str, Any], attrs: dict[str, Any], allow_unsafe: bool, ctx: dict[str, Any]
) -> ZaroMeta:
    require_members(doc, _V2_REQUIRED, ctx)
    with in_document(ctx):
        grid, encoding = array_chunk_keys(doc)
    shape = grid.shape
    dtype = parse_v2_dtype(doc["dtype"], **ctx)
    order = doc["order"]
    if order not in ("C", "F"):
        raise MetadataError(f"order must be 'C' or 'F', got {order!r}", field="order", **ctx)
    chain = v2_codec_chain(doc, dtype, len(shape), allow_unsafe, ctx)
    fill = object_fill(parse_fill_value(doc["fill_value"], dtype, zarr_format=2, **ctx), chain, ctx)
    attrs = dict(attrs)
    dims = parse_dimension_names(
        attrs.pop(V2_DIMENSIONS_ATTR, None), len(shape), V2_DIMENSIONS_ATTR, ctx, nulls=False
    )
    meta = ZaroMeta(
        zarr_format=2,
        shape=shape,
        dtype=dtype,
        chunk_shape=grid.chunk_shape,
        codecs=chain,
        fill_value=fill,
        chunk_key_encoding=encoding,
        order=order,
        dimension_names=dims,
        attributes=attrs,
        raw=doc,
    )
    _check_chain(meta, ctx)
    return meta


def _emit_v2_array(meta: ZaroMeta) -> dict[str, Any]:
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
