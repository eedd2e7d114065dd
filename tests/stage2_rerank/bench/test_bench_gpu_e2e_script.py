"""scripts/bench_gpu_e2e.py --tiny on the CPU: rrbench run end to end, consistent JSON + Markdown."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from stage2_rerank.bench.flops import RerankFlops
from stage2_rerank.bench.random_checkpoint import tiny_blip2_itm_config

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bench_gpu_e2e.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_gpu_e2e", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_cpu_run_reports_stages_rates_and_floor_ratios(tmp_path, capsys):
    args = ["--tiny", "--device", "cpu", "--images", "12", "--captions", "36", "--depth", "5", "--workers", "1",
            "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--peak-tflops", "0.001"]
    report = load_script().main(args)
    saved = json.loads((tmp_path / "out" / "bench_gpu_e2e.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(report["summary"]))
    summary = saved["summary"]
    stage2, seconds, flops = summary["stage2"], summary["seconds"], summary["flops"]
    # every query reranks its top 5: 36 caption queries + 12 image queries
    assert stage2["candidate_slots"] == (36 + 12) * 5 and stage2["depth"] == 5
    assert stage2["pairs_scored"] == stage2["unique_pairs"] <= stage2["candidate_slots"]
    assert stage2["images_encoded"] == 12
    assert stage2["candidate_slots_per_s"] == pytest.approx(stage2["candidate_slots"] / seconds["stage2_rerank"])
    assert summary["peak_gpu_memory_gib"] is None
    expected = RerankFlops.of(tiny_blip2_itm_config(image_size=32, vocab_size=256), flops["text_tokens_mean"])
    assert flops["itm_per_pair"] == expected.itm_per_pair
    assert flops["qformer_total"] == expected.stage2_qformer(stage2["pairs_scored"], 12, 36)
    assert flops["rate_flop_per_s"] == 1e9
    assert summary["efficiency"]["qformer"] == pytest.approx(
        flops["qformer_total"] / 1e9 / seconds["stage2_qformer"])
    assert summary["targets"]["vision"]["met"] == (summary["efficiency"]["vision"] >= 0.5)
    assert seconds["stage1"] > 0 and seconds["stage2_vision"] > 0 and seconds["prepare_checkpoint"] > 0
    assert saved["provenance"]["git"]["sha"] and saved["provenance"]["hardware"]["cpu"]
    markdown = (tmp_path / "out" / "bench_gpu_e2e.md").read_text()
    assert "| qformer |" in markdown and "unique pairs/s" in markdown
    assert "| qformer |" in capsys.readouterr().out


def test_caption_count_must_be_a_small_multiple_of_images(tmp_path):
    with pytest.raises(SystemExit):
        load_script().parse(["--images", "10", "--captions", "15"])
    with pytest.raises(SystemExit):
        load_script().parse(["--images", "10", "--captions", "60"])
