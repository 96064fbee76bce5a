"""Metadata documents as text: their names in a store, and JSON in and out."""

from __future__ import annotations

import base64
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


def loads(data: bytes | str, *, url: str | None = None, key: str | None = None) -> Any:
    """Parse a metadata document.

    Python's own ``json`` writes bare ``NaN``, ``Infinity`` and ``-Infinity``; they parse as
    floats here, as tokens only, so a string that merely contains those words is never changed.
    """
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise MetadataError(f"invalid JSON: {e}", url=url, key=key) from e
    except RecursionError as e:
        raise MetadataError(f"JSON nested too deeply to parse: {e}", url=url, key=key) from e


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return base64.standard_b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be stored in Zarr metadata: {value!r:.80}")


def dumps(doc: Any) -> bytes:
    """Serialise a metadata document, indented.

    Fill values are already JSON (``"NaN"`` strings, hex bit patterns); numpy values in
    attributes become Python numbers and lists, and a NaN or infinite attribute is written as
    Python writes it (bare ``NaN``), as zarr-python does; :func:`loads` reads it back.
    """
    return json.dumps(doc, indent=2, default=_json_default).encode()
