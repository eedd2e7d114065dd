"""The README's "Python API" snippet runs as written (offline, demo models) and prints metrics of both stages."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 15


def readme_snippet() -> str:
    """The first ```python block of README.md's "Python API" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block in the README's Python API section"
    return match.group(1)


def test_the_snippet_is_short():
    assert len(readme_snippet().strip().splitlines()) <= MAX_LINES


def test_the_snippet_runs_and_prints_metrics(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOME": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", readme_snippet()], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith(("stage 1 ", "rerank "))]
    assert [line.split(" {")[0] for line in lines] == ["stage 1", "rerank"]
    for line in lines:
        metrics = ast.literal_eval(line[line.index("{"):])
        assert 0.0 <= metrics["t2i/R@1"] <= metrics["t2i/R@5"] <= 100.0 and "t2i/MRR" in metrics
