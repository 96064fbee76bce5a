"""The ``.zaro`` accessors on xarray's ``Dataset``, ``DataArray`` and ``DataTree``, registered
whenever xarray is imported in a process that imported xzaro, whichever came first.

Importing xzaro does not import xarray. If xarray is already imported the accessors are
registered at once; otherwise an import hook registers them the moment xarray's own import
finishes. What is registered is a small factory: the writers (and Dask) are imported only when
``ds.zaro`` is first used, and the factory then hands over to
:func:`xzaro.writers.accessor.register`, which installs the accessor classes themselves.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


def dataset_accessor(obj: Any) -> Any:
    """``ds.zaro``: a :class:`xzaro.writers.accessor.DatasetAccessor`."""
    from xzaro.writers import accessor

    accessor.register()
    return accessor.DatasetAccessor(obj)


def dataarray_accessor(obj: Any) -> Any:
    """``da.zaro``: a :class:`xzaro.writers.accessor.DataArrayAccessor`."""
    from xzaro.writers import accessor

    accessor.register()
    return accessor.DataArrayAccessor(obj)


def datatree_accessor(obj: Any) -> Any:
    """``dt.zaro``: a :class:`xzaro.writers.accessor.DataTreeAccessor`."""
    from xzaro.writers import accessor

    accessor.register()
    return accessor.DataTreeAccessor(obj)


def register_with(xr: ModuleType) -> None:
    """Register the ``.zaro`` accessor factories with the (imported) xarray module ``xr``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # registering again (a reload) is harmless
        xr.register_dataset_accessor("zaro")(dataset_accessor)
        xr.register_dataarray_accessor("zaro")(dataarray_accessor)
        xr.register_datatree_accessor("zaro")(datatree_accessor)


class RegisteringLoader:
    """Wraps xarray's loader: executes the module, then registers the accessors with it.

    Every other attribute (resource readers, ``get_source``, ...) is the wrapped loader's.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        """The wrapped loader's module."""
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Run xarray's ``__init__``, then register the accessors."""
        self.loader.exec_module(module)
        register_with(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class XarrayImportHook:
    """A ``sys.meta_path`` finder that only watches for ``import xarray``: it finds xarray's
    spec with the other finders, wraps the loader in a :class:`RegisteringLoader` and removes
    itself."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """xarray's spec with a registering loader; ``None`` for every other module."""
        if fullname != "xarray":
            return None
        remove_hooks()
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = RegisteringLoader(spec.loader)  # type: ignore[assignment]
        return spec


def remove_hooks() -> None:
    """Take every :class:`XarrayImportHook` off ``sys.meta_path``."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, XarrayImportHook)]


def register_when_xarray_is_imported() -> None:
    """Register the accessors now if xarray is imported, else as soon as it is."""
    xr = sys.modules.get("xarray")
    if xr is not None:
        register_with(xr)
        return
    remove_hooks()
    sys.meta_path.insert(0, XarrayImportHook())
