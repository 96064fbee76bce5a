"""Every xarray zarr test of ``test_xarray_suite.py`` that does not pass through xzaro, and why.

NOT_APPLICABLE: the test's subject is zarr-python itself (its store objects, ``zarr.open_group``
internals, instrumented call counts, xarray's ``ZarrStore``...). Skipped.

BY_DESIGN: the test asserts a behaviour of xarray's zarr engine that xzaro replaces on purpose:
``to_zarr`` refusing a write that xzaro performs safely (issue 10: "keep what is better than
to_zarr"; tested in ``writers/test_write_contract.py`` and ``writers/test_write_dask.py``), or
the engine ignoring an argument the caller gave. Skipped, with the reason.

KNOWN_FAILURE: xzaro's bug, to be fixed under issue 10. ``xfail(strict=True)``: once fixed, the
test XPASSes, which fails the run until its entry is removed here.

An entry names ``Class::test`` (or a module-level test), optionally restricted to some Zarr
formats and to some parameter values (``params``: a subset of the test's ``callspec.params``).
The first matching entry wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

Category = Literal["NOT_APPLICABLE", "BY_DESIGN", "KNOWN_FAILURE"]


@dataclass(frozen=True)
class Cause:
    """Why some tests fail: a title, the error xzaro gives, a minimal repro when it is silent."""

    title: str
    error: str
    repro: str | None = None


@dataclass(frozen=True, eq=False)
class Expectation:
    """One test (or some of its parametrizations) that does not pass through xzaro."""

    test: str
    category: Category
    reason: str
    cause: Cause | None = None
    formats: frozenset[int] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def matches(self, test: str, zarr_format: int | None, params: Mapping[str, Any]) -> bool:
        """Whether this entry covers the test ``test`` run with ``params``."""
        if test != self.test:
            return False
        if self.formats is not None and zarr_format not in self.formats:
            return False
        return all(k in params and params[k] == v for k, v in self.params.items())

    def describe_scope(self) -> str:
        """The formats and parameters this entry is restricted to, for messages."""
        parts = []
        if self.formats is not None:
            parts.append("zarr_format=" + "/".join(str(f) for f in sorted(self.formats)))
        parts.extend(f"{k}={v!r}" for k, v in self.params.items())
        return f"[{', '.join(parts)}]" if parts else ""


def not_applicable(
    test: str, reason: str, *, formats: tuple[int, ...] | None = None, **params: Any
) -> Expectation:
    """A test whose subject is zarr-python, not the data xzaro writes or reads."""
    return Expectation(
        test, "NOT_APPLICABLE", reason, None, frozenset(formats) if formats else None, params
    )


def by_design(test: str, reason: str, *, formats: tuple[int, ...] | None = None) -> Expectation:
    """A test of a behaviour of xarray's zarr engine that xzaro replaces on purpose."""
    return Expectation(test, "BY_DESIGN", reason, None, frozenset(formats) if formats else None)


def known(
    test: str,
    cause: Cause,
    *,
    formats: tuple[int, ...] | None = None,
    note: str = "",
    **params: Any,
) -> Expectation:
    """A test that fails because of an xzaro bug; ``note``: what this test adds to the cause."""
    reason = f"{cause.title}: {cause.error}" + (f" ({note})" if note else "")
    return Expectation(
        test,
        "KNOWN_FAILURE",
        reason,
        cause,
        frozenset(formats) if formats else None,
        params,
        note,
    )


def lookup(test: str, zarr_format: int | None, params: Mapping[str, Any]) -> Expectation | None:
    """The first entry that covers ``test`` with these parameters, if any."""
    return next((e for e in EXPECTATIONS if e.matches(test, zarr_format, params)), None)


def as_mark(expectation: Expectation) -> pytest.MarkDecorator:
    """skip for NOT_APPLICABLE and BY_DESIGN, strict xfail for KNOWN_FAILURE."""
    if expectation.category == "NOT_APPLICABLE":
        return pytest.mark.skip(reason=f"not applicable: {expectation.reason}")
    if expectation.category == "BY_DESIGN":
        return pytest.mark.skip(reason=f"differs by design: {expectation.reason}")
    return pytest.mark.xfail(strict=True, reason=f"known failure: {expectation.reason}")


# --- not applicable: the subject is zarr-python (or nothing xzaro does) -----------------------

DIR = "TestZarrDirectoryStore"
REGION = "TestZarrRegionAuto"
DA = "TestDataArrayToZarr"
TREE = "TestZarrDatatreeIO"

_ZARRSTORE = (
    "writes through xarray's zarr-python ZarrStore (create_store + dump_to_store) and inspects "
    "it; xzaro is not involved"
)
_DICT_STORE = "the store is a dict (a zarr-python in-memory store); only paths are translated"
_CODEC_OBJECTS = (
    "compares encoding['compressors'] read back with zarr.codecs objects; xzaro never imports "
    "zarr-python and reports V3 codecs as their JSON metadata"
)

NOT_APPLICABLE_TESTS: list[Expectation] = [
    not_applicable(f"{DIR}::test_write_store", _ZARRSTORE),
    not_applicable(f"{DIR}::test_hidden_zarr_keys", _ZARRSTORE),
    not_applicable(f"{DIR}::test_dimension_names", _ZARRSTORE),
    not_applicable(
        f"{DIR}::test_cache_members", "xarray's ZarrStore(cache_members=...) over zarr-python"
    ),
    not_applicable(
        f"{DIR}::test_encoding_kwarg_fixed_width_string",
        "a no-op in xarray's ZarrBase (passes without writing anything)",
    ),
    not_applicable(
        f"{DIR}::test_shard_encoding",
        "its body only runs for zarr_format=3 (passes without writing anything)",
        formats=(2,),
    ),
    not_applicable(f"{DIR}::test_compressor_encoding", _CODEC_OBJECTS, formats=(3,)),
    not_applicable(
        "TestZarrWriteEmpty::test_avoid_excess_metadata_calls",
        "counts zarr.AsyncGroup.getitem calls",
    ),
    not_applicable(
        f"{REGION}::test_zarr_region_index_write",
        "instruments xarray's ZarrStore.set_variables, which xzaro never calls (it would pass "
        "without checking anything)",
    ),
    *(
        not_applicable(f"{DA}::{test}", _DICT_STORE, tmp_store="Dict")
        for test in (
            "test_dataarray_to_zarr_no_name",
            "test_dataarray_to_zarr_with_name",
            "test_dataarray_to_zarr_coord_name_clash",
            "test_open_dataarray_options",
            "test_dataarray_to_zarr_compute_false",
            "test_dataarray_to_zarr_align_chunks_true",
        )
    ),
    not_applicable(f"{TREE}::test_to_zarr_zip_store", "writes to a zarr.storage.ZipStore"),
    not_applicable(f"{TREE}::test_zarr_encoding", _CODEC_OBJECTS, formats=(3,)),
]

# --- differs by design: to_zarr refuses, xzaro writes safely -------------------------------------

_ALIGNED_BY_XZARO = (
    "expects to_zarr's ValueError for Dask blocks that share a stored object or a region/append "
    "that starts inside one (safe_chunks); xzaro rechunks such blocks to whole stored objects "
    "(align_chunks=True, its default) and has the one task that owns an edge object read, merge "
    "and rewrite it, so no two tasks write one object; align_chunks=False refuses them as "
    "to_zarr does (test_write_contract.py, test_write_dask.py check the values zarr-python reads)"
)

# --- known failures: xzaro's bugs, issue 10 ---------------------------------------------------

_FILL_VALUE_AS_MASK_HONOURED = (
    "expects attrs['_FillValue'] = the V2 fill_value after open_dataset(..., "
    "use_zarr_fill_value_as_mask=False): xarray's zarr entry point drops that keyword (it passes "
    "None on), so V2 fill values always become _FillValue there; xzaro does what the caller asked "
    "and leaves the fill value out of the attributes (test_xarray_engine.py checks both settings)"
)
BY_DESIGN_TESTS: list[Expectation] = (
    [
        by_design(f"{REGION}::{test}", _ALIGNED_BY_XZARO)
        for test in (
            "test_zarr_region_chunk_partial_offset",
            "test_zarr_region_chunk_partial",
            "test_zarr_append_chunk_partial",
            "test_zarr_safe_chunk_append_dim",
            "test_zarr_safe_chunk_region",
        )
    ]
    + [
        by_design(f"{DIR}::{test}", _ALIGNED_BY_XZARO)
        for test in ("test_chunk_encoding_with_dask", "test_shard_encoding_with_dask")
    ]
    + [
        by_design(
            f"{DIR}::test_zarr_fill_value_setting", _FILL_VALUE_AS_MASK_HONOURED, formats=(2,)
        ),
    ]
)

KNOWN_FAILURES: list[Expectation] = []

EXPECTATIONS: list[Expectation] = [*NOT_APPLICABLE_TESTS, *BY_DESIGN_TESTS, *KNOWN_FAILURES]
