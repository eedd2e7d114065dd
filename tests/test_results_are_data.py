"""Results are data (issue 19, item 5): ``results/`` holds what runs wrote and their narrative, never code; the
one-off study scripts live in ``scripts/studies/<study>/``, import without side effects, answer ``--help``, need no
``sys.path`` patching and use only public names of the project's modules."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "scripts" / "studies"
STUDY_SCRIPTS = sorted(path for path in STUDIES.glob("*/*.py") if path.name != "__init__.py")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_no_python_under_results():
    assert sorted(str(path.relative_to(ROOT)) for path in (ROOT / "results").rglob("*.py")) == []


def test_each_study_with_scripts_has_its_results_folder():
    assert STUDY_SCRIPTS, "no study scripts found under scripts/studies/"
    missing = sorted({path.parent.name for path in STUDY_SCRIPTS if not (ROOT / "results" / path.parent.name
                                                                       / "README.md").is_file()})
    assert missing == []


def private_imports(tree: ast.AST) -> list[str]:
    """``module.name`` of each import of a ``_``-prefixed module or name (``__future__`` aside)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {alias.name}" for alias in node.names
                      if any(part.startswith("_") for part in alias.name.split("."))]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module = "." * node.level + (node.module or "")
            bad_module = any(part.startswith("_") for part in (node.module or "").split("."))
            found += [f"line {node.lineno}: from {module} import {alias.name}" for alias in node.names
                      if bad_module or alias.name.startswith("_")]
    return found


def test_the_private_import_check_sees_private_names():
    tree = ast.parse("from eval.runner.experiment import _direction_data\nimport a._b\nfrom x import y\n"
                     "from __future__ import annotations\n")
    assert private_imports(tree) == ["line 1: from eval.runner.experiment import _direction_data",
                                     "line 2: import a._b"]


@pytest.mark.parametrize("path", STUDY_SCRIPTS, ids=module_name)
def test_study_script_uses_public_names_and_no_path_patching(path: Path):
    source = path.read_text(encoding="utf-8")
    assert private_imports(ast.parse(source, filename=str(path))) == []
    assert "sys.path" not in source


@pytest.mark.parametrize("path", STUDY_SCRIPTS, ids=module_name)
def test_study_script_imports_and_answers_help(path: Path, monkeypatch, capsys):
    module = importlib.import_module(module_name(path))
    assert callable(getattr(module, "main", None)), "a study script keeps its work in main() (import runs nothing)"
    monkeypatch.setattr(sys, "argv", [path.name, "--help"])
    with pytest.raises(SystemExit) as stopped:
        module.main()
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")
