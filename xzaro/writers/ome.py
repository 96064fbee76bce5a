"""OME-NGFF ``multiscales`` metadata, built in one place for every writer of pyramids.

:func:`multiscales_entry` builds one entry (axes, one dataset per level with its ``scale`` and,
for averages, the half-cell ``translation``) and :func:`ome_attributes` places entries where the
format wants them: ``multiscales`` (OME-NGFF 0.4) for Zarr V2, ``ome`` → ``multiscales`` (0.5)
for V3. ``to_store(multiscale=...)`` describes a dataset's variables with
:func:`dataset_multiscales`; the streaming device describes its acquisition dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xzaro.log import info

#: The OME-NGFF version written for each Zarr format.
OME_VERSIONS = {2: "0.4", 3: "0.5"}
#: Dimension names taken for spatial axes (and coarsened by default).
SPATIAL_NAMES = ("x", "y", "z", "lon", "lat", "longitude", "latitude")
TIME_NAMES = ("t", "time")
CHANNEL_NAMES = ("c", "channel", "band")
#: The axis order OME-NGFF requires: time, then channel, then space.
_AXIS_ORDER = {"time": 0, "channel": 1, "space": 2}
#: Units OME-NGFF knows for space and time axes.
OME_UNITS = frozenset(
    {
        "angstrom",
        "centimeter",
        "decimeter",
        "foot",
        "inch",
        "kilometer",
        "meter",
        "micrometer",
        "mile",
        "millimeter",
        "nanometer",
        "picometer",
        "yard",
        "day",
        "hour",
        "microsecond",
        "millisecond",
        "minute",
        "nanosecond",
        "second",
    }
)


def ome_axis(name: str, type: str | None = None, unit: str | None = None) -> dict[str, Any]:
    """One entry of ``axes``: its ``name``, and ``type`` and ``unit`` when given."""
    axis: dict[str, Any] = {"name": name}
    if type is not None:
        axis["type"] = type
    if unit is not None:
        axis["unit"] = unit
    return axis


def multiscales_entry(
    *,
    name: str,
    axes: list[dict[str, Any]],
    paths: Sequence[str],
    scale: Sequence[float],
    coarsened: Sequence[bool],
    method: str | None,
    half_cell_shift: bool,
    zarr_format: int,
) -> dict[str, Any]:
    """One ``multiscales`` entry for a pyramid whose level ``i`` is halved ``i`` times.

    Parameters
    ----------
    name
        The entry's ``name``.
    axes
        The ``axes`` (see :func:`ome_axis`), slowest first.
    paths
        Each level's dataset ``path``, level 0 first.
    scale
        Level 0's scale per axis.
    coarsened
        Per axis, whether each level halves it (its scale doubles).
    method
        The entry's ``type`` (the coarsening method), or ``None`` to leave it out.
    half_cell_shift
        Give levels above 0 a ``translation`` of half their cell along the coarsened axes.
    zarr_format
        2 writes OME-NGFF 0.4 (which names its ``version`` in the entry), 3 writes 0.5.
    """
    datasets = []
    for level, path in enumerate(paths):
        factor = [2.0**level if c else 1.0 for c in coarsened]
        transforms: list[dict[str, Any]] = [
            {"type": "scale", "scale": [b * f for b, f in zip(scale, factor)]}
        ]
        if half_cell_shift and level:
            transforms.append(
                {
                    "type": "translation",
                    "translation": [b * (f - 1) / 2 for b, f in zip(scale, factor)],
                }
            )
        datasets.append({"path": path, "coordinateTransformations": transforms})
    entry: dict[str, Any] = {"name": name, "axes": axes, "datasets": datasets}
    if method is not None:
        entry["type"] = method
    if zarr_format == 2:
        entry["version"] = OME_VERSIONS[2]
    return entry


def ome_attributes(entries: list[dict[str, Any]], zarr_format: int) -> dict[str, Any]:
    """The image group's attributes holding ``entries``, where the format's OME-NGFF wants them."""
    if zarr_format == 2:
        return {"multiscales": entries}
    return {"ome": {"version": OME_VERSIONS[3], "multiscales": entries}}


def axis_type(name: str) -> str | None:
    """The OME axis type a dimension name implies (``space``, ``time``, ``channel``), if any."""
    low = name.lower()
    if low in SPATIAL_NAMES:
        return "space"
    if low in TIME_NAMES:
        return "time"
    if low in CHANNEL_NAMES:
        return "channel"
    return None


def _spacing(dataset: Any, dim: str) -> float:
    """The step of a regular numeric coordinate along ``dim``, else 1."""
    if dim in dataset.coords and dataset[dim].ndim == 1 and dataset.sizes[dim] > 1:
        values = np.asarray(dataset[dim].values)
        if values.dtype.kind in "iuf":
            step = np.diff(values.astype(np.float64))
            if np.allclose(step, step[0]) and step[0] != 0:
                return float(step[0])
    return 1.0


def _dataset_axes(dataset: Any, name: Any, dims: list[str]) -> list[dict[str, Any]] | None:
    """The OME ``axes`` of a variable's dimensions, or ``None`` when OME cannot describe them."""
    types = [axis_type(d) for d in dims]
    if not 2 <= len(dims) <= 5 or None in types or types.count("space") not in (2, 3):
        info("multiscale: variable %r has axes %s that OME-NGFF cannot describe", name, dims)
        return None
    order = [_AXIS_ORDER[t] for t in types]  # type: ignore[index]
    if order != sorted(order):
        info("multiscale: variable %r axes %s are not in OME-NGFF order", name, dims)
        return None
    axes = []
    for d, t in zip(dims, types):
        unit = dataset[d].attrs.get("units") if d in dataset.coords else None
        known = isinstance(unit, str) and t in ("space", "time") and unit in OME_UNITS
        axes.append(ome_axis(d, t, unit if known else None))
    return axes


def dataset_multiscales(
    dataset: Any,
    dims: tuple[str, ...],
    method: str,
    half_cell_shift: bool,
    n_levels: int,
    zarr_format: int,
) -> list[dict[str, Any]]:
    """The ``multiscales`` entries of a pyramid of ``dataset`` written as groups ``0``, ``1``, …:
    one per data variable whose axes OME can describe, coarsened along ``dims``."""
    entries = []
    for name, var in dataset.data_vars.items():
        names = [str(d) for d in var.dims]
        axes = _dataset_axes(dataset, name, names)
        if axes is None:
            continue
        entries.append(
            multiscales_entry(
                name=str(name),
                axes=axes,
                paths=[f"{level}/{name}" for level in range(n_levels)],
                scale=[_spacing(dataset, d) if d in dims else 1.0 for d in names],
                coarsened=[d in dims for d in names],
                method=method,
                half_cell_shift=half_cell_shift,
                zarr_format=zarr_format,
            )
        )
    return entries
