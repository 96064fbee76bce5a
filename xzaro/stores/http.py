"""HTTP(S) reads that are checked: whole objects against Content-Length, ranges against
Content-Range.

fsspec's HTTP file system shows neither the status nor the headers of an answer, so reads are
made here with its aiohttp session. A whole object must have the length its ``Content-Length``
announces. A ``206`` answer must carry a ``Content-Range`` that covers exactly the range asked for
(up to the object's end) and a body of that length, which is never read beyond it; a ``200``
answer is the whole object and is cut here. A body that ends early is an
:class:`~xzaro.errors.IncompleteAnswerError` (retried), never a short chunk.
Timeouts come from :func:`~xzaro.stores.network.library_options`.
"""

from __future__ import annotations

import re
from typing import Any

from xzaro.errors import IncompleteAnswerError, StoreError

#: ``Content-Range: bytes first-last/size`` (the size may be ``*``).
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def _range_header(start: int, end: int | None) -> str:
    """The HTTP ``Range`` header for :func:`~xzaro.stores.ranges.limits`' ``start`` and ``end``."""
    if start < 0:
        return f"bytes={start}"
    if end is None:
        return f"bytes={start}-"
    return f"bytes={start}-{end - 1}"


def _content_range_problem(
    header: str | None, start: int, end: int | None
) -> tuple[str | None, int]:
    """Check the ``Content-Range`` of a 206 answer against the range asked for.

    Returns what is wrong (``None`` if nothing) and how many body bytes the header announces.
    """
    if header is None:
        return "a 206 answer to a range request has no Content-Range", 0
    match = _CONTENT_RANGE.match(header)
    if match is None:
        return f"a 206 answer has an unreadable Content-Range {header!r}", 0
    first, last = int(match[1]), int(match[2])
    size = None if match[3] == "*" else int(match[3])
    if last < first or (size is not None and last >= size):
        return f"a 206 answer has an impossible Content-Range {header!r}", 0
    length = last - first + 1
    if start < 0:
        if size is None:
            good = length == -start
        else:
            good = (first, last) == (max(0, size + start), size - 1)
    elif first != start:
        good = False
    elif end is None:
        good = size is None or last == size - 1
    else:
        good = last == (end if size is None else min(end, size)) - 1
    if not good:
        asked = _range_header(start, end)
        return f"asked for {asked!r} but the answer's Content-Range is {header!r}", length
    return None, length


async def get_whole(fs: Any, url: str) -> bytes:
    """GET a whole object over HTTP(S) with fsspec's HTTP file system ``fs``, checking that the
    body has the length its ``Content-Length`` announces.

    Raises
    ------
    FileNotFoundError
        HTTP 404 or 410.
    aiohttp.ClientResponseError
        Another HTTP error status (the caller classifies it).
    IncompleteAnswerError
        The body ended early.
    """
    async with await _get(fs, url, {}) as response:
        if response.status != 200:
            raise StoreError(f"unexpected HTTP status {response.status} for a whole object")
        return await _whole_body(response)


async def _get(fs: Any, url: str, extra_headers: dict[str, str]) -> Any:
    """The aiohttp request context of a GET of ``url`` with ``fs``'s options, whose answer
    raises on a status that is not a success (``FileNotFoundError`` for 404 and 410)."""
    kwargs = dict(fs.kwargs)
    headers = dict(kwargs.pop("headers", None) or {})
    headers.update(extra_headers)
    session = await fs.set_session()
    return _Checked(session.get(fs.encode_url(url), headers=headers, **kwargs), url)


class _Checked:
    """An aiohttp request context whose answer is checked for its status on entry."""

    def __init__(self, context: Any, url: str) -> None:
        self.context = context
        self.url = url

    async def __aenter__(self) -> Any:
        response = await self.context.__aenter__()
        if response.status in (404, 410):
            await self.context.__aexit__(None, None, None)
            raise FileNotFoundError(self.url)
        if response.status >= 400:
            try:
                response.raise_for_status()
            finally:
                await self.context.__aexit__(None, None, None)
        return response

    async def __aexit__(self, *exc: Any) -> None:
        await self.context.__aexit__(*exc)


async def _whole_body(response: Any) -> bytes:
    """The body of a ``200`` answer, of exactly its ``Content-Length`` when that is known."""
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    length = response.content_length if encoding == "identity" else None
    if length is None:  # chunked or compressed: aiohttp itself checks that the body is complete
        data: bytes = await response.read()
        return data
    data = await _read_at_most(response, length)
    if len(data) < length:
        raise IncompleteAnswerError(
            f"the answer's body ended after {len(data)} of the {length} bytes its "
            "Content-Length announces"
        )
    if len(data) > length:
        raise StoreError(f"the answer's body is longer than its Content-Length {length}")
    return data


async def get_range(fs: Any, url: str, start: int, end: int | None) -> bytes:
    """GET a byte range over HTTP(S), checking the answer against the range asked for.

    A ``206`` answer must carry a ``Content-Range`` that covers exactly the range (up to the
    object's end) and a body of that length, which is never read beyond it; a ``200`` answer is
    the whole object (a server that ignores ``Range``) and is cut here. fsspec's own range read
    cannot be used for this: it does not show the answer's headers.
    """
    # a range of a compressed answer is not a range of the object
    extra = {"Range": _range_header(start, end), "Accept-Encoding": "identity"}
    if any(name.lower() == "accept-encoding" for name in fs.kwargs.get("headers") or {}):
        del extra["Accept-Encoding"]
    async with await _get(fs, url, extra) as response:
        status = response.status
        if status == 200:
            data = await _whole_body(response)
            return data[start:] if start < 0 else data[start:end]
        if status != 206:
            raise StoreError(f"unexpected HTTP status {status} for a range request")
        announced = response.headers.get("Content-Range")
        problem, length = _content_range_problem(announced, start, end)
        if problem is None and response.content_length not in (None, length):
            problem = (
                f"the answer's Content-Length {response.content_length} differs from its "
                f"Content-Range {announced!r}"
            )
        if problem is not None:
            raise StoreError(problem)
        data = await _read_at_most(response, length)
        if len(data) < length:
            raise IncompleteAnswerError(
                f"the answer's body ended after {len(data)} bytes, its Content-Range "
                f"{announced!r} announces {length}"
            )
        if len(data) > length:
            raise StoreError(
                f"the answer's body has more than the {length} bytes its Content-Range "
                f"{announced!r} announces"
            )
        return data


async def _read_at_most(response: Any, limit: int) -> bytes:
    """The body of an aiohttp ``response``, reading at most ``limit + 1`` bytes of it.

    A connection that ends before the body does is a short body here, whatever aiohttp calls it.
    """
    import aiohttp

    parts: list[bytes] = []
    done = 0
    while done <= limit:
        try:
            part = await response.content.read(limit + 1 - done)
        except aiohttp.ClientPayloadError:
            break
        if not part:
            break
        parts.append(part)
        done += len(part)
    return b"".join(parts)
