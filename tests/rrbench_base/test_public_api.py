"""The public face of rrbench_base: every exported name resolves to its module's object, lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys

import rrbench_base


def test_every_exported_name_resolves_to_its_module():
    for name, module in rrbench_base._EXPORTS.items():
        assert getattr(rrbench_base, name) is getattr(importlib.import_module(module), name)
    assert set(rrbench_base.__all__) == set(rrbench_base._EXPORTS)


def test_importing_the_package_imports_nothing_heavy():
    code = "import sys, rrbench_base; print(any(m in sys.modules for m in ('torch', 'numpy', 'PIL')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
