"""``xzaro show``: thumbnails of a pyramid's levels, or of a store's variables, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import error_of, one_error_line

from xzaro.cli import main

PIL = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")


def _picture(path) -> tuple[tuple[int, int], int]:
    with PIL.open(path) as image:
        assert image.format == "PNG"
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        return image.size, len(colours or [])


def test_pyramid_levels_side_by_side(pyramid, tmp_path, cli):
    out = tmp_path / "thumbs.png"
    result = cli("show", pyramid, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out}: 3 levels\n"
    (width, height), colours = _picture(out)
    assert (width, height) == (960, 300)  # three 320 x 300 panels in a row
    assert colours > 50


def test_pyramid_at_another_time(pyramid, tmp_path, capsys):
    out = tmp_path / "t2.png"
    assert main(["show", str(pyramid), "-o", str(out), "--isel", "time=2", "--var", "tas"]) == 0
    assert _picture(out)[0] == (960, 300)


def test_a_plain_store_shows_its_variables(climate, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["show", str(climate)]) == 0
    assert capsys.readouterr().out == "wrote climate.png: 1 variable(s)\n"
    (width, height), colours = _picture(tmp_path / "climate.png")
    assert (width, height) == (320, 300) and colours > 20


def test_one_variable(climate, tmp_path):
    out = tmp_path / "one.png"
    assert main(["show", str(climate), "--var", "tas", "-o", str(out)]) == 0
    rgb = np.asarray(PIL.open(out).convert("RGB"))
    assert rgb.std() > 10  # not blank


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["--var", "nope"], 1, "no variable 'nope'"),
        (["-o", "x.jpg"], 2, "-o must end in .png"),
        (["--isel", "lat=0"], 2, "lat, lon are drawn, not selected"),
        (["--isel", "time=9"], 2, "index 9 is out of range for 'time'"),
    ],
)
def test_errors(climate, tmp_path, monkeypatch, capsys, args, status, says):
    monkeypatch.chdir(tmp_path)
    returned, line = error_of(capsys, "show", climate, *args)
    assert returned == status and says in line


def test_pyramid_without_the_variable(pyramid, tmp_path, cli):
    result = cli("show", pyramid, "--var", "nope", "-o", tmp_path / "x.png")
    assert result.returncode == 2
    assert "level 0 has no variable 'nope'" in one_error_line(result)


def test_missing_store(tmp_path, cli):
    result = cli("show", tmp_path / "nothing.zarr", "-o", tmp_path / "x.png")
    assert result.returncode == 1
    assert "nothing.zarr" in one_error_line(result)


def test_levels_share_one_colour_scale():
    import xarray as xr

    from xzaro.quicklook import value_range

    a = xr.DataArray([[1.0, np.nan], [3.0, 4.0]])
    b = xr.DataArray([[-2.0, 0.5]])
    assert value_range([a, b]) == (-2.0, 4.0)
    assert value_range([xr.DataArray([[np.nan]])]) is None
