"""Logs, verbose and progress, on real stores: ``verbose=True`` covers its call and what it
opened, ``enable_verbose(False)`` silences, one summary per read (one per Dask computation),
the user's logging configuration is obeyed, and ``to_store(progress=...)`` shows a bar."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import xzaro
from xzaro import read_log
from xzaro.log import enable_verbose, logger
from xzaro.writers.compute import shows_progress

ZARO = "[zaro]"


@pytest.fixture(autouse=True)
def quiet_logger() -> Iterator[None]:
    """Every test starts and ends with verbose off and the ``xzaro`` logger unconfigured."""
    enable_verbose(False)
    level, handlers = logger.level, list(logger.handlers)
    yield
    enable_verbose(False)
    logger.setLevel(level)
    logger.handlers[:] = handlers


def _dataset() -> xr.Dataset:
    data = np.arange(8 * 64 * 64, dtype="f4").reshape(8, 64, 64)
    coords = {"t": np.arange(8), "y": np.arange(64.0), "x": np.arange(64.0)}
    return xr.Dataset({"v": (("t", "y", "x"), data)}, coords=coords)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A V3 store whose ``v`` has 64 chunks of (1, 8, 64)."""
    path = str(tmp_path_factory.mktemp("log") / "s.zarr")
    _dataset().zaro.to_store(path, chunks={"t": 1, "y": 8, "x": 64})
    return path


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same, in shards of (2, 32, 64) (read-ahead reads it)."""
    path = str(tmp_path_factory.mktemp("log") / "sharded.zarr")
    _dataset().zaro.to_store(
        path, chunks={"t": 1, "y": 8, "x": 64}, shards={"t": 2, "y": 32, "x": 64}
    )
    return path


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(ZARO)]


# --- scope ------------------------------------------------------------------------------------


def test_verbose_covers_its_call_and_its_array(store: str, capsys: Any) -> None:
    loud = xzaro.open_array(store, "v", verbose=True)
    opened = _lines(capsys.readouterr().err)
    assert any("array v:" in line for line in opened), opened
    quiet = xzaro.open_array(store, "v")
    quiet[0]
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(loud[0], _dataset().v.values[0])
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"{ZARO} read 8 chunks (16.0 KiB) of {store}#v")
    quiet[1:3]
    assert capsys.readouterr().err == ""


def test_one_line_per_direct_read(store: str, capsys: Any) -> None:
    array = xzaro.open_array(store, "v", verbose=True)
    capsys.readouterr()
    array[0]
    array[:, 0:8]
    array.read_region((0, 0, 0), (8, 64, 64))
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 3, lines
    for line, chunks in zip(lines, (8, 8, 64)):
        assert line.startswith(f"{ZARO} read {chunks} chunks ("), line
        assert f"of {store}#v in " in line and "0 requests (0 retried)" in line


@pytest.mark.parametrize("sharded_store", [False, True], ids=["chunks", "shards"])
@pytest.mark.parametrize("chunks", [None, {}], ids=["direct", "dask"])
def test_missing_chunks_are_counted(
    tmp_path: Path, sharded_store: bool, chunks: Any, capsys: Any
) -> None:
    path = str(tmp_path / "gaps.zarr")
    shards = {"t": 1, "y": 64, "x": 64} if sharded_store else None
    _dataset().zaro.to_store(path, chunks={"t": 1, "y": 8, "x": 64}, shards=shards)
    gone = [p for p in Path(path, "v", "c").rglob("*") if p.is_file()]
    for p in sorted(gone)[: len(gone) // 2]:  # the stored objects of the first half of t
        p.unlink()
    ds = xr.open_dataset(path, engine="zaro", chunks=chunks, verbose=True)
    capsys.readouterr()
    assert np.isnan(ds.v.values[:4]).all()
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert "64 chunks (128.0 KiB, 32 missing: fill)" in lines[0], lines


def test_a_plain_open_after_a_verbose_one_is_quiet(store: str, capsys: Any) -> None:
    loud = xr.open_dataset(store, engine="zaro", chunks={}, verbose=True)
    assert any("xarray engine zaro" in line for line in _lines(capsys.readouterr().err))
    plain = xr.open_dataset(store, engine="zaro", chunks={})
    plain.compute()
    xzaro.open_group(store)["v"][0]
    assert capsys.readouterr().err == ""
    loud.v[0].compute()
    assert len(_lines(capsys.readouterr().err)) == 1


def test_enable_verbose_false_silences_everything(store: str, capsys: Any) -> None:
    loud = xzaro.open_array(store, "v", verbose=True)
    loud[0]
    assert _lines(capsys.readouterr().err)
    enable_verbose(False)
    loud[0]
    xzaro.open_array(store, "v", verbose=False)[0]
    assert capsys.readouterr().err == ""
    assert all(type(h) is logging.NullHandler for h in logger.handlers)

    enable_verbose(True)  # everything, in this process
    xzaro.open_array(store, "v")[0]
    assert len(_lines(capsys.readouterr().err)) >= 2
    enable_verbose(False)
    xzaro.open_array(store, "v")[0]
    assert capsys.readouterr().err == ""
    assert logger.level == logging.NOTSET  # never changed
    assert all(type(h) is logging.NullHandler for h in logger.handlers)


def test_verbose_travels_with_a_pickled_array(store: str, capsys: Any) -> None:
    import pickle

    loud = pickle.loads(pickle.dumps(xzaro.open_array(store, "v", verbose=True)))
    quiet = pickle.loads(pickle.dumps(xzaro.open_array(store, "v")))
    capsys.readouterr()
    quiet[0]
    assert capsys.readouterr().err == ""
    loud[0]
    assert len(_lines(capsys.readouterr().err)) == 1


def test_requests_and_retries_are_counted(http_server: tuple[str, Path], capsys: Any) -> None:
    from faults import start_fault_proxy

    base, root = http_server
    _dataset().zaro.to_store(root / "log-retries.zarr", chunks={"t": 1, "y": 8, "x": 64})
    with (
        start_fault_proxy(base, first_failures=1, methods={"GET"}) as proxy,
        xzaro.set_network_options(backoff=0.001, max_backoff=0.002),
    ):
        url = f"{proxy.base_url}/log-retries.zarr"
        array = xzaro.open_array(url, "v", verbose=True)
        assert any("retrying GET" in line for line in _lines(capsys.readouterr().err))
        np.testing.assert_array_equal(array[0], _dataset().v.values[0])
    lines = [line for line in _lines(capsys.readouterr().err) if " read " in line]
    assert lines == [lines[0]] and lines[0].startswith(
        f"{ZARO} read 8 chunks (16.0 KiB) of {url}#v"
    )
    assert lines[0].endswith(": 16 requests (8 retried)"), lines


# --- one summary per Dask computation ----------------------------------------------------------


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
@pytest.mark.parametrize("which", ["store", "sharded"])
def test_one_line_for_a_dask_computation(
    which: str, scheduler: str, request: pytest.FixtureRequest, capsys: Any
) -> None:
    import dask

    path = request.getfixturevalue(which)
    ds = xr.open_dataset(path, engine="zaro", chunks={}, verbose=True)
    assert ds.v.data.npartitions == (64 if which == "store" else 8)  # a block per shard
    capsys.readouterr()
    with dask.config.set(scheduler=scheduler):
        values = ds.v.values
    np.testing.assert_array_equal(values, _dataset().v.values)
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{ZARO} a Dask computation read 64 chunks (128.0 KiB) of {path}#v")
    assert lines[0].endswith("0 requests (0 retried)")


def test_one_line_naming_every_array_of_a_computation(store: str, capsys: Any) -> None:
    ds = xr.open_dataset(store, engine="zaro", chunks={}, verbose=True)
    capsys.readouterr()
    (ds.v * 2 + ds.v.isel(t=0)).compute()
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"of {store}#v" in lines[0], lines


# --- the user's logging configuration -----------------------------------------------------------


def test_configured_logging_gets_the_summaries(
    store: str, caplog: pytest.LogCaptureFixture, capsys: Any
) -> None:
    caplog.set_level(logging.INFO, logger="xzaro")
    ds = xr.open_dataset(store, engine="zaro", chunks={})  # not verbose
    caplog.clear()
    ds.v.compute()
    xzaro.open_array(store, "v")[0]
    messages = [r.getMessage() for r in caplog.records if r.name == "xzaro"]
    reads = [m for m in messages if " read " in m or m.startswith("read ")]
    assert len(reads) == 2, messages
    assert reads[0].startswith("a Dask computation read 64 chunks")
    assert reads[1].startswith("read 8 chunks")
    assert ZARO not in capsys.readouterr().err  # nothing of xzaro's own on stderr


def test_a_level_set_on_the_logger_is_obeyed(store: str, capsys: Any) -> None:
    logger.setLevel(logging.WARNING)
    array = xzaro.open_array(store, "v", verbose=True)
    array[0]
    enable_verbose(True)
    array[0]
    assert capsys.readouterr().err == ""
    assert logger.level == logging.WARNING


def test_logging_disable_is_obeyed(store: str, capsys: Any) -> None:
    logging.disable(logging.INFO)
    try:
        xzaro.open_array(store, "v", verbose=True)[0]
    finally:
        logging.disable(logging.NOTSET)
    assert capsys.readouterr().err == ""


def test_a_users_handler_and_verbose_both_get_the_record(store: str, capsys: Any) -> None:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger.setLevel(logging.INFO)
    logger.addHandler(Keep())
    xzaro.open_array(store, "v")[0]  # not verbose: the user's handler only
    assert capsys.readouterr().err == "" and seen[-1].startswith("read 8 chunks")
    xzaro.open_array(store, "v", verbose=True)[0]
    assert _lines(capsys.readouterr().err)[-1].startswith(f"{ZARO} read 8 chunks")
    assert logger.level == logging.INFO


# --- progress -------------------------------------------------------------------------------


def _chunked() -> xr.Dataset:
    return _dataset().chunk({"t": 1, "y": 32})


PYRAMID: dict[str, Any] = {"chunks": {"t": 1, "y": 16, "x": 16}, "multiscale": True}


def test_progress_true_shows_a_bar(tmp_path: Path, capsys: Any) -> None:
    _chunked().zaro.to_store(tmp_path / "a.zarr", progress=True)
    err = capsys.readouterr().err
    assert "[zaro] writing: 100% Completed" in err and "tasks" in err  # tqdm's
    _chunked().zaro.to_store(tmp_path / "b.zarr")
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(
        xzaro.open_array(tmp_path / "a.zarr", "v")[...], _dataset().v.values
    )


def test_progress_auto_is_quiet_off_a_terminal(tmp_path: Path, capfd: Any) -> None:
    _chunked().zaro.to_store(tmp_path / "a.zarr", progress="auto")
    _chunked().zaro.to_store(tmp_path / "b.zarr", **PYRAMID, progress="auto")
    assert capfd.readouterr().err == ""


def test_progress_auto_shows_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    _chunked().zaro.to_store(tmp_path / "a.zarr", progress="auto")
    assert "[zaro] writing: 100% Completed" in terminal.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert shows_progress(True) and not shows_progress(False) and not shows_progress("auto")
    import ipykernel  # noqa: F401  (a notebook runner imports it without being a kernel)

    assert not shows_progress("auto")


def test_progress_of_a_pyramid_and_a_tree(tmp_path: Path, capsys: Any) -> None:
    _chunked().zaro.to_store(tmp_path / "p.zarr", **PYRAMID, progress=True)
    assert capsys.readouterr().err.count("100% Completed") == 1
    tree = xr.DataTree.from_dict({"/": _chunked(), "/child": _chunked()})
    tree.zaro.to_store(tmp_path / "t.zarr", progress=True)
    assert capsys.readouterr().err.count("100% Completed") == 1


def test_progress_without_tqdm_is_dasks(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm fails
    _chunked().zaro.to_store(tmp_path / "a.zarr", progress=True)
    err = capsys.readouterr().err
    assert "100% Completed" in err and "[zaro] writing" not in err


@pytest.mark.parametrize("value", ["yes", 1.5, None, "True"])
def test_an_unknown_progress_is_refused_before_writing(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ValueError, match="progress must be True, False or 'auto'"):
        _chunked().zaro.to_store(tmp_path / "a.zarr", progress=value)
    tree = xr.DataTree.from_dict({"/": _chunked()})
    with pytest.raises(ValueError, match="progress"):
        tree.zaro.to_store(tmp_path / "t.zarr", progress=value)
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "t.zarr").exists()


# --- dask.distributed -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of an in-process cluster: its comms are in-process (``inproc://``), its HTTP
    server on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            worker_dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_progress_under_a_distributed_client(tmp_path: Path, client: Any, capsys: Any) -> None:
    capsys.readouterr()
    _chunked().zaro.to_store(tmp_path / "a.zarr", progress=True)
    _chunked().zaro.to_store(tmp_path / "p.zarr", **PYRAMID, progress=True)
    _chunked().zaro.to_store(tmp_path / "q.zarr", progress="auto")
    out, err = capsys.readouterr()
    assert out == "" and err.count("100% Completed") == 2
    np.testing.assert_array_equal(
        xzaro.open_array(tmp_path / "a.zarr", "v")[...], _dataset().v.values
    )


def test_one_line_per_distributed_worker(
    store: str, client: Any, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_log, "IDLE_SECONDS", 0.2)
    ds = xr.open_dataset(store, engine="zaro", chunks={}, verbose=True)
    capsys.readouterr()
    ds.v.compute()
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines += _lines(capsys.readouterr().err)
        if sum(int(line.split(" read ")[1].split()[0]) for line in lines) >= 64:
            break
        time.sleep(0.1)
    assert 1 <= len(lines) <= 2, lines  # one per worker that read
    assert all(line.startswith(f"{ZARO} dask worker inproc://") for line in lines), lines
    assert sum(int(line.split(" read ")[1].split()[0]) for line in lines) == 64


# --- warnings -----------------------------------------------------------------------------------


def test_reads_writes_and_the_demo_warn_of_nothing(store: str, tmp_path: Path) -> None:
    script = f"""
import numpy as np, xarray as xr, xzaro
ds = xr.open_dataset({store!r}, engine="zaro", chunks={{}}, verbose=True)
ds.compute()
xzaro.open_array({store!r}, "v")[0]
ds.zaro.to_store({str(tmp_path / "w.zarr")!r}, progress=True)
"""
    for args in (["-c", script], ["-m", "xzaro.cli", "demo"]):
        done = subprocess.run(
            [sys.executable, "-W", "error", "-X", "dev", *args],
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr + done.stdout, done.stderr
