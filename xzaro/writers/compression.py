"""``BloscCompressionParams``: one small value that emits V2 and V3 Blosc JSON alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xzaro.codecs import BloscCodec

_SHUFFLES = ("noshuffle", "shuffle", "bitshuffle")
_CNAMES = ("lz4", "lz4hc", "zstd", "zlib", "blosclz")


@dataclass(frozen=True)
class BloscCompressionParams:
    """Blosc settings for writing: compressor name, level (1-9) and shuffle mode.

    ``codec(dtype)`` gives the codec-layer object (with the dtype's ``typesize``);
    ``to_v2_json()`` and ``to_v3_json(dtype)`` the metadata each format stores.
    """

    cname: str = "zstd"
    clevel: int = 5
    shuffle: str = "shuffle"

    def __post_init__(self) -> None:
        if self.cname not in _CNAMES:
            raise ValueError(f"cname must be one of {_CNAMES}, got {self.cname!r}")
        if not isinstance(self.clevel, int) or not 0 <= self.clevel <= 9:
            raise ValueError(f"clevel must be an integer from 0 to 9, got {self.clevel!r}")
        if self.shuffle not in _SHUFFLES:
            raise ValueError(f"shuffle must be one of {_SHUFFLES}, got {self.shuffle!r}")

    def codec(self, dtype: np.dtype | None = None) -> BloscCodec:
        """The codec-layer Blosc codec (``typesize`` from ``dtype``)."""
        typesize = None if dtype is None or dtype.hasobject else max(1, dtype.itemsize)
        return BloscCodec(self.cname, self.clevel, self.shuffle, typesize)

    def to_v2_json(self) -> dict:
        """The V2 ``compressor`` object."""
        return {
            "id": "blosc",
            "cname": self.cname,
            "clevel": self.clevel,
            "shuffle": _SHUFFLES.index(self.shuffle),
            "blocksize": 0,
        }

    def to_v3_json(self, dtype: np.dtype) -> dict:
        """The V3 ``blosc`` codec object (with ``typesize``)."""
        return self.codec(np.dtype(dtype)).to_json()
