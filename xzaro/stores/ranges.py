"""Byte ranges answered exactly: fsspec's range arguments, and answers checked against them.

A range read must return exactly the range asked for. An answer of another length is accepted
only where the object's size explains it: a shorter one when the object ends inside the range,
a longer one only when it is the whole object (a server that ignored the range).
"""

from __future__ import annotations

from xzaro.errors import IncompleteAnswerError, StoreError


def limits(offset: int, length: int | None) -> tuple[int | None, int | None]:
    """Translate a :data:`~xzaro.stores.base.RangeRequest` into fsspec's ``start``/``end``
    (end exclusive)."""
    if offset < 0:
        return offset, None
    if length is None:
        return (offset or None), None
    return offset, offset + length


def range_fits(data: bytes, start: int | None, end: int | None) -> bool:
    """Whether an answer has the length the range asks for (any length for an open end)."""
    if start is None or (start >= 0 and end is None):
        return True
    if start < 0:
        return len(data) == -start
    return end is not None and len(data) == end - start


def fit_to_size(data: bytes, start: int, end: int | None, size: int | None) -> bytes | None:
    """The range asked for out of an answer whose length did not fit it, given the object's
    ``size``; ``None`` if the size does not explain the answer."""
    if size is None:
        return None
    if len(data) == size:  # the whole object
        return data[start:] if start < 0 else data[start:end]
    first = max(0, size + start) if start < 0 else min(start, size)
    stop = size if end is None else min(end, size)
    if len(data) == max(0, stop - first):
        return data
    return None


def length_problem(data: bytes, start: int, end: int | None, size: int | None) -> str:
    """What is wrong with an answer of ``len(data)`` bytes that :func:`fit_to_size` refused."""
    asked = f"the last {-start} bytes" if start < 0 else f"bytes {start} to {end}"
    known = "unknown" if size is None else f"{size} bytes"
    return (
        f"a read of {asked} was answered with {len(data)} bytes, which the object's size "
        f"({known}) does not explain"
    )


def fitted(data: bytes, start: int, end: int | None, size: int | None) -> bytes:
    """The range asked for out of an answer of another length, given the object's ``size``.

    Raises
    ------
    IncompleteAnswerError
        The answer is shorter than the range and the size does not explain it (worth another
        attempt: the body was cut short).
    StoreError
        The answer is longer than the range and is not the whole object.
    """
    result = fit_to_size(data, start, end, size)
    if result is not None:
        return result
    problem = length_problem(data, start, end, size)
    wanted = -start if start < 0 else None if end is None else end - start
    if wanted is not None and len(data) < wanted:
        raise IncompleteAnswerError(problem)
    raise StoreError(problem)
