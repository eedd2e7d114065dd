"""The FLOP formulas against torch's FlopCounterMode on real forwards of a tiny BLIP-2 ITM."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from stage2_rerank.bench.flops import (RerankFlops, cross_attention_layers, efficiency, encoder_layer_flops,
                                       matmul_flop_rate, vision_tokens)
from stage2_rerank.bench.random_checkpoint import (blip2_itm_vit_g_config, build_random_model,
                                                   tiny_blip2_itm_config)
from stage2_rerank.qformer_scorer import QFormerItm

TEXT = 7


def counted(fn) -> int:
    """FLOPs torch counts in ``fn()``; attention through the math kernel (matrix products torch counts on the
    CPU, where its fused kernel is not counted)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


@pytest.fixture(scope="module")
def tiny():
    config = tiny_blip2_itm_config(image_size=30)
    model = build_random_model(config, seed=0).requires_grad_(False)
    return config, model, QFormerItm.from_retrieval_model(model).eval(), RerankFlops.of(config, TEXT)


def test_vision_tower_flops_match_the_counter(tiny):
    config, model, _, flops = tiny
    pixels = torch.randn(3, 3, 30, 30)
    assert counted(lambda: model.vision_model(pixel_values=pixels)) == 3 * flops.vision_per_image
    assert flops.vision_tokens == 226


def test_itm_pair_and_kv_flops_match_the_counter(tiny):
    config, model, scorer, flops = tiny
    features = torch.randn(2, flops.vision_tokens, config.vision_config.hidden_size)
    ids = torch.randint(5, 90, (5, TEXT))
    mask = torch.ones_like(ids)
    assert counted(lambda: scorer.cross_attention_kv(features)) == 2 * flops.kv_per_image
    kv = scorer.cross_attention_kv(features).select(torch.tensor([0, 1, 1, 0, 1]))
    assert counted(lambda: scorer.itm_logits(ids, mask, kv=kv)) == 5 * flops.itm_per_pair
    per_pair_features = features[torch.tensor([0, 1, 1, 0, 1])]
    stock = counted(lambda: scorer.itm_logits(ids, mask, features=per_pair_features))
    assert stock == 5 * (flops.itm_per_pair + flops.kv_per_image)  # the stock forward: K/V once per pair


def test_itc_flops_match_the_counter(tiny):
    config, model, scorer, flops = tiny
    features = torch.randn(3, flops.vision_tokens, config.vision_config.hidden_size)
    ids = torch.randint(5, 90, (4, TEXT))
    assert counted(lambda: scorer.image_embeddings(features)) == 3 * flops.itc_per_image
    assert counted(lambda: scorer.text_embeddings(ids, torch.ones_like(ids))) == 4 * flops.itc_per_caption
    assert flops.stage2_qformer(pairs=10, images=3, captions=4) == (
        10 * flops.itm_per_pair + 3 * (flops.kv_per_image + flops.itc_per_image) + 4 * flops.itc_per_caption)


def test_full_size_numbers_are_the_documented_ones():
    config = blip2_itm_vit_g_config(image_size=364)
    flops = RerankFlops.of(config, text_tokens=20)
    assert vision_tokens(config.vision_config) == 677
    assert cross_attention_layers(config.qformer_config) == 6
    assert encoder_layer_flops(52, 768, 3072) == 8 * 52 * 768**2 + 4 * 52**2 * 768 + 4 * 52 * 768 * 3072
    assert flops.vision_per_image == pytest.approx(1.434e12, rel=1e-3)
    assert flops.itm_per_pair == pytest.approx(9.78e9, rel=1e-3)
    assert flops.kv_per_image == pytest.approx(1.757e10, rel=1e-3)


def test_efficiency_and_measured_rate():
    assert efficiency(1e12, 2.0, 1e12) == 0.5
    assert efficiency(1e12, 0.0, 1e12) is None
    assert matmul_flop_rate(torch.device("cpu"), torch.float32, size=64, repeats=2) > 0
