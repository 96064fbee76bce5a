"""OME-NGFF multiscale images (0.4, 0.5 and the older forms) read as nodes of an xarray tree.

Where the metadata is
    OME-NGFF 0.5: the image group's attribute ``ome`` → ``multiscales`` (version in ``ome``).
    0.4 and before: the attribute ``multiscales`` (version in each entry). Under ``multiscales``
    only entries that are OME's are read: a list in which some entry has ``axes`` or
    ``version``; other ``multiscales`` attributes (ndpyramid's have neither) are left alone and
    the group reads as a plain group.

How a multiscale image reads
    Every entry of ``datasets`` is one level; its ``path`` (relative to the image group) names the
    level's array and is followed as written, never guessed from digit names. Each level becomes
    one node of the tree:

    - an *array node* when the array sits directly in the image group (the OME standard layout,
      written by ome-zarr-py, acquire-zarr and xzaro's streams), or when the group holding it
      holds other levels of the same image too: the node is named by the level's path and holds
      the array as the one variable :data:`IMAGE_VARIABLE` (``"image"``);
    - a *group node* otherwise (ngff-zarr's ``scale0/image``, xzaro's ``0/<variable>``): the node
      is the group holding the array, and every array in it keeps its own name.

    A level array's dimensions are the OME axes names (an array whose own ``dimension_names`` /
    ``_ARRAY_DIMENSIONS`` name them otherwise is refused). Every axis gets a coordinate, unless
    the node stores an array of that name (xzaro's own pyramids store their coordinates), whose
    values are ``translation + scale * index``: the level's ``coordinateTransformations`` are
    applied first, then the multiscale's own, in the order the spec gives. The coordinate's
    attributes are ``units`` (the axis' ``unit``) and ``type`` (the axis' ``type``), when the axis
    has them. The image group's node keeps the group's attributes and its arrays that are not
    levels of their own.

Errors
    Bad metadata raises :class:`~xzaro.errors.MetadataError` naming the store's URL, the image
    group's metadata key (``img/.zattrs`` or ``img/zarr.json``) and the field
    (``multiscales[0].datasets[1].path``, ``ome.multiscales[0].axes``, …): a dataset path naming
    no array, axes that do not match an array's dimensions, a scale or translation of the wrong
    length or with values that are not finite numbers, a level without its scale. A
    transformation xzaro does not implement (given by ``path``, or of another type) raises
    :class:`~xzaro.errors.UnsupportedError`. Nothing is read with a coordinate it cannot vouch for.
    A ``version`` that is no ``MAJOR.MINOR`` string is refused; one newer than
    :data:`NEWEST_VERSION` is read as that version with a ``UserWarning`` naming it.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xzaro.errors import MetadataError, NodeNotFoundError, UnsupportedError, brief
from xzaro.hierarchy import NodeIndex
from xzaro.meta import V2_ATTRS, V3_NODE, GroupMeta, ZaroMeta
from xzaro.paths import InvalidNameError, check_group_path, join

__all__ = [
    "IMAGE_VARIABLE",
    "Axis",
    "Level",
    "MultiscaleImage",
    "OMENode",
    "metadata_key",
    "read_multiscales",
]

#: The variable name of a level array that is a node of its own (the OME standard layout).
IMAGE_VARIABLE = "image"
#: The axes OME-NGFF 0.1 and 0.2 imply (5-D ``t, c, z, y, x``, or its last dimensions).
#: The newest OME-NGFF version this module implements.
NEWEST_VERSION = (0, 5)
_IMPLIED_AXES = ("t", "c", "z", "y", "x")
_TRANSFORM_TYPES = ("identity", "scale", "translation")


@dataclass(frozen=True)
class Axis:
    """One OME axis: ``name``, and its ``type`` (``space``, ``time``, ``channel``, …) and
    ``unit`` when the metadata gives them."""

    name: str
    type: str | None = None
    unit: str | None = None

    @property
    def attrs(self) -> dict[str, str]:
        """The coordinate attributes: ``units`` and ``type``, when given."""
        out = {}
        if self.unit is not None:
            out["units"] = self.unit
        if self.type is not None:
            out["type"] = self.type
        return out


@dataclass(frozen=True)
class Level:
    """One level of a multiscale image.

    Attributes
    ----------
    path
        The dataset ``path`` as the metadata gives it (relative to the image group).
    array_path
        The level array's path in the store.
    meta
        The array's metadata, with the OME axes names as ``dimension_names``.
    axes
        The image's axes.
    scale, translation
        The physical coordinate of index ``i`` along axis ``k`` is
        ``translation[k] + scale[k] * i`` (the level's and the multiscale's transformations
        composed).
    """

    path: str
    array_path: str
    meta: ZaroMeta
    axes: tuple[Axis, ...]
    scale: tuple[float, ...]
    translation: tuple[float, ...]

    def coordinates(self) -> dict[str, tuple[np.ndarray, dict[str, str]]]:
        """Every axis' physical coordinate values (float64) and attributes, by axis name."""
        return {
            axis.name: (t + s * np.arange(n, dtype=np.float64), axis.attrs)
            for axis, s, t, n in zip(self.axes, self.scale, self.translation, self.meta.shape)
        }


@dataclass(frozen=True)
class MultiscaleImage:
    """One ``multiscales`` entry of an image group.

    Attributes
    ----------
    group
        The image group's path.
    key
        The image group's metadata key (``.zattrs`` for Zarr V2, ``zarr.json`` for V3).
    field
        Where the entry is in the attributes (``multiscales[0]``, ``ome.multiscales[0]``).
    name, version
        The entry's ``name`` and the OME-NGFF version (``None`` when the metadata gives none).
    axes, levels
        The axes, and the levels in the order of ``datasets`` (level 0 first).
    """

    group: str
    key: str
    field: str
    name: str | None
    version: str | None
    axes: tuple[Axis, ...]
    levels: tuple[Level, ...]


@dataclass(frozen=True)
class OMENode:
    """How one node of the tree reads when a multiscale image shapes it.

    Attributes
    ----------
    path
        The node's path in the store (an array's path for an array node).
    group
        The stored group whose arrays the node reads: the node itself, or, for an array node,
        the group holding the array.
    levels
        The level arrays the node shows, by variable name.
    hidden
        Names of arrays of ``group`` that the node does not show (levels that are nodes of
        their own).
    is_array
        An array node: it has no attributes and no arrays besides its level.
    coordinates
        The physical coordinate of every axis of the node's levels: values and attributes.
    """

    path: str
    group: str
    levels: Mapping[str, Level] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()
    is_array: bool = False
    coordinates: Mapping[str, tuple[np.ndarray, dict[str, str]]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- parsing
def metadata_key(path: str, meta: GroupMeta) -> str:
    """The key of the document holding a group's attributes."""
    return join(path, V3_NODE if meta.zarr_format == 3 else V2_ATTRS)


def _version_tuple(version: str | None) -> tuple[int, int] | None:
    match = re.match(r"\s*(\d+)\.(\d+)", version) if isinstance(version, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _before(version: str | None, than: tuple[int, int]) -> bool:
    parsed = _version_tuple(version)
    return parsed is not None and parsed < than


class _Where:
    """The URL and metadata key errors about one image group name."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key

    def error(self, message: str, field_: str) -> MetadataError:
        return MetadataError(message, url=self.url, key=self.key, field=field_)

    def unsupported(self, message: str, field_: str) -> UnsupportedError:
        return UnsupportedError(message, url=self.url, key=self.key, field=field_)


def _check_version(version: Any, where: _Where, field_: str) -> None:
    """Refuse a version that is no ``MAJOR.MINOR`` string; warn about one newer than
    :data:`NEWEST_VERSION`, which is read as that version."""
    if version is None:
        return
    parsed = _version_tuple(version)
    if parsed is None:
        raise where.error(f"version must be a string 'MAJOR.MINOR', got {version!r}", field_)
    if parsed > NEWEST_VERSION:
        newest = ".".join(map(str, NEWEST_VERSION))
        warnings.warn(
            f"OME-NGFF {version} is newer than {newest}, the newest version xzaro reads: the "
            f"image is read as {newest} [url={where.url!r}, key={where.key!r}, field={field_!r}]",
            UserWarning,
            stacklevel=2,
        )


def _ome_entries(attrs: Mapping, where: _Where) -> tuple[list, str, str | None]:
    """The ``multiscales`` entries, the field naming them and the version ``ome`` gives."""
    ome = attrs.get("ome")
    if isinstance(ome, Mapping) and "multiscales" in ome:
        entries, prefix = ome["multiscales"], "ome.multiscales"
        version = ome.get("version")
    elif "multiscales" in attrs:
        entries, prefix, version = attrs["multiscales"], "multiscales", None
        if not isinstance(entries, list) or not any(
            isinstance(e, Mapping) and ("axes" in e or "version" in e) for e in entries
        ):
            return [], prefix, None  # not OME's (ndpyramid's, for one): a plain group
    else:
        return [], "", None
    if not isinstance(entries, list):
        raise where.error(f"{prefix} must be a list, got {type(entries).__name__}", prefix)
    return entries, prefix, version


def _parse_axes(
    entry: Mapping, version: str | None, ndim: int | None, where: _Where, field_: str
) -> tuple[Axis, ...]:
    raw = entry.get("axes")
    if raw is None:
        if _before(version, (0, 3)) and ndim is not None and ndim <= len(_IMPLIED_AXES):
            return tuple(Axis(n) for n in _IMPLIED_AXES[len(_IMPLIED_AXES) - ndim :])
        if "coordinateSystems" in entry:
            raise where.unsupported(
                "OME-NGFF coordinate systems (0.6) are not supported; axes are required",
                f"{field_}.coordinateSystems",
            )
        raise where.error("the multiscale image has no axes", f"{field_}.axes")
    if not isinstance(raw, list) or not raw:
        raise where.error(f"axes must be a non-empty list, got {raw!r}", f"{field_}.axes")
    axes = []
    for i, item in enumerate(raw):
        afield = f"{field_}.axes[{i}]"
        if isinstance(item, str) and item and (version is None or _before(version, (0, 4))):
            axes.append(Axis(item))  # OME-NGFF 0.3: axes are names
            continue
        if not isinstance(item, Mapping):
            raise where.error(f"an axis must be an object with a name, got {item!r}", afield)
        name = item.get("name")
        if not isinstance(name, str) or not name or "/" in name or name == IMAGE_VARIABLE:
            raise where.error(
                f"an axis needs a non-empty name without '/', other than the level's variable "
                f"{IMAGE_VARIABLE!r}, got {brief(name)}",
                f"{afield}.name",
            )
        kind = item.get("type")
        unit = item.get("unit", item.get("units"))  # "units": a spelling some examples use
        for key, value in (("type", kind), ("unit", unit)):
            if value is not None and not isinstance(value, str):
                raise where.error(f"{key} must be a string, got {value!r}", f"{afield}.{key}")
        axes.append(Axis(name, kind, unit))
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise where.error(f"axis names must be unique, got {names}", f"{field_}.axes")
    return tuple(axes)


def _numbers(value: Any, n: int, where: _Where, field_: str) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise where.error(f"must list {n} numbers, one per axis, got {value!r}", field_)
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
            raise where.error(f"must list finite numbers, got {brief(value)}", field_)
        out.append(float(v))
    return tuple(out)


def _finite(v: float) -> bool:
    """Whether ``v`` is a finite number as a float (``10**400`` is not)."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _compose(
    transforms: Any,
    n: int,
    where: _Where,
    field_: str,
    start: tuple[tuple[float, ...], tuple[float, ...]],
    need_scale: bool,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``start`` followed by the ``scale``/``translation``/``identity`` transformations, in
    their order, as one scale and translation."""
    if not isinstance(transforms, list):
        raise where.error(f"must be a list of transformations, got {transforms!r}", field_)
    scale, translation = list(start[0]), list(start[1])
    scales = 0
    for i, t in enumerate(transforms):
        tfield = f"{field_}[{i}]"
        if not isinstance(t, Mapping):
            raise where.error(f"a transformation must be an object, got {t!r}", tfield)
        kind = t.get("type")
        if kind not in _TRANSFORM_TYPES:
            raise where.unsupported(
                f"transformation type {kind!r} is not supported (only {list(_TRANSFORM_TYPES)})",
                f"{tfield}.type",
            )
        if kind == "identity":
            continue
        if kind not in t and "path" in t:
            raise where.unsupported(
                f"a {kind} given by a path to an array is not supported", f"{tfield}.path"
            )
        values = _numbers(t.get(kind), n, where, f"{tfield}.{kind}")
        if kind == "scale":
            scales += 1
            scale = [s * v for s, v in zip(scale, values)]
            translation = [x * v for x, v in zip(translation, values)]
        else:
            translation = [x + v for x, v in zip(translation, values)]
    if need_scale and scales != 1:
        raise where.error(
            f"a level's coordinateTransformations must hold exactly one scale, found {scales}",
            field_,
        )
    return tuple(scale), tuple(translation)


def _level_array(
    index: NodeIndex, group: str, path: Any, where: _Where, field_: str
) -> tuple[str, str, ZaroMeta]:
    if not isinstance(path, str):
        raise where.error(f"a dataset path must be a string, got {path!r}", field_)
    try:
        path = check_group_path(path, url=where.url)
    except InvalidNameError as e:
        raise where.error(f"invalid dataset path: {e.message}", field_) from None
    if not path:
        raise where.error("a dataset path must name an array, got an empty path", field_)
    array_path = join(group, path)
    try:
        meta = index.get(array_path)
    except NodeNotFoundError:
        raise where.error(
            f"dataset path {path!r} names no array (nothing at {array_path!r})", field_
        ) from None
    if not isinstance(meta, ZaroMeta):
        raise where.error(f"dataset path {path!r} names a group, not an array", field_)
    return path, array_path, meta


def read_multiscales(
    index: NodeIndex, path: str = "", meta: GroupMeta | None = None
) -> list[MultiscaleImage]:
    """The OME multiscale images a group's attributes describe (empty: not an image group).

    Every level array's metadata is read and checked against the axes and transformations.

    Raises
    ------
    MetadataError
        Naming the URL, the group's metadata key and the field that is wrong.
    """
    path = path.strip("/")
    if meta is None:
        node = index.get(path)
        if not isinstance(node, GroupMeta):
            return []
        meta = node
    where = _Where(index.store.url, metadata_key(path, meta))
    entries, prefix, ome_version = _ome_entries(meta.attributes, where)
    under_ome = prefix.startswith("ome")
    return [
        _read_image(index, path, entry, f"{prefix}[{i}]", ome_version, under_ome, where)
        for i, entry in enumerate(entries)
    ]


def _read_image(
    index: NodeIndex,
    path: str,
    entry: Any,
    efield: str,
    ome_version: str | None,
    under_ome: bool,
    where: _Where,
) -> MultiscaleImage:
    """One ``multiscales`` entry (at ``efield``) of the image group at ``path``."""
    if not isinstance(entry, Mapping):
        raise where.error(f"a multiscale must be an object, got {entry!r}", efield)
    version = ome_version if under_ome else entry.get("version")
    _check_version(version, where, "ome.version" if under_ome else f"{efield}.version")
    datasets = entry.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise where.error(
            f"datasets must be a non-empty list, got {datasets!r}", f"{efield}.datasets"
        )
    arrays: list[tuple[str, str, ZaroMeta]] = []
    for j, dataset in enumerate(datasets):
        dfield = f"{efield}.datasets[{j}]"
        if not isinstance(dataset, Mapping):
            raise where.error(f"a dataset must be an object, got {dataset!r}", dfield)
        array = _level_array(index, path, dataset.get("path"), where, f"{dfield}.path")
        if any(array[1] == other[1] for other in arrays):  # one array, two scales
            raise where.error(f"two datasets name the array {array[1]!r}", f"{dfield}.path")
        arrays.append(array)
    axes = _parse_axes(entry, version, arrays[0][2].ndim, where, efield)
    legacy = _before(version, (0, 4))  # no coordinateTransformations before 0.4
    levels = tuple(
        _read_level(array, dataset, axes, entry, legacy, where, efield, j)
        for j, (array, dataset) in enumerate(zip(arrays, datasets))
    )
    name = entry.get("name")
    return MultiscaleImage(
        path, where.key, efield, name if isinstance(name, str) else None, version, axes, levels
    )


def _read_level(
    array: tuple[str, str, ZaroMeta],
    dataset: Mapping,
    axes: tuple[Axis, ...],
    entry: Mapping,
    legacy: bool,
    where: _Where,
    efield: str,
    j: int,
) -> Level:
    """Level ``j`` of the entry at ``efield``: its array checked against the axes, its
    transformations composed with the multiscale's own."""
    level_path, array_path, meta = array
    dfield = f"{efield}.datasets[{j}]"
    names = tuple(a.name for a in axes)
    n = len(axes)
    if meta.ndim != n:
        raise where.error(
            f"{n} axes {list(names)}, but the array at {level_path!r} has {meta.ndim} dimensions",
            f"{efield}.axes",
        )
    own = meta.dimension_names
    if own is not None and any(d is not None and d != a for d, a in zip(own, names)):
        raise where.error(
            f"axes {list(names)} do not match the dimension names {list(own)} of the "
            f"array at {level_path!r}",
            f"{efield}.axes",
        )
    identity = ((1.0,) * n, (0.0,) * n)
    transforms = dataset.get("coordinateTransformations")
    if transforms is None and not legacy:
        raise where.error(
            "the level has no coordinateTransformations (its scale is required)",
            f"{dfield}.coordinateTransformations",
        )
    composed = identity
    if transforms is not None:
        composed = _compose(
            transforms, n, where, f"{dfield}.coordinateTransformations", identity, True
        )
    overall = entry.get("coordinateTransformations")
    if overall is not None:
        composed = _compose(
            overall, n, where, f"{efield}.coordinateTransformations", composed, False
        )
    scale, translation = composed
    for axis, k, t, size in zip(names, scale, translation, meta.shape):
        # finite factors can compose, or reach the last index, beyond what a float holds
        if not (math.isfinite(k) and math.isfinite(t) and math.isfinite(t + k * max(size - 1, 0))):
            raise where.error(
                f"the coordinates of axis {axis!r} ({t} + {k} * index) are not finite numbers",
                f"{dfield}.coordinateTransformations",
            )
    return Level(level_path, array_path, replace(meta, dimension_names=names), axes, *composed)
