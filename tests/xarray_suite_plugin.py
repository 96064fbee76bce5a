"""pytest plugin for ``test_xarray_suite.py`` (loaded from ``conftest.py``; no effect elsewhere).

* resolves what xarray's own test suite gets from its repository-level ``conftest.py``: the
  ``skip_if_param`` mark and ``pytest.mark.asyncio`` tests (run with :func:`asyncio.run` when
  pytest-asyncio is not installed);
* applies :mod:`xarray_suite_expectations`: skip for NOT_APPLICABLE, ``xfail(strict=True)`` for
  KNOWN_FAILURE;
* ``--xarray-suite-report`` prints passed / known failure / not applicable counts per Zarr
  format (datasets and datatrees apart) and the known failures grouped by cause.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

SUITE_MODULE = "test_xarray_suite"
REPORT_OPTION = "--xarray-suite-report"

# outcome labels of the report, in the order they are printed
PASSED = "passed"
KNOWN = "known failure"
NOT_APPLICABLE = "not applicable"
BY_DESIGN = "differs by design"
UPSTREAM_SKIP = "skipped by xarray"
UPSTREAM_XFAIL = "xfail by xarray"
FAILED = "FAILED"
XPASS = "XPASS(strict)"
OUTCOMES = (
    PASSED,
    KNOWN,
    NOT_APPLICABLE,
    BY_DESIGN,
    UPSTREAM_SKIP,
    UPSTREAM_XFAIL,
    FAILED,
    XPASS,
)


@dataclass
class _SuiteItem:
    row: str
    label: str
    expectation: Any = None
    outcome: str | None = None
    message: str = ""


@dataclass
class _State:
    items: dict[str, _SuiteItem] = field(default_factory=dict)
    stale: list[Any] = field(default_factory=list)


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--xarray-suite-report``."""
    parser.getgroup("xzaro").addoption(
        REPORT_OPTION,
        action="store_true",
        help="after test_xarray_suite.py, print its counts per Zarr format and the known "
        "failures grouped by cause",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marks xarray's tests use and this plugin's state."""
    for line in (
        "skip_if_param(**params, reason, condition=True): skip when the params match "
        "(xarray's tests)",
        "asyncio: an async test (xarray's tests)",
        "network: needs the network (xarray's tests)",
        "flaky: flaky test (xarray's tests)",
    ):
        config.addinivalue_line("markers", line)
    config.stash[_STATE] = _State()


def _in_suite(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    return module is not None and module.__name__.rpartition(".")[2] == SUITE_MODULE


def _params(item: pytest.Item) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def _apply_skip_if_param(item: pytest.Item, params: dict[str, Any]) -> None:
    for mark in item.iter_markers("skip_if_param"):
        kwargs = dict(mark.kwargs)
        reason = kwargs.pop("reason", "skip_if_param")
        if kwargs.pop("condition", True) and all(
            k in params and params[k] == v for k, v in kwargs.items()
        ):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Resolve ``skip_if_param`` and apply the expectations to the suite's items."""
    suite = [item for item in items if _in_suite(item)]
    if not suite:
        return
    import xarray_suite_expectations as expect

    state = config.stash[_STATE]
    used: set[int] = set()
    for item in suite:
        params = _params(item)
        _apply_skip_if_param(item, params)
        cls = getattr(item, "cls", None)
        test = f"{cls.__name__}::{item.originalname}" if cls else item.originalname
        zarr_format = params.get("default_zarr_format", params.get("zarr_format"))
        found = expect.lookup(test, zarr_format, params)
        if found is not None:
            used.add(id(found))
            item.add_marker(expect.as_mark(found))
        kind = "datatree" if "Datatree" in test else "dataset"
        row = f"{kind}, zarr_format={zarr_format}"
        state.items[item.nodeid] = _SuiteItem(row=row, label=test, expectation=found)
    state.stale = [e for e in expect.EXPECTATIONS if id(e) not in used]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run xarray's ``pytest.mark.asyncio`` tests when pytest-asyncio is not there."""
    if not _in_suite(pyfuncitem) or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if pyfuncitem.config.pluginmanager.hasplugin("asyncio"):
        return None
    names = inspect.signature(pyfuncitem.obj).parameters
    asyncio.run(pyfuncitem.obj(**{n: v for n, v in pyfuncitem.funcargs.items() if n in names}))
    return True


def _outcome(report: pytest.TestReport, entry: _SuiteItem) -> str | None:
    category = getattr(entry.expectation, "category", None)
    if report.failed:
        return XPASS if report.when == "call" and category == "KNOWN_FAILURE" else FAILED
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return KNOWN if category == "KNOWN_FAILURE" else UPSTREAM_XFAIL
        if category == "BY_DESIGN":
            return BY_DESIGN
        return NOT_APPLICABLE if category == "NOT_APPLICABLE" else UPSTREAM_SKIP
    if report.when == "call":
        return PASSED
    return None


def _message(report: pytest.TestReport) -> str:
    """The first line of the error, without the per-test URL xzaro's errors end with."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr or "")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r" \[url=.*$", "", first)[:200]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Record each suite test's outcome (the first failure or skip of its phases wins)."""
    report = yield
    entry = item.config.stash[_STATE].items.get(item.nodeid)
    if entry is not None:
        outcome = _outcome(report, entry)
        if outcome is not None and entry.outcome in (None, PASSED):
            entry.outcome = outcome
            if outcome in (KNOWN, FAILED, XPASS, UPSTREAM_XFAIL):
                entry.message = _message(report)
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """With ``--xarray-suite-report``: the counts and the known failures by cause."""
    state = config.stash[_STATE]
    if not config.getoption(REPORT_OPTION) or not state.items:
        return
    write = terminalreporter.write_line
    terminalreporter.section("xarray suite through xzaro")
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in state.items.values():
        if entry.outcome is not None:
            counts[entry.row][entry.outcome] += 1
            counts["total"][entry.outcome] += 1
    shown = [o for o in OUTCOMES if counts["total"][o]]
    width = max(len(row) for row in counts)
    write(f"{'':{width}}  " + "  ".join(f"{o:>{max(len(o), 5)}}" for o in shown))
    for row in sorted(counts, key=lambda r: (r == "total", r)):
        cells = "  ".join(f"{counts[row][o]:>{max(len(o), 5)}}" for o in shown)
        write(f"{row:{width}}  {cells}")

    by_cause: dict[Any, list[_SuiteItem]] = defaultdict(list)
    for entry in state.items.values():
        if entry.outcome in (KNOWN, XPASS):
            by_cause[entry.expectation.cause].append(entry)
    write("")
    write("known failures by cause:" if by_cause else "known failures by cause: none")
    for cause, entries in sorted(by_cause.items(), key=lambda kv: -len(kv[1])):
        write(f"  [{len(entries)}] {cause.title}")
        write(f"      error: {cause.error}")
        if cause.repro:
            write(f"      repro: {cause.repro}")
        observed = Counter(e.message for e in entries if e.outcome == KNOWN)
        for message, n in observed.most_common(3):
            write(f"      observed ({n}): {message}")
        rows: dict[tuple[str, str], set[str]] = defaultdict(set)
        for e in entries:
            rows[e.label, e.expectation.note].add(e.row)
        for (label, note), where in sorted(rows.items()):
            write(f"      - {label} ({'; '.join(sorted(where))})" + (f": {note}" if note else ""))
    for title, outcome in (("FAILED (not listed)", FAILED), ("XPASS(strict)", XPASS)):
        entries = [e for e in state.items.values() if e.outcome == outcome]
        if entries:
            write("")
            write(f"{title}:")
            for e in sorted(entries, key=lambda e: e.label):
                write(f"  {e.label} [{e.row}]: {e.message}")
    if state.stale:
        write("")
        write("expectations that matched no collected test (stale, or not collected this run):")
        for e in state.stale:
            write(f"  {e.test} {e.describe_scope()}")
