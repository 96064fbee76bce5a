"""Datasets written by xarray's zarr engine (``to_zarr``), to test xzaro's xarray engine against.

``build_all(root)`` writes every store below ``root`` and returns a :class:`Built` that names them.
``build_wrapped(root, matrix_root)`` writes ``wrapped/<case id>.zarr``: every zarr-python matrix
store of :mod:`zarr_matrix` copied into a group as the variable ``v``, with dimension names added
where the matrix store has none, so that xarray can open it as a Dataset.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr_matrix as zm

# ---------------------------------------------------------------------------------------------
# Dataset builders
# ---------------------------------------------------------------------------------------------

NT, NY, NX = 6, 5, 4
INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def basic_dataset() -> xr.Dataset:
    """Every numeric dtype, bool, strings, NaN, a CF time axis and 1-d / 2-d coordinates."""
    rng = _rng(1)
    shape = (NT, NY, NX)
    dims = ("time", "y", "x")
    data_vars: dict[str, Any] = {}
    for dt in INT_DTYPES:
        info = np.iinfo(dt)
        v = rng.integers(int(info.min), int(info.max), size=shape, endpoint=True, dtype=dt)
        data_vars[f"v_{dt}"] = (dims, v, {"kind": "int", "bits": info.bits})
    for dt in FLOAT_DTYPES:
        v = (rng.standard_normal(shape) * 100).astype(dt)
        data_vars[f"v_{dt}"] = (dims, v, {"kind": "float"})
    nan = rng.standard_normal(shape)
    nan[0, 0, :] = np.nan
    nan[3, 2:, 1] = np.nan
    data_vars["v_nan"] = (dims, nan, {"units": "K", "long_name": "with NaN"})
    data_vars["v_bool"] = (dims, rng.random(shape) < 0.5)
    data_vars["s_fixed"] = (("y",), np.array(["a", "bb", "ccc", "dddd", "é"], dtype="<U4"))
    data_vars["s_object"] = (
        ("x",),
        np.array(["", "hello", "漢字", "x y"], dtype=object),
        {"note": "variable length"},
    )
    data_vars["s_bytes"] = (("x",), np.array([b"ab", b"", b"xyz", b"q"], dtype="S3"))
    data_vars["scalar"] = ((), np.float64(2.5), {"what": "0-d"})
    data_vars["v_timedelta"] = (("time",), np.arange(NT) * np.timedelta64(90, "m"))
    time = pd.date_range("2000-01-01", periods=NT, freq="D")
    y = np.linspace(-10.0, 10.0, NY)
    x = np.arange(NX, dtype="int32") * 3
    lat = y[:, None] + 0.1 * x[None, :]
    lon = 0.5 * y[:, None] - x[None, :]
    ds = xr.Dataset(
        data_vars,
        coords={
            "time": ("time", time, {"standard_name": "time"}),
            "y": ("y", y, {"units": "km"}),
            "x": ("x", x),
            "lat": (("y", "x"), lat, {"units": "degrees_north"}),
            "lon": (("y", "x"), lon, {"units": "degrees_east"}),
            "label": ("x", np.array(["p", "qq", "r", "ss"], dtype="<U2")),
        },
        attrs={"title": "basic", "history": "made by xarray_cases", "n": 3, "lst": [1, 2]},
    )
    ds["time"].encoding.update({"units": "days since 2000-01-01", "calendar": "standard"})
    ds["v_timedelta"].encoding.update({"units": "minutes"})
    return ds


def _chunk_encoding(ds: xr.Dataset, chunked: bool) -> dict[str, dict[str, Any]]:
    """Small storage chunks (``chunked``) or one chunk per variable."""
    enc: dict[str, dict[str, Any]] = {}
    small = {"time": 2, "y": 2, "x": 3}
    for name, var in ds.variables.items():
        if var.ndim == 0:
            continue
        if chunked:
            enc[name] = {"chunks": tuple(small[d] for d in var.dims)}
        else:
            enc[name] = {"chunks": var.shape}
    return enc


def netcdf_dataset() -> xr.Dataset:
    """NetCDF-style: int16 packed with scale_factor/add_offset, _FillValue, CF time, 2-d lat/lon."""
    rng = _rng(2)
    nt, ny, nx = 5, 4, 3
    t2m = 273.15 + rng.standard_normal((nt, ny, nx)) * 10
    t2m = np.round(t2m, 2)
    t2m[1, 0, 0] = np.nan
    t2m[4, 3, :] = np.nan
    time = pd.date_range("2000-01-01", periods=nt, freq="6h")
    iy, ix = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    ds = xr.Dataset(
        {
            "t2m": (
                ("time", "y", "x"),
                t2m,
                {"units": "K", "long_name": "2 metre temperature", "standard_name": "air_temp"},
            ),
            "mask": (("y", "x"), (iy + ix) % 2 == 0),
        },
        coords={
            "time": ("time", time),
            "lat": (("y", "x"), 40.0 + iy * 0.5 + ix * 0.1, {"units": "degrees_north"}),
            "lon": (("y", "x"), -5.0 + ix * 0.5 - iy * 0.1, {"units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.8", "source": "xarray_cases"},
    )
    ds["t2m"].encoding.update(
        {
            "dtype": "int16",
            "scale_factor": 0.01,
            "add_offset": 273.15,
            "_FillValue": np.int16(-32767),
            "chunks": (2, 4, 3),
        }
    )
    ds["time"].encoding.update({"units": "days since 2000-01-01", "calendar": "standard"})
    return ds


def sharded_dataset() -> xr.Dataset:
    rng = _rng(3)
    shape = (16, 12, 10)
    ds = xr.Dataset(
        {
            "v": (("t", "y", "x"), rng.standard_normal(shape).astype("float32")),
            "w": (("t", "y", "x"), rng.integers(0, 1000, shape).astype("int32")),
            "plain": (("y", "x"), rng.standard_normal(shape[1:])),
        },
        coords={"t": np.arange(shape[0]), "y": np.arange(shape[1]) * 1.5},
    )
    ds["v"].encoding.update({"chunks": (2, 3, 5), "shards": (8, 6, 10)})
    ds["w"].encoding.update({"chunks": (4, 4, 5), "shards": (8, 12, 10)})
    ds["plain"].encoding.update({"chunks": (4, 5)})
    return ds


#: the many-chunks store: shape, storage chunks; 1024 storage chunks of 2 KiB, 2 MiB in all
BIG_SHAPE = (1024, 256)
BIG_CHUNKS = (16, 16)


def big_dataset() -> xr.Dataset:
    rng = _rng(4)
    v = rng.standard_normal(BIG_SHAPE)
    ds = xr.Dataset(
        {"big": (("row", "col"), v), "small": (("col",), np.arange(BIG_SHAPE[1], dtype="f4"))},
        coords={"row": np.arange(BIG_SHAPE[0])},
    )
    ds["big"].encoding.update({"chunks": BIG_CHUNKS})
    ds["small"].encoding.update({"chunks": (32,)})
    ds["row"].encoding.update({"chunks": (128,)})
    return ds


def tree() -> xr.DataTree:
    """Root coordinates, nested groups with their own variables, attributes on groups."""
    rng = _rng(5)
    root = xr.Dataset(coords={"x": np.arange(4)}, attrs={"title": "tree root"})
    a = xr.Dataset(
        {"temp": (("x",), rng.standard_normal(4), {"units": "K"})},
        attrs={"level": 1},
    )
    ab = xr.Dataset(
        {
            "counts": (("x", "z"), rng.integers(0, 9, (4, 3)).astype("int16")),
            "name": (("z",), np.array(["u", "vv", "www"], dtype=object)),
        },
        coords={"z": [10, 20, 30]},
        attrs={"level": 2},
    )
    c = xr.Dataset(
        {"flag": (("w",), np.array([True, False, True]))},
        coords={"w": pd.date_range("2001-01-01", periods=3)},
        attrs={"note": "own dims"},
    )
    return xr.DataTree.from_dict({"/": root, "/a": a, "/a/b": ab, "/c": c, "/empty": None})


#: time steps of each open_mfdataset piece
MF_STEPS = (4, 3, 5)


def mf_datasets() -> list[xr.Dataset]:
    rng = _rng(6)
    out = []
    start = pd.Timestamp("2010-01-01")
    for i, n in enumerate(MF_STEPS):
        time = pd.date_range(start, periods=n, freq="D")
        start = time[-1] + pd.Timedelta(days=1)
        ds = xr.Dataset(
            {
                "a": (("time", "y"), rng.standard_normal((n, 3))),
                "b": (("time",), rng.integers(0, 100, n).astype("int32")),
                "const": (("y",), np.array([1.0, 2.0, 3.0])),
            },
            coords={"time": time, "y": [0, 1, 2]},
            attrs={"piece": i},
        )
        ds["time"].encoding.update({"units": "days since 2010-01-01"})
        ds["a"].encoding.update({"chunks": (2, 3)})
        out.append(ds)
    return out


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """One store written by ``to_zarr``."""

    name: str
    zarr_format: int
    consolidated: bool
    kind: str

    @property
    def id(self) -> str:
        return self.name


@dataclass
class Built:
    root: Path
    stores: dict[str, Store] = field(default_factory=dict)

    def path(self, name: str) -> str:
        return str(self.root / f"{name}.zarr")


#: the Dataset stores (name -> Store), known before anything is written (for parametrisation)
DATASET_STORES: dict[str, Store] = {}
for _fmt in (2, 3):
    for _cons in (True, False):
        for _chunked in (True, False):
            _c = "cons" if _cons else "plain"
            _n = f"basic_v{_fmt}_{_c}_{'chunked' if _chunked else 'whole'}"
            DATASET_STORES[_n] = Store(_n, _fmt, _cons, "basic_chunked" if _chunked else "basic")
    DATASET_STORES[f"netcdf_v{_fmt}"] = Store(f"netcdf_v{_fmt}", _fmt, True, "netcdf")
    DATASET_STORES[f"big_v{_fmt}"] = Store(f"big_v{_fmt}", _fmt, _fmt == 2, "big")
    DATASET_STORES[f"tree_v{_fmt}"] = Store(f"tree_v{_fmt}", _fmt, _fmt == 3, "tree")
DATASET_STORES["sharded_v3"] = Store("sharded_v3", 3, True, "sharded")
DATASET_STORES["sharded_v3_plain"] = Store("sharded_v3_plain", 3, False, "sharded")
for _i in range(len(MF_STEPS)):
    DATASET_STORES[f"mf_{_i}"] = Store(f"mf_{_i}", 3, True, "mf")


def _write(store: Store, path: Path) -> None:
    kw: dict[str, Any] = {
        "mode": "w",
        "zarr_format": store.zarr_format,
        "consolidated": store.consolidated,
    }
    kind = store.kind
    if kind in ("basic", "basic_chunked"):
        ds = basic_dataset()
        ds.to_zarr(path, encoding=_chunk_encoding(ds, kind == "basic_chunked"), **kw)
    elif kind == "netcdf":
        netcdf_dataset().to_zarr(path, **kw)
    elif kind == "sharded":
        sharded_dataset().to_zarr(path, **kw)
    elif kind == "big":
        big_dataset().to_zarr(path, **kw)
    elif kind == "tree":
        tree().to_zarr(path, **kw)
    elif kind == "mf":
        mf_datasets()[int(store.name.split("_")[1])].to_zarr(path, **kw)
    else:  # pragma: no cover
        raise ValueError(kind)


# --- the zarr-python matrix, wrapped into groups ------------------------------------------------


def _wrap_matrix_case(case: zm.Case, matrix_root: Path, dest: Path) -> None:
    """Copy the case's array into the group ``dest`` as ``v`` and give it dimension names."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    src = case.array_dir(matrix_root)
    shutil.copytree(src, dest / "v", ignore=shutil.ignore_patterns("*.zgroup"))
    if case.zarr_format == 2:
        (dest / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
        zarray = json.loads((dest / "v" / ".zarray").read_text())
        zattrs_file = dest / "v" / ".zattrs"
        attrs = json.loads(zattrs_file.read_text()) if zattrs_file.is_file() else {}
        if "_ARRAY_DIMENSIONS" not in attrs:
            attrs["_ARRAY_DIMENSIONS"] = [f"dim_{i}" for i in range(len(zarray["shape"]))]
            zattrs_file.write_text(json.dumps(attrs))
    else:
        (dest / "zarr.json").write_text(
            json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
        )
        meta_file = dest / "v" / "zarr.json"
        meta = json.loads(meta_file.read_text())
        names = meta.get("dimension_names") or [None] * len(meta["shape"])
        meta["dimension_names"] = [n if n is not None else f"dim_{i}" for i, n in enumerate(names)]
        meta_file.write_text(json.dumps(meta))


def wrapped_path(root: Path, case_id: str) -> Path:
    return root / "wrapped" / f"{case_id}.zarr"


def build_all(root: Path) -> Built:
    """Write every Dataset store below ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    built = Built(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, store in DATASET_STORES.items():
            _write(store, root / f"{name}.zarr")
            built.stores[name] = store
    return built


def build_wrapped(root: Path, matrix_root: Path) -> Path:
    """Wrap every store of the matrix at ``matrix_root`` (see :func:`zarr_matrix.build_all`)
    into ``wrapped_path(root, case_id)``; return ``root``."""
    for case in zm.CASES:
        _wrap_matrix_case(case, matrix_root, wrapped_path(root, case.id))
    return root
