"""The xzaro command: info (text and JSON) and demo."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from xzaro.cli import human_bytes, main

zarr = pytest.importorskip("zarr")


@pytest.fixture
def tree(tmp_path):
    root = zarr.open_group(str(tmp_path / "t.zarr"), mode="w", zarr_format=3)
    root.attrs["title"] = "t"
    sub = root.create_group("sub")
    a = sub.create_array(
        "temp",
        shape=(10, 20),
        chunks=(5, 5),
        shards=(10, 10),
        dtype="f4",
        dimension_names=["y", "x"],
        fill_value=np.nan,
        compressors=zarr.codecs.BloscCodec(cname="lz4"),
    )
    a[:] = 1.0
    a.attrs.update({"units": "K", "long_name": "T"})
    return tmp_path / "t.zarr"


def test_info_text(tree, capsys):
    assert main(["info", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "sub/  (group, V3" in out
    assert "temp  float32 (10, 20) chunks=(5, 5) shards=(10, 10) dims=(y, x)" in out
    assert "blosc(lz4)" in out and "fill=NaN" in out and "800 B" in out and "2 attrs" in out


def test_info_json_and_path(tree, capsys):
    assert main(["info", str(tree), "--path", "sub/temp", "--json"]) == 0
    nodes = json.loads(capsys.readouterr().out)
    assert len(nodes) == 1
    node = nodes[0]
    assert node["shape"] == [10, 20] and node["shards"] == [10, 10]
    assert node["dimension_names"] == ["y", "x"] and node["fill_value"] == "NaN"
    assert node["nbytes"] == 800


def test_info_on_a_missing_store_is_a_clear_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xzaro: error:") and err.count("\n") == 1


def test_demo_runs_as_a_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "xzaro.cli", "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("values identical") == 2
    assert (tmp_path / "demo_v3.zarr" / "air" / "zarr.json").exists()
    # what the demo wrote, zarr-python reads identically
    v2 = zarr.open_array(str(tmp_path / "demo_v2.zarr" / "air"), mode="r")[...]
    v3 = zarr.open_array(str(tmp_path / "demo_v3.zarr" / "air"), mode="r")[...]
    np.testing.assert_array_equal(v2, v3)


def test_human_bytes():
    assert human_bytes(800) == "800 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 2**30) == "3.0 GiB"
