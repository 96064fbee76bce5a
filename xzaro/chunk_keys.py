"""Chunk key encodings: the one place that turns a chunk grid index into a store key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xzaro.errors import MetadataError, UnsupportedError


@dataclass(frozen=True)
class ChunkKeyEncoding:
    """A V3 ``chunk_key_encoding`` (``default`` or ``v2``); V2 arrays use ``v2``.

    ``default`` keys are ``c/1/2`` (``c`` for a 0-d array); ``v2`` keys are ``1.2`` (``0`` for a
    0-d array), with the configured separator.
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

    @classmethod
    def from_json(cls, doc: Any) -> ChunkKeyEncoding:
        """Parse the V3 ``chunk_key_encoding`` member (object or bare name)."""
        if isinstance(doc, str):
            doc = {"name": doc}
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
            raise MetadataError(f"invalid chunk_key_encoding {doc!r}", field="chunk_key_encoding")
        name = doc["name"]
        config = doc.get("configuration") or {}
        if not isinstance(config, dict):
            raise MetadataError(
                f"chunk_key_encoding configuration must be an object, got {config!r:.80}",
                field="chunk_key_encoding.configuration",
            )
        default_sep = "/" if name == "default" else "."
        return cls(name, config.get("separator", default_sep))

    def to_json(self) -> dict:
        """The V3 JSON form."""
        return {"name": self.name, "configuration": {"separator": self.separator}}
