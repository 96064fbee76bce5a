"""Build hook of the documentation site (``mkdocs.yml``: ``hooks``).

* The notebooks live in ``notebooks/`` at the top of the repository (CI executes them there);
  they are added to the site as ``notebooks/NAME.ipynb`` pages, rendered by mkdocs-jupyter with
  the outputs saved in them.
* ``<!-- cli-help: COMMAND -->`` is replaced by what ``xzaro COMMAND --help`` prints (the
  command line page), so the page shows the command as it is.
* Docstrings are written with Sphinx roles (``:class:`~xzaro.Multiscale```); in the rendered
  API pages each role becomes plain code (``~`` keeping the last name only, as Sphinx shows it).
* The benchmarks page shows the measured tables of ``benchmarks/README.md`` and their plots:
  ``<!-- bench-table: NAME -->`` in a page is replaced by that table's text, and the plots
  (``img/bench-*.png``) are drawn from the same tables by ``benchmarks/plot_results.py``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
_TABLE = re.compile(r"<!-- bench-table: (\w+) -->")
_CLI_HELP = re.compile(r"<!-- cli-help: ?([\w-]*) -->")
_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(~?)([^<]*)</code>"
)
log = logging.getLogger("mkdocs.hooks.xzaro")


def _plot_results() -> ModuleType:
    """``benchmarks/plot_results.py`` (``benchmarks/`` is not a package)."""
    path = ROOT / "benchmarks" / "plot_results.py"
    spec = importlib.util.spec_from_file_location("xzaro_bench_plot_results", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_tables: dict[str, Any] = {}


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into pages
def on_files(files: Files, config: Any) -> Files:
    """Add the notebooks and the benchmark plots to the site's files."""
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{notebook.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    plots = _plot_results()
    _tables.clear()
    _tables.update(plots.measured_tables())
    for name, png in plots.render_plots(_tables).items():
        files.append(File.generated(config, f"img/{name}", content=png))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Put the README's measured tables where a page asks for them."""

    def table(match: re.Match[str]) -> str:
        found = _tables[match.group(1)]
        if found.source.startswith("|"):
            return found.source
        return f"```\n{found.source}\n```"

    def cli_help(match: re.Match[str]) -> str:
        command = [match.group(1)] if match.group(1) else []
        result = subprocess.run(
            [sys.executable, "-m", "xzaro.cli", *command, "--help"],
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "100"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:  # a warning fails the strict build
            log.warning("xzaro %s --help failed: %s", " ".join(command), result.stderr[-500:])
        return f"```text\n{result.stdout.rstrip()}\n```"

    markdown = _TABLE.sub(table, markdown)
    return _CLI_HELP.sub(cli_help, markdown)


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Show the Sphinx roles of docstrings as code: ``:class:`~a.B``` as ``B``."""

    def code(match: re.Match[str]) -> str:
        name = match.group(2)
        return f"<code>{name.rsplit('.', 1)[-1] if match.group(1) else name}</code>"

    return _ROLE.sub(code, html)
