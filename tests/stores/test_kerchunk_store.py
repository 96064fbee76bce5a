"""The Kerchunk JSON reference store: every value form, templates and ``gen``, range reads,
the allow-list and errors, coalesced requests, pickling, and what ``open_store`` recognises.

Hand-written documents (:mod:`reference_docs`) point into local files and into files served by
a local HTTP server.
"""

from __future__ import annotations

import json
import os
import pickle
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from reference_docs import VALUES, ZARRAY, ZATTRS, read_x, target_files, v0_doc, with_fill

import xzaro
from xzaro.errors import MetadataError, StoreError
from xzaro.stores import open_store
from xzaro.stores.references import ParquetReferenceStore, ReferenceStore
from xzaro.stores.references.kerchunk import parse_references
from xzaro.virtual import write_references


def test_v0_every_value_form(tmp_path: Path) -> None:
    target_files(tmp_path)
    doc = v0_doc(str(tmp_path / "data.bin"), "whole.bin")  # relative to the reference file
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    np.testing.assert_array_equal(read_x(str(tmp_path / "refs.json")), with_fill(VALUES, [3]))
    store = open_store(str(tmp_path / "refs.json"))
    assert isinstance(store, ReferenceStore)
    assert store.get("x/3") is None and not store.exists("x/3") and store.exists("x/0")
    assert store.get("x/.zattrs") == ZATTRS.encode()
    assert json.loads(store.get("x/.zarray") or b"") == ZARRAY
    assert store.list("x") == ["x/.zarray", "x/.zattrs", "x/0", "x/1", "x/2"]
    assert store.list_dir("") == [".zgroup", "x"]
    ds = xr.open_dataset(str(tmp_path / "refs.json"), engine="zaro", mask_and_scale=False)
    np.testing.assert_array_equal(ds["x"].values, with_fill(VALUES, [3]))


def test_get_ranges_within_references(tmp_path: Path) -> None:
    target_files(tmp_path)
    (tmp_path / "refs.json").write_text(json.dumps(v0_doc(str(tmp_path / "data.bin"), "whole.bin")))
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
    target_files(tmp_path)
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
    np.testing.assert_array_equal(read_x(url), expect_x)
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
    target_files(tmp_path)
    write_references(v0_doc(str(tmp_path / "data.bin"), "whole.bin"), tmp_path / "refs.json.zst")
    assert (tmp_path / "refs.json.zst").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    np.testing.assert_array_equal(read_x(str(tmp_path / "refs.json.zst")), with_fill(VALUES, [3]))


@pytest.fixture
def served(http_server: tuple[str, Path]) -> tuple[str, Path]:
    """``(base URL, directory)`` of a fresh sub-directory of the HTTP server."""
    base_url, directory = http_server
    sub = uuid.uuid4().hex
    (directory / sub).mkdir()
    return f"{base_url}/{sub}", directory / sub


def test_remote_reference_cannot_read_local_files(served: tuple[str, Path], tmp_path: Path) -> None:
    base, served_dir = served
    target_files(tmp_path)
    target_files(served_dir)
    doc = v0_doc(str(tmp_path / "data.bin"), "whole.bin")  # x/2 relative: served too
    (served_dir / "refs.json").write_text(json.dumps(doc))
    store = open_store(f"{base}/refs.json")
    assert store.get("x/2") == VALUES[4:6].tobytes()  # a relative target stays on HTTP
    with pytest.raises(StoreError) as info:
        read_x(f"{base}/refs.json")
    message = str(info.value)
    assert "x/0" in message and str(tmp_path / "data.bin") in message and "allowed" in message
    widened = read_x(f"{base}/refs.json", storage_options={"allowed_protocols": ["file", "http"]})
    np.testing.assert_array_equal(widened, with_fill(VALUES, [3]))
    with pytest.raises(StoreError, match="not allowed"):
        xr.open_dataset(f"reference+json://{base}/refs.json", engine="zaro").load()


def test_remote_protocol_for_paths_without_one(served: tuple[str, Path], tmp_path: Path) -> None:
    base, served_dir = served
    target_files(served_dir)
    host_path = base.removeprefix("http://")
    doc = v0_doc(f"{host_path}/data.bin", f"{host_path}/whole.bin")
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    options = {"remote_protocol": "http", "remote_options": {"block_size": 0}}
    values = read_x(str(tmp_path / "refs.json"), storage_options=options)
    np.testing.assert_array_equal(values, with_fill(VALUES, [3]))
    store = open_store(str(tmp_path / "refs.json"), options)
    assert isinstance(store, ReferenceStore) and store.remote_protocol == "http"


def test_allowed_protocols_narrow_local_references(tmp_path: Path) -> None:
    target_files(tmp_path)
    (tmp_path / "refs.json").write_text(json.dumps(v0_doc(str(tmp_path / "data.bin"), "whole.bin")))
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
    target_files(tmp_path)
    doc = v0_doc(str(tmp_path / "gone.bin"), "whole.bin")
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError) as info:
        read_x(str(tmp_path / "refs.json"))
    assert str(tmp_path / "gone.bin") in str(info.value) and "x/0" in str(info.value)
    doc["x/0"] = [f"{base}/gone.bin", 0, 8]  # an HTTP 404
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"gone\.bin"):
        read_x(str(tmp_path / "refs.json"))
    doc["x/0"] = [str(tmp_path / "data.bin"), 44, 8]  # past the end of the file
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="shorter"):
        read_x(str(tmp_path / "refs.json"))


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
    target_files(tmp_path)
    doc = v0_doc(str(tmp_path / "data.bin"), "whole.bin")
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
        np.asarray(pickle.loads(pickle.dumps(array))[...]), with_fill(VALUES, [3])
    )


def test_open_store_recognises_reference_urls(tmp_path: Path, served: tuple[str, Path]) -> None:
    base, served_dir = served
    target_files(tmp_path)
    doc = v0_doc(str(tmp_path / "data.bin"), str(tmp_path / "whole.bin"))
    write_references(doc, tmp_path / "r.json")
    write_references(doc, tmp_path / "r.parq")
    os.rename(tmp_path / "r.parq", tmp_path / "plain_dir")
    target_files(served_dir)
    write_references(v0_doc("data.bin", "whole.bin"), served_dir / "r.parq")
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
            np.testing.assert_array_equal(read_x(store), with_fill(VALUES, [3]))
    remote = open_store(f"virtualizarr://{base}/r.parq")
    assert remote.get("x/0") == VALUES[:2].tobytes()  # relative target next to the references
    zarr_dir = tmp_path / "store.zarr"
    zarr_dir.mkdir()
    (zarr_dir / ".zgroup").write_text('{"zarr_format": 2}')
    (zarr_dir / ".zmetadata").write_text('{"metadata": {}, "zarr_consolidated_format": 1}')
    assert type(open_store(str(zarr_dir))).__name__ == "LocalStore"
