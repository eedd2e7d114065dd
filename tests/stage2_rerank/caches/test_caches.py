"""Score cache (hit = zero Q-Former forwards, resume after interruption), dedupe, vision-feature cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stage2_rerank.caches.pair_scores import ScoreCache
from stage2_rerank.caches.vision_features import VisionFeatureCache
from stage2_rerank.rerank import load_reranker
from tests.stage2_rerank.helpers import make_captions


class Counter:
    """Counts Q-Former layer-0 forwards (every ITM, ITC-image and ITC-text pass runs layer 0) and vision calls."""

    def __init__(self, reranker):
        self.qformer = 0
        self.vision = 0
        reranker.model.scorer.qformer.encoder.layer[0].register_forward_hook(self._on_qformer)
        encode = reranker.model.vision.encode

        def counted(images):
            self.vision += 1
            return encode(images)

        reranker.model.vision.encode = counted

    def _on_qformer(self, *args):
        self.qformer += 1


PAIRS = np.array([(i, c) for i in range(4) for c in range(6)])


def test_rerun_and_smaller_depth_compute_nothing(tiny_config, tiny_images, tmp_path):
    captions = make_captions(6, seed=2)
    config = tiny_config(cache_dir=tmp_path / "cache")
    with load_reranker(config) as reranker:
        counter = Counter(reranker)
        first = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
        assert counter.qformer > 0 and counter.vision > 0 and first.stats.scored == len(PAIRS)
    with load_reranker(config) as reranker:
        counter = Counter(reranker)
        again = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
        subset = reranker.score_pairs(tiny_images, captions, PAIRS[::3], progress=False)
        assert counter.qformer == 0 and counter.vision == 0
    assert again.stats.cache_hits == len(PAIRS) and again.stats.scored == 0
    np.testing.assert_array_equal(again.itm_logits, first.itm_logits)
    np.testing.assert_array_equal(again.itc, first.itc)
    np.testing.assert_array_equal(subset.itm_logits, first.itm_logits[::3])


def test_cache_is_keyed_by_precision(tiny_config, tiny_images, tmp_path):
    captions = make_captions(6, seed=2)
    with load_reranker(tiny_config(cache_dir=tmp_path)) as reranker:
        reranker.score_pairs(tiny_images, captions, PAIRS[:4], progress=False)
    with load_reranker(tiny_config(cache_dir=tmp_path, precision="bf16")) as reranker:
        scores = reranker.score_pairs(tiny_images, captions, PAIRS[:4], progress=False)
    assert scores.stats.cache_hits == 0 and scores.stats.scored == 4


def test_interrupted_rerank_resumes(tiny_config, tiny_images, tmp_path, monkeypatch):
    captions = make_captions(6, seed=2)
    config = tiny_config(cache_dir=tmp_path / "cache", pair_batch_size=5)
    with load_reranker(tiny_config(pair_batch_size=5)) as reranker:
        reference = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    with load_reranker(config) as reranker:
        real = reranker.model.scorer.itm_logits
        calls = {"n": 0}

        def dies_on_third_batch(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(reranker.model.scorer, "itm_logits", dies_on_third_batch)
        with pytest.raises(KeyboardInterrupt):
            reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    with load_reranker(config) as reranker:
        resumed = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    assert resumed.stats.cache_hits == 10  # the two finished batches of 5
    assert resumed.stats.scored == len(PAIRS) - 10
    np.testing.assert_allclose(resumed.itm_logits, reference.itm_logits, atol=1e-6)


def test_duplicate_pairs_and_texts_are_scored_once(tiny_config, tiny_images):
    captions = ["red cat", "blue dog", "red cat"]  # caption 2 has the same text as caption 0
    pairs = np.array([[0, 0], [0, 2], [0, 0], [1, 1], [1, 2]])
    with load_reranker(tiny_config()) as reranker:
        scores = reranker.score_pairs(tiny_images, captions, pairs, progress=False)
    assert scores.stats.unique_keys == 3 and scores.stats.scored == 3
    np.testing.assert_array_equal(scores.itm_logits[0], scores.itm_logits[1])
    np.testing.assert_array_equal(scores.itm_logits[0], scores.itm_logits[2])


def test_vision_runs_once_per_distinct_image(tiny_config, tiny_images):
    captions = make_captions(6, seed=2)
    with load_reranker(tiny_config(vision_batch_size=1)) as reranker:
        counter = Counter(reranker)
        scores = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
        assert counter.vision == 4 and scores.stats.images_encoded == 4
        reranker.score_pairs(tiny_images, make_captions(3, seed=9), PAIRS[PAIRS[:, 1] < 3], progress=False)
        assert counter.vision == 4  # features reused for new captions


def test_identical_images_are_encoded_once(tiny_config, tiny_images):
    images = [tiny_images[0], tiny_images[1], tiny_images[0]]  # same file twice
    with load_reranker(tiny_config(vision_batch_size=4)) as reranker:
        scores = reranker.score_pairs(images, ["red cat"], np.array([[0, 0], [1, 0], [2, 0]]), progress=False)
    assert scores.stats.images_encoded == 2 and scores.stats.scored == 2
    np.testing.assert_array_equal(scores.itm_logits[0], scores.itm_logits[2])


def test_spilled_features_are_lossless_on_disk_and_reused(tiny_config, tiny_images, tmp_path):
    captions = make_captions(6, seed=2)
    with load_reranker(tiny_config()) as reranker:
        in_memory = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
    config = tiny_config(cache_dir=tmp_path, vision_memory_mb=0)
    with load_reranker(config) as reranker:
        spilled = reranker.score_pairs(tiny_images, captions, PAIRS, progress=False)
        assert reranker.features.spilled == 4 and reranker.features.memory_bytes == 0
    files = list((tmp_path / "vision_features").rglob("*.safetensors"))
    assert len(files) == 4
    # features spilled in the dtype they were computed in: the scores are bit-identical with in-memory ones
    np.testing.assert_array_equal(spilled.itm_logits, in_memory.itm_logits)
    np.testing.assert_array_equal(spilled.itc, in_memory.itc)
    with load_reranker(config) as reranker:
        counter = Counter(reranker)
        reranker.score_pairs(tiny_images, make_captions(2, seed=5), PAIRS[PAIRS[:, 1] < 2], progress=False)
        assert counter.vision == 0


def test_feature_cache_unit(tmp_path):
    cache = VisionFeatureCache("provider-x", memory_budget_bytes=2 * 4 * 6, spill_root=None)
    a, b, c = torch.ones(2, 3), torch.full((2, 3), 2.0), torch.full((2, 3), 1.0 / 3)
    cache.put("a", a)
    cache.put("b", b)
    cache.put("c", c)  # over budget -> spilled to a temporary directory, in its own dtype
    cache.put("h", c.to(torch.bfloat16))
    assert cache.spilled == 2 and "c" in cache and "d" not in cache
    assert cache.get("c").dtype == torch.float32 and torch.equal(cache.get("c"), c)
    assert cache.get("h").dtype == torch.bfloat16 and torch.equal(cache.get("h"), c.to(torch.bfloat16))
    assert cache.get("a").dtype == torch.float32
    cache.close()
    assert "c" not in cache and cache.get("a") is None


def test_score_cache_roundtrip(tmp_path):
    cache = ScoreCache(tmp_path / "s.sqlite", "model", "qformer=fp32")
    keys = [("fp1", "a cat"), ("fp2", "a cat"), ("fp1", "a dog")]
    cache.put_many(keys[:2], np.array([[0.1, 0.2], [0.3, 0.4]], np.float32), np.array([0.5, 0.6], np.float32))
    found, logits, itc = cache.get_many(keys)
    assert found.tolist() == [True, True, False]
    assert logits[1].tolist() == np.array([0.3, 0.4], np.float32).tolist() and np.isnan(itc[2])
    other = ScoreCache(tmp_path / "s.sqlite", "model", "qformer=bf16")
    assert not other.get_many(keys)[0].any()
    assert len(cache) == 2
    cache.close()
    other.close()
