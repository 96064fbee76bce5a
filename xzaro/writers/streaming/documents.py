"""A stream's metadata documents: rendered once per node, stored only when they change.

A stream rewrites its metadata after every stored row, and only the append extent of each
level's array differs from one row to the next. :class:`StreamDocuments` renders each node's
documents once (with :func:`~xzaro.writers.store_array.write_metadata`, so they are exactly
what it writes) with a marker extent, and makes the documents of any extent by putting the
number in its place; a document equal to the one last stored (a group, V2 attributes) is not
stored again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from xzaro.meta import GroupMeta, ZaroMeta
from xzaro.stores import Store
from xzaro.writers.store_array import write_metadata

#: The append extents documents are rendered with, then replaced by the true one. No stream
#: reaches them; a document holding one elsewhere too (in attributes) is rendered every time.
_MARKER = str(987_654_321_987_654_321).encode()
_OTHER_MARKER = str(987_654_321_987_654_323).encode()


class _Documents:
    """A stand-in store keeping what :func:`write_metadata` stores, in order."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def set(self, key: str, value: bytes) -> None:
        self.items[key] = bytes(value)


def rendered(path: str, meta: ZaroMeta | GroupMeta) -> dict[str, bytes]:
    """The documents :func:`write_metadata` stores for the node ``meta`` at ``path``."""
    documents = _Documents()
    write_metadata(documents, path, meta)  # type: ignore[arg-type]
    return documents.items


def _array_template(path: str, meta: ZaroMeta) -> list[tuple[str, list[bytes] | None]]:
    """Each document of the array ``meta``: the same for every extent (one piece), the pieces
    around the extent, or ``None`` (rendered each time: the marker is elsewhere too)."""
    one, other = (
        rendered(path, replace(meta, shape=(int(marker), *meta.shape[1:])))
        for marker in (_MARKER, _OTHER_MARKER)
    )
    template: list[tuple[str, list[bytes] | None]] = []
    for key, doc in one.items():
        pieces = doc.split(_MARKER)
        if doc == other[key]:
            template.append((key, [doc]))
        elif len(pieces) == 2 and other[key].split(_OTHER_MARKER) == pieces:
            template.append((key, pieces))
        else:
            template.append((key, None))
    return template


class StreamDocuments:
    """The metadata documents of one stream's nodes, stored into ``store`` when they change.

    A node's metadata is rendered on its first write after :meth:`forget`; until the next
    :meth:`forget`, an array's metadata may change in its append extent only, a group's not
    at all. Not thread-safe: the device calls it under its metadata lock.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._stored: dict[str, bytes] = {}
        # per node path: each document's key and its pieces around the marker extent (one
        # piece: no extent in it; None: rendered every time)
        self._templates: dict[str, list[tuple[str, list[bytes] | None]]] = {}

    def forget(self) -> None:
        """Render every node again on its next write (its metadata changed)."""
        self._templates.clear()

    def reset(self) -> None:
        """Forget the templates and what was stored (the store was cleared)."""
        self._templates.clear()
        self._stored.clear()

    def write_array(self, path: str, meta: ZaroMeta) -> None:
        """Store the changed documents of the array ``meta`` (append extent ``meta.shape[0]``)."""
        template = self._templates.get(path)
        if template is None:
            template = self._templates[path] = _array_template(path, meta)
        extent = str(meta.shape[0]).encode()
        whole: dict[str, bytes] | None = None  # rendered once, for the documents that need it
        for key, pieces in template:
            if pieces is None:
                whole = whole or rendered(path, meta)
                self._write(key, whole[key])
            else:
                self._write(key, extent.join(pieces))

    def write_group(self, path: str, meta: Callable[[], GroupMeta]) -> None:
        """Store the documents of the group made by ``meta`` (called once until
        :meth:`forget`) unless stored already."""
        template = self._templates.get(path)
        if template is None:
            docs = rendered(path, meta())
            template = self._templates[path] = [(k, [doc]) for k, doc in docs.items()]
        for key, pieces in template:
            assert pieces is not None
            self._write(key, pieces[0])

    def _write(self, key: str, doc: bytes) -> None:
        if self._stored.get(key) != doc:
            self._store.set(key, doc)
            self._stored[key] = doc
