"""Stage2TrainingRun: the recipe names its sections; scripts/train_stage2.py trains a tiny synthetic recipe from a
YAML file with overrides, resumes nothing when told, and scores an existing checkpoint without training."""

from __future__ import annotations

import importlib.util
import json
import sys
import typing
from pathlib import Path

import pytest
import torch

from eval.reranker_recipes.training_run import EVALUATORS, RECIPES, SECTIONS, Stage2TrainingRun
from eval.typed_config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[3]
SYNTHETIC = ROOT / "configs" / "train" / "stage2_synthetic.yaml"
SCRIPT = ROOT / "scripts" / "train_stage2.py"


def test_every_recipe_name_has_its_sections_its_procedure_and_its_evaluation():
    names = set(typing.get_args(typing.get_type_hints(Stage2TrainingRun)["recipe"]))
    assert names == set(SECTIONS) == set(RECIPES) == set(EVALUATORS)


def test_a_missing_or_a_foreign_section_is_an_error_naming_it():
    with pytest.raises(ConfigError, match="flickr8k section missing: recipe flickr8k needs flickr8k"):
        load_config(Stage2TrainingRun, SYNTHETIC, ["recipe=flickr8k"])
    with pytest.raises(ConfigError, match="residual section is not read by recipe synthetic"):
        load_config(Stage2TrainingRun, SYNTHETIC, ["residual.stage1=x"])
    with pytest.raises(ConfigError, match="'trainer.lr'"):  # the former name is refused, not ignored
        load_config(Stage2TrainingRun, SYNTHETIC, ["trainer.lr=0.1"])
    with pytest.raises(ConfigError, match="recipe"):
        load_config(Stage2TrainingRun, SYNTHETIC, ["recipe=flickr"])


def _script():
    spec = importlib.util.spec_from_file_location("train_stage2_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


TINY = ["synthetic.synthetic.num_train=60", "synthetic.synthetic.num_val=12", "synthetic.synthetic.num_test=12",
        "synthetic.synthetic.image_size=32", "synthetic.grid.image_size=32", "synthetic.hidden_size=16",
        "synthetic.num_query_tokens=2", "synthetic.grid.widths=[8,8,16]", "synthetic.grid.feature_dim=16",
        "synthetic.val_images=6", "synthetic.val_depth=3", "trainer.steps_per_epoch=3", "trainer.batch_size=8",
        "trainer.itm_batch_size=4", "trainer.warmup_steps=1", "trainer.progress=false", "depths=[1,2]"]


def test_train_stage2_script_trains_a_tiny_recipe_then_scores_the_checkpoint_alone(tmp_path: Path):
    script = _script()
    threads = torch.get_num_threads()
    try:
        trained = script.main([str(SYNTHETIC), *TINY, f"synthetic.data_cache_dir={tmp_path / 'data'}",
                               "--run-dir", str(tmp_path / "run"), "--skip-test", "--threads", "1"])
        best = Path(trained["checkpoint"])
        assert best == tmp_path / "run" / "best" and (best / "model.safetensors").is_file()
        records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records if r["event"] == "train"] == [1, 2, 3]
        assert not list((tmp_path / "run").glob("test_results_*"))  # --skip-test

        scored = script.main([str(SYNTHETIC), *TINY, f"synthetic.data_cache_dir={tmp_path / 'data'}",
                              "--evaluate-only", str(best)])
    finally:
        torch.set_num_threads(threads)
    assert set(scored["test"]) >= {"stage1", "itm@1", "itm@2", "stage1_source"}
    saved = json.loads((tmp_path / "run" / "test_results_best_linear_or_own_itc.json").read_text())
    assert saved["itm@2"] == scored["test"]["itm@2"]
    log_lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log_lines) == len(records)  # evaluating did not train


def test_no_resume_starts_the_run_over(tmp_path: Path):
    script = _script()
    args = [str(SYNTHETIC), *TINY, f"synthetic.data_cache_dir={tmp_path / 'data'}", "--run-dir", str(tmp_path / "run"),
            "--skip-test", "--threads", "1"]
    threads = torch.get_num_threads()
    try:
        script.main([*args, "trainer.max_steps=2"])
        script.main(args)  # resumes: steps 3 only
        resumed = [json.loads(x)["step"] for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
                   if json.loads(x)["event"] == "train"]
        script.main([*args, "--no-resume"])
    finally:
        torch.set_num_threads(threads)
    steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
             if json.loads(x)["event"] == "train"]
    assert resumed == [1, 2, 3] and steps == [1, 2, 3, 1, 2, 3]
