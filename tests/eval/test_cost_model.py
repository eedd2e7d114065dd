"""The cost model's arithmetic (eval.cost_model) and scripts/cost_model.py on the measured files in results/."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from eval.cost_model import UnitCosts, Workload, predict

ROOT = Path(__file__).resolve().parents[2]
UNIT = UnitCosts("dev", image_encode_s=1.0, text_encode_s=0.5, search_s=1e-3, vision_s=2.0, qformer_image_s=0.25,
                 qformer_text_s=0.125, pair_s=0.01, rank_slot_s=1e-4, gather_slot_s=1e-5, weights_bytes=100.0,
                 stage2_device_bytes=50.0, embedding_bytes=4.0, vision_feature_bytes=10.0)


def test_workload_counts():
    coco = Workload("coco", 5000, 25000, 25000, 5000, 128)
    assert coco.candidate_slots == 30000 * 128 == 3_840_000
    assert coco.reranked_images == 5000 and coco.searches == 25000 * 5000 + 5000 * 25000
    gallery = Workload("1M", 1_000_000, 100_000, 100_000, 0, 128)
    assert gallery.reranked_images == pytest.approx(1_000_000 * (1 - math.exp(-12.8)))
    assert Workload("few", 1000, 10, 10, 0, 5).reranked_images == pytest.approx(1000 * (1 - math.exp(-0.05)))


def test_prediction_by_hand_on_one_and_four_devices():
    work = Workload("w", images=100, captions=200, t2i_queries=200, i2t_queries=100, depth=10, unique_pair_fraction=0.5)
    one = predict(UNIT, work, 1)
    s = one["seconds"]
    assert s["stage1_encode"] == 100 * 1.0 + 200 * 0.5
    assert s["stage1_search"] == pytest.approx((200 * 100 + 100 * 200) * 1e-3)
    assert s["stage2_vision"] == 100 * 2.0
    assert s["stage2_qformer"] == pytest.approx(100 * 0.25 + 200 * 0.125 + 1500 * 0.01)
    assert s["stage2_bookkeeping"] == pytest.approx(3000 * 1e-4) and s["grid_on_gatherer"] == pytest.approx(0.03)
    assert s["total"] == pytest.approx(sum(v for k, v in s.items() if k != "total"))
    four = predict(UNIT, work, 4)["seconds"]
    for key in ("stage1_encode", "stage1_search", "stage2_vision", "stage2_qformer", "stage2_bookkeeping"):
        assert four[key] == pytest.approx(s[key] / 4)
    assert four["grid_on_gatherer"] == s["grid_on_gatherer"]  # once, on the gathering process
    memory = predict(UNIT, work, 4)["memory"]
    assert memory["device_bytes"] == 100 + 50 + 300 * 4 / 4
    assert memory["host_vision_features_bytes"] == 100 * 10 / 4


def test_script_reads_the_measured_files(tmp_path):
    spec = importlib.util.spec_from_file_location("cost_model_script", ROOT / "scripts" / "cost_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--out", str(tmp_path)])
    measured = result["unit_costs"][0]
    gpu = json.loads((ROOT / "results/bench_rerank_gpu/bench_rerank_device.json").read_text())["runs"][0]
    assert measured["pair_s"] == gpu["reranker"]["seconds"]["itm"] / gpu["workload"]["distinct_pairs"]
    assert result["unit_costs"][1]["pair_s"] == pytest.approx(
        result["sources"]["flops"]["itm_per_pair"] / (0.5 * 989e12))
    assert len(result["predictions"]) == 2 * (3 + 3 + 1)
    assert {p["devices"] for p in result["predictions"]} == {1, 8, 64}
    assert json.loads((tmp_path / "cost_model.json").read_text())["predictions"] == result["predictions"]
    assert "| COCO 5K" in (tmp_path / "cost_model.md").read_text()
