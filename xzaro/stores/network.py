"""How xzaro talks to a network store: retries, backoff, timeouts and requests in flight.

One :class:`NetworkOptions` is in force per process (:func:`network_options`). It starts from
the defaults below, changed by environment variables (so that Dask worker processes started with
the same environment agree), and can be changed in the process with :func:`set_network_options`,
which also works as a context manager. A store may be given options of its own.

=========================  ==========================  =========================================
field                      environment variable        meaning
=========================  ==========================  =========================================
``retries``                ``XZARO_RETRIES``           retries of a transient failure after the
                                                       first attempt
``backoff``                ``XZARO_BACKOFF``           seconds before the first retry; doubled
                                                       for each later one
``max_backoff``            ``XZARO_MAX_BACKOFF``       the longest wait before one retry
``connect_timeout``        ``XZARO_CONNECT_TIMEOUT``   seconds to make a connection
``read_timeout``           ``XZARO_READ_TIMEOUT``      the longest pause while an answer is awaited
                                                       or its body read
``requests_in_flight``     ``XZARO_REQUESTS_IN_FLIGHT``  requests at once in this process, all
                                                       stores and Dask tasks together
=========================  ==========================  =========================================

A wait before a retry is drawn uniformly between nothing and the doubled backoff (capped at
``max_backoff``): "full jitter", so that the tasks of a cluster that failed together do not
retry together.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xzaro.concurrency import after_fork

#: The environment variable of each field of :class:`NetworkOptions`.
ENVIRONMENT = {
    "retries": "XZARO_RETRIES",
    "backoff": "XZARO_BACKOFF",
    "max_backoff": "XZARO_MAX_BACKOFF",
    "connect_timeout": "XZARO_CONNECT_TIMEOUT",
    "read_timeout": "XZARO_READ_TIMEOUT",
    "requests_in_flight": "XZARO_REQUESTS_IN_FLIGHT",
}


@dataclass(frozen=True)
class NetworkOptions:
    """Retries, timeouts and the limit of requests in flight of network stores.

    Raises
    ------
    ValueError
        A field has the wrong type or is out of range (the message names the field).
    """

    retries: int = 6
    backoff: float = 0.1
    max_backoff: float = 8.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    requests_in_flight: int = 128

    def __post_init__(self) -> None:
        for name in ("retries", "requests_in_flight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"network option {name!r} must be an integer, got {value!r}")
        for name in ("backoff", "max_backoff", "connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise ValueError(f"network option {name!r} must be a number, got {value!r}")
        if self.retries < 0:
            raise ValueError(f"network option 'retries' must be >= 0, got {self.retries}")
        if self.requests_in_flight < 1:
            raise ValueError(
                f"network option 'requests_in_flight' must be >= 1, got {self.requests_in_flight}"
            )
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("network options 'backoff' and 'max_backoff' must be >= 0")
        for name in ("connect_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"network option {name!r} must be > 0, got {getattr(self, name)}")

    @property
    def attempts(self) -> int:
        """How many times one request is tried at most."""
        return self.retries + 1

    def replace(self, **changes: float) -> NetworkOptions:
        """A copy with ``changes``; an unknown name is a ``ValueError`` naming it."""
        unknown = sorted(set(changes) - set(ENVIRONMENT))
        if unknown:
            raise ValueError(f"unknown network option(s) {unknown}; known: {sorted(ENVIRONMENT)}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first), with full jitter."""
        ceiling = min(self.max_backoff, self.backoff * 2.0**retry)
        return (rng or random).uniform(0.0, ceiling)


def options_from_environment(environ: Mapping[str, str] | None = None) -> NetworkOptions:
    """The defaults changed by the ``XZARO_*`` variables of ``environ`` (``os.environ``).

    Raises
    ------
    ValueError
        A variable is not a number, naming the variable.
    """
    environ = os.environ if environ is None else environ
    changes: dict[str, float] = {}
    for name, variable in ENVIRONMENT.items():
        text = environ.get(variable, "").strip()
        if not text:
            continue
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{variable} must be a number, got {text!r}") from None
        integer = name in ("retries", "requests_in_flight")
        if integer and number != int(number):
            raise ValueError(f"{variable} must be a whole number, got {text!r}")
        changes[name] = int(number) if integer else number
    try:
        return NetworkOptions().replace(**changes)
    except ValueError as exc:
        raise ValueError(f"from the environment: {exc}") from None


_lock = threading.Lock()
_current = options_from_environment()


def network_options() -> NetworkOptions:
    """The network options in force in this process."""
    return _current


def _set(options: NetworkOptions) -> None:
    global _current
    with _lock:
        _current = options


class OptionsChange:
    """What :func:`set_network_options` returns: ignorable, or a context manager that puts the
    previous options back on exit."""

    def __init__(self, previous: NetworkOptions) -> None:
        self.previous = previous

    def __enter__(self) -> NetworkOptions:
        return _current

    def __exit__(self, *exc: object) -> None:
        _set(self.previous)


def set_network_options(**changes: float) -> OptionsChange:
    """Change the network options of this process (see the module's table of fields).

    Used as a plain call the change stays; used as ``with set_network_options(retries=0):`` it
    lasts for the block. Worker processes of a Dask cluster read ``XZARO_*`` environment
    variables instead: set those where the workers start.

    Raises
    ------
    ValueError
        An unknown name or a value out of range, naming it.
    """
    previous = _current
    _set(previous.replace(**changes))
    return OptionsChange(previous)


# --- what the requests of this process have met -----------------------------------------------


@dataclass(frozen=True)
class RequestStats:
    """A snapshot of :func:`request_stats`.

    Attributes
    ----------
    requests
        Attempts made (a retry is one more).
    retries
        Attempts that were retries of a transient failure.
    failures
        Failed attempts by kind: ``"missing"``, ``"transient"`` or ``"permanent"``.
    max_in_flight
        The most requests that were in flight at once.
    """

    requests: int = 0
    retries: int = 0
    failures: Mapping[str, int] = dataclasses.field(default_factory=dict)
    max_in_flight: int = 0


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.failures: dict[str, int] = {}
        self.max_in_flight = 0


_counters = _Counters()


def request_stats() -> RequestStats:
    """What the network requests of this process have met since the last reset (thread-safe)."""
    with _counters.lock:
        return RequestStats(
            _counters.requests,
            _counters.retries,
            dict(_counters.failures),
            _counters.max_in_flight,
        )


def reset_request_stats() -> None:
    """Zero the counters of :func:`request_stats`."""
    with _counters.lock:
        _counters.requests = _counters.retries = _counters.max_in_flight = 0
        _counters.failures = {}


def count_request(in_flight: int) -> None:
    """Count one attempt, made with ``in_flight`` requests in flight (itself included)."""
    with _counters.lock:
        _counters.requests += 1
        _counters.max_in_flight = max(_counters.max_in_flight, in_flight)


def count_failure(kind: str, retried: bool) -> None:
    """Count one failed attempt of ``kind``, and whether it is retried."""
    with _counters.lock:
        _counters.failures[kind] = _counters.failures.get(kind, 0) + 1
        _counters.retries += retried


@after_fork
def _fresh_locks() -> None:
    global _lock
    _lock = threading.Lock()
    _counters.lock = threading.Lock()


# --- the libraries' own timeouts and retries ---------------------------------------------------

HTTP_PROTOCOLS = ("http", "https")
S3_PROTOCOLS = ("s3", "s3a")
GCS_PROTOCOLS = ("gs", "gcs")


def library_options(
    url: str, storage_options: Mapping[str, Any], options: NetworkOptions
) -> dict[str, Any]:
    """``storage_options`` with the timeouts of ``options`` and the library's retries off,
    wherever the caller set neither; the caller's mapping is not changed.

    * HTTP(S) (aiohttp): ``client_kwargs["timeout"]`` becomes a ``ClientTimeout`` with
      ``sock_connect`` and ``sock_read`` (no total: a large object may take long to arrive).
    * S3 (s3fs, botocore): ``config_kwargs`` get ``connect_timeout``, ``read_timeout``,
      ``max_pool_connections`` (the requests in flight; botocore's default pools 10), and
      ``retries={"total_max_attempts": 1}`` unless ``config_kwargs["retries"]`` or the
      ``AWS_MAX_ATTEMPTS`` variable asks for botocore's retries.
    * GCS (gcsfs): ``requests_timeout`` becomes a ``ClientTimeout`` as for HTTP (gcsfs passes it
      to every aiohttp request).

    The options differ from any a user gives by hand, so fsspec's instance cache never hands
    the instance :func:`library_retries_off` changes to other code. In a chained URL
    (``simplecache::s3://...``) the options are those under the last protocol's name.
    """
    from fsspec.core import split_protocol

    links = url.split("::")
    protocol = (split_protocol(links[-1])[0] or "").lower()
    out = dict(storage_options)
    if len(links) == 1:
        target = out
    else:
        target = out[protocol] = dict(out.get(protocol) or {})
    if protocol in HTTP_PROTOCOLS:
        client = dict(target.get("client_kwargs") or {})
        client.setdefault("timeout", aiohttp_timeout(options))
        target["client_kwargs"] = client
    elif protocol in S3_PROTOCOLS:
        config = dict(target.get("config_kwargs") or {})
        config.setdefault("connect_timeout", options.connect_timeout)
        config.setdefault("read_timeout", options.read_timeout)
        # botocore pools 10 connections by default: requests beyond them wait for one
        config.setdefault("max_pool_connections", options.requests_in_flight)
        if not os.environ.get("AWS_MAX_ATTEMPTS"):
            config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
        target["config_kwargs"] = config
    elif protocol in GCS_PROTOCOLS:
        target.setdefault("requests_timeout", aiohttp_timeout(options))
    return out


def aiohttp_timeout(options: NetworkOptions) -> Any:
    """An ``aiohttp.ClientTimeout`` with the connect and read timeouts of ``options``."""
    import aiohttp

    return aiohttp.ClientTimeout(
        total=None, sock_connect=options.connect_timeout, sock_read=options.read_timeout
    )


def library_retries_off(fs: Any) -> None:
    """Turn off the retries of an s3fs or gcsfs file system opened by :func:`library_options`.

    s3fs tries each call ``fs.retries`` times (5) in its own loop, on top of botocore's retries;
    its constructor takes no such option, so the instance's attribute is set to 1. gcsfs wraps
    its request method in a retry decorator fixed at 6 attempts with waits of 1 to 32 s that no
    option changes; the instance gets the undecorated method. Other file systems are unchanged.
    """
    module = type(fs).__module__.split(".")[0]
    if module == "s3fs":
        fs.retries = 1
    elif module == "gcsfs":
        owner = next((c for c in type(fs).__mro__ if "_request" in vars(c)), None)
        plain = getattr(vars(owner)["_request"], "__wrapped__", None) if owner else None
        if plain is not None:
            fs._request = types.MethodType(plain, fs)
