"""Node paths inside a store: joining them, and refusing names that would leave the store.

A node name becomes part of a store key, so before anything is written every name a user gives
(variables, dimensions, groups) is checked here: no empty component, no ``.`` or ``..``, no
absolute path, no backslash or NUL, and no name that the Zarr formats reserve for their own
documents. ``/`` separates groups, so it is allowed in group paths only.
"""

from __future__ import annotations

from collections.abc import Hashable

from xzaro.errors import ZaroError

#: Names of the documents Zarr V2 and V3 keep beside the nodes; a node cannot take one.
RESERVED_NAMES = frozenset({".zarray", ".zgroup", ".zattrs", ".zmetadata", "zarr.json"})


class InvalidNameError(ZaroError, ValueError, TypeError):
    """A variable, dimension or group name cannot become a node of a Zarr store.

    It is a ``TypeError`` for names that are not strings and a ``ValueError`` otherwise, as
    xarray's own checks are.
    """


def join(*parts: str) -> str:
    """Join path parts with ``/``, dropping empty parts and outer slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def check_name(name: Hashable, what: str, *, url: str | None = None, group: str = "") -> str:
    """Return ``name`` if it can be one node (or dimension) name, else raise.

    ``what`` says what the name is ("variable", "dimension") for the message.
    """
    where = join(group, name) if isinstance(name, str) else group or "/"
    if not isinstance(name, str):
        raise InvalidNameError(
            f"invalid {what} name {name!r}: names must be a string or None to be stored in Zarr",
            url=url,
            key=where,
        )
    problem = _problem(name)
    if problem is None and "/" in name:
        problem = "'/' separates groups and cannot be part of a name"
    if problem is not None:
        raise InvalidNameError(f"invalid {what} name {name!r}: {problem}", url=url, key=where)
    return name


def check_group_path(path: str | None, *, url: str | None = None) -> str:
    """Return a group path (``a/b``, ``""`` for the root) normalised, or raise if any of its
    components is not a valid node name."""
    if path is None:
        return ""
    if not isinstance(path, str):
        raise InvalidNameError(f"invalid group {path!r}: a group must be a string", url=url)
    stripped = path.strip("/")
    if not stripped:
        return ""
    if "\\" in path or "\x00" in path:
        raise InvalidNameError(
            f"invalid group {path!r}: backslashes and NUL are not allowed", url=url, key=path
        )
    for part in stripped.split("/"):
        problem = _problem(part)
        if problem is not None:
            raise InvalidNameError(f"invalid group {path!r}: {problem}", url=url, key=path)
    return stripped


def _problem(name: str) -> str | None:
    if not name:
        return "a name string must be length 1 or greater"
    if name in (".", ".."):
        return "'.' and '..' would point outside the node"
    if "\\" in name or "\x00" in name:
        return "backslashes and NUL are not allowed"
    if name in RESERVED_NAMES:
        return "the name is reserved for Zarr's own metadata documents"
    return None
