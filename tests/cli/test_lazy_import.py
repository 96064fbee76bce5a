"""``import xzaro`` is cheap and lazy, every public name still works, and the ``.zaro``
accessor is there whichever of xzaro and xarray is imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest

import xzaro


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("name", xzaro.__all__)
def test_every_public_name(name):
    assert getattr(xzaro, name) is not None
    namespace: dict = {}
    exec(f"from xzaro import {name}", namespace)
    assert namespace[name] is getattr(xzaro, name)


def test_sub_modules_and_unknown_names():
    assert xzaro.stores.open_store is xzaro.open_store
    assert "open_array" in dir(xzaro)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = xzaro.nope


def test_import_is_light():
    loaded = _run(
        "import sys, xzaro\n"
        "print(sorted(m for m in ('numpy', 'xarray', 'dask', 'pandas') if m in sys.modules))"
    )
    assert loaded == "[]"


WRITE = (
    "import tempfile, numpy as np\n"
    "ds = xr.Dataset({'a': (('y', 'x'), np.ones((2, 3)))})\n"
    "print(ds.zaro.to_store(tempfile.mkdtemp() + '/o.zarr') > 0, type(xr.DataArray([1]).zaro))\n"
)


@pytest.mark.parametrize(
    "imports",
    ["import xzaro\nimport xarray as xr", "import xarray as xr\nimport xzaro"],
)
def test_accessor_whichever_comes_first(imports):
    out = _run(f"{imports}\n{WRITE}")
    assert out == "True <class 'xzaro.writers.accessor.DataArrayAccessor'>"


def test_accessor_after_the_engine_alone(tmp_path):
    """Only xarray imported by the user: opening with engine="zaro" brings the accessor."""
    out = _run(
        "import xarray as xr, numpy as np\n"
        f"p = {str(tmp_path / 's.zarr')!r}\n"
        "xr.Dataset({'a': ('x', np.arange(3.0))}).to_zarr(p, zarr_format=2, consolidated=True)\n"
        "ds = xr.open_dataset(p, engine='zaro')\n"
        "print(type(ds.zaro).__name__)"
    )
    assert out == "DatasetAccessor"


def test_importing_xarray_alone_does_not_import_the_writers():
    out = _run(
        "import sys, xzaro, xarray\n"
        "print('dask' in sys.modules, 'xzaro.writers' in sys.modules,\n"
        "      hasattr(xarray.Dataset, 'zaro'))"
    )
    assert out == "False False True"
