"""scripts/bench_rerank.py --small runs end to end and writes consistent JSON + Markdown."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bench_rerank.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_rerank", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_benchmark_writes_results(tmp_path, capsys):
    args = ["--small", "--out", str(tmp_path), "--images", "6", "--captions", "12", "--depth", "3",
            "--lavis-t2i", "3", "--lavis-i2t", "2", "--stock-pairs", "2", "--parity-pairs", "4",
            "--precision-queries", "5"]
    results = load_script().main(args)
    saved = json.loads((tmp_path / "bench_rerank_small.json").read_text())
    assert saved["workload"] == results["workload"]
    assert saved["workload"]["candidate_slots_both_directions"] == 12 * 3 + 6 * 3
    parity = saved["parity_vs_stock"]
    assert parity["pairs"] == 4 and parity["distinct_images"] == 4
    for key in ("itm_max_abs_error_kv_cache", "itc_max_abs_error_kv_cache", "itm_max_abs_error_no_kv_cache"):
        assert parity[key] < parity["tolerance"]
    assert saved["stock_forward"]["itm_max_abs_diff_vs_reranker"] < 1e-5
    rates = saved["rates"]
    assert rates["c_over_a"] == rates["c_reranker_pairs_per_s"] / rates["a_stock_pairs_per_s"]
    kv = saved["kv_cache_ablation"]
    assert kv["pairs"] == saved["workload"]["distinct_pairs"] and len(kv["itm_seconds_with_kv_cache"]) == 2
    assert saved["precision_parity"]["dtype"] == "bfloat16" and saved["precision_parity"]["itm"]["n_queries"] == 5
    provenance = saved["provenance"]
    assert provenance["command"] == "scripts/bench_rerank.py " + " ".join(args) and provenance["seed"] == 0
    assert provenance["hardware"]["torch_threads"] >= 1 and "finished_at" in provenance
    markdown = (tmp_path / "bench_rerank_small.md").read_text()
    assert "c/a =" in markdown and f"Command: `{provenance['command']}`" in markdown
    assert f"finished {provenance['finished_at']}" in markdown and "Load average at start" in markdown
    assert "c/a =" in capsys.readouterr().out
