"""The packages are layers (docs/design.md): each imports only those below it, so there are no import cycles."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("lopmodels", "trainables", "sweeps", "analysis")  # each may import those before it
ABOVE_ALL = {"sweeps/cli.py"}  # the `lop` command: it imports `analysis` inside the commands that need it


def imported_packages(path: Path) -> set[str]:
    """The first-party packages `path` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


@pytest.mark.parametrize("package", LAYERS)
def test_each_package_imports_only_the_layers_below_it(package):
    allowed = set(LAYERS[: LAYERS.index(package) + 1])
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        name = str(path.relative_to(ROOT))
        upward = imported_packages(path) - allowed
        if upward and name not in ABOVE_ALL:
            wrong[name] = sorted(upward)
    assert not wrong, f"imports from a layer above ({' <- '.join(LAYERS)}): {wrong}"


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from analysis.report import write_report\n")
    assert imported_packages(module) == {"analysis"}
