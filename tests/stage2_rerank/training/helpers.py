"""Tiny trainable ITM models and data for the training tests (random features or pixels, word captions)."""

from __future__ import annotations

import numpy as np
import torch

from stage2_rerank.pair_scoring import tokenize_captions
from stage2_rerank.training.model_spec import ItmModelSpec, build_itm_model
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData
from stage2_rerank.vision.conv_grid import ConvGrid, ConvGridConfig
from tests.stage2_rerank.helpers import WORDS, make_captions


def tiny_spec(provider: str = "efficientnet_lite0", feature_dim: int = 1280, image_size: int = 64) -> ItmModelSpec:
    return ItmModelSpec(vision_provider=provider, feature_dim=feature_dim, image_size=image_size, num_layers=2,
                        hidden_size=32, num_attention_heads=4, intermediate_size=37, num_query_tokens=4,
                        image_text_hidden_size=16, max_position_embeddings=40, seed=1)


def tiny_feature_data(processor, n_images: int = 8, per_image: int = 3, positions: int = 4, dim: int = 1280,
                      seed: int = 0) -> ItmTrainingData:
    """Random cached features ``[n, positions, dim]`` (fp16) and ``per_image`` random captions per image."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n_images, positions, dim, generator=generator).half()
    captions = make_captions(n_images * per_image, seed)
    tokens = tokenize_captions(processor.tokenizer, captions, 35)
    return ItmTrainingData(features, tokens, np.repeat(np.arange(n_images), per_image),
                           processor.tokenizer.pad_token_id)


def tiny_trainable() -> tuple[ItmTrainable, object]:
    """A tiny Q-Former over 1280-d cached features (efficientnet_lite0 provider) and its processor."""
    model, processor, _ = build_itm_model(tiny_spec(), WORDS)
    return ItmTrainable(model), processor


def tiny_conv_grid_trainable() -> tuple[ItmTrainable, object]:
    """A tiny Q-Former over a jointly trained 16-d conv grid at 16 px (conv_grid provider)."""
    grid = ConvGrid(ConvGridConfig(image_size=16, widths=(8, 8, 16), feature_dim=16, groups=4))
    model, processor, _ = build_itm_model(tiny_spec("conv_grid", 16, 16), WORDS)
    return ItmTrainable(model, grid), processor
