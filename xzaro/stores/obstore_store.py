"""``ObstoreStore``: S3, GCS, Azure and HTTP(S) through obstore (Rust's ``object_store``).

Requests are obstore's blocking calls (they release the GIL while they wait), made on a thread
pool of the process of ``requests_in_flight`` threads (:mod:`xzaro.stores.network`). Every request
goes through xzaro's retry runner (:func:`~xzaro.stores.retry.attempt_sync`), as those of
:class:`~xzaro.stores.fsspec_store.FsspecStore` do: the same classification of failures, retries
with backoff, counts, log lines and the one limit of requests in flight of the process. obstore's
own retries are off; its connect and read timeouts are the store's
:class:`~xzaro.stores.network.NetworkOptions` (:mod:`xzaro.stores.obstore_options`).

What a read may return is checked here:

* every key stays below the root (:func:`~xzaro.stores.base.check_key`);
* a byte-range answer covers exactly the range asked for (:mod:`xzaro.stores.ranges`), a range
  starting at or past the end of the object reads as ``b""``;
* a missing key reads as ``None``; a missing bucket raises
  :class:`~xzaro.errors.NodeNotFoundError`, refused credentials a
  :class:`~xzaro.errors.StoreError` with a hint, anything else a ``StoreError`` naming the URL
  and the key (and, after retries, how many attempts were made).

obstore's runtime does not survive ``fork`` (:mod:`xzaro.stores.obstore_runtime`): in a forked
child where it is dead, the store reads and writes through
:class:`~xzaro.stores.fsspec_store.FsspecStore` with the same options (a store wrapped with
:func:`from_obstore` has no fsspec options and raises instead).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from xzaro.concurrency import ProcessLocal
from xzaro.errors import StoreError
from xzaro.log import info
from xzaro.stores import prefetched
from xzaro.stores.base import (
    BytesLike,
    RangeRequest,
    check_key,
    check_range_lengths,
    keys_at_or_below,
    to_bytes,
)
from xzaro.stores.fsspec_store import FsspecStore, options_token
from xzaro.stores.network import NetworkOptions, network_options
from xzaro.stores.obstore_options import (
    ACCESS_HINTS,
    Translation,
    client_options,
    is_obstore_object,
    obstore_message,
    retry_config,
    scheme_of,
    translate_options,
    url_of,
)
from xzaro.stores.obstore_runtime import opened_client, run_requests, runtime_alive
from xzaro.stores.ranges import fitted, limits, range_fits
from xzaro.stores.retry import AUTH_HINT, Missing, Request, attempt_sync, classify
from xzaro.stores.s3_region import bucket_region, is_region_redirect

T = TypeVar("T")

# --- the store -----------------------------------------------------------------------------


class ObstoreStore:
    """A store on S3, GCS, Azure or HTTP(S), through obstore.

    The obstore store is opened on first use, once per process, so the store pickles as its
    URL and options and reopens in a worker process.

    Parameters
    ----------
    url
        ``s3://bucket/path``, ``gs://bucket/path``, ``az://container/path`` (also ``abfs``,
        ``abfss``, ``azure``) or ``http(s)://host/path``.
    storage_options
        fsspec-style options (:mod:`xzaro.stores.obstore_options` lists those understood).
    network
        Retries, timeouts and requests in flight; the process's
        (:func:`~xzaro.stores.network.network_options`) when ``None``.

    Raises
    ------
    StoreError
        obstore does not open the URL's scheme, or cannot honour an option (the message says
        which; :class:`~xzaro.stores.fsspec_store.FsspecStore` can).

    Notes
    -----
    obstore lists HTTP servers with WebDAV (``PROPFIND``), which plain web servers refuse; an
    HTTP store opened from a URL therefore lists the links of the server's index pages, as
    :class:`~xzaro.stores.fsspec_store.FsspecStore` does. (A wrapped ``HTTPStore`` lists with
    WebDAV.)
    """

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        network: NetworkOptions | None = None,
    ) -> None:
        url = str(url).rstrip("/")
        translation = translate_options(url, storage_options)
        if translation.config is None:
            raise StoreError(
                f"obstore cannot open this store: {translation.reason} (FsspecStore can)", url=url
            )
        self.url = url
        self.storage_options: dict[str, Any] | None = dict(storage_options or {})
        self.network = network
        self._family = scheme_of(url) or ""
        self._translation: Translation = translation
        self._given: Any = None
        self._store: ProcessLocal[tuple[NetworkOptions, Any]] = ProcessLocal()
        self._fallback: ProcessLocal[FsspecStore] = ProcessLocal()
        self._lister: ProcessLocal[FsspecStore] = ProcessLocal()
        self._region_lock = threading.Lock()
        self._region_moves = 0

    @classmethod
    def wrapping(cls, obj: Any, *, network: NetworkOptions | None = None) -> ObstoreStore:
        """A store over the obstore store ``obj`` as configured by its owner (see
        :func:`from_obstore`)."""
        if not is_obstore_object(obj):
            raise TypeError(f"expected an obstore store, got {type(obj).__name__}")
        self = cls.__new__(cls)
        self.url = url_of(obj)
        self.storage_options = None
        self.network = network
        self._family = scheme_of(self.url) or ""
        self._translation = Translation({})
        self._given = obj
        self._store = ProcessLocal()
        self._fallback = ProcessLocal()
        self._lister = ProcessLocal()
        self._region_lock = threading.Lock()
        self._region_moves = 0
        return self

    # --- pickling and opening ------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {"url": self.url, "network": self.network}
        if self._given is not None:
            state["given"] = self._given
        else:
            state["storage_options"] = self.storage_options
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "given" in state:
            self.__dict__.update(ObstoreStore.wrapping(state["given"]).__dict__)
            self.network = state["network"]
        else:
            self.__init__(  # type: ignore[misc]
                state["url"], state["storage_options"], network=state["network"]
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def options(self) -> NetworkOptions:
        """The network options in force for this store."""
        return self.network or network_options()

    def obstore(self) -> Any:
        """The obstore store, opened once per process and network options (a change of the
        process's options, :func:`~xzaro.stores.network.set_network_options`, opens it anew).

        Raises
        ------
        StoreError
            obstore refused the configuration.
        """
        if self._given is not None:
            return self._given
        network = self.options
        opened = self._store.value
        if opened is not None and opened[0] == network:
            return opened[1]
        key = (self.url, options_token(self.storage_options or {}), network)
        store = opened_client(key, partial(self._open, network))
        self._store.value = (network, store)
        return store

    def _open(self, network: NetworkOptions) -> Any:
        from obstore.store import HTTPStore, from_url

        settings: dict[str, Any] = {
            "client_options": {**self._translation.client_options, **client_options(network)},
            "retry_config": retry_config(network),
        }
        if self._family != "http":
            settings["config"] = self._translation.config
        try:
            if self._family == "http":
                return HTTPStore(self.url, **settings)
            return from_url(self.url, **settings)
        except Exception as exc:
            raise StoreError(
                f"obstore could not open the store: {obstore_message(exc)}", url=self.url
            ) from exc

    def _delegate(self) -> FsspecStore | None:
        """The fsspec store to use instead, in a forked child where obstore cannot run."""
        fallback = self._fallback.value
        if fallback is not None or runtime_alive():
            return fallback
        if self.storage_options is None:
            raise StoreError(
                "obstore cannot run in a process forked after it made requests; start worker "
                "processes with the 'spawn' or 'forkserver' method",
                url=self.url,
            )
        info("obstore cannot run in this forked process; %s goes through fsspec", self.url)
        fallback = self._fallback.value = FsspecStore(self.url, self.storage_options)
        return fallback

    def _run(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        return run_requests(jobs, self.options.requests_in_flight) if jobs else []

    def _path(self, key: str) -> str:
        return check_key(key, self.url).strip("/")

    def _attempt(self, method: str, key: str, what: str, call: Callable[[Any], T]) -> T | Missing:
        """``call(store)`` (one blocking request about ``key`` to the obstore store) under
        xzaro's retry rules.

        A store wrapped with :func:`from_obstore` keeps its owner's retries: xzaro then makes
        one attempt of each request (classified, counted and limited all the same). An S3
        bucket in another region than the one configured (S3 answers ``301`` without a
        location) is looked up once, and the request made again there.
        """
        options = self.options
        if self._given is not None:
            options = options.replace(retries=0)
        hint = ACCESS_HINTS.get(self._family, AUTH_HINT)
        request = Request(method, self.url, key, what, hint)
        moves = self._region_moves
        try:
            return attempt_sync(request, lambda: call(self.obstore()), options)
        except StoreError as exc:
            if not (self._family == "s3" and is_region_redirect(exc) and self._move(moves)):
                raise
        return attempt_sync(request, lambda: call(self.obstore()), options)

    def _move(self, moves: int) -> bool:
        """Reopen in the region S3 names for the bucket (once for all the requests that met
        the redirect since the store's ``moves``-th move); False when S3 names none that
        differs, or the store is the user's own obstore store."""
        if self.storage_options is None:
            return False
        with self._region_lock:
            if self._region_moves != moves:  # another request already moved the store
                return True
            options = dict(self.storage_options)
            kwargs = dict(options.get("client_kwargs") or {})
            current = options.get("region") or kwargs.get("region_name")
            timeout = self.options.connect_timeout + self.options.read_timeout
            region = bucket_region(self.url, self._translation.config or {}, timeout)
            if region is None or region == current:
                return False
            info(
                "the bucket of %s is in the region %s (S3 says so); reading there", self.url, region
            )
            options.pop("region", None)
            options["client_kwargs"] = {**kwargs, "region_name": region}
            self.storage_options = options
            self._translation = translate_options(self.url, options)
            self._store.value = None
            self._region_moves += 1
        return True

    # --- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """Return the object at ``key``, or ``None`` if it does not exist."""
        return self.get_ranges([(key, 0, None)])[0]

    def get_many(self, keys: Sequence[str]) -> builtins.list[bytes | None]:
        """Fetch many keys concurrently, in order; ``None`` for each missing key."""
        return self.get_ranges([(key, 0, None) for key in keys])

    def get_ranges(self, requests: Sequence[RangeRequest]) -> builtins.list[bytes | None]:
        """Fetch many byte ranges concurrently, in order; ``None`` where the key is missing.

        Parameters
        ----------
        requests
            ``(key, offset, length)`` tuples, see :data:`~xzaro.stores.base.RangeRequest`.
        """
        requests = list(requests)
        check_range_lengths(requests)
        if not requests:
            return []
        fallback = self._delegate()
        if fallback is not None:
            return fallback.get_ranges(requests)
        self.obstore()  # a configuration obstore refuses fails here, once
        return self._run([self._reader(*request) for request in requests])

    def get_many_buffers(self, keys: Sequence[str]) -> builtins.list[Any]:
        """:meth:`get_many` with each body in obstore's own buffer (``Bytes``, read-only), not
        copied into ``bytes``: for decoders, which take any buffer."""
        keys = list(keys)
        fallback = self._delegate()
        if fallback is not None:
            return fallback.get_many(keys)
        if not keys:
            return []
        self.obstore()
        return self._run([self._reader(key, 0, None, copy=False) for key in keys])

    def each_buffer(self, keys: Sequence[str], take: Callable[[int, Any], None]) -> None:
        """:meth:`get_many_buffers`, each body handed to ``take(i, body)`` in the request's
        thread as soon as it is in (see :meth:`SupportsBufferReads.each_buffer`)."""
        keys = list(keys)
        fallback = self._delegate()
        if fallback is not None:
            fallback.each_buffer(keys, take)
            return
        if keys:
            self.obstore()
            readers = [self._reader(key, 0, None, copy=False) for key in keys]
            self._run([partial(_deliver, take, i, r) for i, r in enumerate(readers)])

    def _reader(
        self, key: str, offset: int, length: int | None, copy: bool = True
    ) -> Callable[[], Any]:
        start, end = limits(offset, length)
        path = self._path(key)

        def call(store: Any) -> Any:
            return self._read_once(store, path, start, end, copy)

        def read() -> Any:
            data = self._attempt("GET", key, "read", call)
            return None if isinstance(data, Missing) else data

        return read

    @staticmethod
    def _read_once(
        store: Any, path: str, start: int | None, end: int | None, copy: bool = True
    ) -> Any:
        """One attempt to read ``path`` (a range when ``start`` is not ``None``), in ``bytes``
        or, without ``copy``, in obstore's buffer; obstore's exceptions pass through for the
        retry runner to judge."""
        import obstore

        if start is not None and start == end:
            obstore.head(store, path)  # a missing object raises
            return b""
        options: dict[str, Any] = {}
        if start is not None:
            whole = {"suffix": -start} if start < 0 else {"offset": start}
            options["options"] = {"range": whole if end is None else (start, end)}
        try:
            result = obstore.get(store, path, **options)
            data: Any = bytes(result.bytes()) if copy else result.bytes()
        except Exception as exc:
            if start is None or classify(exc).kind != "permanent":
                raise
            # a range at or past the end of the object is answered with 416
            size = int(obstore.head(store, path)["size"])
            if (start < 0 and size == 0) or start >= size:
                return b""
            raise
        if start is None or range_fits(data, start, end):
            return data
        return fitted(data, start, end, result.meta["size"])

    def get_size(self, key: str) -> int | None:
        """Return the size in bytes of the object at ``key``, or ``None`` if it does not exist."""
        fallback = self._delegate()
        if fallback is not None:
            return fallback.get_size(key)
        path = self._path(key)

        def size() -> int | None:
            import obstore

            meta = self._attempt("HEAD", key, "get the size", lambda s: obstore.head(s, path))
            return None if isinstance(meta, Missing) else int(meta["size"])

        return self._run([size])[0]

    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key``."""
        return self.get_size(key) is not None

    # --- writes --------------------------------------------------------------------------

    def set(self, key: str, value: BytesLike) -> None:
        """Write ``value`` at ``key``."""
        self.set_many([(key, value)])

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        """Write many objects concurrently (a failed write of a whole object is retried)."""
        pairs = list(items)
        if not pairs:
            return
        fallback = self._delegate()
        if fallback is not None:
            fallback.set_many(pairs)
            return
        self.obstore()
        try:
            self._run([self._writer(key, value) for key, value in pairs])
        finally:
            prefetched.forget(self.url, [key for key, _ in pairs])

    def _writer(self, key: str, value: BytesLike) -> Callable[[], None]:
        path = self._path(key)

        def write() -> None:
            import obstore

            data = to_bytes(value)

            def call(store: Any) -> Any:
                return obstore.put(store, path, data)

            if isinstance(self._attempt("PUT", key, "write", call), Missing):
                raise StoreError(
                    "could not write: the store answered 'not found'", url=self.url, key=key
                )

        return write

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        fallback = self._delegate()
        if fallback is not None:
            fallback.delete(key)
            return
        path = self._path(key)

        def delete() -> None:
            import obstore

            self._attempt("DELETE", key, "delete", lambda s: obstore.delete(s, path))

        try:
            self._run([delete])
        finally:
            prefetched.forget(self.url, [key])

    # --- listing -------------------------------------------------------------------------

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key at or below the path ``prefix``, sorted (``"c/0"`` excludes ``"c/01"``)."""
        prefix = prefix.strip("/")
        fallback = self._delegate() or self._http_lister()
        if fallback is not None:
            return fallback.list(prefix)
        path = self._path(prefix)

        def walk(store: Any) -> builtins.list[str]:
            import obstore

            return [meta["path"] for meta in obstore.list(store, prefix=path or None).collect()]

        return keys_at_or_below(self._run([partial(self._listed, prefix, walk)])[0], prefix)

    def list_dir(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (objects and sub-prefixes), sorted; ``[]`` if none."""
        prefix = prefix.strip("/")
        fallback = self._delegate() or self._http_lister()
        if fallback is not None:
            return fallback.list_dir(prefix)
        path = self._path(prefix)

        def level(store: Any) -> builtins.list[str]:
            import obstore

            found = obstore.list_with_delimiter(store, path or None)
            paths = [*found["common_prefixes"], *(meta["path"] for meta in found["objects"])]
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in paths]

        names = self._run([partial(self._listed, prefix, level)])[0]
        return sorted({name for name in names if name})

    def _listed(self, prefix: str, call: Callable[[Any], builtins.list[str]]) -> builtins.list[str]:
        """``call()`` (one listing) under the retry rules; ``[]`` where nothing is found."""
        try:
            found = self._attempt("LIST", prefix, "list", call)
        except StoreError as exc:
            if self._family != "http":
                raise
            raise StoreError(
                f"{exc.message} (obstore lists HTTP servers with WebDAV PROPFIND requests, "
                "which this server may not support)",
                url=self.url,
                key=prefix,
            ) from exc
        return [] if isinstance(found, Missing) else found

    def _http_lister(self) -> FsspecStore | None:
        """fsspec's HTTP file system, which lists the links of a server's index pages, for
        listing an HTTP store opened from a URL (obstore lists with WebDAV only)."""
        if self._family != "http" or self.storage_options is None:
            return None
        lister = self._lister.value
        if lister is None:
            lister = self._lister.value = FsspecStore(self.url, self.storage_options)
        return lister


def _deliver(take: Callable[[int, Any], None], i: int, read: Callable[[], Any]) -> None:
    take(i, read())


def from_obstore(obj: Any, *, network: NetworkOptions | None = None) -> ObstoreStore:
    """An xzaro store over a user's own obstore store (``S3Store``, ``GCSStore``,
    ``AzureStore``, ``HTTPStore``, ``LocalStore`` or ``MemoryStore``), used as configured.

    ``network`` only sets the requests in flight: the obstore store keeps its own retries and
    timeouts, and xzaro makes one attempt of each request (still classified, counted and
    limited). The store pickles with obstore's own pickling of ``obj`` (an in-memory store's
    contents do not travel).

    Raises
    ------
    TypeError
        ``obj`` is not an obstore store (see :func:`is_obstore_object`).
    """
    return ObstoreStore.wrapping(obj, network=network)
