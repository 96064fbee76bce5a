"""The rules of the house, checked on the package's own source.

Each rule is one test that reads ``xzaro/`` as text and syntax trees (nothing is imported), so a
change that breaks a rule fails here with the place named: no module over 600 lines, no function
over 80 lines, no private name used across modules, no import cycle (function-level imports
included), no probing of stores with ``getattr``/``hasattr``, no import of zarr-python.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xzaro"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    """Dotted module name -> path, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names, resolving relative levels."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in a module, at any depth."""
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append(
                    (sub, None, node.lineno)
                    if sub in MODULES
                    else (target, alias.name, node.lineno)
                )
    return out


def _owner(target: str) -> str | None:
    """The package module an imported dotted name lives in (None outside the package)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def test_no_module_is_too_long() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_too_long() -> None:
    long = []
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                length = (node.end_lineno or node.lineno) - first + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_private_name_crosses_modules() -> None:
    crossing = []
    for name in MODULES:
        for target, imported, line in _imports(name):
            owner = _owner(target)
            if owner is None or owner == name:
                continue
            if imported is not None and imported.startswith("_") and not imported.startswith("__"):
                crossing.append(f"{name}:{line} imports {imported} from {owner}")
            if any(
                part.startswith("_") and not part.startswith("__") for part in target.split(".")
            ):
                crossing.append(f"{name}:{line} imports private module {target}")
    assert not crossing, "\n".join(crossing)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for target, _, _ in _imports(name):
            owner = _owner(target)
            # a package's __init__ re-exporting its own children is not a cycle of the house
            if (
                owner
                and owner != name
                and not (MODULES[name].name == "__init__.py" and owner.startswith(name + "."))
            ):
                graph[name].add(owner)
    return graph


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    # a package __init__ importing a child that imports a sibling through the package is allowed
    real = [c for c in cycles if not any(MODULES[m].name == "__init__.py" for m in c[:-1])]
    assert not real, "import cycles: " + "; ".join(" -> ".join(c) for c in real)


@pytest.mark.parametrize("probe", ["getattr", "hasattr"])
def test_no_store_is_probed(probe: str) -> None:
    probed = []
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == probe
                and node.args
                and "store" in ast.unparse(node.args[0]).lower()
            ):
                probed.append(f"{name}:{node.lineno} {ast.unparse(node)}")
    assert not probed, "stores are probed instead of declaring capabilities:\n" + "\n".join(probed)


def test_zarr_python_is_never_imported() -> None:
    """zarr-python is a test oracle only: no module of the package imports it (``zarrs`` and
    ``zarrita`` neither), at module level or inside a function."""
    oracles = {"zarr", "zarrs", "zarrita"}
    found = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [f"{module}:{node.lineno} {n}" for n in names if n.split(".")[0] in oracles]
    assert not found, found
