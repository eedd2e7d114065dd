"""The hyperparameters of the four stage-2 recipes, pinned value by value (synthetic demo, Flickr8k-lite base,
listwise and residual phases): moving them elsewhere must not change a single one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from eval.reranker_recipes.crossfit_stage1 import CrossFitConfig
from eval.reranker_recipes.flickr8k import FlickrItmOptions, flickr_listwise_trainer_config, flickr_trainer_config
from eval.reranker_recipes.flickr8k_residual import flickr_residual_trainer_config
from eval.reranker_recipes.synthetic import SyntheticItmOptions, demo_trainer_config

TRAINER_DEFAULTS = {
    "epochs": 1, "batch_size": 32, "itm_batch_size": None, "lr": 1e-4, "vision_lr": None, "weight_decay": 0.05,
    "warmup_steps": 100, "schedule": "cosine", "grad_clip": 1.0, "itc_weight": 1.0, "temperature_init": 0.07,
    "negatives": "itc", "mined_fraction": 1.0, "mined_from_step": 0, "grouped_from_epoch": 0, "listwise_weight": 0.0,
    "list_size": 6, "list_rows": 8, "listwise_residual_scale": 0.0, "pretrained_lr_scale": 1.0,
    "steps_per_epoch": None, "text_max_length": 35, "seed": 0, "save_every_steps": 0, "select_metric": "rsum",
    "time_budget_s": None, "compute_dtype": "float32", "progress": True, "resume": True,
}
TRAINERS = {
    "synthetic": {"itm_batch_size": 16, "lr": 0.003, "weight_decay": 0.01, "warmup_steps": 50,
                  "temperature_init": 0.1, "negatives": "topk", "mined_fraction": 0.5, "steps_per_epoch": 1100},
    "flickr8k": {"epochs": 5, "lr": 0.001, "warmup_steps": 40, "negatives": "topk", "mined_fraction": 0.5,
                 "mined_from_step": 600, "pretrained_lr_scale": 0.1, "steps_per_epoch": 240, "text_max_length": 32,
                 "time_budget_s": 1500.0, "compute_dtype": "bfloat16"},
    "flickr8k_listwise": {"epochs": 3, "itm_batch_size": 16, "lr": 0.0003, "warmup_steps": 20, "negatives": "topk",
                          "mined_fraction": 0.5, "listwise_weight": 1.0, "pretrained_lr_scale": 0.1,
                          "steps_per_epoch": 100, "text_max_length": 32, "time_budget_s": 1200.0,
                          "compute_dtype": "bfloat16"},
    "flickr8k_residual": {"itm_batch_size": 16, "lr": 0.0003, "warmup_steps": 20, "negatives": "topk",
                          "listwise_weight": 1.0, "listwise_residual_scale": 1.0, "pretrained_lr_scale": 0.1,
                          "steps_per_epoch": 300, "text_max_length": 32, "time_budget_s": 1200.0,
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
CROSSFIT = {"folds": 5, "epochs": 40, "batch_images": 1024, "learning_rate": 0.002, "weight_decay": 0.1,
            "warmup_steps": 30, "depth": 16, "seed": 0}


def test_trainer_configs_of_the_four_recipes():
    made = {"synthetic": demo_trainer_config(), "flickr8k": flickr_trainer_config(),
            "flickr8k_listwise": flickr_listwise_trainer_config(),
            "flickr8k_residual": flickr_residual_trainer_config()}
    for name, config in made.items():
        assert dataclasses.asdict(config) == {**TRAINER_DEFAULTS, **TRAINERS[name]}, name


def test_options_of_the_recipes():
    synthetic = dataclasses.asdict(SyntheticItmOptions(run_dir=Path("run")))
    assert {k: v for k, v in synthetic.items() if k not in ("run_dir", "trainer")} == SYNTHETIC_OPTIONS
    flickr = dataclasses.asdict(FlickrItmOptions(run_dir=Path("run")))
    assert {k: v for k, v in flickr.items() if k not in ("run_dir", "trainer")} == FLICKR_OPTIONS
    assert dataclasses.asdict(CrossFitConfig()) == CROSSFIT
