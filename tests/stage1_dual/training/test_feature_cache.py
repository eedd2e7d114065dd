"""LiT feature cache: a hit runs no tower forward; ragged states round-trip; keys follow tower and data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stage1_dual.trainable.image_towers import ImageTower
from stage1_dual.trainable.model_config import TextTowerConfig
from stage1_dual.trainable.text_towers import MiniLMTower, build_text_tower
from stage1_dual.training.feature_cache import FrozenFeatureCache
from stage1_dual.training.feature_table import table_from_batches
from stage1_dual.training.split_sources import build_split_sources
from stage1_dual.training.trainer import train_dual_encoder
from tests.stage1_dual.trainable_helpers import tiny_model_config, tiny_train_config, toy_split, write_tiny_bert


def test_ragged_table_batches_restore_the_padded_states():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    table = table_from_batches([(np.array([0, 1]), {"hidden": hidden, "attention_mask": mask})])
    assert table.ragged["hidden"][0].shape == (5, 3)  # only real tokens stored
    batch = table.batch(np.array([1, 0]))
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    torch.testing.assert_close(batch["hidden"][1], hidden[0, :3])
    torch.testing.assert_close(batch["hidden"][0, :2], hidden[1, :2])
    assert batch["hidden"][0, 2].abs().sum() == 0


def test_cache_hit_runs_no_tower_forward_and_keys_follow_tower_and_items(tmp_path: Path, monkeypatch):
    tower = build_text_tower(TextTowerConfig(name="minilm", model_dir=str(write_tiny_bert(tmp_path / "bert")),
                                             trainable_layers=1))
    calls = []
    original = tower.frozen_features
    monkeypatch.setattr(tower, "frozen_features", lambda texts: calls.append(len(texts)) or original(texts))
    texts = ["a red square", "a dog runs .", "a cat"]
    cache = FrozenFeatureCache(tmp_path / "cache", dtype="float16")
    first = cache.texts(tower, texts, batch_size=2)
    assert calls == [2, 1] and cache.misses == 1
    again = FrozenFeatureCache(tmp_path / "cache", dtype="float16").texts(tower, texts, batch_size=2)
    assert calls == [2, 1]  # no forward on a hit
    rows = np.arange(3)
    for name, value in first.batch(rows).items():
        torch.testing.assert_close(again.batch(rows)[name], value)
    assert first.ragged["hidden"][0].dtype == torch.float16
    cache.texts(tower, texts[:2], batch_size=2)  # other items -> other key
    assert calls[-1] == 2 and cache.misses == 2
    tower.num_frozen = 1  # other tower identity (frozen depth) -> other key
    cache.texts(tower, texts, batch_size=3)
    assert calls[-1] == 3 and cache.misses == 3


def test_lit_training_second_run_computes_no_frozen_features(tmp_path: Path, monkeypatch):
    bert = write_tiny_bert(tmp_path / "bert")
    split = toy_split(tmp_path / "images")
    calls = []
    original = MiniLMTower.frozen_features
    monkeypatch.setattr(MiniLMTower, "frozen_features",
                        lambda self, texts: calls.append(len(texts)) or original(self, texts))
    cfg = tiny_train_config(epochs=1, feature_cache_dir=tmp_path / "features")
    cfg.model.text_tower = TextTowerConfig(name="minilm", model_dir=str(bert), trainable_layers=0)
    train_dual_encoder(cfg, split, split, tmp_path / "run1")
    assert sum(calls) == len(split.texts)  # train computed; val has the same texts -> same key, a hit
    calls.clear()
    result = train_dual_encoder(cfg, split, split, tmp_path / "run2")
    assert calls == [] and result.steps == 2


def test_unknown_cache_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype"):
        FrozenFeatureCache(None, dtype="int8")


class _GridTower(ImageTower):
    """A cacheable image tower with a side feature: ``pooled`` = channel means, ``grid`` = the pixels per row."""

    cacheable = True
    side_features = ("grid",)
    image_size = 16

    def identity(self) -> dict:
        return {"tower": "grid_test", "preprocess": self.preprocess_description()}

    def frozen_features(self, inputs: torch.Tensor) -> dict:
        return {"pooled": inputs.mean(dim=(2, 3)), "grid": inputs.flatten(2).transpose(1, 2)}

    def trainable_forward(self, features: dict) -> torch.Tensor:
        return features["pooled"]


def test_side_features_are_cached_but_left_out_of_training_batches(tmp_path: Path):
    split = toy_split(tmp_path / "images")
    cache = FrozenFeatureCache(tmp_path / "cache", dtype="float16")
    model = SimpleNamespace(image_tower=_GridTower(), text_tower=build_text_tower(tiny_model_config().text_tower))
    sources = build_split_sources(model, tiny_train_config(), split, cache, torch.device("cpu"), train=True)
    batch = next(sources.images.iterate([np.arange(4)], epoch=0, train=True))
    assert set(batch) == {"pooled"} and batch["pooled"].shape == (4, 3)
    cached = cache.images(_GridTower(), split.images)  # a hit: the grid is on disk for another consumer
    assert cache.hits == 1 and cached.dense["grid"].shape == (len(split.images), 256, 3)
