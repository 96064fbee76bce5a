"""Quick-look pictures of xarray data with matplotlib (``pip install "xzaro[plot]"``).

:func:`save_map` draws one 2-d slice with a colour bar and axes labelled from the coordinates,
north up whichever way latitude is stored; :func:`save_thumbnails` draws several side by side
(the levels of a pyramid, or the variables of a store). matplotlib is imported only here, with
the Agg back end, so no display is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_PIXELS = 1024
THUMBNAIL_PIXELS = 256
LATITUDE_NAMES = ("lat", "latitude", "nav_lat", "y_lat")
LONGITUDE_NAMES = ("lon", "longitude", "nav_lon", "x_lon")
PLOT_EXTRA = 'pictures need matplotlib: pip install "xzaro[plot]"'


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg back end; an ``ImportError`` naming the extra to
    install when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(PLOT_EXTRA) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def is_latitude(array: Any, dim: str) -> bool:
    """Whether the dimension ``dim`` of ``array`` runs along latitude (by name, CF
    ``standard_name`` or ``units``)."""
    if dim.lower() in LATITUDE_NAMES:
        return True
    coord = array.coords.get(dim)
    if coord is None:
        return False
    attrs = coord.attrs
    return attrs.get("standard_name") == "latitude" or attrs.get("units") in (
        "degrees_north",
        "degree_north",
        "degrees_N",
    )


def is_longitude(array: Any, dim: str) -> bool:
    """Whether ``dim`` runs along longitude (by name, ``standard_name`` or ``units``)."""
    if dim.lower() in LONGITUDE_NAMES:
        return True
    coord = array.coords.get(dim)
    attrs = coord.attrs if coord is not None else {}
    return attrs.get("standard_name") == "longitude" or attrs.get("units") in (
        "degrees_east",
        "degree_east",
        "degrees_E",
    )


def oriented(array: Any) -> Any:
    """A 2-d ``array`` with the dimension drawn upwards first: latitude if there is one (or
    the dimension that is not longitude), else the first."""
    if array.ndim != 2:
        hint = ": select one index of the others (--isel DIM=INDEX)" if array.ndim > 2 else ""
        raise ValueError(
            f"a picture needs a 2-d slice, {array.name!r} has {array.ndim} "
            f"dimension{'s' if array.ndim != 1 else ''} "
            f"({', '.join(map(str, array.dims))}){hint}"
        )
    rows, cols = (str(d) for d in array.dims)
    if is_latitude(array, cols) or (is_longitude(array, rows) and not is_latitude(array, rows)):
        return array.transpose(cols, rows)
    return array


def thinned(array: Any, pixels: int) -> Any:
    """``array`` with every ``k``-th value along each dimension, at most ``pixels`` along each."""
    steps = {d: max(1, math.ceil(n / pixels)) for d, n in array.sizes.items()}
    return array.isel({d: slice(None, None, k) for d, k in steps.items()})


def axis_values(array: Any, dim: str) -> tuple[np.ndarray, str]:
    """The values to place ``dim`` by (its 1-d numeric or time coordinate, else the index)
    and the axis label."""
    coord = array.coords.get(dim)
    if coord is not None and coord.ndim == 1 and coord.dtype.kind in "iufM":
        units = coord.attrs.get("units")
        label = f"{dim} [{units}]" if units and coord.dtype.kind != "M" else dim
        return np.asarray(coord.values), label
    return np.arange(array.sizes[dim]), f"{dim} (index)"


def draw(
    ax: Any,
    array: Any,
    *,
    colorbar: bool = True,
    limits: tuple[float, float] | None = None,
) -> Any:
    """Draw the 2-d ``array`` on the matplotlib axes ``ax``: cells placed by the coordinates,
    latitude increasing upwards, other vertical dimensions with their first row on top; the
    colours span ``limits`` (default: the values' range). Returns the drawn mesh."""
    array = oriented(array)
    rows, cols = (str(d) for d in array.dims)
    y, ylabel = axis_values(array, rows)
    x, xlabel = axis_values(array, cols)
    values = np.ma.masked_invalid(np.asarray(array.values, dtype=np.float64))
    low, high = limits if limits is not None else (None, None)
    mesh = ax.pcolormesh(x, y, values, shading="nearest", cmap="viridis", vmin=low, vmax=high)
    # the cells sit at their coordinate values on an axis growing upwards: north is up
    # whichever way latitude is stored; any other vertical dimension keeps its first row on top
    if not is_latitude(array, rows) and len(y) > 1 and y[0] < y[-1]:
        ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=colorbar_label(array))
    return mesh


def colorbar_label(array: Any) -> str:
    """``long_name [units]`` (or the name) of a variable."""
    units = array.attrs.get("units")
    label = str(array.attrs.get("long_name") or array.name or "")
    return f"{label} [{units}]" if units else label


def value_text(value: Any) -> str:
    """One coordinate value as text: a date as ``2020-01-02`` (as precise as it needs)."""
    value = np.asarray(value)
    if value.dtype.kind == "M":
        return str(np.datetime_as_string(value, unit="auto"))
    return str(value.item())


def title_of(array: Any) -> str:
    """The variable's name with the scalar coordinates its selection left (``time=...``)."""
    fixed = [
        f"{name}={value_text(c.values)}"
        for name, c in array.coords.items()
        if c.ndim == 0 and name not in array.dims
    ]
    return " ".join([str(array.name or ""), *fixed]).strip()


def save_map(array: Any, path: str, *, title: str | None = None, dpi: int = 100) -> None:
    """Save a quick-look PNG of the 2-d ``array`` (a ``DataArray``) to ``path``.

    At most :data:`MAX_PIXELS` values are drawn along each dimension (every ``k``-th), so a
    large array is read thinned, not whole.
    """
    plt = pyplot()
    array = thinned(oriented(array), MAX_PIXELS)
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    try:
        draw(ax, array)
        ax.set_title(title if title is not None else title_of(array))
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def save_thumbnails(
    arrays: Sequence[Any],
    titles: Sequence[str],
    path: str,
    *,
    shared_scale: bool = False,
    dpi: int = 100,
) -> None:
    """Save the 2-d ``arrays`` side by side as one PNG, each titled, each thinned to at most
    :data:`THUMBNAIL_PIXELS` values along each dimension. ``shared_scale``: one colour scale
    (and colour bar) for all, as for the levels of one pyramid."""
    plt = pyplot()
    n = len(arrays)
    if not n:
        raise ValueError("nothing to draw")
    drawn = [thinned(oriented(a), THUMBNAIL_PIXELS).load() for a in arrays]
    limits = value_range(drawn) if shared_scale else None
    columns = min(n, 4)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 3 * rows), layout="constrained", squeeze=False
    )
    try:
        for ax, array, title in zip(axes.flat, drawn, titles):
            mesh = draw(ax, array, colorbar=False, limits=limits)
            ax.set_title(title, fontsize=9)
        for ax in axes.flat[n:]:
            ax.set_axis_off()
        if limits is not None:
            fig.colorbar(mesh, ax=axes, label=colorbar_label(drawn[0]), shrink=0.8)
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def value_range(arrays: Sequence[Any]) -> tuple[float, float] | None:
    """The smallest and largest finite value of all ``arrays`` (``None`` if there is none)."""
    finite = [v[np.isfinite(v)] for v in (np.asarray(a.values, dtype=np.float64) for a in arrays)]
    finite = [v for v in finite if v.size]
    if not finite:
        return None
    return float(min(v.min() for v in finite)), float(max(v.max() for v in finite))


def save_bars(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    path: str,
    *,
    xlabel: str = "",
    title: str = "",
    dpi: int = 100,
) -> None:
    """Save a horizontal bar chart to ``path``: one group of bars per category, one bar per
    series (``{"xzaro": [...], "zarr-python": [...]}``), each labelled with its value."""
    plt = pyplot()
    height = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * len(categories) * len(series)))
    try:
        positions = np.arange(len(categories))
        for i, (label, values) in enumerate(series.items()):
            bars = ax.barh(positions + i * height, values, height, label=label)
            ax.bar_label(bars, fmt="%.0f", padding=2, fontsize=8)
        ax.set_yticks(positions + height * (len(series) - 1) / 2, list(categories))
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
