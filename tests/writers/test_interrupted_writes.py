"""Writes interrupted at every point leave stores that never promise data that is not there,
and running the same write again completes it, byte for byte as an uninterrupted write.

The interruption is an outage: :class:`InterruptingStore` lets the first ``fail_at`` mutations
(``set``, each item of ``set_many``, ``delete``) through to a real store and refuses every later
one with :class:`~xzaro.errors.StoreError`, so nothing written after the failure lands, as when
the writing process dies. Every case is run once without failing to count its mutations, then
interrupted at each of them (0 = before the first).

"Never promises data that is not there" means, for each case, checked with xzaro and with
zarr-python (the oracle) on every array any metadata document describes, consolidated or not:

* a fresh write (V2, V3 sharded, a pyramid): a described array reads exactly as the finished
  write's array (a chunk never written is one whose true values are all fill, so reading fill
  there is the truth); no pyramid root promises its levels (OME ``multiscales``) before every
  level is described;
* an overwrite (``mode="w"`` over an older store): a described array reads entirely as the old
  array or entirely as the new one, never old metadata over deleted or new chunks;
* an append: each document (array or consolidated) shows the old or the new extent along the
  append dimension, and the values over that extent are the true ones;
* a region write: the shapes do not change, and each stored object reads entirely as before or
  entirely as after the write, never torn and never fill where data was;
* the streaming writer: each level's extent covers only rows whose objects are all stored, and
  the values over it are the frames' (level 0) and their coarsening (the other levels).

Reading may also fail with an xzaro error (zarr-python: any error): that promises nothing.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import xarray as xr
import zarr

import xzaro
from xzaro.errors import StoreError, ZaroError
from xzaro.stores import MemoryStore, Store
from xzaro.stores.base import BytesLike, RangeRequest, to_bytes
from xzaro.streaming import Dimension, StorageProperties, ZarrV2, ZarrV3
from xzaro.writers.compression import BloscCompressionParams
from xzaro.writers.streaming import device

pytestmark = pytest.mark.timeout(300)


class InterruptingStore:
    """A store passing reads to ``inner`` and failing every mutation from the ``fail_at``-th
    (counted from 0) on; ``fail_at=None`` only counts them."""

    def __init__(self, inner: Store, fail_at: int | None = None) -> None:
        self.inner, self.fail_at = inner, fail_at
        self.url = inner.url
        self.mutations = 0
        self._lock = threading.Lock()

    def _mutation(self, key: str) -> None:
        with self._lock:
            n = self.mutations
            self.mutations += 1
        if self.fail_at is not None and n >= self.fail_at:
            raise StoreError("injected outage", url=self.url, key=key)

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.inner.get_many(keys)

    def get_ranges(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        return self.inner.get_ranges(requests)

    def set(self, key: str, value: BytesLike) -> None:
        self._mutation(key)
        self.inner.set(key, value)

    def set_many(self, items: Iterable[tuple[str, BytesLike]]) -> None:
        for key, value in items:
            self.set(key, value)

    def delete(self, key: str) -> None:
        self._mutation(key)
        self.inner.delete(key)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)


def _snapshot(store: MemoryStore) -> dict[str, bytes]:
    return {k: to_bytes(v) for k, v in store.data.items()}


def _to_dir(data: dict[str, bytes], root: Path) -> Path:
    for key, value in data.items():
        p = root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(value)
    return root


def _described_arrays(data: dict[str, bytes]) -> dict[str, tuple[int, ...]]:
    """Every array a per-array document describes: path -> shape."""
    out = {}
    for key, raw in data.items():
        name = key.rsplit("/", 1)[-1]
        parent = key[: -len(name)].rstrip("/")
        if name == ".zarray" or name == "zarr.json":
            doc = json.loads(raw)
            if name == ".zarray" or doc.get("node_type") == "array":
                out[parent] = tuple(doc["shape"])
    return out


def _consolidated_arrays(data: dict[str, bytes]) -> dict[str, tuple[int, ...]]:
    """Every array the root's consolidated metadata describes: path -> shape."""
    out: dict[str, tuple[int, ...]] = {}
    if ".zmetadata" in data:
        for key, doc in json.loads(data[".zmetadata"])["metadata"].items():
            if key.endswith(".zarray"):
                out[key[: -len("/.zarray")]] = tuple(doc["shape"])
    if "zarr.json" in data:
        cons = json.loads(data["zarr.json"]).get("consolidated_metadata") or {}
        for path, doc in (cons.get("metadata") or {}).items():
            if doc.get("node_type") == "array":
                out[path] = tuple(doc["shape"])
    return out


def _arrays(data: dict[str, bytes]) -> dict[str, np.ndarray]:
    """Every described array of a finished store, read with xzaro."""
    store = MemoryStore(data)
    return {
        path: xzaro.open_array(store, path, consolidated=False)[...]
        for path in _described_arrays(data)
    }


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _reads(data: dict[str, bytes], root: Path) -> list[tuple[str, str, np.ndarray]]:
    """``(reader, path, values)`` of every array any document describes, as xzaro and
    zarr-python read it (per-array documents and consolidated metadata); readers that fail
    are left out, as long as xzaro's failure is an xzaro error (zarr-python may refuse a
    partial store in any way)."""
    store = MemoryStore(data)
    directory = _to_dir(data, root)
    readers: list[tuple[str, str, type[BaseException], Callable[[], Any]]] = []
    for path in _described_arrays(data):
        readers.append(
            (
                "xzaro",
                path,
                ZaroError,
                lambda p=path: xzaro.open_array(store, p, consolidated=False),
            )
        )
        readers.append(
            ("zarr", path, Exception, lambda p=path: zarr.open_array(directory, path=p, mode="r"))
        )
    for path in _consolidated_arrays(data):
        readers.append(
            (
                "xzaro consolidated",
                path,
                ZaroError,
                lambda p=path: xzaro.open_group(store, consolidated=True)[p],
            )
        )
        readers.append(
            (
                "zarr consolidated",
                path,
                Exception,
                lambda p=path: zarr.open_consolidated(directory, mode="r")[p],
            )
        )
    out = []
    for reader, path, refusal, open_it in readers:
        with contextlib.suppress(refusal):
            out.append((reader, path, np.asarray(open_it()[...])))
    return out


def _prefix(full: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    if len(shape) != full.ndim or any(n > m for n, m in zip(shape, full.shape)):
        return None
    return full[tuple(slice(0, n) for n in shape)]


# ------------------------------------------------------------------------------------------
# The checks, one per kind of write
# ------------------------------------------------------------------------------------------

Check = Callable[[dict[str, bytes], Path, dict[str, np.ndarray], dict[str, np.ndarray]], None]


def check_fresh(
    data: dict[str, bytes], root: Path, final: dict[str, np.ndarray], old: dict[str, np.ndarray]
) -> None:
    """A described array reads as the finished write's array, over the same shape."""
    for reader, path, values in _reads(data, root):
        assert path in final, (reader, path)
        assert _same(values, final[path]), (reader, path, values, final[path])
    root_doc = data.get("zarr.json") or data.get(".zattrs")
    if root_doc is not None and "multiscales" in root_doc.decode():
        assert set(_described_arrays(data)) == set(final), "the pyramid root came early"


def check_overwrite(
    data: dict[str, bytes], root: Path, final: dict[str, np.ndarray], old: dict[str, np.ndarray]
) -> None:
    """A described array reads entirely as the old array or entirely as the new one."""
    for reader, path, values in _reads(data, root):
        ok = (path in final and _same(values, final[path])) or (
            path in old and _same(values, old[path])
        )
        assert ok, (reader, path, values)


def check_append(
    data: dict[str, bytes], root: Path, final: dict[str, np.ndarray], old: dict[str, np.ndarray]
) -> None:
    """Each document shows the old or the new extent, with the true values over it."""
    for shapes in (_described_arrays(data), _consolidated_arrays(data)):
        for path, shape in shapes.items():
            assert shape in (old[path].shape, final[path].shape), (path, shape)
    for reader, path, values in _reads(data, root):
        assert _same(values, _prefix(final[path], values.shape)), (reader, path, values)


def check_region(
    data: dict[str, bytes], root: Path, final: dict[str, np.ndarray], old: dict[str, np.ndarray]
) -> None:
    """Shapes unchanged; every chunk (10 along ``t``) entirely as before or as after."""
    for reader, path, values in _reads(data, root):
        assert values.shape == final[path].shape, (reader, path)
        for start in range(0, values.shape[0], 10):
            got = values[start : start + 10]
            ok = _same(got, final[path][start : start + 10]) or _same(
                got, old[path][start : start + 10]
            )
            assert ok, (reader, path, start, got)


def check_stream(
    data: dict[str, bytes], root: Path, final: dict[str, np.ndarray], old: dict[str, np.ndarray]
) -> None:
    """A described level's extent is a prefix of the finished stream's, with its values."""
    for reader, path, values in _reads(data, root):
        assert _same(values, _prefix(final[path], values.shape)), (reader, path, values)


def check_stream_overwrite(
    data: dict[str, bytes], root: Path, final: dict[str, np.ndarray], old: dict[str, np.ndarray]
) -> None:
    """As :func:`check_stream`, or the old stream's level, entirely."""
    for reader, path, values in _reads(data, root):
        new = _same(values, _prefix(final[path], values.shape))
        assert new or (path in old and _same(values, old[path])), (reader, path, values)


# ------------------------------------------------------------------------------------------
# The writes
# ------------------------------------------------------------------------------------------


def table(n: int = 40, start: int = 0, scale: float = 1.0, gap: bool = True) -> xr.Dataset:
    """Two variables chunked by Dask; with ``gap``, ``v``'s first chunk is all fill (NaN), so
    it is not stored."""
    t = np.arange(start, start + n)
    v = np.outer(t * scale, np.arange(1.0, 4.0))
    if gap:
        v[t < 10] = np.nan
    ds = xr.Dataset(
        {"v": (("t", "x"), v), "w": ("t", (t % 7).astype("int32"))},
        coords={"t": t, "x": [10, 20, 30]},
        attrs={"title": "interrupted"},
    )
    return ds.chunk({"t": 10})


def image() -> xr.Dataset:
    y, x = np.mgrid[0:32, 0:32]
    return xr.Dataset(
        {"img": (("y", "x"), (y * 32 + x).astype("float32"))},
        coords={"y": np.arange(32.0), "x": np.arange(32.0)},
    ).chunk({"y": 8, "x": 8})


def _region_part() -> xr.Dataset:
    part = table()[["v", "w"]].isel(t=slice(13, 27)).drop_vars(["t", "x"])
    return part.assign(v=part.v + 100, w=part.w + 100)


def _setup_table(fmt: int, group: str = "", **kw: Any) -> Callable[[Store], None]:
    return lambda store: table(**kw).zaro.to_store(
        store, zarr_format=fmt, chunks={"t": 10}, group=group
    )


Write = Callable[[Store, str], Any]


def frames(seed: int) -> np.ndarray:
    """18 frames: four full rows of 4 and a partial one."""
    return np.random.default_rng(seed).integers(1, 60000, (18, 24, 32), dtype=np.uint16)


def _stream(cls: type, seed: int = 0) -> Write:
    """Stream :func:`frames` with a pyramid (V3: two chunks per shard along x)."""

    def write(store: Store, mode: str) -> None:
        dims = [
            Dimension("x", "space", 32, 16, 2 if cls is ZarrV3 else 0),
            Dimension("y", "space", 24, 12),
            Dimension("t", "time", 0, 4),
        ]
        props = StorageProperties(
            uri="memory://interrupted-stream",
            acquisition_dimensions=dims,
            enable_multiscale=True,
            compression=BloscCompressionParams("zstd", 1, "shuffle"),
            overwrite=mode == "w",
        )
        data = frames(seed)
        writer = cls(props)
        writer.reserve_image_shape(data.shape[1:], data.dtype)
        with mock.patch.object(device, "open_store", lambda *args, **kwargs: store), writer:
            for frame in data:
                writer.append(frame)

    return write


def _setup_stream(cls: type) -> Callable[[Store], None]:
    return lambda store: _stream(cls, seed=1)(store, "w-")


def _fresh(fmt: int, **kw: Any) -> Write:
    return lambda s, mode: table().zaro.to_store(
        s, zarr_format=fmt, chunks={"t": 10}, mode=mode, **kw
    )


def _pyramid(fmt: int) -> Write:
    return lambda s, mode: image().zaro.to_store(
        s, zarr_format=fmt, multiscale=True, chunks={"y": 8, "x": 8}, mode=mode
    )


def _append(s: Store, mode: str) -> Any:
    return table(20, 40).zaro.to_store(s, append_dim="t")


def _region(s: Store, mode: str) -> Any:
    return _region_part().zaro.to_store(s, mode="r+", region={"t": slice(13, 27)})


#: case -> (the write, given the mode of a first run and of a run again; what was there; check)
CASES: dict[str, tuple[Write, tuple[str, str], Callable[[Store], None] | None, Check]] = {
    "v2": (_fresh(2), ("w-", "w"), None, check_fresh),
    "v3_sharded": (_fresh(3, shards={"t": 20}), ("w-", "w"), None, check_fresh),
    "v2_overwrite": (
        _fresh(2),
        ("w", "w"),
        _setup_table(2, scale=-1.0, gap=False),
        check_overwrite,
    ),
    "v3_overwrite": (
        _fresh(3),
        ("w", "w"),
        _setup_table(3, scale=-1.0, gap=False),
        check_overwrite,
    ),
    "v2_overwrite_group": (
        _fresh(2, group="g"),
        ("w", "w"),
        _setup_table(2, scale=-1.0, gap=False, group="g"),
        check_overwrite,
    ),
    "v3_overwrite_group": (
        _fresh(3, group="g"),
        ("w", "w"),
        _setup_table(3, scale=-1.0, gap=False, group="g"),
        check_overwrite,
    ),
    "pyramid_v2": (_pyramid(2), ("w-", "w"), None, check_fresh),
    "pyramid_v3": (_pyramid(3), ("w-", "w"), None, check_fresh),
    "append_v2": (_append, ("a", "a"), _setup_table(2), check_append),
    "append_v3": (_append, ("a", "a"), _setup_table(3), check_append),
    "region_v2": (_region, ("r+", "r+"), _setup_table(2), check_region),
    "region_v3": (_region, ("r+", "r+"), _setup_table(3), check_region),
    "stream_v2": (_stream(ZarrV2), ("w-", "w"), None, check_stream),
    "stream_v3": (_stream(ZarrV3), ("w-", "w"), None, check_stream),
    "stream_v3_overwrite": (
        _stream(ZarrV3),
        ("w", "w"),
        _setup_stream(ZarrV3),
        check_stream_overwrite,
    ),
}


#: Every interruption point up to this many mutations; beyond, the last ones (the metadata
#: documents, written last) and a spread of the earlier ones (the data).
ALL_POINTS, LAST_POINTS = 30, 10


def _points(total: int) -> list[int]:
    if total <= ALL_POINTS:
        return list(range(total))
    early = np.linspace(0, total - LAST_POINTS, ALL_POINTS - LAST_POINTS, endpoint=False)
    return sorted({int(n) for n in early} | set(range(total - LAST_POINTS, total)))


def _run(
    case: str, inner: MemoryStore, fail_at: int | None, again: bool = False
) -> tuple[int, BaseException | None]:
    write, modes, _, _ = CASES[case]
    store = InterruptingStore(inner, fail_at)
    try:
        write(store, modes[again])
    except ZaroError as err:
        return store.mutations, err
    return store.mutations, None


def _interrupt_everywhere(case: str, tmp_path: Path) -> None:
    _, _, setup, check = CASES[case]
    base = MemoryStore()
    if setup is not None:
        setup(base)
    start = _snapshot(base)
    old = _arrays(start)

    reference = MemoryStore(start)
    total, err = _run(case, reference, None)
    assert err is None and total > 0
    expected = _snapshot(reference)
    final = _arrays(expected)

    for fail_at in _points(total):
        inner = MemoryStore(start)
        attempted, err = _run(case, inner, fail_at)
        # a failed mutation always surfaces (a stream's count of metadata updates varies
        # with the order its rows finish in, so a late point may not be reached)
        assert isinstance(err, StoreError) == (attempted > fail_at), (fail_at, attempted, err)
        check(_snapshot(inner), tmp_path / f"at{fail_at}", final, old)
        # the obvious recovery: the same write again
        _, err = _run(case, inner, None, again=True)
        assert err is None, (fail_at, err)
        assert _snapshot(inner) == expected, fail_at


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_writes_are_honest_and_finish_when_run_again(case: str, tmp_path: Path) -> None:
    _interrupt_everywhere(case, tmp_path)


# ------------------------------------------------------------------------------------------
# The same on S3 (moto) through a proxy that stops answering after N requests
# ------------------------------------------------------------------------------------------

#: The cases run on S3, and how many interruption points each tries (spread over its requests).
#: (moto answers a request in tens of milliseconds, and a write makes dozens one after another.)
S3_CASES = ["v3_overwrite", "append_v2", "stream_v3"]
S3_POINTS = 3


@pytest.fixture(scope="module")
def s3_outage(s3_server: dict[str, Any]) -> Any:
    """``(bucket, proxy, direct storage options, proxied storage options)``."""
    from faults import start_fault_proxy

    bucket = s3_server["make_bucket"]("interrupted-writes")
    proxy = start_fault_proxy(s3_server["endpoint_url"])
    direct = s3_server["storage_options"]
    proxied = {**direct, "endpoint_url": proxy.base_url}
    try:
        yield bucket, proxy, direct, proxied
    finally:
        proxy.stop()


def _s3_snapshot(url: str, options: dict[str, Any]) -> dict[str, bytes]:
    store = xzaro.open_store(url, options, mode="a")
    keys = store.list("")
    return {k: bytes(v) for k, v in zip(keys, store.get_many(keys)) if v is not None}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", S3_CASES)
def test_writes_interrupted_by_an_s3_outage_are_honest_and_finish_when_run_again(
    case: str, s3_outage: Any, tmp_path: Path
) -> None:
    from xzaro.stores.network import set_network_options

    bucket, proxy, direct, proxied = s3_outage
    write, modes, setup, check = CASES[case]

    start: dict[str, bytes] = {}
    if setup is not None:
        memory = MemoryStore()
        setup(memory)
        start = _snapshot(memory)

    def prefix(name: str) -> str:
        url = f"s3://{bucket}/{case}/{name}"
        xzaro.open_store(url, direct, mode="w").set_many(start.items())
        return url

    def run(url: str, mode: str, fail_after: int | None) -> tuple[int, BaseException | None]:
        store = xzaro.open_store(url, proxied, mode="a")
        proxy.reset_stats()
        proxy.configure(fail_after=fail_after)
        try:
            write(store, mode)
        except ZaroError as err:
            return proxy.stats.requests, err
        finally:
            proxy.configure(fail_after=None)
        return proxy.stats.requests, None

    with set_network_options(retries=1, backoff=0.001, max_backoff=0.005):
        reference = prefix("reference")
        old = _arrays(start)
        total, err = run(reference, modes[0], None)
        assert err is None and total > 0
        expected = _s3_snapshot(reference, direct)
        final = _arrays(expected)
        points = sorted({int(n) for n in np.linspace(0, total - 1, S3_POINTS)})
        for fail_after in points:
            url = prefix(f"at{fail_after}")
            requests, err = run(url, modes[0], fail_after)
            assert isinstance(err, StoreError) == (requests > fail_after), (fail_after, err)
            check(_s3_snapshot(url, direct), tmp_path / f"at{fail_after}", final, old)
            _, err = run(url, modes[1], None)
            assert err is None, (fail_after, err)
            assert _s3_snapshot(url, direct) == expected, fail_after
