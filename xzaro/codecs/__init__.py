"""The one codec layer: V3-style codec chains serving both V2 and V3 arrays."""

from __future__ import annotations

from typing import Any

from xzaro.codecs.array_codecs import BytesCodec, TransposeCodec, VLenBytesCodec, VLenUTF8Codec
from xzaro.codecs.base import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    ChunkSpec,
    Codec,
    V3CodecLike,
    codec_from_json,
)
from xzaro.codecs.compression import BloscCodec, Crc32cCodec, GzipCodec, ZlibCodec, ZstdCodec
from xzaro.codecs.numcodecs_codec import NumcodecsCodec
from xzaro.codecs.pipeline import CodecPipeline
from xzaro.codecs.sharding import ShardingCodec
from xzaro.errors import MetadataError

__all__ = [
    "ARRAY_ARRAY",
    "ARRAY_BYTES",
    "BYTES_BYTES",
    "BloscCodec",
    "BytesCodec",
    "ChunkSpec",
    "Codec",
    "CodecPipeline",
    "Crc32cCodec",
    "GzipCodec",
    "NumcodecsCodec",
    "ShardingCodec",
    "TransposeCodec",
    "V3CodecLike",
    "VLenBytesCodec",
    "VLenUTF8Codec",
    "ZlibCodec",
    "ZstdCodec",
    "codec_from_json",
    "codec_from_v2",
    "pipeline_for",
    "v2_codec_json",
]


def codec_from_v2(
    config: Any,
    *,
    filter: bool = False,
    allow_unsafe: bool = False,
    url: str | None = None,
    key: str | None = None,
) -> Codec:
    """Build a codec from a V2 ``compressor`` or ``filters`` entry (``{"id": ..., ...}``).

    A filter (``filter=True``) works on the chunk before it is serialised, so every filter but
    the object codecs becomes an array->array codec, whatever its numcodecs kind.
    """
    if not isinstance(config, dict) or not isinstance(config.get("id"), str):
        raise MetadataError(f"invalid V2 codec {config!r}", url=url, key=key, field="compressor")
    codec_id = config["id"]
    rest = {k: v for k, v in config.items() if k != "id"}
    if filter and codec_id not in ("vlen-utf8", "vlen-bytes"):
        codec = NumcodecsCodec.from_id(codec_id, rest, allow_unsafe=allow_unsafe, url=url, key=key)
        return codec.as_v2_filter(codec.kind != ARRAY_BYTES)
    try:
        if codec_id == "blosc":
            return BloscCodec(
                cname=rest.get("cname", "lz4"),
                clevel=rest.get("clevel", 5),
                shuffle=rest.get("shuffle", 1),
                blocksize=rest.get("blocksize", 0),
            )
        if codec_id == "gzip":
            return GzipCodec(level=rest.get("level", 5))
        if codec_id == "zlib":
            return ZlibCodec(level=rest.get("level", 1))
        if codec_id == "zstd":
            return ZstdCodec(level=rest.get("level", 0), checksum=rest.get("checksum", False))
        if codec_id == "vlen-utf8":
            return VLenUTF8Codec()
        if codec_id == "vlen-bytes":
            return VLenBytesCodec()
    except MetadataError as e:
        raise MetadataError(e.message, url=url, key=key, field="compressor") from e
    return NumcodecsCodec.from_id(codec_id, rest, allow_unsafe=allow_unsafe, url=url, key=key)


def pipeline_for(meta: Any) -> CodecPipeline:
    """The pipeline decoding one stored object (a chunk, or a whole shard) of ``meta``'s array."""
    shape = meta.shard_shape or meta.chunk_shape
    return CodecPipeline(meta.codecs, shape, meta.dtype, meta.fill_value_or_default)


def _v2_entry(codec: Codec) -> dict:
    if isinstance(codec, BloscCodec):
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[codec.shuffle]
        return {
            "id": "blosc",
            "cname": codec.cname,
            "clevel": codec.clevel,
            "shuffle": shuffle,
            "blocksize": codec.blocksize,
        }
    if isinstance(codec, (GzipCodec, ZlibCodec)):
        return {"id": codec.name, "level": codec.level}
    if isinstance(codec, ZstdCodec):
        return {
            "id": "zstd",
            "level": codec.level,
            **({"checksum": True} if codec.checksum else {}),
        }
    if isinstance(codec, (Crc32cCodec, VLenUTF8Codec, VLenBytesCodec)):
        return {"id": codec.name}
    if isinstance(codec, NumcodecsCodec):
        return codec.to_v2()
    raise MetadataError(f"codec {codec.name!r} has no Zarr V2 form", field="codecs")


def _is_v2_compressor(codec: Codec, entries: int) -> bool:
    """Whether the last of ``entries`` V2 entries, ``codec``, is the V2 ``compressor``."""
    if isinstance(codec, NumcodecsCodec) and codec.kind == ARRAY_BYTES:
        # pcodec, zfpy: zarr-python 2 hands the compressor the chunk array, which they serialise
        return not codec.serialises_objects
    return codec.kind == BYTES_BYTES and not (entries > 1 and isinstance(codec, Crc32cCodec))


def v2_codec_json(codecs: tuple[Codec, ...]) -> tuple[list[dict] | None, dict | None]:
    """V2 ``filters`` and ``compressor`` for a chain (inverse of the V2 mapping in meta).

    The transpose of an ``order: F`` array and the ``bytes`` serialiser have no V2 entry (they
    are the ``order`` and ``dtype`` members); the last bytes->bytes codec, or a numeric
    array->bytes numcodecs codec (``pcodec``, ``zfpy``) that ends the chain, is the compressor.
    """
    entries = [c for c in codecs if not isinstance(c, (TransposeCodec, BytesCodec))]
    compressor = None
    if entries and _is_v2_compressor(entries[-1], len(entries)):
        compressor = _v2_entry(entries.pop())
    filters = [_v2_entry(c) for c in entries]
    return (filters or None), compressor
