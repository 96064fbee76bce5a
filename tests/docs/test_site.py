"""The documentation site builds with warnings as errors (``mkdocs build --strict``).

The build renders every page, the API reference from the docstrings (mkdocstrings), the
notebooks with their saved outputs (mkdocs-jupyter) and the benchmark plots drawn from the
tables of ``benchmarks/README.md`` (``docs/_hooks/site.py``).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Skipped only without mkdocs itself: with mkdocs but without a plugin the build fails, naming it.
pytest.importorskip("mkdocs", reason="the docs extra is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once into a temporary directory."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    return out


def test_site_builds_strict(site: Path) -> None:
    assert (site / "index.html").is_file()


@pytest.mark.parametrize(
    "page",
    [
        "getting-started",
        "guide/reading",
        "guide/stores",
        "guide/references",
        "guide/writing",
        "guide/multiscale",
        "guide/streaming",
        "guide/distributed",
        "guide/cli",
        "guide/logging",
        "guide/performance",
        "architecture",
        "comparison",
        "benchmarks",
        "design",
        "security",
    ],
)
def test_page_is_built(site: Path, page: str) -> None:
    assert (site / page / "index.html").is_file()


def test_api_reference_comes_from_docstrings(site: Path) -> None:
    html = (site / "api" / "reading" / "index.html").read_text(encoding="utf-8")
    assert 'id="xzaro.hierarchy.open_array"' in html
    assert 'id="xzaro.array.ZaroArray"' in html
    errors = (site / "api" / "errors" / "index.html").read_text(encoding="utf-8")
    assert 'id="xzaro.errors.ZaroError"' in errors


@pytest.mark.parametrize("module", ["xzaro", "xzaro.streaming", "xzaro.errors"])
def test_every_public_name_has_a_reference_entry(site: Path, module: str) -> None:
    namespace = importlib.import_module(module)
    html = "".join(page.read_text(encoding="utf-8") for page in (site / "api").glob("*/index.html"))
    public = getattr(namespace, "__all__", None) or [
        name
        for name, value in vars(namespace).items()
        if isinstance(value, type) and value.__module__ == module
    ]
    missing = []
    for name in public:
        value = getattr(namespace, name)
        if f'id="{value.__module__}.{value.__qualname__}"' not in html:
            missing.append(f"{value.__module__}.{value.__qualname__}")
    assert not missing, f"not in the API reference (docs/api/): {missing}"


def test_notebooks_are_rendered_with_their_outputs(site: Path) -> None:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for notebook in notebooks:
        html = (site / "notebooks" / notebook.stem / "index.html").read_text(encoding="utf-8")
        assert "data:image/png;base64" in html, f"{notebook.name}: no plot rendered"


def test_command_line_page_shows_the_commands_help(site: Path) -> None:
    html = (site / "guide" / "cli" / "index.html").read_text(encoding="utf-8")
    assert html.count("usage: xzaro") >= 8  # the command and each sub-command


def test_docstring_roles_are_shown_as_code(site: Path) -> None:
    html = (site / "api" / "writing" / "index.html").read_text(encoding="utf-8")
    assert ":class:<code>" not in html


def test_benchmark_plots_come_from_the_readme_tables(site: Path) -> None:
    html = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "bench-table" not in html  # every placeholder was replaced by its table
    for name in ("refs", "stream-fps", "stream-memory", "network"):
        png = site / "img" / f"bench-{name}.png"
        assert png.read_bytes().startswith(b"\x89PNG"), png
        assert f"bench-{name}.png" in html
