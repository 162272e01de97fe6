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
    # stack/ starts the stages as processes; it reads their settings to launch them
    # (stack/stage_env.py). What runs inside the service images is narrower: see below.
    "stack": {"common", "stack", *STAGES},
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


# --- No import cycles, between packages or inside one ------------------------------------------


def module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, layers: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (at any depth, type-checking blocks included:
    a cycle that only works because of import order, or only while not type checking, is one)."""
    files = [p for layer in layers if (root / layer).is_dir() for p in (root / layer).rglob("*.py")
             if not _SKIP_DIRS & set(p.relative_to(root).parts)]  # fmt: skip
    modules = {module_of(p, root): p for p in files}

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                source = node.module or ""
                if node.level:
                    source = f"{base}.{source}" if source else base
                # `from package import module` imports the module; `from module import name`
                # the module.
                targets.update(
                    known(f"{source}.{a.name}") if f"{source}.{a.name}" in modules
                    else known(source)
                    for a in node.names
                )  # fmt: skip
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_service_images_need_only_common_and_stack() -> None:
    # The kafka and cassandra images carry common/ and stack/ alone: whatever `python -m
    # stack.serve` imports, however indirectly, must be in them.
    graph = import_graph(ROOT, (*MAY_IMPORT, *UNCONSTRAINED))
    needed, todo = set(), ["stack.serve"]
    while todo:
        module = todo.pop()
        if module not in needed:
            needed.add(module)
            todo.extend(graph.get(module, ()))
    assert "stack.settings" in needed, "the walk found nothing"
    outside = sorted(m for m in needed if m.split(".")[0] not in ("common", "stack"))
    assert outside == [], f"stack.serve needs modules the service images lack: {outside}"


def test_no_import_cycles_anywhere() -> None:
    graph = import_graph(ROOT, (*MAY_IMPORT, *UNCONSTRAINED))
    assert len(graph) > 50, "the import graph looks empty"
    assert cycles(graph) == []


def test_a_cycle_inside_a_package_is_caught(tmp_path: Path) -> None:
    package = tmp_path / "producer"
    (package / "sources").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sources" / "__init__.py").write_text("")
    (package / "client.py").write_text("from producer.sources.base import Error\n")
    (package / "sources" / "base.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..client import Client\n"
    )
    (package / "plain.py").write_text("from producer import client\n")
    graph = import_graph(tmp_path, ("producer",))
    assert cycles(graph) == [["producer.client", "producer.sources.base"]]
    assert graph["producer.plain"] == {"producer.client"}
