"""Fine-tuning from a checkpoint (``TrainConfig.init_from``): architecture and weights come from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stage1_dual.trainable.checkpoint import CheckpointError, read_checkpoint_config
from stage1_dual.training.trainer import train_dual_encoder
from tests.stage1_dual.trainable_helpers import tiny_model_config, tiny_train_config, toy_split


def test_init_from_starts_at_the_checkpoint_weights(tmp_path: Path):
    split = toy_split(tmp_path / "images")
    first = train_dual_encoder(tiny_train_config(epochs=2), split, None, tmp_path / "first")
    start = load_file(str(first.best_dir / "model.safetensors"))
    other_arch = tiny_model_config()
    other_arch.embed_dim = 8  # ignored: the architecture comes from the checkpoint
    # a learning rate so small that the weights cannot move measurably: the run ends where it started
    tuned = train_dual_encoder(tiny_train_config(model=other_arch, init_from=first.best_dir, epochs=1,
                                                 learning_rate=1e-12, weight_decay=0.0), split, None, tmp_path / "tuned")
    assert read_checkpoint_config(tuned.best_dir)["model"]["embed_dim"] == 16
    end = load_file(str(tuned.best_dir / "model.safetensors"))
    assert start.keys() == end.keys()
    assert all(torch.allclose(start[k], end[k], atol=1e-6) for k in start)
    fresh = train_dual_encoder(tiny_train_config(epochs=1, learning_rate=1e-12, weight_decay=0.0), split, None,
                               tmp_path / "fresh")
    fresh_weights = load_file(str(fresh.best_dir / "model.safetensors"))
    assert not all(torch.allclose(start[k], fresh_weights[k], atol=1e-6) for k in start)


def test_init_from_a_missing_checkpoint_is_an_error(tmp_path: Path):
    with pytest.raises(CheckpointError, match="not an rrbench_dual checkpoint"):
        train_dual_encoder(tiny_train_config(init_from=tmp_path / "nope"), toy_split(tmp_path / "images"), None,
                           tmp_path / "run")
