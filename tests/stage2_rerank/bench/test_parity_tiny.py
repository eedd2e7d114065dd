"""Parity with the stock Blip2ForImageTextRetrieval.forward on a tiny random checkpoint (fp32, 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, Blip2ForImageTextRetrieval

from stage2_rerank.bench.parity import stock_itc_matrix, stock_itm_logits
from stage2_rerank.rerank import load_reranker
from tests.stage2_rerank.helpers import make_captions

TOL = 1e-5


def _stock_scores(checkpoint, images, captions, pairs, max_length):
    """Reference ITM logits and ITC per pair: one stock forward over all pairs (images mixed, padded)."""
    model = Blip2ForImageTextRetrieval.from_pretrained(checkpoint, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(checkpoint)
    pixels = processor.image_processor(images=[images[i].open() for i in pairs[:, 0]],
                                       return_tensors="pt")["pixel_values"]
    text = processor.tokenizer([captions[c] for c in pairs[:, 1]], padding="longest", truncation=True,
                               max_length=max_length, return_tensors="pt")
    itm = stock_itm_logits(model, pixels, text["input_ids"], text["attention_mask"]).numpy()
    itc = stock_itc_matrix(model, pixels, text["input_ids"], text["attention_mask"]).numpy()
    return itm, np.diag(itc), text["attention_mask"].sum(1).numpy()


@pytest.fixture(scope="module")
def parity_case(tiny_checkpoint, tiny_images):
    captions = make_captions(7, seed=1)
    rng = np.random.default_rng(0)
    pairs = np.stack([rng.integers(0, len(tiny_images), 14), rng.permutation(np.arange(14) % 7)], axis=1)
    pairs = np.unique(pairs, axis=0)
    itm, itc, lengths = _stock_scores(tiny_checkpoint, tiny_images, captions, pairs, max_length=12)
    return captions, pairs, itm, itc, lengths


@pytest.mark.parametrize("cache_kv", [True, False])
@pytest.mark.parametrize("kv_chunk_mb", [1, 64])
def test_itm_and_itc_equal_stock_forward(tiny_config, tiny_images, parity_case, cache_kv, kv_chunk_mb):
    captions, pairs, ref_itm, ref_itc, lengths = parity_case
    assert len(set(lengths.tolist())) > 3, "the case must mix caption lengths"
    assert len(set(pairs[:, 0].tolist())) > 3, "the case must mix images"
    config = tiny_config(text_max_length=12, cache_cross_attention_kv=cache_kv, kv_chunk_mb=kv_chunk_mb,
                         pair_batch_size=3)
    with load_reranker(config) as reranker:
        scores = reranker.score_pairs(tiny_images, captions, pairs, progress=False)
    assert scores.stats.scored == len(pairs)
    assert scores.stats.qformer_batches >= len(pairs) // 3
    np.testing.assert_allclose(scores.itm_logits, ref_itm, atol=TOL, rtol=0)
    np.testing.assert_allclose(scores.itc, ref_itc, atol=TOL, rtol=0)
    # the scores are not degenerate: pairs differ from each other by far more than the tolerance
    assert np.ptp(ref_itm[:, 1]) > 100 * TOL and np.ptp(ref_itc) > 100 * TOL


def test_kv_cache_path_equals_feature_path_per_pair(tiny_config, tiny_images):
    with load_reranker(tiny_config()) as reranker:
        scorer = reranker.model.scorer
        with torch.inference_mode():
            features = reranker.model.vision.encode([im.open() for im in tiny_images[:3]])
            ids = torch.tensor([[2, 7, 8, 9, 3, 0], [2, 10, 3, 0, 0, 0], [2, 7, 8, 9, 11, 3]])
            mask = (ids != 0).long()
            slots = torch.tensor([2, 0, 2])
            via_features = scorer.itm_logits(ids, mask, features=features[slots])
            via_kv = scorer.itm_logits(ids, mask, kv=scorer.cross_attention_kv(features).select(slots))
    torch.testing.assert_close(via_kv, via_features, atol=1e-6, rtol=0)
    assert not torch.allclose(via_features[0], via_features[2])  # same image, different caption


def test_truncation_to_text_max_length(tiny_config, tiny_images, tiny_checkpoint):
    long_caption = " ".join(["red cat"] * 20)
    pairs = np.array([[0, 0], [1, 1]])
    captions = [long_caption, long_caption + " dog"]  # identical after truncation to 8 tokens
    with load_reranker(tiny_config(text_max_length=8)) as reranker:
        scores = reranker.score_pairs([tiny_images[0], tiny_images[0]], captions, pairs, progress=False)
    ref_itm, _, lengths = _stock_scores(tiny_checkpoint, [tiny_images[0]] * 2, captions, pairs, max_length=8)
    assert lengths.tolist() == [8, 8]
    np.testing.assert_allclose(scores.itm_logits, ref_itm, atol=TOL, rtol=0)
    np.testing.assert_allclose(scores.itm_logits[0], scores.itm_logits[1], atol=1e-6)


def test_fp64_scores_match_fp32_and_come_back_as_float32(tiny_config, tiny_images):
    """precision/vision_precision fp64 (the demo's CPU-independent setting): same scores as fp32 up to float32
    rounding, returned as float32."""
    captions = ["a red circle", "the blue square next to a big dog", "tiny"]
    pairs = np.array([[i, j] for i in range(3) for j in range(3)])
    with load_reranker(tiny_config()) as fp32, load_reranker(tiny_config(precision="fp64",
                                                                         vision_precision="fp64")) as fp64:
        assert fp64.model.scorer.dtype == torch.float64
        a, b = (r.score_pairs(tiny_images[:3], captions, pairs, progress=False) for r in (fp32, fp64))
    assert b.itm_logits.dtype == np.float32 and b.itc.dtype == np.float32
    np.testing.assert_allclose(b.itm_logits, a.itm_logits, atol=1e-4)
    np.testing.assert_allclose(b.itc, a.itc, atol=1e-5)
