"""The nodes of an xarray tree that OME-NGFF multiscale images shape.

Every level of an image is one node (see :mod:`xzaro.backends.ome` for the layouts): an array
node named by the level's path, or the group node holding the level array. A group holding
level arrays that are nodes of their own does not show them as variables. One array is a level
of one image only: a second image naming it (nested images claiming each other's arrays) raises
:class:`~xzaro.errors.MetadataError`, as the two would show it with two scales and as a variable
and a node at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from xzaro.backends.ome import IMAGE_VARIABLE, Level, MultiscaleImage, OMENode, read_multiscales
from xzaro.errors import MetadataError
from xzaro.hierarchy import NodeIndex
from xzaro.paths import join

__all__ = ["level_nodes", "ome_node", "ome_nodes", "ome_tree"]


@dataclass
class _NodeDraft:
    path: str
    group: str
    is_array: bool = False
    levels: dict[str, Level] = field(default_factory=dict)
    sources: dict[str, MultiscaleImage] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)


def level_nodes(image: MultiscaleImage) -> list[tuple[str, str, str, bool]]:
    """``(node path, group read, variable name, is an array node)`` of every level."""
    parents = [lv.path.rpartition("/")[0] for lv in image.levels]
    out = []
    for level, parent in zip(image.levels, parents):
        group = join(image.group, parent)
        if not parent or parents.count(parent) > 1:
            out.append((level.array_path, group, IMAGE_VARIABLE, True))
        else:
            out.append((group, group, level.path.rpartition("/")[2], False))
    return out


def _freeze(draft: _NodeDraft, url: str) -> OMENode:
    coords: dict[str, tuple[np.ndarray, dict[str, str]]] = {}
    for var, level in draft.levels.items():
        image = draft.sources[var]
        for dim, (values, attrs) in level.coordinates().items():
            if dim not in coords:
                coords[dim] = (values, attrs)
            elif not (np.array_equal(coords[dim][0], values) and coords[dim][1] == attrs):
                raise MetadataError(
                    f"the levels shown in node {draft.path!r} give axis {dim!r} different "
                    f"coordinates (the level at {level.path!r} differs from another level there)",
                    url=url,
                    key=image.key,
                    field=f"{image.field}.coordinateTransformations",
                )
    return OMENode(
        draft.path,
        draft.group,
        dict(draft.levels),
        frozenset(draft.hidden),
        draft.is_array,
        coords,
    )


def ome_nodes(index: NodeIndex, groups: Iterable[str]) -> dict[str, OMENode]:
    """The nodes the multiscale images of ``groups`` shape, by path.

    For every group among ``groups`` that is an image group: a node per level (an array node or
    a level group), and the image group itself and any other group holding level arrays that
    are nodes of their own (which those groups do not show). A path that is no node, or a
    group, is skipped. Nodes are listed in the order of the images' levels.
    """
    drafts: dict[str, _NodeDraft] = {}
    claims: dict[str, tuple[MultiscaleImage, tuple[str, str], Level]] = {}
    for path in dict.fromkeys(g.strip("/") for g in groups):
        meta = index.group_at(path)
        if meta is None:
            continue
        for image in read_multiscales(index, path, meta):
            shown = level_nodes(image)
            for j, (node, _, var, _) in enumerate(shown):
                _claim(claims, image, j, (node, var), index.store.url)
            for level, (node, group, var, is_array) in zip(image.levels, shown):
                draft = drafts.setdefault(node, _NodeDraft(node, group, is_array))
                draft.is_array = draft.is_array or is_array
                if var not in draft.levels:
                    draft.levels[var] = level
                    draft.sources[var] = image
                elif draft.levels[var].array_path != level.array_path:
                    raise MetadataError(
                        f"two levels are shown as variable {var!r} of node {node!r}",
                        url=index.store.url,
                        key=image.key,
                        field=f"{image.field}.datasets",
                    )
                if is_array:
                    holder = drafts.setdefault(group, _NodeDraft(group, group))
                    holder.hidden.add(level.array_path.rpartition("/")[2])
    return {path: _freeze(d, index.store.url) for path, d in drafts.items()}


def _claim(
    claims: dict[str, tuple[MultiscaleImage, tuple[str, str], Level]],
    image: MultiscaleImage,
    j: int,
    shown: tuple[str, str],
    url: str,
) -> None:
    """Record that ``image`` shows its level ``j`` as ``shown`` (node, variable). An array two
    images (or two entries of one image group) name as a level is refused unless both show it
    alike: in the same node, as the same variable, with the same coordinates."""
    level = image.levels[j]
    other, other_shown, other_level = claims.setdefault(level.array_path, (image, shown, level))
    if other is image or (other_shown == shown and _same_coordinates(other_level, level)):
        return
    raise MetadataError(
        f"array {level.array_path!r} is a level of the image at {other.group!r} "
        f"({other.key}, {other.field}) and of the image at {image.group!r}, which show it "
        "differently (in another node, or with other coordinates)",
        url=url,
        key=image.key,
        field=f"{image.field}.datasets[{j}].path",
    )


def _same_coordinates(a: Level, b: Level) -> bool:
    ours, theirs = a.coordinates(), b.coordinates()
    return ours.keys() == theirs.keys() and all(
        np.array_equal(ours[d][0], theirs[d][0]) and ours[d][1] == theirs[d][1] for d in ours
    )


def _ancestors(path: str) -> list[str]:
    parts = path.split("/") if path else []
    return ["/".join(parts[:i]) for i in range(len(parts))]


def ome_tree(index: NodeIndex, root: str, groups: Iterable[str] = ()) -> dict[str, OMENode]:
    """The nodes at and below ``root`` that multiscale images shape, by path, in order.

    ``groups`` are the groups below ``root``; the images read are those of ``root``, of its
    ancestors (a level array or level group opened on its own) and of ``groups``.
    """
    root = root.strip("/")
    prefix = f"{root}/" if root else ""
    nodes = ome_nodes(index, [*_ancestors(root), root, *groups])
    return {p: n for p, n in nodes.items() if p == root or p.startswith(prefix)}


def ome_node(index: NodeIndex, path: str) -> OMENode | None:
    """The node at ``path`` as the multiscale images above or at it shape it, or ``None`` when
    no image does (a plain group)."""
    path = path.strip("/")
    return ome_tree(index, path).get(path)
