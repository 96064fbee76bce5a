"""``GroupMeta``, and parsing any node document (array or group, V2 or V3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xzaro.errors import MetadataError, UnsupportedError, brief
from xzaro.meta.array import ZaroMeta
from xzaro.meta.fields import check_extensions, parse_attributes

_V3_GROUP_KEYS = frozenset({"zarr_format", "node_type", "attributes", "consolidated_metadata"})


@dataclass(frozen=True)
class GroupMeta:
    """Metadata of one group, V2 or V3.

    ``consolidated`` maps paths (relative to this group) to the metadata documents of every node
    below it, when the group carries consolidated metadata, else ``None``.
    """

    zarr_format: int
    attributes: dict[str, Any] = field(default_factory=dict)
    consolidated: dict[str, dict[str, Any]] | None = field(default=None, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    node_type: str = "group"

    def to_json(self) -> dict[str, Any]:
        """The metadata document (``zarr.json`` for V3, ``.zgroup`` for V2)."""
        if self.zarr_format == 3:
            return {"zarr_format": 3, "node_type": "group", "attributes": dict(self.attributes)}
        return {"zarr_format": 2}

    @classmethod
    def from_json(
        cls,
        doc: dict[str, Any],
        attributes: dict[str, Any] | None = None,
        *,
        allow_unsafe_codecs: bool = False,
        url: str | None = None,
        key: str | None = None,
    ) -> GroupMeta:
        """Parse a ``.zgroup`` (with its ``.zattrs``) or a group ``zarr.json``."""
        fmt = doc.get("zarr_format") if isinstance(doc, dict) else None
        if fmt == 2:
            return cls(2, dict(attributes or {}), raw=doc)
        if fmt != 3:
            raise UnsupportedError(
                f"unsupported zarr_format {brief(fmt)}", url=url, key=key, field="zarr_format"
            )
        check_extensions(doc, _V3_GROUP_KEYS, url, key)
        attrs = parse_attributes(doc.get("attributes"), {"url": url, "key": key})
        consolidated = None
        cm = doc.get("consolidated_metadata")
        if isinstance(cm, dict) and isinstance(cm.get("metadata"), dict):
            # Kept as documents: each node is parsed when it is used, so one node xzaro
            # cannot read does not make the others unreachable.
            consolidated = {path.strip("/"): node for path, node in cm["metadata"].items()}
        return cls(3, attrs, consolidated, raw=doc)


def node_from_json(
    doc: Any,
    attributes: dict[str, Any] | None = None,
    *,
    allow_unsafe_codecs: bool = False,
    url: str | None = None,
    key: str | None = None,
) -> ZaroMeta | GroupMeta:
    """Parse any node document (array or group, V2 or V3)."""
    if not isinstance(doc, dict):
        raise MetadataError(
            f"metadata must be a JSON object, got {type(doc).__name__}", url=url, key=key
        )
    node_type = doc.get("node_type")
    is_array = node_type == "array" if doc.get("zarr_format") == 3 else "shape" in doc
    if doc.get("zarr_format") == 3 and node_type not in ("array", "group"):
        raise MetadataError(
            f"node_type must be 'array' or 'group', got {brief(node_type)}",
            url=url,
            key=key,
            field="node_type",
        )
    cls = ZaroMeta if is_array else GroupMeta
    return cls.from_json(doc, attributes, allow_unsafe_codecs=allow_unsafe_codecs, url=url, key=key)
