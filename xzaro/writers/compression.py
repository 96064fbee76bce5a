"""``BloscCompressionParams``: the Blosc settings a writer takes, a factory of the Blosc codec."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xzaro.codecs import BloscCodec, ChunkSpec
from xzaro.codecs.blosc import BLOSC_SHUFFLES, BLOSC_WRITTEN_CNAMES


@dataclass(frozen=True)
class BloscCompressionParams:
    """Blosc settings for writing: compressor name, level (0-9) and shuffle mode.

    A small value that makes the codec-layer :class:`~xzaro.codecs.BloscCodec`: ``codec(dtype)``
    gives the codec (with the dtype's ``typesize``), ``to_v2_json()`` and ``to_v3_json(dtype)``
    the metadata each format stores for it.

    Parameters
    ----------
    cname
        One of the compressors numcodecs' c-blosc has (``"lz4"``, ``"lz4hc"``, ``"zstd"``,
        ``"zlib"``, ``"blosclz"``).
    clevel
        An integer from 0 (no compression) to 9.
    shuffle
        ``"noshuffle"``, ``"shuffle"`` (bytes) or ``"bitshuffle"``.

    Raises
    ------
    ValueError
        For any other value.
    """

    cname: str = "zstd"
    clevel: int = 5
    shuffle: str = "shuffle"

    def __post_init__(self) -> None:
        if self.cname not in BLOSC_WRITTEN_CNAMES:
            raise ValueError(f"cname must be one of {BLOSC_WRITTEN_CNAMES}, got {self.cname!r}")
        if not isinstance(self.clevel, int) or not 0 <= self.clevel <= 9:
            raise ValueError(f"clevel must be an integer from 0 to 9, got {self.clevel!r}")
        if self.shuffle not in BLOSC_SHUFFLES:
            raise ValueError(f"shuffle must be one of {BLOSC_SHUFFLES}, got {self.shuffle!r}")

    def codec(self, dtype: np.dtype | None = None) -> BloscCodec:
        """The codec-layer Blosc codec (``typesize`` from ``dtype``, when given)."""
        codec = BloscCodec(self.cname, self.clevel, self.shuffle)
        return codec if dtype is None else codec.evolve_from_spec(ChunkSpec(None, np.dtype(dtype)))

    def to_v2_json(self) -> dict:
        """The V2 ``compressor`` object."""
        return self.codec().to_v2()

    def to_v3_json(self, dtype: np.dtype) -> dict:
        """The V3 ``blosc`` codec object (with ``typesize``)."""
        return self.codec(np.dtype(dtype)).to_json()
