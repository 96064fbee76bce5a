"""The xzaro command run as a real process: version, help, error lines, --debug, demo cleanup."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from xzaro.cli import build_parser, main

COMMANDS = ("info", "read", "show", "convert", "bench", "demo", "refs")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m xzaro.cli ARGS`` in a subprocess, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "xzaro.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A small V3 store with one array ``air`` in a group, written by ``xzaro demo --out``."""
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return out / "demo_v3.zarr"


def test_version():
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"xzaro {version('xzaro')}\n"


def test_bare_command_prints_help_and_succeeds():
    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: xzaro")
    assert all(name in result.stdout for name in (*COMMANDS, "--version", "--debug"))
    assert result.stderr == ""


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_has_no_markup(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: xzaro")
    assert "``" not in text and ":func:" not in text and ":class:" not in text


def test_help_as_a_command():
    result = run("--help")
    assert result.returncode == 0 and result.stderr == ""
    assert "Read, write and inspect Zarr" in result.stdout


def _loaded(setup: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` are imported after running ``setup`` in a fresh interpreter."""
    probe = f"import sys\n{setup}\nprint(sorted(m for m in {names!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return list(ast.literal_eval(result.stdout.strip()))


HEAVY = ("numpy", "xarray", "pandas", "pyarrow", "dask", "numcodecs", "fsspec", "matplotlib")


def test_help_imports_nothing_heavy():
    """``xzaro --help`` (and a bare ``import xzaro``) pull in none of the heavy packages."""
    setup = (
        "import contextlib, io\n"
        "from xzaro.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert _loaded(setup, HEAVY) == []
    assert _loaded("import xzaro", HEAVY) == []


def test_help_imports_neither_xarray_nor_dask():
    setup = "from xzaro.cli import build_parser\nbuild_parser().format_help()"
    assert _loaded(setup, ("xarray", "dask")) == []


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("xzaro: error: ")
    return lines[0]


def test_missing_store_is_one_line_naming_the_url(tmp_path):
    missing = str(tmp_path / "nothing.zarr")
    result = run("info", missing)
    assert result.returncode == 1
    assert f"url={missing!r}" in _one_error_line(result)


def test_unknown_protocol_is_one_line():
    result = run("info", "nosuch://bucket/x.zarr")
    assert result.returncode == 1
    line = _one_error_line(result)
    assert "nosuch" in line and "url='nosuch://bucket/x.zarr'" in line


def test_missing_variable_is_one_line_naming_the_key(store):
    result = run("info", str(store), "--path", "no_such_variable")
    assert result.returncode == 1
    assert "key='no_such_variable'" in _one_error_line(result)


@pytest.mark.parametrize(
    ("options", "says"),
    [("{bad", "not valid JSON"), ("[1, 2]", "expected a JSON object")],
)
def test_bad_storage_options_is_a_usage_error(store, options, says):
    result = run("info", str(store), "--storage-options", options)
    assert result.returncode == 2
    line = _one_error_line(result)
    assert "--storage-options" in line and says in line


def test_bad_json_for_refs_is_a_usage_error(tmp_path):
    result = run("refs", "a.nc", "-o", str(tmp_path / "r.json"), "--storage-options", "{bad")
    assert result.returncode == 2
    assert "not valid JSON" in _one_error_line(result)


def test_unknown_command_is_a_usage_error():
    result = run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in _one_error_line(result)


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, where):
    args = ["info", str(tmp_path / "nothing.zarr")]
    result = run(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "NodeNotFoundError" in result.stderr


def test_debug_flag_is_on_every_command():
    parser = build_parser()
    assert parser.parse_args(["--debug", "demo"]).debug
    assert parser.parse_args(["demo", "--debug"]).debug
    assert not parser.parse_args(["demo"]).debug
    assert parser.parse_args(["refs", "x.nc", "-o", "r.json", "--debug"]).debug
    for command in (["info", "u"], ["read", "u", "v"], ["show", "u"], ["convert", "a", "b"]):
        assert parser.parse_args([*command, "--debug"]).debug
    assert parser.parse_args(["bench", "--debug"]).debug


def test_demo_cleans_up_and_is_quiet(tmp_path):
    """Without ``--out`` the demo leaves nothing in the temporary directory and warns of nothing
    (numcodecs' crc32c deprecation warning included)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    before = sorted(tmp.iterdir())
    result = run("demo", env={**os.environ, "TMPDIR": str(tmp)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("values identical") == 2
    assert str(tmp) in result.stdout
    assert sorted(tmp.iterdir()) == before
    assert "Warning" not in result.stderr and "crc32c" not in result.stderr
    assert result.stderr == ""
