"""Every notebook in ``notebooks/`` runs from top to bottom without an error.

Each is executed with nbclient in a fresh kernel, in a temporary working directory (the
notebooks make their own small data there; nothing touches the network). The notebooks are kept
with their outputs, which the documentation site shows: every code cell must have been run.
``XZARO_UPDATE_NOTEBOOKS=1 python -m pytest tests/docs/test_notebooks.py`` writes the fresh
outputs back into ``notebooks/``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# Skipped only without the runner; a missing kernel or package fails the notebook that needs it.
nbformat = pytest.importorskip("nbformat", reason="the notebooks extra is not installed")
nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
#: Each notebook runs in 10-20 s on an idle 2-core machine (meant to stay under 30 s); the
#: limits leave room for a loaded CI machine.
SECONDS_PER_CELL = 120
SECONDS_PER_NOTEBOOK = 200


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    env_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        client = nbclient.NotebookClient(
            notebook,
            timeout=SECONDS_PER_CELL,
            kernel_name="python3",
            record_timing=False,  # no timestamps in the saved notebooks
            resources={"metadata": {"path": str(tmp_path)}},
        )
        start = time.perf_counter()
        client.execute()  # raises CellExecutionError naming the cell on any error
        elapsed = time.perf_counter() - start
    finally:
        if env_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backend
    assert elapsed < SECONDS_PER_NOTEBOOK, f"{path.name} took {elapsed:.0f} s"
    if os.environ.get("XZARO_UPDATE_NOTEBOOKS") == "1":
        nbformat.write(notebook, path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_kept_with_its_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code"
    never_run = [i for i, cell in enumerate(code) if cell.execution_count is None]
    assert not never_run, f"{path.name}: code cells {never_run} have no saved outputs"
    assert not [
        out for cell in code for out in cell.outputs if out.get("output_type") == "error"
    ], f"{path.name} was saved with an error"
