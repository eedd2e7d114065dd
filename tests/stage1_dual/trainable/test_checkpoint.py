"""Model directories: round trip, frozen pretrained weights left out and checked, config validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stage1_dual.trainable.checkpoint import CheckpointError, load_model_dir, save_model_dir
from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.trainable.model_config import TextTowerConfig, model_config_from_dict, model_config_to_dict
from tests.stage1_dual.trainable_helpers import tiny_model_config, write_tiny_bert


def _minilm_model(bert_dir: Path) -> DualEncoderModel:
    cfg = tiny_model_config()
    cfg.text_tower = TextTowerConfig(name="minilm", model_dir=str(bert_dir), trainable_layers=1)
    torch.manual_seed(0)
    return DualEncoderModel(cfg)


def test_round_trip_keeps_weights_and_leaves_frozen_pretrained_parts_out(tmp_path: Path):
    model = _minilm_model(write_tiny_bert(tmp_path / "bert"))
    with torch.no_grad():
        model.text_tower.bert.encoder.layer[2].output.dense.weight.add_(1.0)  # a "trained" top layer
    save_model_dir(model, tmp_path / "ckpt", {"val": 1.0})
    stored = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    assert "text_tower.bert.encoder.layer.2.output.dense.weight" in stored
    assert not any(k.startswith(("text_tower.bert.embeddings.", "text_tower.bert.encoder.layer.0.")) for k in stored)
    loaded = load_model_dir(tmp_path / "ckpt")
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["info"] == {"val": 1.0} and config["pretrained"]["text_tower"]["frozen_layers"] == 2


def test_changed_pretrained_weights_are_refused(tmp_path: Path):
    bert = write_tiny_bert(tmp_path / "bert")
    save_model_dir(_minilm_model(bert), tmp_path / "ckpt")
    from transformers import BertModel
    changed = BertModel.from_pretrained(str(bert))
    with torch.no_grad():
        changed.embeddings.word_embeddings.weight.add_(0.5)
    changed.save_pretrained(str(bert))
    with pytest.raises(CheckpointError, match="installed package provides"):
        load_model_dir(tmp_path / "ckpt")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path):
    torch.manual_seed(0)
    save_model_dir(DualEncoderModel(tiny_model_config()), tmp_path / "ckpt")
    config_path = tmp_path / "ckpt" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["embed_dim"] = 8
    config_path.write_text(json.dumps(config))
    with pytest.raises((CheckpointError, RuntimeError)):
        load_model_dir(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="not an rrbench_dual checkpoint"):
        load_model_dir(tmp_path / "missing")


def test_model_config_dict_round_trip_and_unknown_keys():
    cfg = tiny_model_config()
    assert model_config_from_dict(model_config_to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="unknown text_tower config keys"):
        model_config_from_dict({**model_config_to_dict(cfg), "text_tower": {"name": "minilm", "colour": 1}})
