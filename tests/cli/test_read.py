"""``xzaro read``: summaries, selections, .npy, .nc and the quick-look PNG, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import climate_dataset, error_of, one_error_line

from xzaro.cli import main

PIL = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")


def test_summary_of_a_selection(climate, capsys):
    assert main(["read", str(climate), "tas", "--isel", "time=1", "--isel", "lat=0:2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tas  float32 (lat: 2, lon: 144)")
    assert "time: 2020-01-02" in out and "@units: K" in out
    expected = climate_dataset().tas.isel(time=1, lat=slice(0, 2)).values
    assert f"min={expected.min():.6g}" in out and f"max={expected.max():.6g}" in out
    assert "missing=0 of 288" in out


def test_small_selections_print_the_values(climate, capsys):
    assert main(["read", str(climate), "tas", "--isel", "time=-1", "--isel", "lat=0", "--isel",
                 "lon=0:6:2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "[" in out.splitlines()[-1] and "missing=0 of 3" in out


def test_npy(climate, tmp_path, capsys):
    out = tmp_path / "tas.npy"
    assert main(["read", str(climate), "tas", "--isel", "lon=10:20", "--out", str(out)]) == 0
    expected = climate_dataset().tas.isel(lon=slice(10, 20)).values
    np.testing.assert_array_equal(np.load(out), expected)
    assert f"wrote {out}" in capsys.readouterr().out


def test_netcdf(climate, tmp_path):
    import xarray as xr

    out = tmp_path / "tas.nc"
    assert main(["read", str(climate), "tas", "--isel", "time=0", "-o", str(out)]) == 0
    with xr.open_dataset(out) as back:
        expected = climate_dataset().tas.isel(time=0)
        np.testing.assert_array_equal(back.tas.values, expected.values)
        np.testing.assert_array_equal(back.lat.values, expected.lat.values)
        assert back.tas.attrs["units"] == "K"


def test_png_is_a_picture(climate, tmp_path, cli):
    out = tmp_path / "tas.png"
    result = cli("read", climate, "tas", "--isel", "time=0", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    with PIL.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (800, 500)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # not blank: a colour scale, text, axes


@pytest.mark.parametrize("north_first", [True, False])
def test_png_is_north_up_either_way(tmp_path, north_first):
    """The warm north is drawn at the top whichever way latitude is stored."""
    from xzaro.quicklook import save_map

    out = tmp_path / "map.png"
    save_map(climate_dataset(north_first).tas.isel(time=0), str(out))
    with PIL.open(out) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=float)
    plot = rgb[60:440, 80:600]  # inside the axes, away from labels and the colour bar
    top, bottom = plot[:40].mean(axis=(0, 1)), plot[-40:].mean(axis=(0, 1))
    # viridis: warm is yellow (red and green high), cold is purple (red and green low)
    assert top[:2].sum() > bottom[:2].sum() + 100


def test_non_latitude_rows_keep_the_first_row_on_top():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    from xzaro.quicklook import draw

    image = xr.DataArray(np.arange(12.0).reshape(3, 4), dims=("y", "x"), name="im")
    fig, ax = plt.subplots()
    draw(ax, image)
    assert ax.yaxis_inverted()
    plt.close(fig)


def test_longitude_first_is_transposed():
    from xzaro.quicklook import oriented

    tas = climate_dataset().tas.isel(time=0).transpose("lon", "lat")
    assert oriented(tas).dims == ("lat", "lon")


def test_png_of_three_dimensions_says_to_select(climate, tmp_path, cli):
    line = one_error_line(cli("read", climate, "tas", "--out", tmp_path / "x.png"))
    assert "2-d slice" in line and "has 3 dimensions (time, lat, lon)" in line and "--isel" in line
    assert not (tmp_path / "x.png").exists()


def test_png_of_one_dimension(climate, tmp_path, capsys):
    status, line = error_of(
        capsys,
        "read",
        climate,
        "tas",
        "--isel",
        "lat=0",
        "--isel",
        "lon=0",
        "-o",
        tmp_path / "x.png",
    )
    assert status == 2 and line.endswith("has 1 dimension (time)")


def test_missing_matplotlib_names_the_extra(climate, tmp_path):
    """With matplotlib unimportable the PNG is one line saying which extra to install."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from xzaro.cli import main\n"
        f"sys.exit(main(['read', {str(climate)!r}, 'tas', '--isel', 'time=0', "
        f"'-o', {str(tmp_path / 'x.png')!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert 'pip install "xzaro[plot]"' in one_error_line(result)


def test_variable_in_a_group(pyramid, capsys):
    assert main(["read", str(pyramid), "1/tas", "--isel", "time=0"]) == 0
    assert capsys.readouterr().out.startswith("tas  float32 (lat: 36, lon: 72)")


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["nope"], 1, "no variable 'nope' (variables:"),
        (["tas", "--isel", "depth=0"], 2, "has no dimension 'depth'"),
        (["tas", "--isel", "time=3"], 2, "index 3 is out of range for 'time' of size 3"),
        (["tas", "--isel", "time=a"], 2, "'a' is not an integer"),
        (["tas", "--isel", "time"], 2, "expected DIM=INDEX"),
        (["tas", "--isel", "lat=1:2:0"], 2, "the step must be positive"),
        (["tas", "--isel", "time=0", "--isel", "time=1"], 2, "'time' is given twice"),
        (["tas", "--out", "x.csv"], 2, "--out must end in .npy, .nc, .png"),
    ],
)
def test_errors_are_one_line(climate, capsys, args, status, says):
    returned, line = error_of(capsys, "read", climate, *args)
    assert returned == status and says in line


def test_missing_store(tmp_path, cli):
    result = cli("read", tmp_path / "nothing.zarr", "tas")
    assert result.returncode == 1
    assert "nothing.zarr" in one_error_line(result)
