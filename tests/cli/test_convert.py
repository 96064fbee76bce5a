"""``xzaro convert``: format, chunks, shards, compressor, pyramids, trees, references, the
progress bar, and the errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import climate_dataset, error_of, one_error_line

import xzaro
from xzaro.cli import main


def _meta(path, name="tas"):
    return xzaro.open_array(str(path), name).meta


def test_v2_to_v3_sharded_rechunked(tmp_path, cli):
    src, dst = tmp_path / "v2.zarr", tmp_path / "v3.zarr"
    climate_dataset().zaro.to_store(src, zarr_format=2, chunks={"lat": 24, "lon": 48})
    result = cli(
        "convert", src, dst, "--zarr-format", "3", "--chunks", "time=1", "--chunks", "lat=-1",
        "--chunks", "lon=36", "--shards", "time=3", "--shards", "lon=72",
        "--compressor", "zstd:3:shuffle",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"converted the dataset {src} -> {dst}: wrote ")
    assert result.stderr == ""  # no bar: stderr is not a terminal
    meta = _meta(dst)
    assert meta.zarr_format == 3
    assert meta.chunk_shape == (1, 72, 36) and meta.shard_shape == (3, 72, 72)
    assert "blosc(zstd)" in meta.describe_codecs()
    import xarray as xr

    back = xr.open_dataset(dst, engine="zaro")
    xr.testing.assert_identical(back.load(), climate_dataset())


def test_no_compressor_and_v2(climate, tmp_path):
    dst = tmp_path / "raw.zarr"
    args = ["convert", str(climate), str(dst), "--zarr-format", "2", "--compressor", "none"]
    assert main(args) == 0
    meta = _meta(dst)
    assert meta.zarr_format == 2 and "blosc" not in meta.describe_codecs()


def test_default_keeps_the_source_layout(climate, tmp_path):
    dst = tmp_path / "same.zarr"
    assert main(["convert", str(climate), str(dst)]) == 0
    assert _meta(dst).chunk_shape == _meta(climate).chunk_shape


@pytest.mark.parametrize(("levels", "expected"), [("2", 2), (None, 3)])
def test_multiscale(climate, tmp_path, levels, expected):
    dst = tmp_path / "pyr.zarr"
    extra = ["--multiscale"] + ([levels] if levels else [])
    chunks = ["--chunks", "lat=36", "--chunks", "lon=36"]
    assert main(["convert", str(climate), str(dst), *chunks, *extra]) == 0
    found = xzaro.open_multiscale(str(dst))
    assert len(found) == expected
    assert found[1].tas.shape == (3, 36, 72)


def test_a_store_of_groups_is_converted_as_a_tree(pyramid, tmp_path, capsys):
    dst = tmp_path / "tree.zarr"
    assert main(["convert", str(pyramid), str(dst), "--zarr-format", "2"]) == 0
    assert "converted the tree" in capsys.readouterr().out
    assert _meta(dst, "2/tas").zarr_format == 2
    assert len(xzaro.open_multiscale(str(dst))) == 3


def test_root_variables_and_child_groups_all_kept(tmp_path, capsys):
    import xarray as xr

    tree = xr.DataTree.from_dict(
        {"/": xr.Dataset({"a": ("x", np.arange(4.0))}), "/child": xr.Dataset({"b": ("y", [1, 2])})}
    )
    tree.zaro.to_store(tmp_path / "t.zarr")
    assert main(["convert", str(tmp_path / "t.zarr"), str(tmp_path / "c.zarr")]) == 0
    assert "converted the tree" in capsys.readouterr().out
    back = xr.open_datatree(tmp_path / "c.zarr", engine="zaro")
    assert back["a"].values.tolist() == [0, 1, 2, 3] and back["child/b"].values.tolist() == [1, 2]


def test_one_group(pyramid, tmp_path):
    dst = tmp_path / "level1.zarr"
    assert main(["convert", str(pyramid), str(dst), "--group", "1"]) == 0
    assert _meta(dst).shape == (3, 36, 72)


def test_references(climate, tmp_path):
    """A Kerchunk reference file pointing into a V2 store converts like the store."""
    src = tmp_path / "v2.zarr"
    climate_dataset().zaro.to_store(src, zarr_format=2, consolidated=False)
    refs = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        key = path.relative_to(src).as_posix()
        if key.rpartition("/")[2].startswith("."):
            refs[key] = path.read_text()
        else:
            refs[key] = [str(path), 0, path.stat().st_size]
    ref_file = tmp_path / "refs.json"
    ref_file.write_text(json.dumps({"version": 1, "refs": refs}))
    dst = tmp_path / "from-refs.zarr"
    assert main(["convert", f"reference+json://{ref_file}", str(dst)]) == 0
    import xarray as xr

    back = xr.open_dataset(dst, engine="zaro").load()
    np.testing.assert_array_equal(back.tas.values, climate_dataset().tas.values)


def test_overwrite(climate, tmp_path, capsys):
    dst = tmp_path / "o.zarr"
    assert main(["convert", str(climate), str(dst)]) == 0
    status, line = error_of(capsys, "convert", climate, dst)
    assert status == 1 and "--overwrite replaces it" in line
    assert main(["convert", str(climate), str(dst), "--overwrite", "--zarr-format", "2"]) == 0
    assert _meta(dst).zarr_format == 2


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["--chunks", "lat"], 2, "expected DIM=SIZE"),
        (["--chunks", "lat=0"], 2, "the size must be positive or -1"),
        (["--chunks", "depth=3"], 1, "names dimensions ['depth']"),
        (["--shards", "lat=72", "--zarr-format", "2"], 2, "--shards needs Zarr V3"),
        (["--compressor", "zz:3"], 2, "cname must be one of"),
        (["--compressor", "zstd:x"], 2, "level: 'x' is not an integer"),
        (["--zarr-format", "4"], 2, "invalid choice: 4"),
        (["--multiscale", "x"], 2, "invalid int value"),
        (["--multiscale", "0"], 2, "N must be at least 1, got 0"),
        (["--storage-options", "{bad"], 2, "not valid JSON"),
    ],
)
def test_errors(climate, tmp_path, capsys, args, status, says):
    returned, line = error_of(capsys, "convert", climate, tmp_path / "out.zarr", *args)
    assert returned == status and says in line


def test_missing_source_as_a_process(tmp_path, cli):
    result = cli("convert", tmp_path / "nothing.zarr", tmp_path / "out.zarr")
    assert result.returncode == 1
    assert "nothing.zarr" in one_error_line(result)
    assert not (tmp_path / "out.zarr").exists()


def _on_a_terminal(*args: object) -> tuple[int, str]:
    """Run ``python -m xzaro.cli ARGS`` with stdout and stderr on an 80-column
    pseudo-terminal (tqdm draws nothing on a terminal of no width)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "xzaro.cli", *map(str, args)], stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal is closed once the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=120), b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bar_on_a_terminal(climate, tmp_path, quiet):
    pytest.importorskip("tqdm")
    args = ["convert", climate, tmp_path / "p.zarr"] + (["--no-progress"] if quiet else [])
    status, output = _on_a_terminal(*args)
    assert status == 0, output
    assert "converted the dataset" in output
    assert ("100%" in output) != quiet


def test_progress_only_on_a_terminal():
    from xzaro.cli.progress import wanted

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not wanted(io.StringIO())
    assert wanted(Terminal()) == (__import__("importlib").util.find_spec("tqdm") is not None)
