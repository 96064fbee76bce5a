"""The codec registry: every codec xzaro implements, read and written in V3 and V2 JSON.

Each codec declares its own V3 ``name`` and, when Zarr V2 can hold it, its V2 ``v2_id`` and the
mapping of its V2 entry (``from_v2``/``to_v2``); :data:`CODECS` lists them once, and the same
table serves both directions. Any other codec is numcodecs' (V3 ``numcodecs.<id>``, or a V2 id
xzaro has no codec of its own for), wrapped by
:class:`~xzaro.codecs.numcodecs_codec.NumcodecsCodec`.
Adding a codec is one module, one line in :data:`CODECS` and one test module.
"""

from __future__ import annotations

from typing import Any

from xzaro.codecs.base import ARRAY_BYTES, Codec
from xzaro.codecs.blosc import BloscCodec
from xzaro.codecs.bytes import BytesCodec
from xzaro.codecs.crc32c import Crc32cCodec
from xzaro.codecs.gzip import GzipCodec
from xzaro.codecs.numcodecs_codec import NumcodecsCodec
from xzaro.codecs.sharding import ShardingCodec
from xzaro.codecs.transpose import TransposeCodec
from xzaro.codecs.vlen import VLenBytesCodec, VLenUTF8Codec
from xzaro.codecs.zlib import ZlibCodec
from xzaro.codecs.zstd import ZstdCodec
from xzaro.errors import MetadataError, UnsupportedError

#: Every codec xzaro implements itself.
CODECS: tuple[type[Codec], ...] = (
    TransposeCodec,
    BytesCodec,
    VLenUTF8Codec,
    VLenBytesCodec,
    ShardingCodec,
    GzipCodec,
    ZlibCodec,
    ZstdCodec,
    BloscCodec,
    Crc32cCodec,
)
_BY_NAME: dict[str, type[Codec]] = {cls.name: cls for cls in CODECS}
_BY_V2_ID: dict[str, type[Codec]] = {cls.v2_id: cls for cls in CODECS if cls.v2_id is not None}
_NUMCODECS_PREFIX = "numcodecs."


def codec_from_json(
    doc: Any,
    *,
    allow_unsafe: bool = False,
    url: str | None = None,
    key: str | None = None,
) -> Codec | None:
    """Build a codec from its V3 JSON (an object or a bare name).

    Returns ``None`` for an unknown codec marked ``"must_understand": false`` (it may be
    ignored); any other unknown codec raises :class:`~xzaro.errors.UnsupportedError`.
    """
    if isinstance(doc, str):
        doc = {"name": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise MetadataError(f"invalid codec {doc!r}", url=url, key=key, field="codecs")
    name = doc["name"]
    config = doc.get("configuration") or {}
    if not isinstance(config, dict):
        raise MetadataError(
            f"configuration of codec {name!r} must be an object", url=url, key=key, field="codecs"
        )
    if name.startswith(_NUMCODECS_PREFIX):
        return NumcodecsCodec.from_id(
            name.removeprefix(_NUMCODECS_PREFIX),
            config,
            allow_unsafe=allow_unsafe,
            url=url,
            key=key,
        )
    cls = _BY_NAME.get(name)
    if cls is None:
        if doc.get("must_understand") is False:
            return None
        raise UnsupportedError(f"unknown codec {name!r}", url=url, key=key, field="codecs")
    try:
        return cls.from_config(_with_chains(cls, config))
    except (TypeError, ValueError, KeyError) as e:
        if isinstance(e, MetadataError):
            raise MetadataError(e.message, url=url, key=key, field=e.field or "codecs") from e
        raise MetadataError(
            f"invalid configuration for codec {name!r}: {e}", url=url, key=key, field="codecs"
        ) from e


def _with_chains(cls: type[Codec], config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the members holding codec chains (sharding's) parsed into codecs."""
    if not cls.nested_chains:
        return config
    parsed = dict(config)
    for member in cls.nested_chains:
        if member not in config:
            continue
        docs = config[member]
        if not isinstance(docs, (list, tuple)):
            raise MetadataError(f"{cls.name} {member} must be a list", field="codecs")
        parsed[member] = tuple(c for c in (codec_from_json(d) for d in docs) if c is not None)
    return parsed


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
    cls = _BY_V2_ID.get(codec_id)
    if filter and (cls is None or cls.kind != ARRAY_BYTES):
        codec = NumcodecsCodec.from_id(codec_id, rest, allow_unsafe=allow_unsafe, url=url, key=key)
        return codec.as_v2_filter(codec.kind != ARRAY_BYTES)
    if cls is None:
        return NumcodecsCodec.from_id(codec_id, rest, allow_unsafe=allow_unsafe, url=url, key=key)
    try:
        return cls.from_v2(rest)
    except MetadataError as e:
        raise MetadataError(e.message, url=url, key=key, field="compressor") from e


def v2_codec_json(
    codecs: tuple[Codec, ...],
) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    """V2 ``filters`` and ``compressor`` for a chain (inverse of the V2 mapping in meta).

    Codecs that V2 keeps in an array member (the transpose of an ``order: F`` array, the
    ``bytes`` serialiser's byte order in the ``dtype``) have no entry; the last entry is the
    compressor when it says so (:meth:`~xzaro.codecs.base.Codec.is_v2_compressor`), the others
    are filters.
    """
    entries = [c for c in codecs if c.v2_member is None]
    compressor = None
    if entries and entries[-1].is_v2_compressor(alone=len(entries) == 1):
        compressor = entries.pop().to_v2()
    filters = [c.to_v2() for c in entries]
    return (filters or None), compressor
