"""Reference stores under attack: hosts and credentials, template and ``gen`` bombs, unvalidated
Parquet records, compressed-document bombs, and a fuzz of reference values.

Every input that could hang the reader or allocate without bound runs through
:func:`capped.run_capped` (a child process with a memory and a time cap), so a regression fails
one test instead of hanging the run. Two HTTP servers on 127.0.0.1 that record the
``Authorization`` header of every request show which host receives which credentials.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from capped import GiB, run_capped
from reference_docs import DATA, VALUES, WHOLE, ZARRAY, read_x, target_files, with_fill
from servers import RangeRequestHandler, StaticRangeServer, start_http_server

from xzaro.errors import MetadataError, StoreError, ZaroError
from xzaro.stores import open_store
from xzaro.stores.references import ParquetReferenceStore, ReferenceStore
from xzaro.stores.references.documents import DEFAULT_MAX_REFERENCE_BYTES
from xzaro.stores.references.kerchunk import parse_references
from xzaro.stores.references.targets import TargetResolver
from xzaro.stores.references.templates import MAX_GEN_REFERENCES

SECRET = "Bearer s3cret-for-host-a"


def _cap() -> dict[str, Any]:
    """``run_capped`` keywords: 1 GiB of growth and 30 s."""
    return {"mem_bytes": 1 * GiB, "timeout": 30.0}


def _doc(x0: Any, x2: Any) -> dict[str, Any]:
    return {
        ".zgroup": '{"zarr_format": 2}',
        "x/.zarray": ZARRAY,
        "x/0": x0,
        "x/1": "base64:" + base64.b64encode(VALUES[2:4].tobytes()).decode(),
        "x/2": x2,
    }


def _assert_capped_error(outcome: Any, cls: type[ZaroError], *words: str) -> None:
    assert outcome.raised(cls.__name__), (outcome.kind, outcome.error_type, outcome.message)
    for word in words:
        assert word in outcome.message, (word, outcome.message)


# --- relative targets and credentials --------------------------------------------------------


class _RecordingHandler(RangeRequestHandler):
    """Serves like :class:`RangeRequestHandler` and records each request's path and
    ``Authorization`` header on the server (``server.seen``)."""

    def _serve(self, head: bool) -> None:
        self.server.seen.append((self.path.split("?")[0], self.headers.get("Authorization")))  # type: ignore[attr-defined]
        super()._serve(head)


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[list[StaticRangeServer]]:
    """Two recording HTTP servers (host A and host B: two ports of 127.0.0.1)."""
    servers = []
    try:
        for name in ("a", "b"):
            root = tmp_path / f"host-{name}"
            root.mkdir()
            server = start_http_server(root)
            server.seen = []  # type: ignore[attr-defined]
            server.RequestHandlerClass = partial(_RecordingHandler, directory=str(root))
            servers.append(server)
        yield servers
    finally:
        for server in servers:
            server.stop()


def _host(server: StaticRangeServer) -> str:
    return server.base_url.removeprefix("http://")


def test_relative_target_cannot_leave_the_reference_host(
    two_hosts: list[StaticRangeServer],
) -> None:
    a, b = two_hosts
    target_files(a.directory)
    target_files(b.directory)
    (a.directory / "sub").mkdir()
    escape = f"../../{_host(b)}/data.bin"  # joined naively: http://<host b>/data.bin
    (a.directory / "sub" / "refs.json").write_text(
        json.dumps(_doc([escape, 16, 8], ["../whole.bin"]))
    )
    store = ReferenceStore(f"{a.base_url}/sub/refs.json")
    assert store.get("x/2") == WHOLE  # a relative target that stays on host A
    with pytest.raises(StoreError) as info:
        store.get("x/0")
    assert info.value.key == "x/0" and escape in str(info.value)
    with pytest.raises(StoreError, match="x/0"):
        read_x(f"{a.base_url}/sub/refs.json")
    assert b.seen == []  # type: ignore[attr-defined]


def test_relative_target_cannot_leave_the_bucket() -> None:
    resolver = TargetResolver("s3://bucket-a/refs/r.json", {"key": "k", "secret": "s"})
    assert resolver.resolve("../other/x.bin").url == "s3://bucket-a/other/x.bin"
    for escape in ("../../bucket-b/x.bin", "../../../x.bin", "../.."):
        with pytest.raises(StoreError) as info:
            resolver.resolve(escape, key="v/0")
        assert info.value.key == "v/0" and escape in str(info.value)
    # the host of an HTTP reference file is never part of a relative path's reach
    http = TargetResolver("http://127.0.0.1:1/refs.json")
    assert http.resolve("a/b.bin").url == "http://127.0.0.1:1/a/b.bin"
    with pytest.raises(StoreError):
        http.resolve("../127.0.0.2:1/b.bin", key="k")


@pytest.mark.parametrize(
    "options",
    [
        {"headers": {"Authorization": SECRET}},
        {"client_kwargs": {"headers": {"Authorization": SECRET}}},
    ],
    ids=["headers", "client_kwargs"],
)
def test_reference_credentials_stay_on_their_host(
    two_hosts: list[StaticRangeServer], options: dict[str, Any]
) -> None:
    a, b = two_hosts
    target_files(a.directory)
    target_files(b.directory)
    doc = _doc(["data.bin", 16, 8], [f"{b.base_url}/whole.bin"])  # x/0 on A, x/2 on B
    (a.directory / "refs.json").write_text(json.dumps(doc))
    url = f"{a.base_url}/refs.json"
    np.testing.assert_array_equal(read_x(url, storage_options=options), with_fill(VALUES, [3]))
    assert {path for path, _ in a.seen} >= {"/refs.json", "/data.bin"}  # type: ignore[attr-defined]
    assert all(auth == SECRET for _, auth in a.seen)  # type: ignore[attr-defined]
    assert b.seen and all(auth is None for _, auth in b.seen)  # type: ignore[attr-defined]

    # options the caller gives for targets go to every target: the caller said so
    a.seen.clear()  # type: ignore[attr-defined]
    b.seen.clear()  # type: ignore[attr-defined]
    chosen = {"headers": {"Authorization": "Bearer for-targets"}}
    store = open_store(url, {**options, "remote_options": chosen})
    np.testing.assert_array_equal(read_x(store), with_fill(VALUES, [3]))
    assert b.seen and all(auth == "Bearer for-targets" for _, auth in b.seen)  # type: ignore[attr-defined]


def test_s3_credentials_stay_in_their_bucket(s3_server: dict[str, Any]) -> None:
    import fsspec

    options = s3_server["storage_options"]
    home = s3_server["make_bucket"]("attack-refs-home")
    other = s3_server["make_bucket"]("attack-refs-other")
    fs = fsspec.filesystem("s3", **options)
    run = uuid.uuid4().hex
    fs.pipe_file(f"{home}/{run}/data.bin", DATA)
    fs.pipe_file(f"{other}/{run}/whole.bin", WHOLE)
    doc = _doc(["data.bin", 16, 8], [f"s3://{other}/{run}/whole.bin"])
    doc["x/3"] = [f"../../{other}/{run}/whole.bin"]  # leaves the bucket: refused
    fs.pipe_file(f"{home}/{run}/refs.json", json.dumps(doc).encode())
    store = ReferenceStore(f"s3://{home}/{run}/refs.json", options)
    assert store.get("x/0") == VALUES[:2].tobytes()  # same bucket: the reference's credentials
    resolver = store.resolver
    assert resolver.options_for(resolver.resolve(f"s3://{home}/{run}/data.bin")) == options
    assert resolver.options_for(resolver.resolve(f"s3://{other}/{run}/whole.bin")) == {}
    with pytest.raises(StoreError, match="x/3"):
        store.get("x/3")
    explicit = ReferenceStore(f"s3://{home}/{run}/refs.json", options, remote_options=options)
    assert explicit.get("x/2") == WHOLE  # another bucket, with options the caller gave for it


# --- template and gen bombs ------------------------------------------------------------------


def _doubling_templates(depth: int, first: str) -> dict[str, str]:
    templates = {"t0": first}
    for i in range(1, depth + 1):
        templates[f"t{i}"] = f"{{{{t{i - 1}}}}}{{{{t{i - 1}}}}}"
    return templates


def _parse_count(doc: dict[str, Any]) -> int:
    return len(parse_references(doc, "bomb.json"))


def test_nested_templates_30_deep_are_refused() -> None:
    doc = {
        "version": 1,
        "templates": _doubling_templates(30, "ab"),
        "refs": {"a/0": ["{{t30}}", 0, 1]},
    }
    assert len(json.dumps(doc)) < 1000
    outcome = run_capped(_parse_count, doc, **_cap())
    _assert_capped_error(outcome, MetadataError, "templates", "bomb.json")


def test_doubling_templates_hit_the_output_limit() -> None:
    """Within the nesting limit, 15 doublings of a 64 KiB text would render 2 GiB."""
    doc = {
        "version": 1,
        "templates": _doubling_templates(15, "{{'a' * 65536}}"),
        "refs": {"a/0": ["{{t15}}", 0, 1]},
    }
    outcome = run_capped(_parse_count, doc, **_cap())
    _assert_capped_error(outcome, MetadataError, "templates")


def test_string_repetition_is_bounded_before_it_allocates() -> None:
    doc = {
        "version": 1,
        "templates": {"u": "x"},
        "refs": {"a/0": ["{{('a' * 65536) * 65536}}", 0, 1]},
    }
    outcome = run_capped(_parse_count, doc, **_cap())
    _assert_capped_error(outcome, MetadataError, "templates")


def test_templates_render_once_per_gen() -> None:
    """A 32 KiB template made of 2**14 renders, used by 50,000 gen entries, is rendered once,
    not once per entry."""
    doc = {
        "version": 1,
        "templates": _doubling_templates(15, "ab"),
        "gen": [{"key": "v/{{i}}", "url": "{{t14}}", "dimensions": {"i": {"stop": 50_000}}}],
    }
    start = time.monotonic()
    outcome = run_capped(_parse_count, doc, **_cap())
    assert outcome.kind == "ok" and outcome.value == 50_000, outcome
    assert time.monotonic() - start < 20


def test_gen_template_bomb_hits_the_output_limit() -> None:
    """Each entry would build a new 64 KiB URL: refused long before 200,000 of them exist."""
    doc = {
        "version": 1,
        "templates": _doubling_templates(14, "ab"),
        "gen": [{"key": "v/{{i}}", "url": "{{t14}}{{i}}", "dimensions": {"i": {"stop": 200_000}}}],
    }
    outcome = run_capped(_parse_count_with_ceiling, doc, 2**26, **_cap())
    _assert_capped_error(outcome, MetadataError, "templates")


def _parse_count_with_ceiling(doc: dict[str, Any], ceiling: int) -> int:
    return len(parse_references(doc, "bomb.json", max_bytes=ceiling))


def test_memoised_templates_follow_the_gen_scope(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "templates": {"d": "/data", "p": "{{d}}/f{{i}}.bin", "q": "{{p}}?{{j}}"},
        "gen": [
            {
                "key": "v/{{i}}.{{j}}",
                "url": "{{q}}",
                "offset": "{{i * 10 + j}}",
                "length": "4",
                "dimensions": {"i": [0, 1], "j": {"start": 5, "stop": 7}},
            }
        ],
    }
    refs = parse_references(doc)
    assert refs == {
        "v/0.5": ["/data/f0.bin?5", 5, 4],
        "v/0.6": ["/data/f0.bin?6", 6, 4],
        "v/1.5": ["/data/f1.bin?5", 15, 4],
        "v/1.6": ["/data/f1.bin?6", 16, 4],
    }


@pytest.mark.parametrize(
    "dimensions",
    [
        {"a": {"stop": 10**4}, "b": {"stop": 10**4}, "c": {"stop": 10**4}},
        {"a": {"stop": 10**12}},
        {"a": {"stop": 10**30}},
        {"a": {"start": 0, "stop": MAX_GEN_REFERENCES + 1}},
    ],
    ids=["1e12-product", "stop-1e12", "stop-1e30", "one-past-the-limit"],
)
def test_gen_bombs_are_refused_before_expanding(dimensions: dict[str, Any]) -> None:
    doc = {"version": 1, "gen": [{"key": "v/{{a}}", "url": "f", "dimensions": dimensions}]}
    start = time.monotonic()
    outcome = run_capped(_parse_count, doc, **_cap())
    _assert_capped_error(outcome, MetadataError, "gen[0]", str(MAX_GEN_REFERENCES))
    assert time.monotonic() - start < 10


def test_gen_limit_counts_every_entry() -> None:
    half = MAX_GEN_REFERENCES // 2 + 1
    gen = {"key": "v/{{a}}", "url": "f", "dimensions": {"a": {"stop": half}}}
    outcome = run_capped(_parse_count, {"version": 1, "gen": [gen, dict(gen)]}, **_cap())
    _assert_capped_error(outcome, MetadataError, "gen[1]")


@pytest.mark.parametrize(
    "dimension",
    [{"stop": 4, "step": 0}, {"stop": "4"}, {"stop": 4.5}, {"start": True, "stop": 3}, [[1], 2]],
)
def test_bad_gen_dimensions(dimension: Any) -> None:
    doc = {"version": 1, "gen": [{"key": "v/{{a}}", "url": "f", "dimensions": {"a": dimension}}]}
    with pytest.raises(MetadataError) as info:
        parse_references(doc, "r.json")
    assert info.value.field == "gen[0]" and info.value.url == "r.json"


@pytest.mark.parametrize(
    "expression",
    ["1+" * 4999 + "1", "(" * 2000 + "1" + ")" * 2000, "-" * 5000 + "1", "x" * 100_000],
    ids=["sum-of-5000", "parentheses-2000", "negations-5000", "long-name"],
)
def test_long_expressions_are_metadata_errors(expression: str) -> None:
    doc = {"version": 1, "templates": {"u": "x"}, "refs": {"a/0": ["{{" + expression + "}}"]}}
    outcome = run_capped(_parse_count, doc, **_cap())
    _assert_capped_error(outcome, MetadataError, "templates")


# --- Parquet records and null values ---------------------------------------------------------


def _parquet_dir(root: Path, tables: dict[int, Any], record_size: int = 2) -> Path:
    """A Parquet reference directory for ``x`` (4 chunks) with the given record tables."""
    import pyarrow.parquet as pq

    refs = root / "refs.parq"
    (refs / "x").mkdir(parents=True)
    meta = {"metadata": {".zgroup": {"zarr_format": 2}, "x/.zarray": ZARRAY}}
    (refs / ".zmetadata").write_text(json.dumps({**meta, "record_size": record_size}))
    for record, table in tables.items():
        pq.write_table(table, refs / "x" / f"refs.{record}.parq")
    return refs


def _record(**columns: Any) -> Any:
    import pyarrow as pa

    return pa.table(columns)


def _good_columns(path: str, n: int = 2, first: int = 0) -> dict[str, Any]:
    """Record columns for chunks ``first``, ``first + 1``, ... in ``path`` (laid out as
    data.bin)."""
    import pyarrow as pa

    return {
        "path": pa.array([path] * n, pa.string()),
        "offset": pa.array([16 + 8 * (first + i) for i in range(n)], pa.int64()),
        "size": pa.array([8] * n, pa.int64()),
        "raw": pa.array([None] * n, pa.binary()),
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "path"}, "url"),  # a column of another name: every chunk would read as fill
        ({"offset": ["a", "b"]}, "offset"),
        ({"offset": [-8, 24]}, "offset"),  # would read the file's last 8 bytes
        ({"size": [8, -1]}, "size"),
        ({"offset": [16.0, 24.0]}, "offset"),
        ({"path": [b"x", b"y"]}, "path"),
        ({"raw": [1, 2]}, "raw"),
        ({"path": ["", ""]}, "path"),
        ({"size": [None, 8]}, "size"),
        ({"offset": np.array([2**64 - 1, 24], dtype=np.uint64)}, "offset"),  # was ArrowInvalid
        ({"size": np.array([2**63, 8], dtype=np.uint64)}, "size"),
    ],
    ids=[
        "url-column",
        "string-offsets",
        "negative-offset",
        "negative-size",
        "float-offsets",
        "binary-paths",
        "integer-raw",
        "empty-paths",
        "null-size",
        "uint64-offset-past-int64",
        "uint64-size-of-2**63",
    ],
)
def test_parquet_records_are_validated(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    import pyarrow as pa

    target_files(tmp_path)
    columns = _good_columns(str(tmp_path / "data.bin"))
    for name, value in change.items():
        if isinstance(value, str):  # rename a column
            columns[name] = columns.pop(value)
        else:
            columns[name] = pa.array(value)
    second = _record(**_good_columns(str(tmp_path / "data.bin"), first=2))
    refs = _parquet_dir(tmp_path, {0: _record(**columns), 1: second})
    store = ParquetReferenceStore(refs)
    with pytest.raises(MetadataError) as info:
        read_x(store)
    error = info.value
    assert error.key == "x/refs.0.parq" and error.field == field, error
    assert error.url == store.url


@pytest.mark.parametrize(("record", "rows"), [(0, 1), (1, 0), (0, 3), (1, 3)])
def test_parquet_row_counts_are_validated(tmp_path: Path, record: int, rows: int) -> None:
    target_files(tmp_path)
    data = str(tmp_path / "data.bin")
    tables = {0: _record(**_good_columns(data)), 1: _record(**_good_columns(data, first=2))}
    tables[record] = _record(**_good_columns(data, rows))
    store = ParquetReferenceStore(_parquet_dir(tmp_path, tables))
    with pytest.raises(MetadataError) as info:
        read_x(store)
    assert info.value.key == f"x/refs.{record}.parq" and info.value.field == "record_size"


def test_parquet_last_record_may_be_short_or_padded(tmp_path: Path) -> None:
    import pyarrow as pa

    target_files(tmp_path)
    data = str(tmp_path / "data.bin")
    full = _good_columns(data, 3)
    short = {  # chunk 3 only: the last record of a 4-chunk grid with record_size 3
        "path": pa.array([data], pa.string()),
        "offset": pa.array([40], pa.int64()),
        "size": pa.array([8], pa.int64()),
        "raw": pa.array([None], pa.binary()),
    }
    store = ParquetReferenceStore(
        _parquet_dir(tmp_path, {0: _record(**full), 1: _record(**short)}, 3)
    )
    np.testing.assert_array_equal(read_x(store), VALUES)
    padded = {name: pa.concat_arrays([col, pa.nulls(2, col.type)]) for name, col in short.items()}
    padded["offset"] = pa.array([40, 0, 0], pa.int64())
    padded["size"] = pa.array([8, 0, 0], pa.int64())
    other = tmp_path / "padded"
    other.mkdir()
    store = ParquetReferenceStore(
        _parquet_dir(other, {0: _record(**full), 1: _record(**padded)}, 3)
    )
    np.testing.assert_array_equal(read_x(store), VALUES)


def test_parquet_missing_chunks_match_fsspec(tmp_path: Path) -> None:
    """Records written by fsspec's LazyReferenceMapper: its padding rows and deleted chunks
    (null path, null raw; the mapper itself hands them back as ``[nan]``) read as missing,
    every other row as the mapper says."""
    fsspec = pytest.importorskip("fsspec")
    reference = pytest.importorskip("fsspec.implementations.reference")
    pytest.importorskip("pandas")
    target_files(tmp_path)
    data = str(tmp_path / "data.bin")
    root = str(tmp_path / "lazy.parq")
    local = fsspec.filesystem("file")
    mapper = reference.LazyReferenceMapper.create(
        root=root, fs=local, record_size=3, engine="pyarrow"
    )
    mapper[".zgroup"] = json.dumps({"zarr_format": 2})
    mapper["x/.zarray"] = json.dumps(ZARRAY)
    mapper["x/0"] = [data, 16, 8]
    mapper["x/1"] = VALUES[2:4].tobytes()
    mapper["x/3"] = [data, 40, 8]
    mapper.flush()
    theirs = reference.LazyReferenceMapper(root, fs=local, engine="pyarrow")
    store = ParquetReferenceStore(root)
    for key in ("x/0", "x/1", "x/2", "x/3"):
        ref = theirs[key]
        if isinstance(ref, bytes):
            expected: bytes | None = ref
        elif isinstance(ref[0], str):
            expected = DATA[int(ref[1]) : int(ref[1]) + int(ref[2])]
        else:  # [nan]: a row with neither path nor raw
            expected = None
        assert store.get(key) == expected, key
    np.testing.assert_array_equal(read_x(store), with_fill(VALUES, [2]))


def test_json_null_reference_is_not_an_absence(tmp_path: Path) -> None:
    target_files(tmp_path)
    doc = _doc(None, [str(tmp_path / "whole.bin")])
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    store = ReferenceStore(tmp_path / "refs.json")
    assert store.get("x/3") is None  # no key at all: missing, fill
    with pytest.raises(MetadataError) as info:
        store.get("x/0")
    assert info.value.key == "x/0" and info.value.url == store.url
    with pytest.raises(MetadataError):
        read_x(store)


# --- compressed reference documents ----------------------------------------------------------


def _zstd_bomb(size: int) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    doc = b'{".zgroup": "{\\"zarr_format\\": 2}"' + b" " * size + b"}"
    return zstandard.ZstdCompressor(level=3).compress(doc)


def _get_zgroup(cls: type, url: str, ceiling: int) -> Any:
    return cls(url, max_reference_bytes=ceiling).get(".zgroup")


def test_zstd_json_bomb_is_bounded(tmp_path: Path) -> None:
    blob = _zstd_bomb(50 * 2**20)
    assert len(blob) < 2**20
    (tmp_path / "refs.json.zst").write_bytes(blob)
    url = str(tmp_path / "refs.json.zst")
    outcome = run_capped(_get_zgroup, ReferenceStore, url, 2**20, **_cap())
    _assert_capped_error(outcome, MetadataError, "max_reference_bytes", "refs.json.zst")
    # with a ceiling above the document, it reads
    assert (
        run_capped(_get_zgroup, ReferenceStore, url, 64 * 2**20, **_cap()).value
        == b'{"zarr_format": 2}'
    )


def test_plain_json_over_the_ceiling_is_refused(tmp_path: Path) -> None:
    (tmp_path / "refs.json").write_text(
        json.dumps({".zgroup": '{"zarr_format": 2}', "pad": "x" * 5000})
    )
    store = ReferenceStore(tmp_path / "refs.json", max_reference_bytes=4096)
    with pytest.raises(MetadataError, match="max_reference_bytes"):
        store.get(".zgroup")
    assert ReferenceStore(tmp_path / "refs.json").get(".zgroup") == b'{"zarr_format": 2}'
    with pytest.raises(MetadataError, match="max_reference_bytes"):
        xr.open_dataset(
            tmp_path / "refs.json",
            engine="zaro",
            storage_options={"max_reference_bytes": 4096},
        )


def test_parquet_zmetadata_zstd_bomb_is_bounded(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    refs = tmp_path / "refs.parq"
    (refs / "x").mkdir(parents=True)
    meta = json.dumps({"metadata": {".zgroup": {"zarr_format": 2}}, "record_size": 2})
    doc = meta[:-1].encode() + b" " * (50 * 2**20) + b"}"
    (refs / ".zmetadata").write_bytes(zstandard.ZstdCompressor(level=3).compress(doc))
    outcome = run_capped(_get_zgroup, ParquetReferenceStore, str(refs), 2**20, **_cap())
    _assert_capped_error(outcome, MetadataError, "max_reference_bytes", ".zmetadata")


def test_parquet_record_over_the_ceiling_is_refused(tmp_path: Path) -> None:
    target_files(tmp_path)
    import pyarrow as pa

    columns = _good_columns(str(tmp_path / "data.bin"))
    columns["path"] = pa.array(["p" * 300_000, str(tmp_path / "data.bin")], pa.string())
    refs = _parquet_dir(tmp_path, {0: _record(**columns)})
    store = ParquetReferenceStore(refs, max_reference_bytes=100_000)
    with pytest.raises(MetadataError, match="max_reference_bytes") as info:
        store.get("x/1")
    assert info.value.key == "x/refs.0.parq"


def test_ceiling_survives_pickling(tmp_path: Path) -> None:
    import pickle

    (tmp_path / "refs.json").write_text("{}")
    store = ReferenceStore(tmp_path / "refs.json", max_reference_bytes=1234)
    assert pickle.loads(pickle.dumps(store)).max_reference_bytes == 1234
    assert ReferenceStore(tmp_path / "refs.json").max_reference_bytes == DEFAULT_MAX_REFERENCE_BYTES
    with pytest.raises(ValueError):
        ReferenceStore(tmp_path / "refs.json", max_reference_bytes=0)


# --- a fuzz of reference values --------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_NUMBERS = st.one_of(
    st.integers(min_value=-64, max_value=64),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.text(max_size=3),
)
_URLS = (
    st.sampled_from(
        ["data.bin", "whole.bin", "../data.bin", "", ".", "nothing.bin", "memory://a/b", "{{x}}"]
    )
    | _SCALARS
)
_VALUES = st.one_of(
    _JSON,
    st.tuples(_URLS).map(list),
    st.tuples(_URLS, _NUMBERS, _NUMBERS).map(list),
    st.lists(_URLS | _NUMBERS, min_size=2, max_size=5),
    st.binary(max_size=24).map(lambda b: "base64:" + base64.b64encode(b).decode()),
    st.text(max_size=24).map(lambda t: "base64:" + t),
)


def _oracle(value: Any, root: Path) -> bytes | None:
    """What a correct read of ``value`` (the reference of ``x/0``) returns, or ``None`` when
    the value is not one that must read."""
    if isinstance(value, str):
        if value.startswith("base64:"):
            try:
                return base64.b64decode(value[7:], validate=True)
            except ValueError:
                return None
        return value.encode()
    if isinstance(value, dict):
        return json.dumps(value).encode()
    if not (isinstance(value, list) and value and value[0] in ("data.bin", "whole.bin")):
        return None
    data = (root / value[0]).read_bytes()
    if len(value) == 1:
        return data
    if len(value) == 3 and all(type(v) is int and v >= 0 for v in value[1:]):
        part = data[value[1] : value[1] + value[2]]
        return part if len(part) == value[2] else None
    return None


@hypothesis.settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
@hypothesis.given(value=_VALUES)
def test_fuzzed_reference_values_read_or_raise_xzaro_errors(value: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target_files(root)
        doc = _doc(value, ["whole.bin"])
        (root / "refs.json").write_text(json.dumps(doc))
        store = ReferenceStore(root / "refs.json")
        expected = _oracle(value, root)
        try:
            got = store.get("x/0")
        except ZaroError as exc:
            assert exc.key == "x/0" and exc.url == store.url, exc
        else:
            assert expected is not None and got == expected, (value, got)
        try:
            store.get_ranges([("x/0", 1, 3), ("x/0", -2, None), ("x/0", 100, None)])
            read_x(store)
        except ZaroError:
            pass


_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_ROW = st.tuples(
    st.sampled_from([None, "", "data.bin", "whole.bin", "nothing.bin", "../data.bin"]),
    st.none() | st.integers(min_value=-8, max_value=64) | _INT64,
    st.none() | st.integers(min_value=-8, max_value=64) | _INT64,
    st.none() | st.binary(max_size=8),
)


@hypothesis.settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
@hypothesis.given(row=_ROW)
def test_fuzzed_parquet_rows_read_or_raise_xzaro_errors(
    row: tuple[str | None, int | None, int | None, bytes | None],
) -> None:
    import pyarrow as pa

    path, offset, size, raw = row
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target_files(root)
        full = None if path is None else (path if not path else str(root / path))
        columns = {
            "path": pa.array([full, None], pa.string()),
            "offset": pa.array([offset, 0], pa.int64()),
            "size": pa.array([size, 0], pa.int64()),
            "raw": pa.array([raw, None], pa.binary()),
        }
        store = ParquetReferenceStore(_parquet_dir(root, {0: _record(**columns)}))
        # a negative offset or size is refused wherever it is; the rest only in a row that
        # points into a target (neither path nor raw: a missing chunk)
        record_ok = all(v is None or v >= 0 for v in (offset, size))
        expected: bytes | None = None
        valid = record_ok
        if raw is not None:
            expected = raw
        elif full is not None:
            record_ok = record_ok and bool(full) and offset is not None and size is not None
            valid = record_ok and path in ("data.bin", "whole.bin")
            if valid:
                data = (root / str(path)).read_bytes()
                if offset == size == 0:
                    expected = data
                else:
                    expected = data[offset : offset + size]  # type: ignore[operator]
                    valid = len(expected) == size
        try:
            got = store.get("x/0")
        except MetadataError as exc:
            assert not record_ok and exc.key == "x/refs.0.parq", (row, exc)
        except ZaroError as exc:
            assert record_ok and not valid and exc.key == "x/0", (row, exc)
        else:
            assert valid and got == expected, (row, got)
        if record_ok:
            assert store.get("x/1") is None  # the padding row: a missing chunk


# --- chained target URLs and the allow-list --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "links", "protocols"),
    [
        ("simplecache::file:///x", ["simplecache", "file:///x"], ["simplecache", "file"]),
        ("reference::file:///x", ["reference", "file:///x"], ["reference", "file"]),
        ("simplecache::s3://b/k", ["simplecache", "s3://b/k"], ["simplecache", "s3"]),
        ("http://[::1]:8000/x", ["http://[::1]:8000/x"], ["http"]),  # an IPv6 host, not a chain
        ("simplecache::http://[::1]/x", ["simplecache", "http://[::1]/x"], ["simplecache", "http"]),
        ("/data/file.nc", ["/data/file.nc"], ["file"]),
    ],
)
def test_chained_urls_split_into_their_links(url: str, links: list, protocols: list) -> None:
    from xzaro.stores.references.allowlist import chain_links, url_protocols

    assert chain_links(url) == links
    assert url_protocols(url) == protocols


@pytest.mark.parametrize("wrapper", ["simplecache", "reference"])
def test_every_link_of_a_chained_target_must_be_allowed(tmp_path: Path, wrapper: str) -> None:
    # a wrapper counted as "file" slipped past allowed_protocols=["file"]
    target_files(tmp_path)
    doc = {".zgroup": '{"zarr_format": 2}', "x/.zarray": ZARRAY}
    doc["x/0"] = [f"{wrapper}::file://{tmp_path / 'data.bin'}", 16, 8]
    path = tmp_path / "refs.json"
    path.write_text(json.dumps({"version": 1, "refs": doc}))
    store = ReferenceStore(str(path), allowed_protocols=["file"])
    with pytest.raises(StoreError, match="not allowed"):
        store.get("x/0")
    resolver = TargetResolver("http://127.0.0.1:9/refs.json", allowed_protocols=["http", wrapper])
    assert resolver.resolve(f"{wrapper}::http://127.0.0.1:9/b.bin", "x/0").allowed


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("allowed_protocols", [5], TypeError),
        ("allowed_protocols", 5, TypeError),
        ("allowed_protocols", "file", TypeError),  # would be read as the letters f, i, l, e
        ("remote_protocol", 5, TypeError),
        ("remote_options", "x", TypeError),
        ("max_gap", "x", ValueError),
        ("max_gap", -1, ValueError),
        ("max_concurrency", 0, ValueError),
    ],
)
def test_reference_options_of_the_wrong_kind_are_refused(
    tmp_path: Path, option: str, value: Any, error: type
) -> None:
    path = tmp_path / "refs.json"
    path.write_text(json.dumps({"version": 1, "refs": {".zgroup": '{"zarr_format": 2}'}}))
    with pytest.raises(error, match=option):
        ReferenceStore(str(path), **{option: value})


def test_references_that_do_not_fit_in_memory_are_an_xzaro_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xzaro.errors import OutOfMemoryError

    path = tmp_path / "refs.json"
    path.write_text(json.dumps({"version": 1, "refs": {".zgroup": '{"zarr_format": 2}'}}))

    def exhausted(self: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(ReferenceStore, "_load", exhausted)
    with pytest.raises(OutOfMemoryError, match="do not fit in memory") as info:
        ReferenceStore(str(path)).get(".zgroup")
    assert info.value.url == str(path)


def test_dimensions_two_arrays_size_differently_are_a_metadata_error(tmp_path: Path) -> None:
    # a damaged shape: xarray's own refusal was a bare ValueError
    doc = {".zgroup": '{"zarr_format": 2}'}
    for name, n in (("a", 4), ("v", 8)):
        doc[f"{name}/.zarray"] = {**ZARRAY, "shape": [n], "chunks": [n]}
        doc[f"{name}/.zattrs"] = json.dumps({"_ARRAY_DIMENSIONS": ["n"]})
    path = tmp_path / "refs.json"
    path.write_text(json.dumps({"version": 1, "refs": doc}))
    with pytest.raises(MetadataError, match="dimension 'n' has size") as info:
        xr.open_dataset(path, engine="zaro")
    assert info.value.field == "shape" and info.value.url is not None


class _RangeWithoutContentRange(RangeRequestHandler):
    """Answers a range GET with 206 and no Content-Range; its HEAD says the file is small."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()

    def do_GET(self) -> None:
        first, last = self.headers["Range"].removeprefix("bytes=").split("-")
        body = DATA[int(first) : int(last) + 1]
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_malformed_range_answer_is_named_not_taken_for_the_end(tmp_path: Path) -> None:
    # the error said the target was "shorter than the reference says": the HEAD's small size
    # made the malformed answer look like a range past the end
    from http.server import ThreadingHTTPServer
    from threading import Thread

    server = ThreadingHTTPServer(("127.0.0.1", 0), _RangeWithoutContentRange)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/data.bin"
        doc = {".zgroup": '{"zarr_format": 2}', "x/.zarray": ZARRAY, "x/0": [url, 16, 8]}
        path = tmp_path / "refs.json"
        path.write_text(json.dumps({"version": 1, "refs": doc}))
        with pytest.raises(StoreError, match="no Content-Range") as info:
            ReferenceStore(str(path)).get("x/0")
        assert info.value.key == "x/0"
    finally:
        server.shutdown()
        server.server_close()
