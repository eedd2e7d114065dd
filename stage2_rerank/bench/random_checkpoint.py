"""BLIP-2 ITM architectures as data, and random-weight checkpoints built from them (no hub needed).

- :func:`blip2_itm_vit_g_config`: the published ``Salesforce/blip2-itm-vit-g`` architecture (224 px; 364 px
  for ``-coco``), as transformers' conversion script builds it: default ``Blip2VisionConfig`` (ViT-g: 39
  layers x 1408, MLP 6144, 16 heads, patch 14), ``Blip2QFormerConfig(vocab_size=30523,
  use_qformer_text_input=True)`` (12 layers x 768, 12 heads, MLP 3072, cross-attention every 2nd layer),
  32 query tokens, ITC projections to 256.
- :func:`tiny_blip2_itm_config`: the same family at test size (hidden 32, 4 query tokens), as
  transformers' own BLIP-2 tests do.
- :func:`build_random_model`, :func:`build_processor`, :func:`save_random_checkpoint`: random weights with a
  usable scale (vision std 0.02 instead of the config's 1e-10, random query tokens instead of zeros, so
  every part of the computation carries signal), a BLIP image processor (OpenAI CLIP mean/std, bicubic)
  and a BERT tokenizer over a given word list. Random weights cost the same FLOPs as trained ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from transformers import (
    BertTokenizer,
    Blip2Config,
    Blip2ForImageTextRetrieval,
    Blip2Processor,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    BlipImageProcessor,
)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from rrbench_base.global_rng import seeded_torch_rng
from stage2_rerank.training.model_spec import word_vocab

def blip2_itm_vit_g_config(image_size: int = 224) -> Blip2Config:
    """Architecture of ``Salesforce/blip2-itm-vit-g`` (``image_size=364``: ``-coco``)."""
    vision = Blip2VisionConfig(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39,
                               num_attention_heads=16, image_size=image_size, patch_size=14,
                               layer_norm_eps=1e-6, qkv_bias=True, initializer_range=0.02)
    qformer = Blip2QFormerConfig(vocab_size=30523, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072, max_position_embeddings=512, layer_norm_eps=1e-12,
                                 cross_attention_frequency=2, use_qformer_text_input=True)
    return Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(),
                       num_query_tokens=32, image_text_hidden_size=256)


def tiny_blip2_itm_config(image_size: int = 30, vocab_size: int = 99) -> Blip2Config:
    """A test-size BLIP-2 ITM: vision 2 x 32 (patch 2 -> 226 tokens at 30 px), Q-Former 4 x 32 (2 with
    cross-attention), 4 query tokens, ITC projections to 16. Weights init with std 0.1 (not 0.02) so that
    scores spread across pairs by ~0.1, far above the 1e-5 parity tolerance."""
    std = 0.1
    vision = Blip2VisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                               image_size=image_size, patch_size=2, initializer_range=std)
    qformer = Blip2QFormerConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                                 intermediate_size=37, max_position_embeddings=64, cross_attention_frequency=2,
                                 use_qformer_text_input=True, initializer_range=std)
    return Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(),
                       num_query_tokens=4, image_text_hidden_size=16, initializer_range=std)


def build_random_model(config: Blip2Config, seed: int = 0) -> Blip2ForImageTextRetrieval:
    """``Blip2ForImageTextRetrieval`` in eval mode with seeded random weights of a usable scale (fp32); the same
    ``seed`` gives the same weights, and the caller's global torch RNG state is left unchanged."""
    with seeded_torch_rng(seed):  # nn.init draws from the global generator
        model = Blip2ForImageTextRetrieval(config).eval()
        with torch.no_grad():
            model.query_tokens.normal_(std=config.qformer_config.initializer_range)
    return model


def build_processor(image_size: int, words: Sequence[str]) -> Blip2Processor:
    """A BLIP-2 processor as the ITM checkpoints ship one (BLIP image processor at ``image_size`` with OpenAI
    CLIP mean/std; lower-casing BERT tokenizer), over a vocabulary of ``words``."""
    image_processor = BlipImageProcessor(size={"height": image_size, "width": image_size},
                                         image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD)
    tokenizer = BertTokenizer(vocab=word_vocab(words))
    return Blip2Processor(image_processor=image_processor, tokenizer=tokenizer)


def save_random_checkpoint(directory: Path, config: Blip2Config, words: Sequence[str], seed: int = 0,
                           ) -> Blip2ForImageTextRetrieval:
    """Write a random-weight checkpoint + processor to ``directory`` (loadable as ``model: <directory>``)."""
    vocab_size = len(word_vocab(words)) + 1  # + the "<image>" token Blip2Processor adds
    if vocab_size > config.qformer_config.vocab_size:
        raise ValueError(f"{vocab_size} tokens do not fit the Q-Former vocabulary of "
                         f"{config.qformer_config.vocab_size}")
    model = build_random_model(config, seed)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    build_processor(config.vision_config.image_size, words).save_pretrained(directory)
    return model
