"""Icechunk repositories as stores: :class:`IcechunkStore` on a session, :func:`open_icechunk`
at a path or ``icechunk://`` URL, and :func:`icechunk_store_for` for the Icechunk objects users
already hold.

Importing this package does not import ``icechunk`` (nor, through it, zarr-python); opening a
repository or wrapping a session does.
"""

from __future__ import annotations

import sys
from typing import Any

from xzaro.stores.icechunk.repository import SCHEME, open_icechunk, parse_url
from xzaro.stores.icechunk.store import IcechunkStore


def icechunk_store_for(obj: Any) -> IcechunkStore | None:
    """An :class:`IcechunkStore` on ``obj`` when it is an Icechunk ``Session``, ``ForkSession``
    or Icechunk's own ``IcechunkStore``; ``None`` for anything else (without importing
    ``icechunk`` when nothing has)."""
    if "icechunk" not in sys.modules:
        return None
    from icechunk import IcechunkStore as ZarrIcechunkStore
    from icechunk import Session

    if isinstance(obj, Session | ZarrIcechunkStore):
        return IcechunkStore(obj)
    return None


__all__ = ["SCHEME", "IcechunkStore", "icechunk_store_for", "open_icechunk", "parse_url"]
