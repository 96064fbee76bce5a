"""Stores the command tests read: a small climate-like dataset (latitude stored north to south,
CF attributes), a multiscale pyramid of it, and a runner for ``python -m xzaro.cli``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import xzaro

Runner = Callable[..., subprocess.CompletedProcess]


def climate_dataset(lat_north_first: bool = True):
    """``tas (time, lat, lon)``: warm in the north (so north is visible in a picture), with
    coordinates and CF attributes."""
    import xarray as xr

    lat = np.linspace(88.75, -88.75, 72) if lat_north_first else np.linspace(-88.75, 88.75, 72)
    lon = np.arange(0, 360, 2.5)
    time = np.array(["2020-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[ns]")
    field = (lat[:, None] + 90) / 180 * 30 + 250 + 0 * lon[None, :]
    data = np.stack([field + i for i in range(3)]).astype("f4")
    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), data, {"units": "K", "long_name": "air temperature"})},
        coords={
            "time": time,
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
        attrs={"title": "cli test", "institution": "nowhere"},
    )


@pytest.fixture(scope="session")
def climate(tmp_path_factory) -> Path:
    """A V3 store of :func:`climate_dataset`, chunked (1, 36, 72)."""
    path = tmp_path_factory.mktemp("climate") / "climate.zarr"
    climate_dataset().zaro.to_store(path, chunks={"time": 1, "lat": 36, "lon": 72})
    return path


@pytest.fixture(scope="session")
def pyramid(tmp_path_factory) -> Path:
    """A three-level OME pyramid of :func:`climate_dataset`."""
    path = tmp_path_factory.mktemp("pyramid") / "pyramid.zarr"
    climate_dataset().zaro.to_store(
        path, chunks={"time": 1, "lat": 18, "lon": 36}, multiscale=xzaro.Multiscale(levels=3)
    )
    return path


@pytest.fixture
def cli() -> Runner:
    """``cli(*args)``: ``python -m xzaro.cli ARGS`` in a subprocess, output as text."""

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "xzaro.cli", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            **kwargs,
        )

    return run


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single ``xzaro: error: ...`` line of a failed run (no traceback)."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("xzaro: error: ")
    return lines[0]


def error_of(capsys, *args: object) -> tuple[int, str]:
    """``main(args)`` in this process: its exit status and its one error line (run as a
    process, the same line is all that is printed: see the tests that run ``cli``)."""
    from xzaro.cli import main

    try:
        status = main([str(a) for a in args])
    except SystemExit as e:  # a usage error found by argparse
        status = int(e.code or 0)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("xzaro: error: ")
    return status, lines[0]
