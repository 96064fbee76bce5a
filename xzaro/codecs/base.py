"""The codec model shared by every codec: chunk specs, the three codec kinds, both JSON forms.

A codec chain is ``array->array* , array->bytes , bytes->bytes*`` as in the Zarr V3 spec. V2
arrays are mapped onto the same chain (see :mod:`xzaro.meta`), so one decode path serves both.
Each codec declares its V3 ``name`` and, when Zarr V2 can hold it, its V2 ``v2_id`` and how its V2
entry maps to it and back; :mod:`xzaro.codecs.registry` lists them all.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from xzaro.errors import MetadataError, UnsafeCodecError

ARRAY_ARRAY = "array_array"
ARRAY_BYTES = "array_bytes"
BYTES_BYTES = "bytes_bytes"

#: numcodecs ids whose decoding can execute arbitrary code; refused unless the caller opts in.
UNSAFE_CODEC_IDS = frozenset({"pickle"})


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
        return math.prod(self.shape) * self.dtype.itemsize


class Codec:
    """Base class of every codec: an immutable value that knows its own JSON, in both formats."""

    #: The V3 name.
    name: ClassVar[str]
    kind: ClassVar[str]
    #: The V2 ``id`` (``filters``/``compressor`` entry), ``None`` for a codec V2 cannot hold.
    v2_id: ClassVar[str | None] = None
    #: The V2 array member that holds this codec instead of an entry (``order``, ``dtype``).
    v2_member: ClassVar[str | None] = None
    #: Members of the configuration that hold codec chains (parsed by the registry).
    nested_chains: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        """The V3 JSON form ``{"name": ..., "configuration": {...}}``."""
        config = self.configuration()
        return {"name": self.name, "configuration": config} if config else {"name": self.name}

    def configuration(self) -> dict[str, Any]:
        """The codec's configuration object."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Codec:
        """Build the codec from its configuration object."""
        return cls(**config)

    @classmethod
    def from_v2(cls, config: dict[str, Any]) -> Codec:
        """Build the codec from the members of its V2 entry (all but ``id``)."""
        return cls.from_config(config)

    def to_v2(self) -> dict[str, Any]:
        """The V2 ``filters``/``compressor`` entry ``{"id": ..., ...}``."""
        if self.v2_id is None:
            raise MetadataError(f"codec {self.name!r} has no Zarr V2 form", field="codecs")
        return {"id": self.v2_id, **self.configuration()}

    def is_v2_compressor(self, alone: bool) -> bool:
        """Whether this codec, the last of a chain's V2 entries, is written as the V2
        ``compressor`` rather than as the last filter (``alone``: it is the only entry)."""
        return self.kind == BYTES_BYTES

    def evolve_from_spec(self, spec: ChunkSpec) -> Codec:
        """The resolve step: this codec with the settings that depend on the chunk it encodes
        (its data type, for Blosc's ``typesize``) filled in from ``spec``, this codec's decoded
        side. Codecs with no such setting return themselves."""
        return self

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
    #: Whether :meth:`encode_into` can encode into a caller's buffer (Blosc).
    encodes_into: ClassVar[bool] = False

    def encoded_size(self, size: int | None) -> int | None:
        """Encoded size for a given input size, when fixed (checksums); ``None`` if not."""
        return None

    def decode_bytes(self, data: Any, expected_size: int | None, out: Any = None) -> Any:
        """Decode ``data``, which must decode to ``expected_size`` bytes when that is known.

        ``out`` is a buffer of exactly that size the codec may decode into (and return).
        """
        raise NotImplementedError

    def decoder_at(self, raw: np.ndarray, size: int) -> Callable[[Any, int], None] | None:
        """A decoder of frames of ``size`` decoded bytes into ``raw`` (a flat, writable uint8
        array): ``decode(data, at)`` decodes ``data`` into ``raw[at : at + size]`` with no
        view of ``raw`` per frame (the loop over thousands of tiny chunks), raising
        :class:`~xzaro.errors.DecodeError` for a frame of another size; ``None`` where the
        codec has none (then :meth:`decode_bytes`). For the calling thread only."""
        return None

    def encode_bytes(self, data: Any) -> bytes:
        """Encode ``data``."""
        raise NotImplementedError

    def encode_into(self, data: Any, out: np.ndarray) -> int | None:
        """Encode ``data`` into ``out`` (uint8, a buffer the caller reuses) and return the
        encoded size, or ``None`` when it cannot (``out`` too small, or the library does not
        allow it): then call :meth:`encode_bytes`. Only codecs declaring
        :attr:`encodes_into` implement it."""
        return None


@runtime_checkable
class V3CodecLike(Protocol):
    """A foreign codec object that gives its V3 JSON, as zarr-python's codecs do."""

    def to_dict(self) -> Any:
        """``{"name": ..., "configuration": {...}}``."""


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


def integer_setting(codec: str, setting: str, value: Any, low: int, high: int) -> int:
    """``value`` of a codec's integer ``setting``, checked to lie in ``[low, high]``: a
    setting of another type or out of range is refused when the metadata is read, not when a
    write first compresses with it.

    Raises
    ------
    MetadataError
        Naming the codec, the setting and the value (field ``codecs``).
    """
    integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integer or not low <= int(value) <= high:
        raise MetadataError(
            f"{codec} {setting} must be an integer from {low} to {high}, got {value!r:.80}",
            field="codecs",
        )
    return int(value)


def flag_setting(codec: str, setting: str, value: Any) -> bool:
    """``value`` of a codec's true/false ``setting`` (a JSON boolean, or 0 or 1).

    Raises
    ------
    MetadataError
        Naming the codec, the setting and the value (field ``codecs``).
    """
    if isinstance(value, bool) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise MetadataError(
        f"{codec} {setting} must be true or false, got {value!r:.80}", field="codecs"
    )
