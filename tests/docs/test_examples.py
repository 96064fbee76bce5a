"""The examples on the documentation pages run, page by page, as they are written.

Every ```` ```python ```` block of a page under ``docs/`` (the API reference, the design notes and
the security page aside) runs in order in one fresh interpreter per page, in a temporary working
directory, so an example that stops matching the code fails here. A block preceded by the line
``<!-- example: no-run -->`` is shown but not run (it needs a remote store or credentials); such
blocks are kept few.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
SKIP = "<!-- example: no-run -->"
_BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
PAGES = sorted(
    p
    for p in DOCS.rglob("*.md")
    if p.parent.name != "api" and p.name not in ("design.md", "security.md")
)


def examples(page: Path) -> list[tuple[int, str]]:
    """(line, code) of every block of ``page`` that is to run."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        if before.strip() != SKIP:
            found.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


def _script(page: Path, blocks: list[tuple[int, str]]) -> str:
    parts = []
    for line, code in blocks:
        parts.append(f"print('--- {page.name}:{line}', flush=True)\n{code}")
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_examples_run(page: Path, tmp_path: Path) -> None:
    blocks = examples(page)
    if not blocks:
        pytest.skip("no runnable examples")
    script = tmp_path / "examples.py"
    script.write_text(_script(page, blocks), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    if result.returncode != 0:
        markers = re.findall(r"^--- (.*)$", result.stdout, re.M)
        where = markers[-1] if markers else page.name
        pytest.fail(f"the example at {where} failed:\n{result.stderr[-4000:]}")
