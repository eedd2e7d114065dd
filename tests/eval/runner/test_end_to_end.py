"""A tiny experiment end to end: results.json keys, TREC files vs ranx, tables/plots, resume = zero forwards."""

import json
from pathlib import Path

import open_clip
import pytest
import torch

from eval.experiment_config import ExperimentConfig, load_experiment
from eval.runner.experiment import run_experiment
from eval.trec import read_qrels
from stage2_rerank.random_checkpoint import save_random_checkpoint, tiny_blip2_itm_config

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
RULES = ["itm", "itm+itc", "alpha", "rrf"]
DEPTHS = [0, 1, 5, 10]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("e2e")
    (root / "rrbench-e2e-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(root / "rrbench-e2e-clip.json")
    words = ("a an the of to on at in and is there with its left right above below under over next beside "
             "small large big little red green blue yellow purple orange white black gray grey pink brown cyan "
             "circle square triangle star cross diamond hexagon shape shapes picture image scene one two three "
             "side top bottom middle center centre sits placed positioned lies appears found it which while "
             "has contains shows showing ,").split()
    save_random_checkpoint(root / "blip2", tiny_blip2_itm_config(image_size=32, vocab_size=256), words, seed=0)
    config = root / "tiny.yaml"
    config.write_text(f"""
experiment: tiny
threads: 1
output_dir: {root / 'results'}
cache_dir: {root / 'cache'}
dataset:
  format: synthetic
  split: test
  synthetic: {{num_train: 4, num_val: 4, num_test: 12, image_size: 32, seed: 3}}
stage1:
  depth: 20
  encoder: {{backend: open_clip, model: rrbench-e2e-clip, batch_size: 16, num_workers: 0}}
  index: {{type: flat}}
stage2:
  model: {root / 'blip2'}
  pair_batch_size: 64
ablation:
  depths: {DEPTHS}
  rules: {RULES}
""")
    return config, words


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
