"""``open_multiscale``: the levels of a multiscale image, each read as an xarray dataset."""

from __future__ import annotations

from typing import Any

from xzaro.backends.ome import metadata_key, read_multiscales
from xzaro.backends.ome_nodes import level_nodes
from xzaro.errors import MetadataError, NodeNotFoundError
from xzaro.hierarchy import NodeIndex, open_group
from xzaro.meta import GroupMeta
from xzaro.paths import join


def open_multiscale(url: Any, **kwargs: Any) -> list[Any]:
    """The levels of a multiscale image as datasets, level 0 first.

    The image group (the store's root, or ``group=``) is read through its OME-NGFF
    ``multiscales`` metadata (0.4 or 0.5), whatever the layout: an array per level (ome-zarr-py,
    acquire-zarr, xzaro's streams) or a group per level (ngff-zarr, ``to_store(multiscale=...)``).
    Each level is the dataset ``xr.open_dataset(url, engine="zaro", group=<level>)`` gives (see
    :mod:`xzaro.backends.ome`: the OME axes as dimensions, physical coordinates). A pyramid
    xzaro wrote without OME metadata (no variable had axes OME can describe) is read from its
    groups ``0``, ``1``, … ``n-1``. Other keywords go to ``xr.open_dataset``.

    Raises
    ------
    MetadataError
        If the group has neither OME metadata nor xzaro's level groups, or its metadata is wrong.
    """
    import xarray as xr

    base = (kwargs.pop("group", "") or "").strip("/")
    image = open_group(
        url,
        base,
        storage_options=kwargs.get("storage_options"),
        zarr_format=kwargs.get("zarr_format"),
        consolidated=kwargs.get("consolidated"),
    )
    if read_multiscales(image.index, base, image.meta):
        paths = image_level_paths(image.index, base)
    else:
        groups = image.groups()
        count = next(i for i in range(len(groups) + 1) if str(i) not in groups)
        if not count:
            raise MetadataError(
                "the group has no OME-NGFF multiscales metadata and no pyramid level groups "
                "(0, 1, ...)",
                url=image.store.url,
                key=metadata_key(base, image.meta),
                field="multiscales",
            )
        paths = [join(base, str(i)) for i in range(count)]
    return [xr.open_dataset(url, engine="zaro", group=path, **kwargs) for path in paths]


def image_level_paths(index: NodeIndex, path: str = "") -> list[str]:
    """The node paths of the levels of the image group at ``path``, level 0 first.

    Several ``multiscales`` entries (xzaro writes one per variable) sharing level groups give
    those groups once.

    Raises
    ------
    NodeNotFoundError
        If there is no group at ``path``.
    MetadataError
        If the group has no OME ``multiscales`` metadata, or it is wrong.
    """
    path = path.strip("/")
    meta = index.get(path)
    if not isinstance(meta, GroupMeta):
        raise NodeNotFoundError(
            "this node is an array, not a group", url=index.store.url, key=path or "/"
        )
    images = read_multiscales(index, path, meta)
    if not images:
        raise MetadataError(
            "the group has no OME-NGFF multiscales metadata",
            url=index.store.url,
            key=metadata_key(path, meta),
            field="multiscales",
        )
    nodes = [[node for node, *_ in level_nodes(image)] for image in images]
    ordered: list[str] = []
    for j in range(max(len(n) for n in nodes)):
        for per_image in nodes:
            if j < len(per_image) and per_image[j] not in ordered:
                ordered.append(per_image[j])
    return ordered
