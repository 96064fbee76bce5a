"""Hand-written reference documents and the target files they point to, for the reference
store tests: an int32 array ``x`` of 8 values in chunks of 2 (fill value -1), whose chunks are
a byte range of ``data.bin`` (after 16 junk bytes), inline bytes, the whole of ``whole.bin``
and, for chunk 3, nothing (fill value).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
from helpers import v2_array_doc

import xzaro

ZARRAY = v2_array_doc([8], [2], "<i4", fill_value=-1)
ZATTRS = json.dumps({"_ARRAY_DIMENSIONS": ["x"]})
VALUES = np.arange(8, dtype="<i4") * 11
DATA = b"J" * 16 + VALUES.tobytes()  # data.bin: 16 junk bytes, then the 8 values
WHOLE = VALUES[4:6].tobytes()  # whole.bin: exactly chunk 2


def target_files(root: Path) -> None:
    """Write ``data.bin`` (16 junk bytes, then the 8 values) and ``whole.bin`` (chunk 2)."""
    (root / "data.bin").write_bytes(DATA)
    (root / "whole.bin").write_bytes(WHOLE)


def v0_doc(data: str, whole: str) -> dict[str, Any]:
    """A version 0 document with every value form, its targets at ``data`` and ``whole``."""
    return {
        ".zgroup": '{"zarr_format": 2}',
        "x/.zarray": ZARRAY,  # a JSON object value
        "x/.zattrs": ZATTRS,  # inline text
        "x/0": [data, 16, 8],  # a byte range
        "x/1": "base64:" + base64.b64encode(VALUES[2:4].tobytes()).decode(),  # inline bytes
        "x/2": [whole],  # a whole file
        # x/3 has no reference: fill value
    }


def read_x(url: Any, **kwargs: Any) -> np.ndarray:
    """The array ``x`` of the references at ``url`` (a URL or a store), read whole."""
    return np.asarray(xzaro.open_array(url, "x", **kwargs)[...])


def with_fill(values: np.ndarray, missing: list[int]) -> np.ndarray:
    """``values`` with the chunks ``missing`` (chunks of 2) set to the fill value -1."""
    out = values.copy()
    for i in missing:
        out[2 * i : 2 * i + 2] = -1
    return out
