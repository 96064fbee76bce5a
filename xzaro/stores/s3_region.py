"""The region of an S3 bucket, as S3 itself names it.

A request signed for another region than the bucket's is answered ``301 PermanentRedirect``
without a location. botocore (under s3fs) follows it by itself; obstore reports it as an error.
:func:`bucket_region` asks the bucket's endpoint (``HEAD /<bucket>``), whose answer, whatever
its status, names the region in ``x-amz-bucket-region``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from xzaro.errors import ZaroError
from xzaro.log import info

#: The endpoint asked when the store has none of its own.
AWS_ENDPOINT = "https://s3.amazonaws.com"
#: The header of S3's answers that names the bucket's region.
REGION_HEADER = "x-amz-bucket-region"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 301 itself carries the region


def bucket_region(url: str, config: Mapping[str, Any], timeout: float) -> str | None:
    """The region S3 names for the bucket of ``url`` (``s3://bucket/...``), asked at the
    store's ``endpoint`` in ``config`` (obstore's S3 configuration) or AWS's; ``None`` when the
    answer names none or no answer comes within ``timeout`` seconds."""
    bucket = urlsplit(url).netloc
    if not bucket:
        return None
    endpoint = str(config.get("endpoint") or AWS_ENDPOINT).rstrip("/")
    request = urllib.request.Request(f"{endpoint}/{quote(bucket)}", method="HEAD")
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as answer:
            headers = answer.headers
    except urllib.error.HTTPError as exc:  # 301, 403: the header is there all the same
        headers = exc.headers
    except (OSError, ValueError, ZaroError) as exc:
        info("could not ask %s for the region of the bucket %r: %s", endpoint, bucket, exc)
        return None
    region = (headers.get(REGION_HEADER) or "").strip() if headers is not None else ""
    return region or None


def is_region_redirect(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is S3's answer to a request signed for
    another region than the bucket's, as obstore reports it."""
    link: BaseException | None = exc
    for _ in range(8):
        if link is None:
            return False
        text = str(link)
        if "PermanentRedirect" in text or ("redirect" in text.lower() and "region" in text.lower()):
            return True
        link = link.__cause__
    return False
