"""The hyperparameters of the four stage-2 recipes (synthetic demo, Flickr8k-lite base, listwise and residual
phases), pinned value by value: they were Python functions (``demo_trainer_config``, ``flickr_trainer_config``,
``flickr_listwise_trainer_config``, ``flickr_residual_trainer_config`` and the options' defaults) and now are
``configs/train/stage2_*.yaml``; the values below are the functions' (renamed keys, same values)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from eval.reranker_recipes.training_run import Stage2TrainingRun
from eval.typed_config import load_config

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = {"synthetic": "stage2_synthetic.yaml", "flickr8k": "stage2_flickr8k_lite.yaml",
           "flickr8k_listwise": "stage2_flickr8k_lite_listwise.yaml",
           "flickr8k_residual": "stage2_flickr8k_lite_residual.yaml"}
FIRST_PHASE = Path(".cache/rrbench/models/stage2_flickr8k_lite/best")

TRAINER_DEFAULTS = {
    "epochs": 1, "batch_size": 32, "itm_batch_size": None, "learning_rate": 1e-4, "vision_learning_rate": None,
    "weight_decay": 0.05,
    "warmup_steps": 100, "schedule": "cosine", "grad_clip_norm": 1.0, "itc_weight": 1.0, "temperature_init": 0.07,
    "negatives": "itc", "mined_fraction": 1.0, "mined_from_step": 0, "grouped_from_epoch": 0, "listwise_weight": 0.0,
    "list_size": 6, "list_rows": 8, "listwise_residual_scale": 0.0, "pretrained_lr_scale": 1.0,
    "steps_per_epoch": None, "text_max_length": 35, "seed": 0, "checkpoint_every_steps": 0, "selection_metric": "rsum",
    "max_train_seconds": 0.0, "max_steps": 0, "compute_dtype": "float32", "progress": True, "resume": True,
}
TRAINERS = {
    "synthetic": {"itm_batch_size": 16, "learning_rate": 0.003, "weight_decay": 0.01, "warmup_steps": 50,
                  "temperature_init": 0.1, "negatives": "topk", "mined_fraction": 0.5, "steps_per_epoch": 1100},
    "flickr8k": {"epochs": 5, "learning_rate": 0.001, "warmup_steps": 40, "negatives": "topk", "mined_fraction": 0.5,
                 "mined_from_step": 600, "pretrained_lr_scale": 0.1, "steps_per_epoch": 240, "text_max_length": 32,
                 "max_train_seconds": 1500.0, "compute_dtype": "bfloat16"},
    "flickr8k_listwise": {"epochs": 3, "itm_batch_size": 16, "learning_rate": 0.0003, "warmup_steps": 20,
                          "negatives": "topk", "mined_fraction": 0.5, "listwise_weight": 1.0,
                          "pretrained_lr_scale": 0.1, "steps_per_epoch": 100, "text_max_length": 32,
                          "max_train_seconds": 1200.0, "compute_dtype": "bfloat16"},
    "flickr8k_residual": {"itm_batch_size": 16, "learning_rate": 0.0003, "warmup_steps": 20, "negatives": "topk",
                          "listwise_weight": 1.0, "listwise_residual_scale": 1.0, "pretrained_lr_scale": 0.1,
                          "steps_per_epoch": 300, "text_max_length": 32, "max_train_seconds": 1200.0,
                          "compute_dtype": "bfloat16"},
}
SYNTHETIC_OPTIONS = {
    "synthetic": {"num_train": 10000, "num_val": 1000, "num_test": 1000, "image_size": 64, "seed": 0,
                  "captions_per_image": 5},
    "data_cache_dir": Path(".cache/rrbench/data"),
    "grid": {"image_size": 64, "widths": (16, 32, 64), "feature_dim": 64, "groups": 8, "first_stride": 2},
    "hidden_size": 64, "num_layers": 2, "num_attention_heads": 4, "num_query_tokens": 8,
    "cross_attention_frequency": 1, "initializer_range": 0.08, "group_batches": False, "val_images": 200,
    "val_depth": 8,
}
FLICKR_OPTIONS = {
    "root": Path("../shared/data/flickr8k"), "cache_dir": Path(".cache/rrbench/stage2_train"),
    "frozen_feature_cache": Path(".cache/rrbench/features"), "provider": "efficientnet_lite0",
    "grid_image_size": None, "num_layers": 6, "num_query_tokens": 8, "cross_attention_frequency": 2,
    "freeze_word_embeddings": True, "in_batch_temperature": 0.3, "stage1_depth": 16, "negative_temperature": 0.05,
    "val_images": 100, "val_depth": 5, "init_from": None,
}
FLICKR_INIT_FROM = {"flickr8k": None, "flickr8k_listwise": FIRST_PHASE, "flickr8k_residual": FIRST_PHASE}
CROSSFIT = {"folds": 5, "epochs": 40, "batch_images": 1024, "learning_rate": 0.002, "weight_decay": 0.1,
            "warmup_steps": 30, "depth": 16, "seed": 0}



def _run(name: str) -> Stage2TrainingRun:
    return load_config(Stage2TrainingRun, ROOT / "configs" / "train" / CONFIGS[name])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_recipe_file_gives_the_trainer_config_of_its_former_function(name):
    assert dataclasses.asdict(_run(name).trainer) == {**TRAINER_DEFAULTS, **TRAINERS[name]}


def test_the_synthetic_recipe_file_gives_the_former_default_options():
    run = _run("synthetic")
    assert run.recipe == "synthetic" and run.run_dir == Path(".cache/rrbench/models/stage2_synthetic")
    assert dataclasses.asdict(run.synthetic) == SYNTHETIC_OPTIONS
    assert run.flickr8k is None and run.residual is None and run.depths == [1, 2, 4, 8, 16]


@pytest.mark.parametrize("name", ["flickr8k", "flickr8k_listwise", "flickr8k_residual"])
def test_the_flickr_recipe_files_give_the_former_default_options(name):
    run = _run(name)
    assert dataclasses.asdict(run.flickr8k) == {**FLICKR_OPTIONS, "init_from": FLICKR_INIT_FROM[name]}
    assert run.recipe == ("flickr8k_residual" if name == "flickr8k_residual" else "flickr8k")
    assert run.synthetic is None and run.depths == [1, 2, 4, 8, 16]
    if name == "flickr8k_residual":
        assert dataclasses.asdict(run.residual.crossfit) == CROSSFIT
        assert run.residual.stage1 == Path(".cache/rrbench/models/stage1_flickr8k_lite/best")
