"""Metadata documents as text: their names in a store, and JSON in and out."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from xzaro.errors import MetadataError

V2_ARRAY = ".zarray"
V2_GROUP = ".zgroup"
V2_ATTRS = ".zattrs"
V2_CONSOLIDATED = ".zmetadata"
V3_NODE = "zarr.json"
V2_DIMENSIONS_ATTR = "_ARRAY_DIMENSIONS"
#: Metadata nested deeper than this is refused, whichever Python parses it (3.13's parser takes
#: nesting that 3.11's refuses with RecursionError; the documents would then break other code).
MAX_JSON_DEPTH = 512


def loads(data: bytes | str, *, url: str | None = None, key: str | None = None) -> Any:
    """Parse a metadata document.

    Python's own ``json`` writes bare ``NaN``, ``Infinity`` and ``-Infinity``; they parse as
    floats here, as tokens only, so a string that merely contains those words is never changed.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise MetadataError(f"invalid JSON: {e}", url=url, key=key) from e
    except RecursionError as e:
        raise MetadataError(f"JSON nested too deeply to parse: {e}", url=url, key=key) from e
    if _openings(data) > MAX_JSON_DEPTH:
        depth = _depth(doc)
        if depth > MAX_JSON_DEPTH:
            raise MetadataError(
                f"JSON nested {depth} deep, more than the {MAX_JSON_DEPTH} levels read",
                url=url,
                key=key,
            )
    return doc


def _openings(data: bytes | str) -> int:
    """How many ``[`` and ``{`` the text holds: a bound on its nesting depth."""
    if isinstance(data, str):
        return data.count("[") + data.count("{")
    return data.count(b"[") + data.count(b"{")


def _depth(doc: Any) -> int:
    """The nesting depth of a parsed document's lists and objects, without recursion."""
    if not isinstance(doc, (dict, list)):
        return 0
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be stored in Zarr metadata: {value!r:.80}")


def dumps(doc: Any) -> bytes:
    """Serialise a metadata document, indented.

    Fill values are already JSON (``"NaN"`` strings, hex bit patterns); numpy values in
    attributes become Python numbers and lists, and a NaN or infinite attribute is written as
    Python writes it (bare ``NaN``), as zarr-python does; :func:`loads` reads it back.
    """
    return json.dumps(doc, indent=2, default=_json_default).encode()
