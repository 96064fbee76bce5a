"""``xzaro bench``: the built-in cases, the table, the scripts of a checkout, the errors."""

from __future__ import annotations

import pytest
from conftest import error_of

from xzaro.cli import main
from xzaro.cli.bench import scripts
from xzaro.cli.benchcases import CASES, layout


def test_one_case_prints_a_table(capsys):
    assert main(["bench", "region-v3", "--size-mib", "2", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2 MiB float32 (2, 512, 512), best of 1"
    assert lines[1].split() == ["case", "seconds", "MB/s"]
    assert lines[3].startswith("region-v3 ")
    assert "benchmarks/ in a source checkout" in lines[-1]


def test_every_case_runs(capsys):
    assert main(["bench", "--size-mib", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n{name} " in out for name in CASES)


def test_plot(tmp_path, capsys):
    image_module = pytest.importorskip("PIL.Image")
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench.png"
    args = ["bench", "read-v2", "--size-mib", "1", "--repeat", "1", "--plot", str(out)]
    assert main(args) == 0
    assert capsys.readouterr().out.endswith(f"wrote {out}\n")
    with image_module.open(out) as image:
        assert image.format == "PNG" and image.size[0] == 700
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 20


def test_layouts_hold_whole_chunks():
    for size in (1, 8, 16, 40, 100):
        chunks, shards = layout(size)
        assert shards[0] % chunks[0] == 0 and chunks[0] <= size


def test_list(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CASES)
    assert "read " in out and "bench_read.py" in out  # this is a source checkout


def test_scripts_of_the_checkout():
    found = scripts()
    assert "read" in found and found["read"].name == "bench_read.py"


def test_a_script_gets_its_arguments(capfd):
    assert main(["bench", "read", "--", "--help"]) == 0
    assert "--size-mib" in capfd.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nope"], "no benchmark 'nope' (known: write-v2"),
        (["read-v2", "--", "x"], "arguments after the case are for benchmark scripts only"),
        (["--size-mib", "0"], "--size-mib and --repeat must be at least 1"),
        (["--plot", "b.svg"], "--plot must end in .png"),
    ],
)
def test_errors(capsys, args, says):
    status, line = error_of(capsys, "bench", *args)
    assert status == 2 and says in line
