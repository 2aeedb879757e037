"""The package dependency direction of the design card, enforced on every import statement (lazy ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("drive_jepa", "agent", "training", "bench2drive", "carla_tools")

# package -> packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "drive_jepa": {"agent", "training", "bench2drive", "carla_tools"},  # the CLI reaches them by name only
    "agent": {"training", "bench2drive", "carla_tools"},
    "training": {"bench2drive"},
    "bench2drive": {"training"},
    "carla_tools": {"training", "bench2drive"},
}


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def test_every_package_has_a_docstring_stating_its_responsibility():
    for pkg in PACKAGES:
        init = ROOT / pkg / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init}: the docstring must state the responsibility and allowed imports"


@pytest.mark.parametrize("pkg", PACKAGES)
def test_import_direction(pkg):
    violations = []
    for path in sorted((ROOT / pkg).rglob("*.py")):
        for mod, line in imported_top_levels(path):
            if mod in FORBIDDEN[pkg]:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not violations, "forbidden imports:\n" + "\n".join(violations)


def test_checker_sees_lazy_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from training.x import y\n    import bench2drive.report as r\n")
    assert {m for m, _ in imported_top_levels(src)} == {"training", "bench2drive"}
