"""xarray's ``_FillValue`` attribute as Zarr V3 stores it, encoded and decoded with xarray's coder.

xarray's zarr backend keeps a V3 array's CF ``_FillValue`` attribute in its own JSON encoding
(``FillValueCoder``); the engine decodes it when reading, the writers encode it, and a write into
a stored array decodes the stored one to encode the new data alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def encode_fill_attribute(value: Any, dtype: np.dtype) -> Any:
    """A ``_FillValue`` attribute as xarray's zarr writer stores it in a V3 array."""
    from xarray.backends.zarr import FillValueCoder

    return FillValueCoder.encode(value, dtype)


def decode_fill_attribute(value: Any, dtype: np.dtype) -> Any:
    """A V3 array's ``_FillValue`` attribute decoded (xarray stores it with its own JSON
    encoding); a value it cannot decode is returned as it is."""
    from xarray.backends.zarr import FillValueCoder

    kind = "string" if dtype.kind == "O" else dtype
    try:
        return FillValueCoder.decode(value, kind)
    except (TypeError, ValueError):
        return value
