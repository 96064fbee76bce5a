"""The append journal: what makes an interrupted append finish, not repeat, when run again.

An append writes its data beyond the stored arrays' ends first and their new shapes last. If it
stops in between (a transient store error while writing metadata), some documents may already
promise the new shape while others, or the consolidated metadata, still show the old one. The
journal, written before the first byte of data and removed after the last document, records the
old and new length of every array along the append dimension; a later append into the group
reads it and, when it is the same append (same dimension, same number of new elements), writes
at the recorded old length again instead of after the new one.
"""

from __future__ import annotations

import json
from typing import Any

from xzaro.errors import MetadataError, ZaroError
from xzaro.paths import join
from xzaro.stores.base import Store

#: The journal's key inside the group being appended to.
JOURNAL_KEY = ".xzaro-append.json"


class InterruptedAppendError(ZaroError, RuntimeError):
    """A group holds the journal of an append that did not finish, and this write is not that
    append run again."""


def read_journal(store: Store, group: str) -> dict[str, Any] | None:
    """The journal of an unfinished append into ``group``, or ``None``."""
    key = join(group, JOURNAL_KEY)
    raw = store.get(key)
    if raw is None:
        return None
    try:
        doc = json.loads(bytes(raw))
        arrays = {str(path): (int(old), int(new)) for path, (old, new) in doc["arrays"].items()}
        return {"append_dim": str(doc["append_dim"]), "arrays": arrays}
    except (ValueError, KeyError, TypeError) as err:
        raise MetadataError(
            f"the append journal is unreadable ({err}); delete it after checking the arrays",
            url=store.url,
            key=key,
        ) from err


def write_journal(
    store: Store, group: str, append_dim: str, arrays: dict[str, tuple[int, int]]
) -> None:
    """Record an append before its data is written: ``arrays`` maps each array's path to its
    length along ``append_dim`` before and after."""
    doc = {"append_dim": append_dim, "arrays": {p: list(v) for p, v in arrays.items()}}
    store.set(join(group, JOURNAL_KEY), json.dumps(doc).encode())


def clear_journal(store: Store, group: str) -> None:
    """Remove the journal once every document of the append is written."""
    store.delete(join(group, JOURNAL_KEY))


def resumed_lengths(
    journal: dict[str, Any],
    append_dim: str | None,
    new_lengths: dict[str, int],
    stored_lengths: dict[str, int],
    *,
    url: str,
    group: str,
) -> dict[str, int]:
    """The old lengths to append at when this write is the interrupted append run again.

    ``new_lengths`` are the lengths of this write's data along ``append_dim`` by array path;
    ``stored_lengths`` the lengths the stored documents show now. Raises
    :class:`InterruptedAppendError` when this write is anything else.
    """
    arrays = journal["arrays"]
    recorded = ", ".join(f"{p}: {old} -> {new}" for p, (old, new) in sorted(arrays.items()))
    hint = (
        f"an append along {journal['append_dim']!r} into this group did not finish "
        f"({recorded}); run the same append again (mode='a', append_dim="
        f"{journal['append_dim']!r}, the same data) to finish it, or delete "
        f"{join(group, JOURNAL_KEY)!r} after checking the arrays"
    )
    if append_dim != journal["append_dim"] or set(new_lengths) != set(arrays):
        raise InterruptedAppendError(hint, url=url, key=join(group, JOURNAL_KEY))
    for path, n in new_lengths.items():
        old, new = arrays[path]
        if new - old != n or stored_lengths.get(path) not in (old, new):
            raise InterruptedAppendError(hint, url=url, key=join(group, JOURNAL_KEY))
    return {path: arrays[path][0] for path in new_lengths}
