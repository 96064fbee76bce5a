"""What a store holds for each array: how many objects (chunks or shards) are written and,
where the store keeps them in local files, how many bytes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xzaro.stores.base import Store

METADATA_NAMES = frozenset({"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"})


@dataclass
class StoredObjects:
    """The objects written for one array: their number and total size (``None``: unknown)."""

    count: int = 0
    nbytes: int | None = 0


def stored_objects(store: Store, arrays: Iterable[str], path: str = "") -> dict[str, StoredObjects]:
    """The objects stored below ``path`` for each of the arrays at the paths ``arrays``.

    Every key that is not a metadata document belongs to the array whose path is the key's
    longest parent in ``arrays`` (an array has no child nodes). Sizes come from the file system
    for stores that keep objects in local files; for other stores ``nbytes`` is ``None``.
    """
    from xzaro.stores.base import SupportsLocalFiles

    arrays = set(arrays)
    keys = store.list(path.strip("/"))
    local = store if isinstance(store, SupportsLocalFiles) else None
    found: dict[str, StoredObjects] = {}
    for key in keys:
        parent, _, name = key.rpartition("/")
        if name in METADATA_NAMES:
            continue
        owner = _owner(parent, arrays)
        if owner is None:
            continue
        entry = found.setdefault(owner, StoredObjects(nbytes=0 if local else None))
        entry.count += 1
        if local is not None and entry.nbytes is not None:
            entry.nbytes += os.stat(local.local_path(key)).st_size
    for array in arrays:
        found.setdefault(array, StoredObjects(nbytes=0 if local else None))
    return found


def _owner(parent: str, arrays: set[str]) -> str | None:
    while True:
        if parent in arrays:
            return parent
        if not parent:
            return None
        parent = parent.rpartition("/")[0]
