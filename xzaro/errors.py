"""The xzaro error hierarchy.

Every failure xzaro reports is a :class:`ZaroError`. Each error names the URL of the store, the key
(or node path) and, where it applies, the metadata field that is wrong, so that a user can tell at a
glance which object in which store needs attention.
"""

from __future__ import annotations

import reprlib
from typing import Any

_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother = 3, 60, 60


def brief(value: Any) -> str:
    """A short ``repr`` of a value from a document, safe for any nesting depth or size (a
    large numpy value is named by its type and size, never printed)."""
    nbytes = getattr(value, "nbytes", 0)
    if isinstance(nbytes, int) and nbytes > 256:
        return f"<{type(value).__name__} of {nbytes} bytes>"
    return _BRIEF.repr(value)


class ZaroError(Exception):
    """Base class of every error xzaro raises.

    Parameters
    ----------
    message
        What went wrong and what was expected.
    url
        The store URL the error concerns.
    key
        The store key or node path the error concerns.
    field
        The metadata field that is wrong, when the error is about metadata.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        key: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.url = url
        self.key = key
        self.field = field
        super().__init__(self._render())

    def __str__(self) -> str:  # KeyError's own __str__ would quote the message
        return self._render()

    def _render(self) -> str:
        where = []
        if self.url is not None:
            where.append(f"url={self.url!r}")
        if self.key is not None:
            where.append(f"key={self.key!r}")
        if self.field is not None:
            where.append(f"field={self.field!r}")
        return f"{self.message} [{', '.join(where)}]" if where else self.message

    def __reduce__(self) -> tuple[Any, ...]:  # keep url/key/field across process boundaries
        return (_rebuild, (type(self), self.message, self.url, self.key, self.field))


def _rebuild(
    cls: type[ZaroError], message: str, url: str | None, key: str | None, field: str | None
) -> ZaroError:
    return cls(message, url=url, key=key, field=field)


class MetadataError(ZaroError, ValueError):
    """A metadata document is malformed, inconsistent or has an invalid value."""


class MetadataTypeError(MetadataError, TypeError):
    """A metadata, attribute or encoding value has the wrong type (a ``TypeError`` too, as
    xarray raises for such values)."""


class NameMismatchError(MetadataError, KeyError):
    """A name or value the call or the metadata gives has no counterpart: encoding for a
    variable the dataset lacks, coordinate values the store does not hold, an array without
    dimension names (a ``KeyError`` too, as xarray raises for these)."""


class UnsupportedError(MetadataError):
    """Metadata names something xzaro does not implement (codec, dtype, chunk grid, extension)."""


class NodeNotFoundError(ZaroError, FileNotFoundError):
    """No array or group exists at the requested path."""


class NodeExistsError(ZaroError, FileExistsError):
    """A write would replace an existing array or group, and the mode forbids it."""


class StoreError(ZaroError, OSError):
    """A store operation failed for a reason other than a missing key (auth, network, I/O)."""


class IncompleteAnswerError(StoreError):
    """An answer ended before all of its body arrived (shorter than its ``Content-Length`` or
    than the range asked for): a transient failure, retried like a dropped connection."""


class DecodeError(ZaroError, ValueError):
    """Stored bytes could not be decoded into the chunk the metadata describes."""


class ChecksumError(DecodeError):
    """A stored checksum does not match the bytes it protects."""


class OutOfMemoryError(ZaroError, MemoryError):
    """A read (or a chunk it must decode) does not fit in memory."""


class UnsafeCodecError(ZaroError, PermissionError):
    """A codec that can execute code (such as pickle) was refused; opt in to allow it."""


class AlignmentError(ZaroError, ValueError):
    """A block written to an array does not start and end on stored-object boundaries."""


class StreamingError(ZaroError, ValueError):
    """Invalid streaming properties, frames or call order."""
