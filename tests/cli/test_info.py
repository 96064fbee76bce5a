"""``xzaro info``: stored objects, bytes and compression ratio, attribute values, OME images, a
root array's name, --no-scan, --json."""

from __future__ import annotations

import json

import numpy as np
from conftest import climate_dataset

from xzaro.cli import main
from xzaro.cli.info import attribute_text


def _info(capsys, *args) -> str:
    assert main(["info", *map(str, args)]) == 0
    return capsys.readouterr().out


def _stored_bytes(path, name) -> int:
    array = path / name
    return sum(p.stat().st_size for p in array.rglob("*") if p.is_file() and p.name != "zarr.json")


def test_stored_objects_bytes_and_ratio(climate, capsys):
    out = _info(capsys, climate)
    nbytes = _stored_bytes(climate, "tas")
    ratio = climate_dataset().tas.nbytes / nbytes
    assert "stored: 12 of 12 chunks, " in out
    assert f"compression ratio {ratio:.2f}" in out


def test_json_has_the_stored_facts(climate, capsys):
    nodes = json.loads(_info(capsys, climate, "--json"))
    tas = next(n for n in nodes if n["path"] == "tas")
    assert tas["stored_objects"] == 12 and tas["grid_objects"] == 12
    assert tas["stored_bytes"] == _stored_bytes(climate, "tas")
    assert tas["ratio"] == round(tas["nbytes"] / tas["stored_bytes"], 2)
    assert "attrs" not in tas  # values only with --attrs


def test_fill_chunks_are_not_stored(climate, capsys):
    """The time coordinate (days since its first value) has one chunk of fill value 0."""
    assert "stored: 2 of 3 chunks" in _info(capsys, climate, "--path", "time")


def test_unwritten_chunks_are_counted(tmp_path, capsys):
    """Chunks holding only the fill value are not written: 1 of 4 stored."""
    import xarray as xr

    data = np.full((4, 4), np.nan, dtype="f4")
    data[0, 0] = 1
    xr.Dataset({"v": (("y", "x"), data)}).zaro.to_store(tmp_path / "s.zarr", chunks=2)
    assert "stored: 1 of 4 chunks" in _info(capsys, tmp_path / "s.zarr")


def test_sharded_arrays_count_shards(tmp_path, capsys):
    climate_dataset().zaro.to_store(
        tmp_path / "s.zarr", chunks={"time": 1, "lat": 36}, shards={"time": 3, "lat": 72}
    )
    assert "stored: 1 of 1 shards" in _info(capsys, tmp_path / "s.zarr")


def test_attribute_values(climate, capsys):
    out = _info(capsys, climate, "--attrs")
    assert '@title = "cli test"' in out and '@units = "K"' in out
    assert '@long_name = "air temperature"' in out
    nodes = json.loads(_info(capsys, climate, "--attrs", "--json"))
    assert nodes[0]["attrs"]["institution"] == "nowhere"


def test_long_attributes_are_cut():
    text = attribute_text(list(range(1000)))
    assert len(text) == 200 and text.endswith("...")


def test_ome_summary(pyramid, capsys):
    out = _info(capsys, pyramid)
    assert "OME-NGFF 0.5 image 'tas': 3 levels; axes: time (time), lat (space), lon (space)" in out
    assert "level 2: 2/tas (3, 18, 36) scale=(1, -10, 10)" in out  # latitude runs south
    nodes = json.loads(_info(capsys, pyramid, "--json"))
    image = nodes[0]["multiscales"][0]
    assert [lv["shape"] for lv in image["levels"]] == [[3, 72, 144], [3, 36, 72], [3, 18, 36]]


def test_wrong_ome_metadata_is_shown_with_the_tree(pyramid, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken.zarr"
    shutil.copytree(pyramid, broken)
    doc = json.loads((broken / "zarr.json").read_text())
    doc["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"] = "nowhere"
    doc.pop("consolidated_metadata", None)
    (broken / "zarr.json").write_text(json.dumps(doc))
    out = _info(capsys, broken)
    assert "OME metadata is wrong:" in out and "tas  float32 (3, 72, 144)" in out


def test_a_root_array_has_its_name(climate, capsys):
    out = _info(capsys, climate / "tas")
    assert out.startswith("tas  float32 (3, 72, 144)")
    nodes = json.loads(_info(capsys, climate / "tas", "--json"))
    assert nodes[0]["path"] == "tas" and nodes[0]["stored_objects"] == 12


def test_no_scan(climate, capsys):
    out = _info(capsys, climate, "--no-scan")
    assert "stored:" not in out and "tas  float32" in out
