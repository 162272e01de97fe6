"""The layers import only downward: common <- stages <- stack <- bench, tests.

Every .py file's imports (at any depth: an import inside a function counts as much as one at the
top) are read with ast, so a stage that reaches for stack/ at run time is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("producer", "processor", "storage", "dashboard")
# What each constrained layer may import from the project; bench/ and tests/ may import anything.
MAY_IMPORT = {
    "common": {"common"},
    **{stage: {"common", stage} for stage in STAGES},
    "stack": {"common", "stack"},
}
UNCONSTRAINED = ("bench", "tests")
_SKIP_DIRS = {".venv", ".git", "__pycache__", "node_modules", ".ruff_cache", ".pytest_cache"}


def project_packages() -> set[str]:
    """Top-level folders of this repository that Python code can import."""
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    return found | set(MAY_IMPORT) | set(UNCONSTRAINED)


def python_files(layer: str) -> list[Path]:
    return sorted(
        p for p in (ROOT / layer).rglob("*.py") if not _SKIP_DIRS & set(p.relative_to(ROOT).parts)
    )


def imported_packages(path: Path, own: str) -> set[str]:
    """The top-level names a file imports; a relative import is its own package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(own if node.level else (node.module or "").split(".")[0])
    return names


def violations(layer: str) -> list[str]:
    project = project_packages()
    allowed = MAY_IMPORT[layer]
    found = []
    for path in python_files(layer):
        rel = path.relative_to(ROOT).as_posix()
        for name in sorted((imported_packages(path, layer) & project) - allowed):
            found.append(f"{rel} imports {name}")
    return found


def test_the_layers_are_found() -> None:
    # An empty scan would pass every check below: make sure each layer has code to check.
    for layer in ("common", "producer", "processor", "storage", "stack"):
        assert python_files(layer), f"no .py files found under {layer}/"


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_layer_imports_only_the_layers_below(layer: str) -> None:
    if not (ROOT / layer).is_dir():
        pytest.skip(f"{layer}/ does not exist yet")
    assert violations(layer) == [], (
        f"{layer}/ may import only {', '.join(sorted(MAY_IMPORT[layer]))} of this project"
    )


def test_a_stage_reaching_for_stack_is_caught(tmp_path: Path) -> None:
    # The checker itself: an import hidden in a function, and a relative one, are both read.
    source = tmp_path / "job.py"
    source.write_text(
        "from . import settings\n\ndef jars():\n    from stack.artifacts import resolve\n"
    )
    assert imported_packages(source, "processor") == {"processor", "stack"}
