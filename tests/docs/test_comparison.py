"""Every test the comparison page (``docs/comparison.md``) names exists.

The page backs each claim with a test, written as ``tests/PATH.py`` or ``tests/PATH.py::NAME``;
a renamed or removed test must be renamed or removed on the page too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "comparison.md"
NAMED = sorted(set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", PAGE.read_text("utf-8"))))


def test_the_page_names_tests() -> None:
    assert len(NAMED) > 40


@pytest.mark.parametrize(("path", "name"), NAMED, ids=[f"{p}::{n}" for p, n in NAMED])
def test_named_test_exists(path: str, name: str) -> None:
    source = ROOT / path
    assert source.is_file(), f"{path} does not exist"
    if not name:
        return
    tree = ast.parse(source.read_text("utf-8"))
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    assert name in defined, f"{path} defines no {name}"
