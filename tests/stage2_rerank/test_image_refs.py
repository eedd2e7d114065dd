"""The reranker takes dataset items, PIL images and file paths (``rrbench_base.image_refs``); anything else is a
clear error."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench_base.image_refs import BadImageError


def test_score_pairs_and_candidates_take_pil_images_and_paths(tiny_config, tiny_images):
    from stage2_rerank.rerank import load_reranker

    captions = ["red cat", "blue dog"]
    pairs = np.array([[0, 0], [1, 1], [0, 1]])
    with load_reranker(tiny_config()) as reranker:
        items = reranker.score_pairs(tiny_images[:2], captions, pairs, progress=False)
        pil = reranker.score_pairs([i.open() for i in tiny_images[:2]], captions, pairs, progress=False)
        paths = reranker.score_pairs([i.path for i in tiny_images[:2]], captions, pairs, progress=False)
        scored = reranker.score_candidates([i.path for i in tiny_images[:2]], captions, np.array([[0, 1], [1, 0]]),
                                           None, 2, progress=False)
    np.testing.assert_allclose(pil.itm_logits, items.itm_logits, atol=1e-5)
    np.testing.assert_array_equal(paths.itm_logits, items.itm_logits)
    assert scored.i2t is None and scored.t2i.itc.shape == (2, 2)
    with pytest.raises(BadImageError, match="got dict"):
        load_reranker(tiny_config()).score_pairs([{}], captions, np.array([[0, 0]]), progress=False)
