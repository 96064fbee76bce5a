"""xarray's own zarr write tests, run with every write through xzaro and every read through it.

The test classes below subclass the directory-store zarr test classes of the *installed* xarray
(``xarray/tests/test_backends.py`` and ``test_backends_datatree.py`` ship in the wheel); nothing
of xarray's test code is copied. For each test:

* ``save`` writes with ``.zaro.to_store`` and ``open`` reads with ``engine="zaro"``;
* the autouse fixture :func:`_through_xzaro` sends the entry points the tests call directly
  through xzaro as well: ``Dataset/DataArray/DataTree.to_zarr`` become ``.zaro.to_store`` (see
  :func:`to_zarr_via_zaro`), and xarray's ``engine="zarr"`` (explicit, guessed for ``*.zarr``
  paths, or used by ``xr.open_zarr``) becomes xzaro's engine (see :class:`ZarrEngineViaZaro`),
  which covers ``open_dataset``, ``open_dataarray``, ``open_zarr``, ``open_datatree``,
  ``open_groups`` and the ``load_*`` functions.

Keywords are translated, never dropped: a keyword is passed on to xzaro unless its value is
xarray's default (then xzaro's own default stands for it); ``mode=None`` and
``zarr_format=None`` are resolved as xarray resolves them. Arguments that only make sense for
zarr-python (store objects instead of paths, ``synchronizer``, ``chunk_store``,
``cache_members=False``) raise :class:`NotApplicableError`; the tests that pass them are listed as
not applicable in :mod:`xarray_suite_expectations`, the one list of every test that does not pass
through xzaro. The ``xarray_suite_plugin`` applies that list as skip/xfail(strict) marks and prints
the counts with ``--xarray-suite-report``::

    pytest tests/backends/test_xarray_suite.py --xarray-suite-report
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import xarray as xr
from xarray.backends import plugins

from xzaro.backends.xarray import ZaroBackendEntrypoint  # importing xzaro registers .zaro

zarr = pytest.importorskip("zarr")
xtb = pytest.importorskip("xarray.tests.test_backends", reason="xarray's tests are not installed")
xtbd = pytest.importorskip("xarray.tests.test_backends_datatree")
_xconftest = importlib.import_module("xarray.tests.conftest")

ENGINE = "zaro"

# xarray's fixtures, made visible to the tests of this module only.
default_zarr_format = xtb.default_zarr_format
tmp_store = xtb.tmp_store
use_dask = _xconftest.use_dask
time_unit = _xconftest.time_unit
create_test_datatree = _xconftest.create_test_datatree
simple_datatree = _xconftest.simple_datatree
unaligned_datatree_zarr_factory = xtbd.unaligned_datatree_zarr_factory


class NotApplicableError(Exception):
    """An argument only zarr-python can honour; list the test as NOT_APPLICABLE."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"not applicable to xzaro: {what} (list the test as NOT_APPLICABLE in "
            "tests/xarray_suite_expectations.py)"
        )


# --- writes: to_zarr -> .zaro.to_store --------------------------------------------------------

_TO_ZARR: dict[type, Callable[..., Any]] = {
    xr.DataTree: xr.DataTree.to_zarr,
    xr.DataArray: xr.DataArray.to_zarr,
    xr.Dataset: xr.Dataset.to_zarr,
}
_NOT_APPLICABLE_WRITE = ("synchronizer", "chunk_store")


def _original_to_zarr(obj: Any) -> Callable[..., Any]:
    for cls, method in _TO_ZARR.items():
        if isinstance(obj, cls):
            return method
    raise TypeError(f"no to_zarr for {type(obj).__name__}")


def _defaults(method: Callable[..., Any]) -> dict[str, Any]:
    """xarray's default for every to_zarr keyword (DataTree's ``**kwargs`` are Dataset's)."""
    out = {
        name: p.default
        for sig in (inspect.signature(xr.Dataset.to_zarr), inspect.signature(method))
        for name, p in sig.parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    out["zarr_version"] = None
    return out


def _store_url(store: Any) -> str:
    if isinstance(store, str | os.PathLike):
        return os.fspath(store)
    raise NotApplicableError(f"the store is a {type(store).__module__}.{type(store).__name__}")


def _has_zarr_root(url: str) -> bool:
    return any(os.path.exists(os.path.join(url, k)) for k in (".zgroup", ".zarray", "zarr.json"))


def _zarr_format(arguments: dict[str, Any], mode: str, url: str) -> int | None:
    """xarray's ``zarr_format=None``: the stored format when writing into an existing store
    (``None``, which ``to_store`` resolves the same way), else zarr-python's configured default.
    """
    zarr_format = arguments.pop("zarr_format", None)
    zarr_version = arguments.pop("zarr_version", None)
    if zarr_format is None:
        zarr_format = zarr_version
    if zarr_format is not None:
        return int(zarr_format)
    if mode in ("a", "a-", "r+") and _has_zarr_root(url):
        return None
    return int(zarr.config.get("default_zarr_format"))


def to_zarr_via_zaro(obj: Any, *args: Any, **kwargs: Any) -> Any:
    """``obj.to_zarr(*args, **kwargs)`` done by ``obj.zaro.to_store``.

    Arguments are bound to the installed xarray's ``to_zarr`` signature (so a bad call fails as
    it does in xarray), then every explicitly given keyword goes to ``to_store`` under the same
    name, except: ``store`` becomes the URL; ``mode=None`` becomes ``"a"`` with ``append_dim``,
    ``"r+"`` with ``region``, else ``"w-"``; ``zarr_format``/``zarr_version`` ``None`` is resolved
    as in xarray (see :func:`_zarr_format`); keywords equal to xarray's default are left to
    ``to_store``'s own default.
    """
    method = _original_to_zarr(obj)
    bound = inspect.signature(method).bind(obj, *args, **kwargs)
    arguments = dict(bound.arguments)
    arguments.pop("self")
    arguments.update(arguments.pop("kwargs", {}))
    defaults = _defaults(method)

    url = _store_url(arguments.pop("store", None))
    mode = arguments.pop("mode", defaults["mode"])
    if mode is None:
        if arguments.get("append_dim") is not None:
            mode = "a"
        elif arguments.get("region") is not None:
            mode = "r+"
        else:
            mode = "w-"
    translated: dict[str, Any] = {"mode": mode, "zarr_format": _zarr_format(arguments, mode, url)}
    for name, value in arguments.items():
        if name in _NOT_APPLICABLE_WRITE and value is not None:
            raise NotApplicableError(f"to_zarr({name}=...)")
        if name in defaults and value is defaults[name]:
            continue
        translated[name] = value
    return obj.zaro.to_store(url, **translated)


# --- reads: engine="zarr" -> engine="zaro" ----------------------------------------------------


def zaro_read_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """xarray's zarr-engine keywords as xzaro-engine keywords.

    ``mode="r"``, ``cache_members=True`` and ``None`` for ``synchronizer``, ``chunk_store``,
    ``store`` and ``engine`` are the zarr engine's defaults and left out; ``zarr_version`` is
    ``zarr_format``; everything else is passed on.
    """
    out = dict(kwargs)
    if out.get("mode", "r") == "r":
        out.pop("mode", None)
    if out.pop("cache_members", True) is not True:
        raise NotApplicableError("cache_members=False (zarr-python ZarrStore member cache)")
    for name in ("synchronizer", "chunk_store", "store", "engine"):
        if out.pop(name, None) is not None:
            raise NotApplicableError(f"open_dataset({name}=...)")
    if "zarr_version" in out:
        version = out.pop("zarr_version")
        if out.get("zarr_format") is None and version is not None:
            out["zarr_format"] = version
    return out


def _read_target(filename_or_obj: Any) -> Any:
    if isinstance(filename_or_obj, str | os.PathLike):
        return filename_or_obj
    raise NotApplicableError(
        f"reading a {type(filename_or_obj).__module__}.{type(filename_or_obj).__name__}"
    )


class ZarrEngineViaZaro(ZaroBackendEntrypoint):
    """What ``engine="zarr"`` resolves to in these tests: xzaro's engine, keywords translated."""

    open_dataset_parameters = (
        *ZaroBackendEntrypoint.open_dataset_parameters,
        "mode",
        "cache_members",
        "synchronizer",
        "chunk_store",
        "zarr_version",
        "store",
        "engine",
    )

    def open_dataset(self, filename_or_obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """xzaro's ``open_dataset`` with translated keywords."""
        return super().open_dataset(_read_target(filename_or_obj), **zaro_read_kwargs(kwargs))

    def open_groups_as_dict(self, filename_or_obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """xzaro's ``open_groups_as_dict`` with translated keywords."""
        return super().open_groups_as_dict(
            _read_target(filename_or_obj), **zaro_read_kwargs(kwargs)
        )

    def open_datatree(self, filename_or_obj: Any, **kwargs: Any) -> Any:
        """xzaro's ``open_datatree`` with translated keywords."""
        return super().open_datatree(_read_target(filename_or_obj), **zaro_read_kwargs(kwargs))


@pytest.fixture(autouse=True)
def _through_xzaro(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route ``to_zarr`` to ``to_store`` and the ``"zarr"`` engine to xzaro's engine."""
    for cls in _TO_ZARR:
        monkeypatch.setattr(cls, "to_zarr", to_zarr_via_zaro)
    get_backend = plugins.get_backend

    def get_backend_via_zaro(engine: Any) -> Any:
        return ZarrEngineViaZaro() if engine == "zarr" else get_backend(engine)

    monkeypatch.setattr(plugins, "get_backend", get_backend_via_zaro)


# --- the test classes ------------------------------------------------------------------------


class _ViaZaro:
    """``save`` with ``to_store`` and ``open`` with ``engine="zaro"`` for xarray's ZarrBase."""

    def save(self, dataset: Any, store_target: Any, **kwargs: Any) -> Any:
        """Write ``dataset`` with xzaro, ``to_zarr``'s keywords translated."""
        return to_zarr_via_zaro(dataset, store_target, **kwargs)

    @contextlib.contextmanager
    def open(self, path: Any, **kwargs: Any) -> Iterator[xr.Dataset]:
        """Open with ``engine="zaro"``; ``backend_kwargs`` translated like the other keywords."""
        kwargs.update(kwargs.pop("backend_kwargs", None) or {})
        with xr.open_dataset(path, engine=ENGINE, **zaro_read_kwargs(kwargs)) as ds:
            yield ds


class TestZarrDirectoryStore(_ViaZaro, xtb.TestZarrDirectoryStore):
    """xarray's ZarrBase tests on a directory store."""


def _own_tests_only(xarray_cls: type) -> Callable[[type], type]:
    """Collect only the tests ``xarray_cls`` defines itself, not those it inherits."""

    def hide_inherited(cls: type) -> type:
        for name in dir(xarray_cls):
            if name.startswith("test_") and name not in vars(xarray_cls):
                setattr(cls, name, None)
        return cls

    return hide_inherited


@_own_tests_only(xtb.TestZarrWriteEmpty)
class TestZarrWriteEmpty(_ViaZaro, xtb.TestZarrWriteEmpty):
    """xarray's write_empty_chunks tests; the ones it inherits are TestZarrDirectoryStore's."""


class TestZarrRegionAuto(xtb.TestZarrRegionAuto):
    """xarray's ``region="auto"``, ``safe_chunks`` and ``align_chunks`` tests."""

    def save(self, target: Any, ds: Any, **kwargs: Any) -> Any:
        """Write with xzaro."""
        return to_zarr_via_zaro(ds, target, **kwargs)


@pytest.mark.usefixtures("default_zarr_format")
class TestDataArrayToZarr(xtb.TestDataArrayToZarr):
    """xarray's ``DataArray.to_zarr`` tests, in both Zarr formats."""


class TestZarrDatatreeIO(xtbd.TestZarrDatatreeIO):
    """xarray's ``DataTree.to_zarr`` / ``open_datatree`` / ``open_groups`` tests."""


def _in_both_formats(test: Callable[..., Any]) -> Callable[..., Any]:
    """One of xarray's module-level zarr tests, run under zarr_format 2 and 3."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        return test(*args, **kwargs)

    return pytest.mark.usefixtures("default_zarr_format")(run)


test_open_dataset_chunking_zarr = _in_both_formats(xtb.test_open_dataset_chunking_zarr)
test_chunking_consistency = _in_both_formats(xtb.test_chunking_consistency)
test_zarr_create_default_indexes = _in_both_formats(xtb.test_zarr_create_default_indexes)
test_raises_key_error_on_invalid_zarr_store = xtb.test_raises_key_error_on_invalid_zarr_store
