"""HTTP(S) reads that are checked: timeouts by default, range answers against Content-Range.

fsspec's HTTP file system shows neither the status nor the headers of a range answer, so ranges
are fetched here with its aiohttp session: a ``206`` answer must carry a ``Content-Range`` that
covers exactly the range asked for (up to the object's end) and a body of that length, which is
never read beyond it; a ``200`` answer is the whole object and is cut here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from xzaro.errors import StoreError

#: aiohttp timeouts, in seconds, of HTTP(S) stores whose ``storage_options`` give none: a
#: connection must be made within ``sock_connect``, no answer may pause longer than
#: ``sock_read``, and no request may last longer than ``total`` (aiohttp's own default).
HTTP_TIMEOUT = {"total": 300.0, "sock_connect": 30.0, "sock_read": 60.0}
HTTP_PROTOCOLS = ("http", "https")
#: ``Content-Range: bytes first-last/size`` (the size may be ``*``).
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


def with_http_timeout(url: str, options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``options`` with :data:`HTTP_TIMEOUT` added for an HTTP(S) URL that has no timeout.

    The caller's own ``client_kwargs["timeout"]`` is kept as it is. In a chained URL
    (``simplecache::https://...``) the HTTP options are those under the protocol's name.
    """
    from fsspec.core import split_protocol

    links = url.split("::")
    protocol = (split_protocol(links[-1])[0] or "").lower()
    if protocol not in HTTP_PROTOCOLS:
        return options
    out = dict(options)
    if len(links) == 1:
        target = out
    else:
        target = out[protocol] = dict(out.get(protocol) or {})
    client = dict(target.get("client_kwargs") or {})
    if "timeout" in client:
        return options
    import aiohttp

    client["timeout"] = aiohttp.ClientTimeout(**HTTP_TIMEOUT)
    target["client_kwargs"] = client
    return out


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


async def get_range(fs: Any, url: str, start: int, end: int | None) -> bytes:
    """GET a byte range over HTTP(S), checking the answer against the range asked for.

    A ``206`` answer must carry a ``Content-Range`` that covers exactly the range (up to the
    object's end) and a body of that length, which is never read beyond it; a ``200`` answer is
    the whole object (a server that ignores ``Range``) and is cut here. fsspec's own range read
    cannot be used for this: it does not show the answer's headers.
    """
    kwargs = dict(fs.kwargs)
    headers = dict(kwargs.pop("headers", None) or {})
    headers["Range"] = _range_header(start, end)
    if not any(name.lower() == "accept-encoding" for name in headers):
        # a range of a compressed answer is not a range of the object
        headers["Accept-Encoding"] = "identity"
    session = await fs.set_session()
    async with session.get(fs.encode_url(url), headers=headers, **kwargs) as response:
        if response.status == 404:
            raise FileNotFoundError(url)
        response.raise_for_status()
        status = response.status
        if status == 200:
            data: bytes = await response.read()
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
        if len(data) != length:
            raise StoreError(
                f"the answer's body has {len(data)} bytes, its Content-Range {announced!r} "
                f"announces {length}"
            )
        return data


async def _read_at_most(response: Any, limit: int) -> bytes:
    """The body of an aiohttp ``response``, reading at most ``limit + 1`` bytes of it."""
    parts: list[bytes] = []
    done = 0
    while done <= limit:
        part = await response.content.read(limit + 1 - done)
        if not part:
            break
        parts.append(part)
        done += len(part)
    return b"".join(parts)
