"""Stage 2 honours ``RerankerConfig.caption_preprocessing``: ``score_pairs`` scores the preprocessed captions, the
pair-score cache key changes with the choice (switching misses, switching back hits), ``none`` keeps its key."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench_base.caption_preprocessing import CaptionPreprocessing
from stage2_rerank.protocols import RerankInputError
from stage2_rerank.rerank import load_reranker

CAPTIONS = ["A Red Dog.", "the CAT (on the left)!", "a blue bird", "Dog: red; bird~ blue"]
PAIRS = np.array([(i, c) for i in range(2) for c in range(len(CAPTIONS))])
BLIP = CaptionPreprocessing("blip_caption")


def score(config, images, captions=CAPTIONS):
    with load_reranker(config) as reranker:
        return reranker.score_pairs(images, captions, PAIRS, progress=False)


def test_blip_caption_scores_the_preprocessed_captions(tiny_config, tiny_images):
    processed = score(tiny_config(caption_preprocessing=BLIP), tiny_images)
    expected = score(tiny_config(), tiny_images, [BLIP.apply(t) for t in CAPTIONS])
    np.testing.assert_array_equal(processed.itm_logits, expected.itm_logits)
    np.testing.assert_array_equal(processed.itc, expected.itc)


def test_switching_misses_the_score_cache_and_switching_back_hits_it(tiny_config, tiny_images, tmp_path):
    fresh = {}
    seen = []
    for prep in (CaptionPreprocessing(), BLIP, CaptionPreprocessing(), BLIP):
        scores = score(tiny_config(cache_dir=tmp_path, caption_preprocessing=prep), tiny_images)
        seen.append((scores.stats.cache_hits, scores.stats.scored))
        first = fresh.setdefault(prep, scores)
        np.testing.assert_array_equal(scores.itm_logits, first.itm_logits)
    assert seen == [(0, 8), (0, 8), (8, 0), (8, 0)]


def test_model_key_names_the_preprocessing_unless_none(tiny_config):
    with load_reranker(tiny_config()) as plain, load_reranker(tiny_config(caption_preprocessing=BLIP)) as blip, \
            load_reranker(tiny_config(caption_preprocessing=CaptionPreprocessing("blip_caption", 9))) as short:
        keys = {plain.model_key, blip.model_key, short.model_key}
        assert len(keys) == 3
        assert plain.feature_key == blip.feature_key  # images are untouched: vision features are shared


def test_an_emptied_caption_is_refused_by_position(tiny_config, tiny_images):
    with pytest.raises(RerankInputError, match="caption at position 3 is empty after caption preprocessing"):
        score(tiny_config(caption_preprocessing=BLIP), tiny_images, CAPTIONS[:3] + ["(...)"])
