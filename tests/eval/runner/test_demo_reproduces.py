"""The demo's first run on a fresh checkout reproduces every metric of ``results/demo/results.json``, with this
CPU's own kernels and with AVX2 kernels forced (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``).

It evaluates the two checkpoints shipped in ``results/demo/models/`` (fp64 models, exact float64 index, see
``configs/demo.yaml``) with fresh caches, in a fresh process each, about a minute and a half per run on one core.
A change that moves any demo number fails here until ``results/demo/`` is regenerated with
``bash scripts/run_ablation.sh``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
KERNELS = {"native": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


@pytest.mark.parametrize("kernels", sorted(KERNELS))
def test_demo_first_run_reproduces_committed_results(tmp_path, kernels):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           **KERNELS[kernels]}
    command = [sys.executable, "-m", "eval.cli", "run", "configs/demo.yaml", f"cache_dir={tmp_path / 'cache'}",
               f"output_dir={tmp_path / 'out'}"]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = json.loads((REPO / "results" / "demo" / "results.json").read_text())["metrics"]
    got = json.loads((tmp_path / "out" / "demo" / "results.json").read_text())["metrics"]
    assert got.keys() == expected.keys()
    differ = {k: (expected[k], got[k]) for k in expected if got[k] != expected[k]}
    assert not differ, f"{len(differ)} of {len(expected)} metrics differ, e.g. {sorted(differ.items())[:5]}"
