"""Reference stores: Kerchunk JSON (v0/v1) and Parquet references, VirtualiZarr output.

NetCDF4 files made here with h5netcdf are scanned with kerchunk (and VirtualiZarr when it is
installed); every variable read through ``engine="zaro"`` must equal ``engine="h5netcdf"`` on
the original files. Hand-written documents cover every value form, templates, ``gen``, missing
chunks and Parquet padding rows; the security, error, coalescing and pickling rules are checked
against a local HTTP server.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pickle
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import xzaro
from xzaro.errors import MetadataError, StoreError
from xzaro.references import scan, write_references
from xzaro.stores import open_store
from xzaro.stores.parquet_reference import ParquetReferenceStore
from xzaro.stores.reference import ReferenceStore, parse_references

h5netcdf = pytest.importorskip("h5netcdf")

FILL = np.int16(-32767)


# --- NetCDF4 files ---------------------------------------------------------------------------


def _make_nc(path: Path, t0: int, nt: int) -> None:
    """int16 temperature packed with scale/offset and _FillValue, shuffle + zlib, 300x300 chunks."""
    rng = np.random.default_rng(t0)
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"time": None, "depth": 2, "lat": 300, "lon": 300}
        f.resize_dimension("time", nt)
        t = f.create_variable("time", ("time",), "f8")
        t.attrs["units"] = "days since 2000-01-01"
        t.attrs["calendar"] = "standard"
        t[:] = np.arange(t0, t0 + nt, dtype="f8")
        f.create_variable("depth", ("depth",), "f4", data=np.array([0.5, 10.0], "f4"))
        f.create_variable("lat", ("lat",), "f4", data=np.linspace(-60, 60, 300, dtype="f4"))
        f.create_variable("lon", ("lon",), "f4", data=np.linspace(0, 359, 300, dtype="f4"))
        v = f.create_variable(
            "temperature",
            ("time", "depth", "lat", "lon"),
            "i2",
            chunks=(1, 1, 300, 300),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
            fillvalue=FILL,
        )
        v.attrs["scale_factor"] = np.float32(0.01)
        v.attrs["add_offset"] = np.float32(10.0)
        v.attrs["units"] = "degC"
        data = rng.integers(-1500, 1500, size=(nt, 2, 300, 300)).astype("i2")
        data[:, :, :7, :9] = FILL
        v[:] = data


@pytest.fixture(scope="module")
def nc_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("nc")
    files = [root / "a.nc", root / "b.nc"]
    _make_nc(files[0], 0, 2)
    _make_nc(files[1], 2, 3)
    return files


def _expected(files: list[Path], decoded: bool) -> xr.Dataset:
    with xr.open_mfdataset(
        files, engine="h5netcdf", combine="by_coords", mask_and_scale=decoded
    ) as ds:
        return ds.load()


def _assert_same(url: Any, files: list[Path], **kwargs: Any) -> None:
    """Every variable read through engine="zaro" equals engine="h5netcdf" on the files."""
    raw = xr.open_dataset(url, engine="zaro", mask_and_scale=False, **kwargs).load()
    xr.testing.assert_equal(raw, _expected(files, decoded=False))
    assert raw["temperature"].dtype == np.int16
    got = xr.open_dataset(url, engine="zaro", **kwargs).load()
    exp = _expected(files, decoded=True)
    assert set(got.variables) == set(exp.variables)
    for name in exp.variables:
        a, b = exp[name].values, got[name].values
        assert a.shape == b.shape, name
        if a.dtype.kind == "f":
            # JSON metadata holds scale_factor as a float64, h5netcdf keeps float32
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-5, equal_nan=True, err_msg=name)
            np.testing.assert_array_equal(np.isnan(b), np.isnan(a), err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)
    assert np.isnan(got["temperature"].values[:, :, :7, :9]).all()
    assert got["time"].dtype.kind == "M"
    assert got["time"].values[0] == np.datetime64("2000-01-01")


def _kerchunk_refs(files: list[Path]) -> dict[str, Any]:
    kerchunk_hdf = pytest.importorskip("kerchunk.hdf")
    kerchunk_combine = pytest.importorskip("kerchunk.combine")
    singles = [
        kerchunk_hdf.SingleHdf5ToZarr(str(f), inline_threshold=100).translate() for f in files
    ]
    if len(singles) == 1:
        return singles[0]
    return kerchunk_combine.MultiZarrToZarr(singles, concat_dims=["time"]).translate()


def _kerchunk_parquet(refs: dict[str, Any], out: Path, record_size: int) -> None:
    pytest.importorskip("fastparquet")  # kerchunk writes Parquet references with fastparquet
    kerchunk_df = pytest.importorskip("kerchunk.df")
    kerchunk_df.refs_to_dataframe(refs, str(out), record_size=record_size)


@pytest.mark.parametrize("combined", [False, True], ids=["one-file", "combined"])
def test_kerchunk_json(nc_files: list[Path], tmp_path: Path, combined: bool) -> None:
    files = nc_files if combined else nc_files[:1]
    out = tmp_path / "refs.json"
    out.write_text(json.dumps(_kerchunk_refs(files)))
    _assert_same(str(out), files)
    _assert_same(f"reference+json://{out}", files)
    _assert_same(f"virtualizarr://{out}", files)


@pytest.mark.parametrize("combined", [False, True], ids=["one-file", "combined"])
def test_kerchunk_parquet(nc_files: list[Path], tmp_path: Path, combined: bool) -> None:
    files = nc_files if combined else nc_files[:1]
    out = tmp_path / "refs.parq"
    _kerchunk_parquet(_kerchunk_refs(files), out, record_size=3)  # several record files
    _assert_same(str(out), files)
    _assert_same(f"reference+parquet://{out}", files)
    _assert_same(f"virtualizarr://{out}", files)
    _assert_same(str(out), files, chunks={})


@pytest.mark.parametrize("suffix", [".json", ".json.zst", ".parq"])
def test_scan_and_write(nc_files: list[Path], tmp_path: Path, suffix: str) -> None:
    pytest.importorskip("kerchunk")
    refs = scan([str(f) for f in nc_files], concat_dim="time")
    out = tmp_path / f"refs{suffix}"
    write_references(refs, out, record_size=4)
    _assert_same(str(out), nc_files)
    if suffix == ".parq":
        pytest.importorskip("fastparquet")
        fsspec_ds = xr.open_dataset(  # fsspec's reader agrees on the layout
            "reference://",
            engine="zarr",
            mask_and_scale=False,
            backend_kwargs={
                "consolidated": False,
                "storage_options": {"fo": str(out), "remote_protocol": "file"},
            },
        ).load()
        xr.testing.assert_equal(fsspec_ds, _expected(nc_files, decoded=False))


def test_scan_single_and_errors(nc_files: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("kerchunk")
    refs = scan(nc_files[0])
    assert refs["refs"]["temperature/0.0.0.0"][0] == str(nc_files[0])  # absolute local path
    with pytest.raises(ValueError, match="concat_dim"):
        scan(nc_files)
    with pytest.raises(ValueError, match=r"\.json"):
        write_references(refs, tmp_path / "refs.txt")
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "x.parq").mkdir()
    (tmp_path / "precious" / "x.parq" / "keep").write_text("do not delete")
    with pytest.raises(ValueError, match="no Parquet references"):
        write_references(refs, tmp_path / "precious" / "x.parq")
    assert (tmp_path / "precious" / "x.parq" / "keep").exists()


def test_open_mfdataset_of_single_file_references(nc_files: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("kerchunk")
    urls = []
    for i, f in enumerate(nc_files):
        out = tmp_path / f"refs{i}.json"
        write_references(scan(f), out)
        urls.append(str(out))
    with xr.open_mfdataset(
        urls, engine="zaro", combine="nested", concat_dim="time", mask_and_scale=False
    ) as ds:
        xr.testing.assert_equal(ds.load(), _expected(nc_files, decoded=False))


def test_cli_refs(nc_files: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("kerchunk")
    from xzaro.cli_refs import add_refs_command

    parser = argparse.ArgumentParser(prog="xzaro")
    add_refs_command(parser.add_subparsers(dest="command"))
    for out in (tmp_path / "cli.json", tmp_path / "cli.parq"):
        args = parser.parse_args(
            ["refs", *map(str, nc_files), "-o", str(out), "--concat-dim", "time"]
        )
        assert args.func(args) == 0
        _assert_same(str(out), nc_files)
    args = parser.parse_args(["refs", *map(str, nc_files), "-o", str(tmp_path / "x.json")])
    assert args.func(args) == 2


# --- VirtualiZarr ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_virtualizarr(nc_files: list[Path], tmp_path: Path, fmt: str) -> None:
    virtualizarr = pytest.importorskip("virtualizarr")
    parsers = pytest.importorskip("virtualizarr.parsers")
    registry_mod = pytest.importorskip("obspec_utils.registry")
    obstore_store = pytest.importorskip("obstore.store")
    if fmt == "parquet":
        pytest.importorskip("fastparquet")
    registry = registry_mod.ObjectStoreRegistry({"file://": obstore_store.LocalStore()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = [
            virtualizarr.open_virtual_dataset(
                f"file://{f}", registry=registry, parser=parsers.HDFParser()
            )
            for f in nc_files
        ]
        combined = xr.concat(
            parts, dim="time", coords="minimal", compat="override", combine_attrs="override"
        )
        out = tmp_path / ("vz.json" if fmt == "json" else "vz.parq")
        kwargs = {} if fmt == "json" else {"record_size": 3}
        combined.vz.to_kerchunk(str(out), format=fmt, **kwargs)
    _assert_same(str(out), nc_files)
    _assert_same(f"virtualizarr://{out}", nc_files)


# --- hand-written documents ------------------------------------------------------------------

ZARRAY = {
    "shape": [8],
    "chunks": [2],
    "dtype": "<i4",
    "compressor": None,
    "filters": None,
    "fill_value": -1,
    "order": "C",
    "zarr_format": 2,
}
ZATTRS = json.dumps({"_ARRAY_DIMENSIONS": ["x"]})
VALUES = np.arange(8, dtype="<i4") * 11


def _target_files(root: Path) -> None:
    """data.bin: 16 junk bytes, then the 8 values; whole.bin: exactly chunk 2."""
    (root / "data.bin").write_bytes(b"J" * 16 + VALUES.tobytes())
    (root / "whole.bin").write_bytes(VALUES[4:6].tobytes())


def _v0_doc(data: str, whole: str) -> dict[str, Any]:
    return {
        ".zgroup": '{"zarr_format": 2}',
        "x/.zarray": ZARRAY,  # a JSON object value
        "x/.zattrs": ZATTRS,  # inline text
        "x/0": [data, 16, 8],  # a byte range
        "x/1": "base64:" + base64.b64encode(VALUES[2:4].tobytes()).decode(),  # inline bytes
        "x/2": [whole],  # a whole file
        # x/3 has no reference: fill value
    }


def _read_x(url: Any, **kwargs: Any) -> np.ndarray:
    return np.asarray(xzaro.open_array(url, "x", **kwargs)[...])


def _with_fill(values: np.ndarray, missing: list[int]) -> np.ndarray:
    out = values.copy()
    for i in missing:
        out[2 * i : 2 * i + 2] = -1
    return out


def test_v0_every_value_form(tmp_path: Path) -> None:
    _target_files(tmp_path)
    doc = _v0_doc(str(tmp_path / "data.bin"), "whole.bin")  # relative to the reference file
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    np.testing.assert_array_equal(_read_x(str(tmp_path / "refs.json")), _with_fill(VALUES, [3]))
    store = open_store(str(tmp_path / "refs.json"))
    assert isinstance(store, ReferenceStore)
    assert store.get("x/3") is None and not store.exists("x/3") and store.exists("x/0")
    assert store.get("x/.zattrs") == ZATTRS.encode()
    assert json.loads(store.get("x/.zarray") or b"") == ZARRAY
    assert store.list("x") == ["x/.zarray", "x/.zattrs", "x/0", "x/1", "x/2"]
    assert store.list_dir("") == [".zgroup", "x"]
    ds = xr.open_dataset(str(tmp_path / "refs.json"), engine="zaro", mask_and_scale=False)
    np.testing.assert_array_equal(ds["x"].values, _with_fill(VALUES, [3]))


def test_get_ranges_within_references(tmp_path: Path) -> None:
    _target_files(tmp_path)
    (tmp_path / "refs.json").write_text(
        json.dumps(_v0_doc(str(tmp_path / "data.bin"), "whole.bin"))
    )
    store = ReferenceStore(tmp_path / "refs.json")
    chunk0, chunk1, chunk2 = (VALUES[i : i + 2].tobytes() for i in (0, 2, 4))
    got = store.get_ranges(
        [
            ("x/0", 2, 4),
            ("x/0", -3, None),
            ("x/0", 6, 100),  # clipped at the end of the referenced range
            ("x/0", 50, 4),  # past the end: empty, never bytes beyond the reference
            ("x/1", 1, None),
            ("x/2", 4, 2),
            ("x/2", -2, None),
            ("x/2", 6, 100),  # a whole-file reference: short at the end of the file
            ("x/2", 20, 4),
            ("x/3", 0, 4),
        ]
    )
    assert got == [
        chunk0[2:6],
        chunk0[-3:],
        chunk0[6:],
        b"",
        chunk1[1:],
        chunk2[4:6],
        chunk2[-2:],
        chunk2[6:],
        b"",
        None,
    ]


def test_v1_templates_and_gen(tmp_path: Path) -> None:
    _target_files(tmp_path)
    doc = {
        "version": 1,
        "templates": {"d": str(tmp_path), "u": "{{d}}/data.bin", "f": "{{d}}/{{name}}.bin"},
        "gen": [
            {  # y: the same bytes as x through a generator with arithmetic
                "key": "y/{{i}}",
                "url": "{{u}}",
                "offset": "{{16 + i * 8}}",
                "length": "8",
                "dimensions": {"i": {"stop": 4}},
            },
            {  # z: list-valued dimension, whole files
                "key": "z/{{ j }}",
                "url": "{{f(name='whole')}}",
                "dimensions": {"j": [0, 3]},
            },
        ],
        "refs": {
            ".zgroup": '{"zarr_format": 2}',
            "x/.zarray": json.dumps(ZARRAY),
            "x/0": ["{{u}}", 16, 8],
            "x/1": ["{{f(name='data')}}", 24, 8],
            "x/3": ["{{d}}/whole.bin"],
            "y/.zarray": ZARRAY,
            "y/3": ["{{u}}", 0, 8],  # overridden by gen, as in fsspec
            "z/.zarray": ZARRAY,
        },
    }
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    url = str(tmp_path / "refs.json")
    expect_x = VALUES.copy()
    expect_x[4:6] = -1
    expect_x[6:8] = VALUES[4:6]
    np.testing.assert_array_equal(_read_x(url), expect_x)
    np.testing.assert_array_equal(np.asarray(xzaro.open_array(url, "y")[...]), VALUES)
    z = np.full(8, -1, dtype="<i4")
    z[0:2] = z[6:8] = VALUES[4:6]
    np.testing.assert_array_equal(np.asarray(xzaro.open_array(url, "z")[...]), z)


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').getcwd()", "u.upper()", "'a' * 10**9", "(lambda: 1)()", "missing + 1"],
)
def test_templates_never_run_code(expression: str) -> None:
    doc = {
        "version": 1,
        "templates": {"u": "x"},
        "refs": {"a/0": ["{{" + expression + "}}", 0, 1]},
    }
    with pytest.raises(MetadataError):
        parse_references(doc)


def test_bad_documents(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="version"):
        parse_references({"version": 2, "refs": {}})
    with pytest.raises(MetadataError, match="offset"):
        parse_references({"version": 1, "gen": [{"key": "a", "url": "b", "offset": "1"}]})
    (tmp_path / "bad.json").write_text(json.dumps({".zgroup": '{"zarr_format": 2}', "x": [1, 2]}))
    store = ReferenceStore(tmp_path / "bad.json")
    with pytest.raises(StoreError, match="invalid reference"):
        store.get("x")
    with pytest.raises(xzaro.NodeNotFoundError):
        ReferenceStore(tmp_path / "nothing.json").get(".zgroup")


def test_read_only(tmp_path: Path) -> None:
    (tmp_path / "refs.json").write_text("{}")
    store = ReferenceStore(tmp_path / "refs.json")
    for call in (lambda: store.set("a", b"x"), lambda: store.delete("a")):
        with pytest.raises(StoreError, match="read-only"):
            call()
    with pytest.raises(StoreError, match="read-only"):
        open_store(str(tmp_path / "refs.json"), mode="w")


def test_zstd_json(tmp_path: Path) -> None:
    _target_files(tmp_path)
    write_references(_v0_doc(str(tmp_path / "data.bin"), "whole.bin"), tmp_path / "refs.json.zst")
    assert (tmp_path / "refs.json.zst").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    np.testing.assert_array_equal(_read_x(str(tmp_path / "refs.json.zst")), _with_fill(VALUES, [3]))


# --- Parquet ---------------------------------------------------------------------------------


def _write_parquet_refs(root: Path, record_size: int, rows: dict[int, tuple[Any, ...]]) -> None:
    """A Parquet reference directory for array ``x`` written by hand (kerchunk's layout).

    ``rows`` maps a chunk number to ``(path, offset, size, raw)``; other rows are padding.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = {
        "metadata": {
            ".zgroup": {"zarr_format": 2},
            "x/.zarray": ZARRAY,
            "x/.zattrs": json.loads(ZATTRS),
        },
        "record_size": record_size,
    }
    (root / ".zmetadata").write_text(json.dumps(meta))
    (root / "x").mkdir()
    for record in range(-(-4 // record_size)):
        cols: dict[str, list[Any]] = {"path": [], "offset": [], "size": [], "raw": []}
        for row in range(record_size):
            path, offset, size, raw = rows.get(record * record_size + row, (None, 0, 0, None))
            for name, value in zip(cols, (path, offset, size, raw)):
                cols[name].append(value)
        table = pa.table(
            {
                "path": pa.array(cols["path"], pa.string()).dictionary_encode(),
                "offset": pa.array(cols["offset"], pa.int64()),
                "size": pa.array(cols["size"], pa.int64()),
                "raw": pa.array(cols["raw"], pa.binary()),
            }
        )
        pq.write_table(table, root / "x" / f"refs.{record}.parq")


def test_parquet_rows_and_padding(tmp_path: Path) -> None:
    _target_files(tmp_path)
    refs = tmp_path / "refs.parq"
    refs.mkdir()
    _write_parquet_refs(
        refs,
        record_size=3,
        rows={
            0: (str(tmp_path / "data.bin"), 16, 8, None),
            1: (None, 0, 0, VALUES[2:4].tobytes()),  # inline
            # 2: padding row (null path and raw): fill
            3: (str(tmp_path / "whole.bin"), 0, 0, None),  # offset 0, size 0: whole file
        },
    )
    store = open_store(str(refs))  # recognised by its .zmetadata
    assert isinstance(store, ParquetReferenceStore)
    expected = VALUES.copy()
    expected[4:6] = -1
    expected[6:8] = VALUES[4:6]
    np.testing.assert_array_equal(_read_x(str(refs)), expected)
    assert store.get("x/2") is None and store.get("x/9") is None and store.get("x/a") is None
    assert store.list("x") == ["x/.zarray", "x/.zattrs", "x/0", "x/1", "x/3"]
    assert store.get_ranges([("x/0", 4, None), ("x/3", -4, None)]) == [
        VALUES[1:2].tobytes(),
        VALUES[5:6].tobytes(),
    ]
    ds = xr.open_dataset(f"reference+parquet://{refs}", engine="zaro", mask_and_scale=False)
    np.testing.assert_array_equal(ds["x"].values, expected)


def test_parquet_written_by_xzaro_has_padding(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    _target_files(tmp_path)
    doc = _v0_doc(str(tmp_path / "data.bin"), str(tmp_path / "whole.bin"))
    write_references(doc, tmp_path / "refs.parq", record_size=6)
    table = pq.read_table(tmp_path / "refs.parq" / "x" / "refs.0.parq")
    assert table.num_rows == 6  # padded to the record size, like kerchunk
    assert table.column("path").to_pylist()[3:] == [None, None, None]
    assert table.column("raw").to_pylist()[3:] == [None, None, None]
    np.testing.assert_array_equal(_read_x(str(tmp_path / "refs.parq")), _with_fill(VALUES, [3]))


def test_parquet_opens_without_reading_references(tmp_path: Path) -> None:
    """A million-chunk array opens (and reads one chunk) touching one record file."""
    from xzaro.stores import parquet_reference

    root = tmp_path / "big.parq"
    root.mkdir()
    zarray = dict(ZARRAY, shape=[2_000_000], chunks=[2])
    meta = {
        "metadata": {
            ".zgroup": {"zarr_format": 2},
            "x/.zarray": zarray,
            "x/.zattrs": {"_ARRAY_DIMENSIONS": ["i"]},  # not an index: xarray reads nothing
        },
        "record_size": 100_000,
    }
    (root / ".zmetadata").write_text(json.dumps(meta))
    (root / "x").mkdir()  # no record file exists: every chunk is missing
    ds = xr.open_dataset(str(root), engine="zaro", chunks={}, mask_and_scale=False)
    assert ds["x"].shape == (2_000_000,)
    url = ParquetReferenceStore(root).url
    assert not [k for k in parquet_reference._records if k[0] == url]
    assert (ds["x"][:4].values == -1).all()
    assert len([k for k in parquet_reference._records if k[0] == url]) == 1


# --- security and errors ---------------------------------------------------------------------


@pytest.fixture
def served(http_server: tuple[str, Path]) -> tuple[str, Path]:
    """``(base URL, directory)`` of a fresh sub-directory of the HTTP server."""
    base_url, directory = http_server
    sub = uuid.uuid4().hex
    (directory / sub).mkdir()
    return f"{base_url}/{sub}", directory / sub


def test_remote_reference_cannot_read_local_files(served: tuple[str, Path], tmp_path: Path) -> None:
    base, served_dir = served
    _target_files(tmp_path)
    _target_files(served_dir)
    doc = _v0_doc(str(tmp_path / "data.bin"), "whole.bin")  # x/2 relative: served too
    (served_dir / "refs.json").write_text(json.dumps(doc))
    store = open_store(f"{base}/refs.json")
    assert store.get("x/2") == VALUES[4:6].tobytes()  # a relative target stays on HTTP
    with pytest.raises(StoreError) as info:
        _read_x(f"{base}/refs.json")
    message = str(info.value)
    assert "x/0" in message and str(tmp_path / "data.bin") in message and "allowed" in message
    widened = _read_x(f"{base}/refs.json", storage_options={"allowed_protocols": ["file", "http"]})
    np.testing.assert_array_equal(widened, _with_fill(VALUES, [3]))
    with pytest.raises(StoreError, match="not allowed"):
        xr.open_dataset(f"reference+json://{base}/refs.json", engine="zaro").load()


def test_remote_protocol_for_paths_without_one(served: tuple[str, Path], tmp_path: Path) -> None:
    base, served_dir = served
    _target_files(served_dir)
    host_path = base.removeprefix("http://")
    doc = _v0_doc(f"{host_path}/data.bin", f"{host_path}/whole.bin")
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    options = {"remote_protocol": "http", "remote_options": {"block_size": 0}}
    values = _read_x(str(tmp_path / "refs.json"), storage_options=options)
    np.testing.assert_array_equal(values, _with_fill(VALUES, [3]))
    store = open_store(str(tmp_path / "refs.json"), options)
    assert isinstance(store, ReferenceStore) and store.remote_protocol == "http"


def test_allowed_protocols_narrow_local_references(tmp_path: Path) -> None:
    _target_files(tmp_path)
    (tmp_path / "refs.json").write_text(
        json.dumps(_v0_doc(str(tmp_path / "data.bin"), "whole.bin"))
    )
    store = ReferenceStore(tmp_path / "refs.json", allowed_protocols=["s3"])
    assert store.get("x/1") == VALUES[2:4].tobytes()  # inline data needs no target
    with pytest.raises(StoreError, match=r"allowed: \['s3'\]"):
        store.get("x/0")
    doc = {"a/0": ["memory://x/y", 0, 4]}
    (tmp_path / "mem.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="memory://x/y"):
        ReferenceStore(tmp_path / "mem.json").get("a/0")


def test_missing_target_raises_naming_it(tmp_path: Path, served: tuple[str, Path]) -> None:
    base, _ = served
    _target_files(tmp_path)
    doc = _v0_doc(str(tmp_path / "gone.bin"), "whole.bin")
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError) as info:
        _read_x(str(tmp_path / "refs.json"))
    assert str(tmp_path / "gone.bin") in str(info.value) and "x/0" in str(info.value)
    doc["x/0"] = [f"{base}/gone.bin", 0, 8]  # an HTTP 404
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"gone\.bin"):
        _read_x(str(tmp_path / "refs.json"))
    doc["x/0"] = [str(tmp_path / "data.bin"), 44, 8]  # past the end of the file
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="shorter"):
        _read_x(str(tmp_path / "refs.json"))


# --- coalescing and pickling -----------------------------------------------------------------


def test_many_small_chunks_cost_few_requests(
    served: tuple[str, Path], http_server_handle: Any, tmp_path: Path
) -> None:
    base, served_dir = served
    n = 2000
    values = np.arange(n * 4, dtype="<f4")
    blob = bytearray()
    refs: dict[str, Any] = {
        ".zgroup": '{"zarr_format": 2}',
        "v/.zarray": dict(ZARRAY, shape=[n * 4], chunks=[4], dtype="<f4", fill_value=None),
    }
    for i in range(n):
        refs[f"v/{i}"] = [f"{base}/data.bin", len(blob), 16]
        blob += values[4 * i : 4 * i + 4].tobytes() + b"gap!"  # small gaps between chunks
    (served_dir / "data.bin").write_bytes(bytes(blob))
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    array = xzaro.open_array(str(tmp_path / "refs.json"), "v")
    http_server_handle.reset_stats()
    np.testing.assert_array_equal(np.asarray(array[...]), values)
    assert http_server_handle.requests <= 2, http_server_handle.requests
    store = ReferenceStore(tmp_path / "refs.json", max_gap=0)  # gaps no longer bridged
    http_server_handle.reset_stats()
    assert len(store.get_many([f"v/{i}" for i in range(0, 40, 2)])) == 20
    assert http_server_handle.requests == 20


def test_pickle_is_small_and_reloads(tmp_path: Path) -> None:
    _target_files(tmp_path)
    doc = _v0_doc(str(tmp_path / "data.bin"), "whole.bin")
    doc["pad/.zarray"] = dict(ZARRAY, shape=[20_000], chunks=[1])
    doc.update({f"pad/{i}": "base64:" + "A" * 64 for i in range(20_000)})
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    store = ReferenceStore(tmp_path / "refs.json", remote_options={"anon": True})
    assert store.get("x/0") == VALUES[:2].tobytes()
    blob = pickle.dumps(store)
    assert len(blob) < 1000
    clone = pickle.loads(blob)
    assert clone.remote_options == {"anon": True}
    assert clone.get_many(["x/0", "x/2", "x/3"]) == [
        VALUES[:2].tobytes(),
        VALUES[4:6].tobytes(),
        None,
    ]
    refs = tmp_path / "refs.parq"
    write_references(doc, refs, record_size=1000)
    pstore = ParquetReferenceStore(refs)
    assert pstore.get("x/1") == VALUES[2:4].tobytes()
    pblob = pickle.dumps(pstore)
    assert len(pblob) < 1000
    assert pickle.loads(pblob).get("x/2") == VALUES[4:6].tobytes()
    array = xzaro.open_array(str(refs), "x")
    np.testing.assert_array_equal(
        np.asarray(pickle.loads(pickle.dumps(array))[...]), _with_fill(VALUES, [3])
    )


def test_open_store_recognises_reference_urls(tmp_path: Path, served: tuple[str, Path]) -> None:
    base, served_dir = served
    _target_files(tmp_path)
    doc = _v0_doc(str(tmp_path / "data.bin"), str(tmp_path / "whole.bin"))
    write_references(doc, tmp_path / "r.json")
    write_references(doc, tmp_path / "r.parq")
    os.rename(tmp_path / "r.parq", tmp_path / "plain_dir")
    _target_files(served_dir)
    write_references(_v0_doc("data.bin", "whole.bin"), served_dir / "r.parq")
    cases = {
        str(tmp_path / "r.json"): ReferenceStore,
        f"reference+json://{tmp_path / 'r.json'}": ReferenceStore,
        f"virtualizarr://{tmp_path / 'r.json'}": ReferenceStore,
        str(tmp_path / "plain_dir"): ParquetReferenceStore,
        f"reference+parquet://{tmp_path / 'plain_dir'}": ParquetReferenceStore,
        f"virtualizarr://{tmp_path / 'plain_dir'}": ParquetReferenceStore,
        f"virtualizarr://{base}/r.parq": ParquetReferenceStore,
    }
    for url, cls in cases.items():
        store = open_store(url)
        assert type(store) is cls, url
        if "plain_dir" in url or url.endswith("r.json"):
            np.testing.assert_array_equal(_read_x(store), _with_fill(VALUES, [3]))
    remote = open_store(f"virtualizarr://{base}/r.parq")
    assert remote.get("x/0") == VALUES[:2].tobytes()  # relative target next to the references
    zarr_dir = tmp_path / "store.zarr"
    zarr_dir.mkdir()
    (zarr_dir / ".zgroup").write_text('{"zarr_format": 2}')
    (zarr_dir / ".zmetadata").write_text('{"metadata": {}, "zarr_consolidated_format": 1}')
    assert type(open_store(str(zarr_dir))).__name__ == "FsspecStore"
