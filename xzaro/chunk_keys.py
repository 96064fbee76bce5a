"""Chunk key encodings: the one place that turns a chunk grid index into a store key and back.

:func:`array_chunk_keys` reads the chunk grid and the encoding of an array document alone, for
a store that must tell chunk keys from other keys (a reference store) below the metadata layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xzaro.chunk_grid import ChunkGrid, parse_extents
from xzaro.errors import MetadataError, UnsupportedError, brief

#: Digits of the largest chunk grid index (below ``2**63``).
_MAX_DIGITS = 19


@dataclass(frozen=True)
class ChunkKeyEncoding:
    """A V3 ``chunk_key_encoding`` (``default`` or ``v2``); V2 arrays use ``v2``.

    ``default`` keys are ``c/1/2`` (``c`` for a 0-d array); ``v2`` keys are ``1.2`` (``0`` for a
    0-d array), with the configured separator. :meth:`chunk_key` encodes a chunk grid index,
    :meth:`chunk_index` decodes a key.
    """

    name: str = "default"
    separator: str = "/"

    def __post_init__(self) -> None:
        if self.name not in ("default", "v2"):
            raise UnsupportedError(
                f"unknown chunk key encoding {self.name!r}", field="chunk_key_encoding"
            )
        if self.separator not in ("/", "."):
            raise MetadataError(
                f"chunk key separator must be '/' or '.', got {self.separator!r}",
                field="chunk_key_encoding",
            )

    def chunk_key(self, index: tuple[int, ...]) -> str:
        """The store key (relative to the array) of the chunk at grid ``index``."""
        if self.name == "default":
            return self.separator.join(["c", *map(str, index)])
        return self.separator.join(map(str, index)) if index else "0"

    def keys_below(self, prefix: str = "") -> Callable[[tuple[int, ...]], str]:
        """``key(index)``: ``prefix`` + :meth:`chunk_key` (``index``), made once for the reads
        that name thousands of chunks."""
        join = self.separator.join
        if self.name == "default":
            head = f"{prefix}c{self.separator}"

            def default_key(index: tuple[int, ...]) -> str:
                return head + join(map(str, index)) if index else f"{prefix}c"

            return default_key

        def v2_key(index: tuple[int, ...]) -> str:
            return prefix + (join(map(str, index)) if index else "0")

        return v2_key

    def chunk_index(self, key: str, grid_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The chunk grid index a key (relative to the array) names: :meth:`chunk_key` undone.

        Parameters
        ----------
        key
            The chunk key.
        grid_shape
            Chunks along each dimension: the key must name one of them.

        Raises
        ------
        MetadataError
            Naming the key, if it is not the key of a chunk in ``grid_shape`` in this encoding
            (another spelling, signs, leading zeros, too few or too many parts, beyond the grid).
        """
        rest = key
        if self.name == "default":
            if key == "c" and not grid_shape:
                return ()
            if not key.startswith("c" + self.separator):
                raise self._not_a_key(key, grid_shape)
            rest = key[2:]
        elif not grid_shape:
            if key == "0":
                return ()
            raise self._not_a_key(key, grid_shape)
        parts = rest.split(self.separator)
        if len(parts) != len(grid_shape):
            raise self._not_a_key(key, grid_shape)
        index = []
        for part, n in zip(parts, grid_shape):
            # plain decimal numbers: no signs, other digits or leading zeros
            if (
                not (
                    part.isascii()
                    and part.isdigit()
                    and len(part) <= _MAX_DIGITS
                    and (part[0] != "0" or part == "0")
                )
                or int(part) >= n
            ):
                raise self._not_a_key(key, grid_shape)
            index.append(int(part))
        return tuple(index)

    def _not_a_key(self, key: str, grid_shape: tuple[int, ...]) -> MetadataError:
        example = self.chunk_key((0,) * len(grid_shape))
        return MetadataError(
            f"not the key of a chunk in a grid of {list(grid_shape)} chunks with the "
            f"{self.name!r} chunk key encoding (separator {self.separator!r}, as {example!r})",
            key=key,
            field="chunk_key_encoding",
        )

    @classmethod
    def from_json(cls, doc: Any) -> ChunkKeyEncoding:
        """Parse the V3 ``chunk_key_encoding`` member (object or bare name)."""
        if isinstance(doc, str):
            doc = {"name": doc}
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
            raise MetadataError(
                f"invalid chunk_key_encoding {brief(doc)}", field="chunk_key_encoding"
            )
        name = doc["name"]
        config = doc.get("configuration") or {}
        if not isinstance(config, dict):
            raise MetadataError(
                f"chunk_key_encoding configuration must be an object, got {config!r:.80}",
                field="chunk_key_encoding",
            )
        # An unknown member (a separator beside the configuration, a misspelt one) would be
        # ignored and every chunk looked for under other keys, reading as fill.
        _check_members(doc, _MEMBERS, "chunk_key_encoding")
        _check_members(config, _CONFIG_MEMBERS, "chunk_key_encoding configuration")
        default_sep = "/" if name == "default" else "."
        return cls(name, config.get("separator", default_sep))

    @classmethod
    def from_v2(cls, dimension_separator: Any) -> ChunkKeyEncoding:
        """The encoding of a V2 array with ``dimension_separator`` (``None``: ``"."``).

        Raises
        ------
        MetadataError
            Naming the field ``dimension_separator``, for a separator other than ``.`` or ``/``.
        """
        separator = dimension_separator or "."
        if separator not in (".", "/"):
            raise MetadataError(
                f"dimension_separator must be '.' or '/', got {brief(separator)}",
                field="dimension_separator",
            )
        return cls("v2", separator)

    def to_json(self) -> dict[str, Any]:
        """The V3 JSON form."""
        return {"name": self.name, "configuration": {"separator": self.separator}}


#: The members a ``chunk_key_encoding`` object and its configuration may have.
_MEMBERS = frozenset({"name", "configuration", "must_understand"})
_CONFIG_MEMBERS = frozenset({"separator"})


def _check_members(doc: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(str(k) for k in doc if k not in allowed)
    if unknown:
        raise MetadataError(
            f"{what} has unknown members {brief(unknown)} (it may have {sorted(allowed)})",
            field="chunk_key_encoding",
        )


def array_chunk_keys(doc: dict[str, Any]) -> tuple[ChunkGrid, ChunkKeyEncoding]:
    """The chunk grid and chunk key encoding of an array document (``.zarray`` or an array
    ``zarr.json``), read without the rest of its metadata.

    Raises
    ------
    MetadataError
        Naming the field, for a shape, grid or encoding that is missing or malformed.
    """
    if doc.get("zarr_format") == 3:
        shape = parse_extents(doc.get("shape"), "shape")
        grid = ChunkGrid.from_json(doc.get("chunk_grid"), shape)
        return grid, ChunkKeyEncoding.from_json(doc.get("chunk_key_encoding"))
    shape = parse_extents(doc.get("shape"), "shape")
    chunks = parse_extents(doc.get("chunks"), "chunks", positive=True)
    if len(chunks) != len(shape):
        raise MetadataError(
            f"chunks {list(chunks)} and shape {list(shape)} differ in length", field="chunks"
        )
    return ChunkGrid.regular(shape, chunks), ChunkKeyEncoding.from_v2(
        doc.get("dimension_separator")
    )
