"""Builders for tests of trainable dual encoders: tiny configs, a toy image-caption dataset, a tiny BERT."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from PIL import Image

from eval.data.benchmark import ImageItem
from stage1_dual.trainable.model_config import (DualModelConfig, ImageTowerConfig, ProjectionConfig,
                                                TextTowerConfig)
from stage1_dual.training.config import TrainConfig
from stage1_dual.training.data import TrainingSplit

COLOURS = {"red": (220, 30, 30), "green": (30, 160, 50), "blue": (30, 80, 230), "yellow": (245, 225, 30),
           "white": (255, 255, 255)}
TOY_VOCAB = ["a", "red", "green", "blue", "yellow", "white", "square", "left", "right", "of", "the"]


def tiny_model_config(dropout: float = 0.0, image_size: int = 16) -> DualModelConfig:
    """Small CNN (16 px) + word transformer with the toy vocabulary; 16-d shared space."""
    return DualModelConfig(
        image_tower=ImageTowerConfig(name="small_cnn", image_size=image_size, width=4, depth=2, output_dim=16),
        text_tower=TextTowerConfig(name="word_transformer", vocab=list(TOY_VOCAB), width=16, layers=1, heads=2,
                                   dropout=dropout, max_length=12),
        image_projection=ProjectionConfig(kind="linear"), text_projection=ProjectionConfig(kind="mlp", hidden_dim=8),
        embed_dim=16)


def tiny_train_config(**overrides) -> TrainConfig:
    """Fast CPU training settings for the toy dataset (override any field)."""
    settings = dict(model=tiny_model_config(), epochs=2, batch_size=8, learning_rate=3e-3, warmup_steps=2,
                    device="cpu", log_every_steps=1, feature_batch_size=16)
    settings.update(overrides)
    return TrainConfig(**settings)


def toy_split(directory: Path, size: int = 16) -> TrainingSplit:
    """Images: two coloured squares side by side (all ordered colour pairs); two captions per image."""
    directory.mkdir(parents=True, exist_ok=True)
    images, texts, text_image = [], [], []
    for position, (left, right) in enumerate(itertools.permutations(COLOURS, 2)):
        pixels = np.full((size, size, 3), 128, dtype=np.uint8)
        pixels[size // 4: 3 * size // 4, 1: size // 2 - 1] = COLOURS[left]
        pixels[size // 4: 3 * size // 4, size // 2 + 1: size - 1] = COLOURS[right]
        path = directory / f"{left}_{right}.png"
        Image.fromarray(pixels).save(path)
        images.append(ImageItem(id=path.stem, path=path))
        texts += [f"a {left} square left of a {right} square", f"a {right} square right of a {left} square"]
        text_image += [position, position]
    return TrainingSplit(images, texts, np.asarray(text_image))


def write_tiny_bert(directory: Path, layers: int = 3) -> Path:
    """A random-weight BERT (hidden 32) with a word-piece tokenizer over a small vocabulary, saved as a
    sentence-transformers-like model directory."""
    from transformers import BertConfig, BertModel, BertTokenizer
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + TOY_VOCAB + ["dog", "cat", "runs", "."]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(directory / "vocab.txt")).save_pretrained(str(directory))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64)
    BertModel(config, add_pooling_layer=False).save_pretrained(str(directory))
    return directory
