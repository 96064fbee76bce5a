"""The one codec layer: V3-style codec chains serving both V2 and V3 arrays.

:mod:`~xzaro.codecs.base` defines the codec model, :mod:`~xzaro.codecs.registry` lists every
codec and reads and writes their V3 and V2 JSON, :mod:`~xzaro.codecs.pipeline` runs a chain on
whole chunks; each codec (or small family) has its own module.
"""

from __future__ import annotations

from xzaro.codecs.base import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    ChunkSpec,
    Codec,
    V3CodecLike,
)
from xzaro.codecs.blosc import BLOSC_MAX_OVERHEAD, BloscCodec
from xzaro.codecs.bytes import BytesCodec
from xzaro.codecs.crc32c import Crc32cCodec
from xzaro.codecs.gzip import GzipCodec
from xzaro.codecs.numcodecs_codec import OBJECT_CODEC_IDS, NumcodecsCodec
from xzaro.codecs.pipeline import CodecPipeline, pipeline_for
from xzaro.codecs.registry import CODECS, codec_from_json, codec_from_v2, v2_codec_json
from xzaro.codecs.shard_index import ShardIndex
from xzaro.codecs.sharding import ShardingCodec
from xzaro.codecs.transpose import TransposeCodec
from xzaro.codecs.vlen import VLenBytesCodec, VLenCodec, VLenUTF8Codec
from xzaro.codecs.zlib import ZlibCodec
from xzaro.codecs.zstd import ZstdCodec

__all__ = [
    "ARRAY_ARRAY",
    "ARRAY_BYTES",
    "BLOSC_MAX_OVERHEAD",
    "BYTES_BYTES",
    "CODECS",
    "OBJECT_CODEC_IDS",
    "BloscCodec",
    "BytesCodec",
    "ChunkSpec",
    "Codec",
    "CodecPipeline",
    "Crc32cCodec",
    "GzipCodec",
    "NumcodecsCodec",
    "ShardIndex",
    "ShardingCodec",
    "TransposeCodec",
    "V3CodecLike",
    "VLenBytesCodec",
    "VLenCodec",
    "VLenUTF8Codec",
    "ZlibCodec",
    "ZstdCodec",
    "codec_from_json",
    "codec_from_v2",
    "pipeline_for",
    "v2_codec_json",
]
