"""A tiny experiment end to end: results.json keys, TREC files vs ranx, tables/plots, resume = zero forwards."""

import json
from pathlib import Path

import pytest
import torch

from eval.experiment_config import ExperimentConfig, load_experiment
from eval.runner.experiment import run_experiment
from eval.trec import read_qrels
from tests.tiny_experiment import DEPTHS, RULES, WORDS, write_tiny_experiment


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, list[str]]:
    return write_tiny_experiment(tmp_path_factory.mktemp("e2e")), WORDS


def test_config_round_trip(experiment):
    cfg = load_experiment(experiment[0])
    assert isinstance(cfg, ExperimentConfig) and cfg.ablation.depths == DEPTHS


def test_end_to_end_outputs_and_resume(experiment):
    config, _ = experiment
    threads_before = torch.get_num_threads()
    path = run_experiment(load_experiment(config))
    assert torch.get_num_threads() == threads_before  # the config's thread count applies to the run only
    results = json.loads(path.read_text())
    assert results["provenance"]["hardware"]["torch_threads"] == 1
    metrics = results["metrics"]
    for direction in ("t2i", "i2t"):
        for name in ("R@1", "R@5", "R@10", "MRR", "mAP", "MedR"):
            assert f"stage1/{direction}/{name}" in metrics
            for rule in RULES:
                for k in DEPTHS[1:]:
                    assert f"stage2/{rule}/k={k}/{direction}/{name}" in metrics
    assert "stage1/i2t/Recall@5" in metrics and "stage2/itm/k=5/rsum" in metrics
    assert [s["key"] for s in results["settings"]][0] == "stage1"
    assert len(results["settings"]) == 1 + len(RULES) * 3
    assert results["counts"]["dataset"]["images"] == 12
    assert results["counts"]["stage2"]["pairs_scored"] == results["counts"]["stage2"]["unique_keys"] > 0
    model = results["counts"]["stage2"]["model"]  # which reranker and which vision features produced the scores
    assert model["backend"] and model["checkpoint"] and model["vision_features"]
    assert results["provenance"]["versions"]["torch"]
    grid = results["timings"]["stage2"]
    assert 1.0 <= grid["grid_cost_ratio"] <= grid["grid_cost_ratio_with_run_files"]
    # the rerank changes rankings only within the first k: stage-2 k=1 R@1 may differ, R@N equals stage 1
    assert results["curves"]["stage2/itm/k=5"]["t2i"][-1] == pytest.approx(results["curves"]["stage1"]["t2i"][-1])

    # TREC files re-evaluated by ranx give our numbers
    from ranx import Qrels, Run, evaluate

    out = path.parent
    for key in ("stage1", "stage2/itm+itc/k=5", "stage2/rrf/k=10"):
        for direction in ("t2i", "i2t"):
            qrels = Qrels(read_qrels(out / "runs" / f"qrels.{direction}.txt"))
            run_name = key.replace("/", "_") + f".{direction}.trec.gz"
            run = Run.from_file(str(out / "runs" / run_name))  # ranx reads .gz TREC files
            scores = evaluate(qrels, run, ["hit_rate@1", "hit_rate@5", "mrr", "map"], make_comparable=True)
            assert scores["hit_rate@1"] * 100 == pytest.approx(metrics[f"{key}/{direction}/R@1"], abs=1e-6)
            assert scores["hit_rate@5"] * 100 == pytest.approx(metrics[f"{key}/{direction}/R@5"], abs=1e-6)
            assert scores["mrr"] * 100 == pytest.approx(metrics[f"{key}/{direction}/MRR"], abs=1e-6)
            assert scores["map"] * 100 == pytest.approx(metrics[f"{key}/{direction}/mAP"], abs=1e-6)

    for name in ("table.md", "table.tex", "table.csv"):
        assert (out / name).stat().st_size > 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 3 and all(p.stat().st_size > 1000 for p in pngs)
    assert len(sorted(out.glob("*.pdf"))) == len(pngs)

    # second run: everything from the caches, zero model forwards, same metrics
    again = json.loads(run_experiment(load_experiment(config)).read_text())
    assert again["counts"]["stage1"]["images"]["encoded_items"] == 0
    assert again["counts"]["stage1"]["texts"]["encoded_items"] == 0
    assert again["counts"]["stage2"]["pairs_scored"] == 0 and again["counts"]["stage2"]["images_encoded"] == 0
    assert again["metrics"] == pytest.approx(metrics)
    assert again["costs"]["stage2"]["pair"]["source"] == "ledger"
