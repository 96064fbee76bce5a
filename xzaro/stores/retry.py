"""Every request to a network store: classified when it fails, retried when that may help,
limited in number per process.

A failed request is one of three kinds (:func:`classify`):

* *missing*: the key does not exist (HTTP 404 or 410, S3 ``NoSuchKey``); the caller reads
  ``None``. A bucket that does not exist is not a missing key: it is permanent and raises
  :class:`~xzaro.errors.NodeNotFoundError`.
* *transient*: worth another attempt: HTTP 5xx (but 501 and 505), 429 and 408, S3 ``SlowDown``,
  ``InternalError``, ``ServiceUnavailable`` and ``RequestTimeout``, a connection refused, reset
  or dropped, a body cut short, a connect or read timeout.
* *permanent*: anything else (400, 401, 403, bad credentials, a certificate refused ...), raised
  at once; refused credentials come with a hint.

obstore's errors say less by their type: a missing key is a ``FileNotFoundError`` (or
``NotFoundError``), refused credentials a ``PermissionDeniedError`` or ``UnauthenticatedError``,
and everything else a ``GenericError`` whose text holds the HTTP status (and the S3 error code)
of the answer, or the kind of failure below HTTP (``object_store``'s ``HttpErrorKind``:
``Connect``, ``Request``, ``Timeout`` and ``Interrupted`` are worth another attempt; ``Decode``
and anything unknown are not). :mod:`xzaro.stores.obstore_options` reads that text.

:func:`attempt_async` and :func:`attempt_sync` make one request under these rules, with the
retries, backoff and limit of requests in flight of a
:class:`~xzaro.stores.network.NetworkOptions`.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from xzaro.concurrency import after_fork
from xzaro.errors import IncompleteAnswerError, NodeNotFoundError, StoreError, ZaroError
from xzaro.log import info
from xzaro.stores.base import store_error
from xzaro.stores.network import (
    NetworkOptions,
    count_failure,
    count_request,
)
from xzaro.stores.obstore_options import (
    DEBUG_MARKER,
    bucket_missing,
    is_obstore_error,
    obstore_error_code,
    obstore_http_kind,
    obstore_message,
    obstore_status,
)

T = TypeVar("T")
Kind = Literal["missing", "transient", "permanent"]

AUTH_HINT = (
    "the credentials were refused or do not allow this: check the key and secret, token or "
    'profile; a public bucket needs storage_options={"anon": True} (S3) or {"token": "anon"} '
    "(GCS); and check that the region is the bucket's"
)

#: S3 error codes, by kind.
_S3_MISSING = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchVersion"})
_S3_TRANSIENT = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "OperationAborted",
    }
)
_S3_AUTH = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
        "403",
        "401",
        "Forbidden",
    }
)
#: Exception types that carry the HTTP status of an answer, and the attribute that holds it.
_STATUS_TYPES = (
    ("aiohttp.client_exceptions.ClientResponseError", "status"),
    ("gcsfs.retry.HttpError", "code"),
)
#: Exception types (module-qualified, anywhere in the type's MRO) that are never retried.
_PERMANENT_TYPES = frozenset(
    {
        "aiohttp.client_exceptions.ClientSSLError",
        "botocore.exceptions.SSLError",
        "ssl.SSLError",
    }
)
_AUTH_TYPES = frozenset(
    {
        "botocore.exceptions.NoCredentialsError",
        "botocore.exceptions.PartialCredentialsError",
        "google.auth.exceptions.DefaultCredentialsError",
    }
)
#: Exception types (module-qualified, anywhere in the type's MRO) worth another attempt.
_TRANSIENT_TYPES = frozenset(
    {
        "xzaro.errors.IncompleteAnswerError",
        "aiohttp.client_exceptions.ClientConnectionError",
        "aiohttp.client_exceptions.ClientPayloadError",
        # an answer cut short or garbled on the way (aiohttp's ContentLengthError ...)
        "aiohttp.http_exceptions.HttpProcessingError",
        "botocore.exceptions.HTTPClientError",
        "botocore.exceptions.ConnectionError",
        "botocore.exceptions.IncompleteReadError",
        # rate-limiting answers can come with a body that is not XML (s3fs retries these too)
        "botocore.parsers.ResponseParserError",
        "requests.exceptions.ConnectionError",
        "requests.exceptions.ChunkedEncodingError",
        "requests.exceptions.Timeout",
        "http.client.IncompleteRead",
        "builtins.ConnectionError",
        "builtins.TimeoutError",
    }
)

#: obstore's exception types of refused credentials.
_OBSTORE_AUTH_TYPES = frozenset(
    {"obstore.exceptions.PermissionDeniedError", "obstore.exceptions.UnauthenticatedError"}
)
#: The kinds of failure below HTTP (``object_store``'s ``HttpErrorKind``) worth another attempt,
#: with the words for messages.
_OBSTORE_TRANSIENT_KINDS = {
    "Connect": "connection failed",
    "Request": "request failed (the connection was closed or reset)",
    "Timeout": "timeout",
    "Interrupted": "answer cut short",
}


@dataclass(frozen=True)
class Failure:
    """What :func:`classify` makes of a failed request.

    Attributes
    ----------
    kind
        ``"missing"``, ``"transient"`` or ``"permanent"``.
    reason
        A few words for messages: ``"HTTP 503"``, ``"S3 SlowDown (HTTP 503)"``,
        ``"ServerDisconnectedError: ..."``.
    auth
        The credentials were refused (a hint goes with the error).
    bucket_missing
        The bucket itself does not exist.
    """

    kind: Kind
    reason: str
    auth: bool = False
    bucket_missing: bool = False


def _type_names(exc: BaseException) -> set[str]:
    return {f"{t.__module__}.{t.__qualname__}" for t in type(exc).__mro__}


def _text(exc: BaseException) -> str:
    """The message of ``exc``; obstore's without its debug dump."""
    text = str(exc)
    return obstore_message(exc, 300) if DEBUG_MARKER in text else text


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_text(exc)}".rstrip(": ")


def _from_status(status: int, reason: str) -> Failure:
    if status in (404, 410):
        return Failure("missing", reason)
    if status in (408, 429) or (500 <= status <= 599 and status not in (501, 505)):
        return Failure("transient", reason)
    return Failure("permanent", reason, auth=status in (401, 403))


def _from_s3_response(response: dict[str, Any]) -> Failure | None:
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if code.isdigit():  # an answer without a body (HEAD) has only its status as its code
        status, code = status or int(code), ""
    reason = f"HTTP {status}" if status else "S3 error"
    if code:
        reason = f"S3 {code} ({reason})" if status else f"S3 {code}"
    if code == "NoSuchBucket":
        return Failure("permanent", reason, bucket_missing=True)
    if code in _S3_MISSING:
        return Failure("missing", reason)
    if code in _S3_TRANSIENT:
        return Failure("transient", reason)
    if code in _S3_AUTH:
        return Failure("permanent", reason, auth=True)
    if isinstance(status, int):
        return _from_status(status, reason)
    return None


def _from_obstore(exc: BaseException) -> Failure:
    """The verdict on one of obstore's own exceptions (see the module notes)."""
    names = _type_names(exc)
    status, code = obstore_status(exc), obstore_error_code(exc)
    found = None
    if status is not None or code:
        answer = {"Error": {"Code": code or ""}, "ResponseMetadata": {"HTTPStatusCode": status}}
        found = _from_s3_response(answer)
    if names & _OBSTORE_AUTH_TYPES:
        reason = f"access refused ({found.reason})" if found else "access refused"
        return Failure("permanent", reason, auth=True)
    if found is not None:
        return found
    if "obstore.exceptions.NotFoundError" in names:
        if bucket_missing(exc):
            return Failure("permanent", _text(exc), bucket_missing=True)
        return Failure("missing", f"not found: {_text(exc)}")
    kind = obstore_http_kind(exc) or ""
    if kind in _OBSTORE_TRANSIENT_KINDS and "certificate" not in str(exc).lower():
        return Failure("transient", f"{_OBSTORE_TRANSIENT_KINDS[kind]}: {_text(exc)}")
    return Failure("permanent", _describe(exc))


def _strong(exc: BaseException) -> Failure | None:
    """The verdict of one exception of a chain that says for itself what happened."""
    if is_obstore_error(exc):
        return _from_obstore(exc)
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        found = _from_s3_response(response)
        if found is not None:
            return found
    names = _type_names(exc)
    detail = _describe(exc)
    for type_name, attribute in _STATUS_TYPES:
        status = getattr(exc, attribute, None) if type_name in names else None
        if isinstance(status, int) and 100 <= status <= 599:
            return _from_status(status, f"HTTP {status}")
    if names & _AUTH_TYPES:
        return Failure("permanent", detail, auth=True)
    if names & _PERMANENT_TYPES:
        return Failure("permanent", detail)
    if names & _TRANSIENT_TYPES:
        return Failure("transient", detail)
    return None


def _weak(exc: BaseException) -> Failure | None:
    """The verdict of a generic exception that libraries wrap others in."""
    text = _text(exc)
    if isinstance(exc, FileNotFoundError):
        if "bucket does not exist" in text.lower() or bucket_missing(exc):
            return Failure("permanent", text, bucket_missing=True)
        return Failure("missing", f"not found: {text}")
    if isinstance(exc, PermissionError) or (
        isinstance(exc, OSError) and text.startswith("Forbidden")  # gcsfs's 403
    ):
        return Failure("permanent", _describe(exc), auth=True)
    return None


def classify(exc: BaseException) -> Failure:
    """Whether the failure ``exc`` of a request means a missing key, is worth another attempt,
    or is final.

    The exception and those it was raised from (``__cause__``) are looked at: the innermost
    that says for itself what happened (an HTTP status, an S3 error code, a network error type)
    decides; otherwise the outermost generic one (``FileNotFoundError``: missing,
    ``PermissionError``: refused credentials); otherwise the failure is permanent.
    """
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(chain) < 8 and link not in chain:
        chain.append(link)
        link = link.__cause__
    for link in reversed(chain):
        if isinstance(link, ZaroError) and not isinstance(link, IncompleteAnswerError):
            if isinstance(link, NodeNotFoundError):
                return Failure("permanent", link.message, bucket_missing=True)
            return Failure("permanent", link.message)
        found = _strong(link)
        if found is not None:
            return found
    for link in chain:
        found = _weak(link)
        if found is not None:
            return found
    return Failure("permanent", _describe(exc))


def permanent_error(
    url: str, key: str | None, what: str, exc: BaseException, hint: str = AUTH_HINT
) -> ZaroError:
    """The xzaro error for a request that failed for good (the caller raises it ``from exc``);
    refused credentials come with ``hint``."""
    failure = classify(exc)
    if failure.bucket_missing:
        if isinstance(exc, NodeNotFoundError):
            return store_error(url, key, what, exc)
        return NodeNotFoundError(f"the bucket does not exist: {_text(exc)}", url=url, key=key)
    if isinstance(exc, ZaroError):
        return store_error(url, key, what, exc)
    detail = _describe(exc)
    message = f"could not {what}: {failure.reason}"
    if detail not in failure.reason:
        message += f" ({detail})"
    if failure.auth:
        message += f"; {hint}"
    return StoreError(message, url=url, key=key)


# --- the limit of requests in flight -----------------------------------------------------------


class InFlight:
    """The requests in flight in this process, at most a limit at once, across every thread
    and event loop; waiting requests go in first come, first served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._waiters: collections.deque[tuple[int, Callable[[], None]]] = collections.deque()

    def _take(self) -> None:
        self._count += 1
        count_request(self._count)

    def acquire_sync(self, limit: int) -> None:
        """Block until a request may start."""
        with self._lock:
            if self._count < limit and not self._waiters:
                self._take()
                return
            ready = threading.Event()
            self._waiters.append((limit, ready.set))
        ready.wait()

    async def acquire_async(self, limit: int) -> None:
        """Wait (without blocking the event loop) until a request may start."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._count < limit and not self._waiters:
                self._take()
                return
            future: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                loop.call_soon_threadsafe(self._hand_over, future)

            waiter = (limit, wake)
            self._waiters.append(waiter)
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            raise

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.done():  # cancelled meanwhile: the slot it was given goes on
            self.release()
        else:
            future.set_result(None)

    def release(self) -> None:
        """End a request: its slot goes to the first waiter, if any."""
        with self._lock:
            self._count -= 1
            while self._waiters and self._count < self._waiters[0][0]:
                _, wake = self._waiters.popleft()
                self._take()
                wake()


_in_flight = InFlight()


@after_fork
def _forget_in_flight() -> None:
    global _in_flight
    _in_flight = InFlight()


# --- attempts ----------------------------------------------------------------------------------


class Missing:
    """The type of :data:`MISSING`."""

    def __repr__(self) -> str:
        return "MISSING"


#: What an attempt returns for a key that does not exist.
MISSING = Missing()


@dataclass(frozen=True)
class Request:
    """What one request is, for messages: ``GET https://host/store/key``; ``hint`` is what an
    error of refused credentials advises."""

    method: str
    url: str
    key: str | None
    what: str
    hint: str = AUTH_HINT

    @property
    def where(self) -> str:
        return f"{self.url}/{self.key}" if self.key else self.url


def _settle(
    request: Request, exc: BaseException, attempt: int, options: NetworkOptions
) -> float | None:
    """After attempt number ``attempt`` failed with ``exc``: ``None`` for a missing key, else
    the seconds to wait before the next attempt; raises when there is none."""
    failure = classify(exc)
    retried = failure.kind == "transient" and attempt + 1 < options.attempts
    count_failure(failure.kind, retried)
    if failure.kind == "missing":
        return None
    if failure.kind == "permanent":
        raise permanent_error(request.url, request.key, request.what, exc, request.hint) from exc
    if not retried:
        raise StoreError(
            f"could not {request.what} after {options.attempts} attempt(s); the last failure: "
            f"{failure.reason}",
            url=request.url,
            key=request.key,
        ) from exc
    delay = options.delay(attempt)
    info(
        "retrying %s %s after %s (attempt %d of %d) in %.2f s",
        request.method,
        request.where,
        failure.reason,
        attempt + 2,
        options.attempts,
        delay,
    )
    return delay


async def attempt_async(
    request: Request, call: Callable[[], Awaitable[T]], options: NetworkOptions
) -> T | Missing:
    """Await ``call()`` until it succeeds, retrying transient failures with backoff.

    Returns
    -------
    What ``call`` returns, or :data:`MISSING` if the key does not exist.

    Raises
    ------
    StoreError
        A permanent failure (at once), or a transient one on the last attempt (naming the
        number of attempts and the last failure).
    NodeNotFoundError
        The bucket does not exist.
    """
    for attempt in range(options.attempts):
        await _in_flight.acquire_async(options.requests_in_flight)
        try:
            return await call()
        except Exception as exc:
            failure: BaseException = exc
        finally:
            _in_flight.release()
        delay = _settle(request, failure, attempt, options)
        if delay is None:
            return MISSING
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt raises")


def attempt_sync(request: Request, call: Callable[[], T], options: NetworkOptions) -> T | Missing:
    """:func:`attempt_async` for a blocking ``call``."""
    for attempt in range(options.attempts):
        _in_flight.acquire_sync(options.requests_in_flight)
        try:
            return call()
        except Exception as exc:
            failure: BaseException = exc
        finally:
            _in_flight.release()
        delay = _settle(request, failure, attempt, options)
        if delay is None:
            return MISSING
        time.sleep(delay)
    raise AssertionError("unreachable: the last attempt raises")
