"""The layering of DESIGN.md, checked on the import statements of every module (parsed, never imported).

Edges: every ``import`` / ``from ... import`` anywhere in a module (top level, functions, ``TYPE_CHECKING``
blocks), resolved to modules of ``rrbench_base``, ``stage1_dual``, ``stage2_rerank`` and ``eval``; ``from pkg import name``
points at ``pkg.name`` when that is a module, else at ``pkg``. Importing ``a.b.c`` also runs the packages
``a`` and ``a.b``, so those are edges too, except packages that contain the importing module (Python has
already started them when the module runs).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = "rrbench_base"
PACKAGES = (BASE, "stage1_dual", "stage2_rerank", "eval")
TRAINING = "stage2_rerank.training"
MAY_IMPORT_TRAINING = (TRAINING, "stage2_rerank.bench", "eval.reranker_recipes")
"""The only modules that may import ``stage2_rerank.training``: itself, stage-2 benchmarks and eval's training
recipes (which join data and both stages)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


MODULES = all_modules()


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(name: str) -> list[tuple[str, str, int]]:
    """``(module, imported name or "", line)`` of each import in module ``name`` that names a project module."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"), filename=str(MODULES[name]))
    package = name if is_package(name) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.append((f"{base}.{alias.name}", "", node.lineno))
                else:
                    found.append((base, alias.name, node.lineno))
    return [(target, imported, line) for target, imported, line in found if target.split(".")[0] in PACKAGES]


def edges() -> dict[str, set[str]]:
    """Module -> the project modules importing it runs (see the module doc)."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        own = set(parents(name)) | ({name} if is_package(name) else set())
        for target, _, _ in imports_of(name):
            for module in parents(target) + [target]:
                if module in MODULES and module not in own and module != name:
                    graph[name].add(module)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_sees_the_stages():
    graph = edges()
    assert "stage2_rerank.rerank" in graph["eval.runner.experiment"]
    assert any(target.startswith(TRAINING) for target in graph["eval.reranker_recipes.flickr8k"])


def test_no_import_cycles():
    assert find_cycles(edges()) == []


@pytest.mark.parametrize("stage", ["stage1_dual", "stage2_rerank"])
def test_a_stage_never_imports_eval_or_the_other_stage(stage):
    other = "stage2_rerank" if stage == "stage1_dual" else "stage1_dual"
    bad = [f"{name}:{line} imports {target}" for name in MODULES if name.split(".")[0] == stage
           for target, _, line in imports_of(name) if target.split(".")[0] in ("eval", other)]
    assert bad == []


def test_the_base_imports_no_stage_and_no_eval():
    bad = [f"{name}:{line} imports {target}" for name in MODULES if name.split(".")[0] == BASE
           for target, _, line in imports_of(name) if target.split(".")[0] != BASE]
    assert bad == []


def in_package(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_only_training_code_imports_stage2_training():
    bad = [f"{name}:{line} imports {target}" for name in MODULES if not in_package(name, MAY_IMPORT_TRAINING)
           for target, _, line in imports_of(name) if in_package(target, (TRAINING,))]
    assert bad == []


def test_inference_never_reaches_training():
    """Nothing outside ``MAY_IMPORT_TRAINING`` reaches ``stage2_rerank.training`` through any chain of imports
    (stage-2 inference, the experiment runner, competition mode, the CLI)."""
    graph = edges()
    bad = []
    for start in sorted(name for name in MODULES if not in_package(name, MAY_IMPORT_TRAINING)):
        seen, todo = {start}, [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        bad += [f"{start} reaches {name}" for name in sorted(seen) if in_package(name, (TRAINING,))][:1]
    assert bad == []


def test_private_names_stay_in_their_package():
    """A ``_name`` is imported only by modules of the package (directory) that defines it."""
    bad = []
    for name in MODULES:
        package = name if is_package(name) else name.rpartition(".")[0]
        for target, imported, line in imports_of(name):
            private = imported.startswith("_") or any(part.startswith("_") for part in target.split("."))
            home = target if target in MODULES and is_package(target) else target.rpartition(".")[0]
            if private and not imported.startswith("__") and home != package:
                bad.append(f"{name}:{line} imports {target}{'.' + imported if imported else ''}")
    assert bad == []


def test_stage2_value_types_import_nothing_from_the_package():
    assert [target for target, _, _ in imports_of("stage2_rerank.types")] == []
