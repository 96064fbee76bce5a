"""The codec model shared by every codec: chunk specs, the three codec kinds, the registry.

A codec chain is ``array->array* , array->bytes , bytes->bytes*`` as in the Zarr V3 spec. V2
arrays are mapped onto the same chain (see :mod:`xzaro.meta`), so one decode path serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from xzaro.errors import MetadataError, UnsafeCodecError, UnsupportedError

ARRAY_ARRAY = "array_array"
ARRAY_BYTES = "array_bytes"
BYTES_BYTES = "bytes_bytes"


@dataclass(frozen=True)
class ChunkSpec:
    """What a codec sees on its decoded side: the chunk shape, dtype and fill value.

    ``shape`` is ``None`` when an earlier codec's output shape cannot be known in advance (some
    V2 numcodecs filters); the bytes are then handled as a flat buffer.
    """

    shape: tuple[int, ...] | None
    dtype: np.dtype
    fill_value: Any = None

    @property
    def nbytes(self) -> int | None:
        """Size of the decoded chunk in bytes, if it is fixed."""
        if self.shape is None or self.dtype.hasobject:
            return None
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


class Codec:
    """Base class of every codec: an immutable value that knows its own JSON."""

    name: ClassVar[str]
    kind: ClassVar[str]

    def to_json(self) -> dict:
        """The V3 JSON form ``{"name": ..., "configuration": {...}}``."""
        config = self.configuration()
        return {"name": self.name, "configuration": config} if config else {"name": self.name}

    def configuration(self) -> dict:
        """The codec's configuration object."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Codec:
        """Build the codec from its configuration object."""
        return cls(**config)

    def label(self) -> str:
        """A short human label, such as ``blosc(lz4)``, for ``xzaro info``."""
        return self.name


class ArrayArrayCodec(Codec):
    """A codec from array to array (``transpose``, numcodecs filters)."""

    kind = ARRAY_ARRAY

    def resolve(self, spec: ChunkSpec) -> ChunkSpec:
        """The spec of this codec's encoded side, given its decoded side."""
        return spec

    def decode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        """Decode ``arr`` into an array of ``spec`` (this codec's decoded side)."""
        raise NotImplementedError

    def encode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        """Encode an array of ``spec``."""
        raise NotImplementedError


class ArrayBytesCodec(Codec):
    """The codec that serialises the array to bytes (``bytes``, ``vlen-*``, sharding)."""

    kind = ARRAY_BYTES

    def encoded_size(self, spec: ChunkSpec) -> int | None:
        """Size of the serialised chunk, when fixed."""
        return None

    def decode_to_array(self, data: Any, spec: ChunkSpec) -> np.ndarray:
        """Deserialise ``data`` into an array of ``spec``."""
        raise NotImplementedError

    def encode_from_array(self, arr: np.ndarray, spec: ChunkSpec) -> bytes:
        """Serialise an array of ``spec``."""
        raise NotImplementedError


class BytesBytesCodec(Codec):
    """A codec from bytes to bytes (compressors, checksums)."""

    kind = BYTES_BYTES

    def encoded_size(self, size: int | None) -> int | None:
        """Encoded size for a given input size, when fixed (checksums); ``None`` if not."""
        return None

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        """Decode ``data``, which must decode to ``expected_size`` bytes when that is known.

        ``out`` is a buffer of exactly that size the codec may decode into (and return).
        """
        raise NotImplementedError

    def encode_bytes(self, data: Any) -> bytes:
        """Encode ``data``."""
        raise NotImplementedError


@runtime_checkable
class V3CodecLike(Protocol):
    """A foreign codec object that gives its V3 JSON, as zarr-python's codecs do."""

    def to_dict(self) -> Any:
        """``{"name": ..., "configuration": {...}}``."""


_REGISTRY: dict[str, type[Codec]] = {}

#: numcodecs ids whose decoding can execute arbitrary code; refused unless the caller opts in.
UNSAFE_CODEC_IDS = frozenset({"pickle"})


def register(cls: type[Codec]) -> type[Codec]:
    """Class decorator adding a codec to the registry under its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def _numcodecs_codec_class() -> type[Codec]:
    from xzaro.codecs.numcodecs_codec import NumcodecsCodec

    return NumcodecsCodec


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
    if name.startswith("numcodecs."):
        return _numcodecs_codec_class().from_id(  # type: ignore[attr-defined]
            name.removeprefix("numcodecs."), config, allow_unsafe=allow_unsafe, url=url, key=key
        )
    cls = _REGISTRY.get(name)
    if cls is None:
        if doc.get("must_understand") is False:
            return None
        raise UnsupportedError(f"unknown codec {name!r}", url=url, key=key, field="codecs")
    try:
        return cls.from_config(config)
    except (TypeError, ValueError, KeyError) as e:
        if isinstance(e, MetadataError):
            raise MetadataError(e.message, url=url, key=key, field=e.field or "codecs") from e
        raise MetadataError(
            f"invalid configuration for codec {name!r}: {e}", url=url, key=key, field="codecs"
        ) from e


def check_safe(codec_id: str, allow_unsafe: bool, *, url: str | None, key: str | None) -> None:
    """Refuse codecs that can run code unless the caller explicitly allowed them."""
    if codec_id in UNSAFE_CODEC_IDS and not allow_unsafe:
        raise UnsafeCodecError(
            f"codec {codec_id!r} can execute arbitrary code while decoding; "
            "pass allow_unsafe_codecs=True if you trust this store",
            url=url,
            key=key,
            field="codecs",
        )
