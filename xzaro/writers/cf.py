"""CF encoding of variables for Zarr, as xarray's zarr writer does it."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from xzaro.backends.cf import decode_fill_attribute, encode_fill_attribute
from xzaro.errors import NodeNotFoundError
from xzaro.hierarchy import NodeIndex
from xzaro.meta import ZaroMeta
from xzaro.paths import join


def encode_variables(dataset: Any, zarr_format: int) -> tuple[dict[Hashable, Any], dict]:
    """CF-encode a dataset's variables and attributes as xarray's zarr writer does."""
    from xarray import conventions

    from xzaro.compat import encode_zarr_variable

    variables, attrs = conventions.encode_dataset_coordinates(dataset)
    encoded = {
        name: encode_zarr_variable(var, name=name, zarr_format=zarr_format)
        for name, var in variables.items()
    }
    return encoded, dict(attrs)


def fill_and_attrs(var: Any, zarr_format: int) -> tuple[Any, dict]:
    """The Zarr fill value and the attributes to store, following xarray's zarr writer."""
    attrs = dict(var.attrs)
    if zarr_format == 2:
        return attrs.pop("_FillValue", None), attrs
    if "_FillValue" in attrs:
        attrs["_FillValue"] = encode_fill_attribute(attrs["_FillValue"], var.dtype)
    return var.encoding.get("fill_value"), attrs


_CF_KEYS = ("units", "calendar", "scale_factor", "add_offset", "_FillValue", "missing_value")


def with_stored_encoding(dataset: Any, existing: NodeIndex, group: str) -> Any:
    """New data for stored variables is CF-encoded exactly as the stored data was (same units,
    calendar, packing and dtype), as xarray's zarr writer does when appending."""
    dataset = dataset.copy()
    for name in list(dataset.variables):
        try:
            meta = existing.get(join(group, str(name)))
        except NodeNotFoundError:
            continue
        if not isinstance(meta, ZaroMeta):
            continue
        enc = dict(dataset[name].encoding)
        for key in _CF_KEYS:
            if key in meta.attributes:
                value = meta.attributes[key]
                if key == "_FillValue" and meta.zarr_format == 3:
                    value = decode_fill_attribute(value, meta.dtype)
                enc[key] = value
        if meta.zarr_format == 2 and meta.fill_value is not None and "_FillValue" not in enc:
            enc["_FillValue"] = meta.fill_value
        if meta.dtype.kind != "O":
            enc["dtype"] = meta.dtype
        dataset[name].encoding = enc
    return dataset
