"""Parity at the full blip2-itm-vit-g size (random weights, ~5 GB RAM, ~1-2 min on 2 cores): slow."""

from __future__ import annotations

import numpy as np
import pytest

from stage2_rerank.backends import build_blip2_itm
from stage2_rerank.bench.random_checkpoint import blip2_itm_vit_g_config, build_processor, build_random_model
from stage2_rerank.bench.speed import BENCH_WORDS, make_bench_data, mixed_parity_pairs, stock_reference_scores
from stage2_rerank.config import RerankerConfig
from stage2_rerank.rerank import Reranker

TOL = 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("cache_kv", [True])
def test_full_size_itm_and_itc_equal_stock_forward(cache_kv):
    arch = blip2_itm_vit_g_config()
    assert (arch.vision_config.num_hidden_layers, arch.vision_config.hidden_size) == (39, 1408)
    assert (arch.qformer_config.num_hidden_layers, arch.qformer_config.hidden_size, arch.num_query_tokens) == \
        (12, 768, 32)
    model = build_random_model(arch, seed=0)
    processor = build_processor(224, BENCH_WORDS)
    data = make_bench_data(8, 20, 4, image_px=224, seed=1)
    pairs = mixed_parity_pairs(data, 4)
    # two pairs per image: the batch mixes images and caption lengths
    pairs = np.concatenate([pairs, np.stack([pairs[:, 0], pairs[::-1, 1]], axis=1)])
    ref_itm, ref_itc = stock_reference_scores(model, processor, data, pairs, max_length=35)
    config = RerankerConfig(model="random-init", device="cpu", precision="fp32", vision_precision="fp32",
                            pair_batch_size=3, cache_cross_attention_kv=cache_kv)
    with Reranker(build_blip2_itm(model, processor, config, "random-init"), config) as reranker:
        scores = reranker.score_pairs(data.images, data.captions, pairs, progress=False)
    assert np.ptp(ref_itm[:, 1]) > 100 * TOL
    np.testing.assert_allclose(scores.itm_logits, ref_itm, atol=TOL, rtol=0)
    np.testing.assert_allclose(scores.itc, ref_itc, atol=TOL, rtol=0)
