"""Hard-negative sampling never returns a positive; paired batches keep every image exactly once."""

from __future__ import annotations

import numpy as np
import torch

from stage1_dual.training.hard_negatives import pair_batches, sample_hard_negatives


def test_sampler_never_returns_a_positive_and_stays_in_the_top_k():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    queries, gallery = torch.randn(200, 8), torch.randn(50, 8)
    scores = queries @ gallery.T
    # positives: the most similar item (so a naive top-k would return it) plus a few random ones
    positives = [sorted({int(scores[q].argmax())} | set(rng.choice(50, size=int(rng.integers(0, 4))).tolist()))
                 for q in range(200)]
    for top_k in (1, 3, 10):
        picked = sample_hard_negatives(queries, gallery, positives, top_k, rng, chunk_size=64)
        for q, item in enumerate(picked):
            assert item >= 0 and item not in positives[q]
            masked = scores[q].clone()
            masked[positives[q]] = float("-inf")
            assert masked[item] >= masked.topk(top_k).values[-1]


def test_query_whose_gallery_is_all_positive_gets_minus_one():
    picked = sample_hard_negatives(torch.randn(2, 4), torch.randn(3, 4), [[0, 1, 2], [1]], 5,
                                   np.random.default_rng(0))
    assert picked[0] == -1 and picked[1] in (0, 2)


def test_pair_batches_place_partners_together_and_use_each_image_once():
    order = np.random.default_rng(1).permutation(20)
    partner = (np.arange(20) + 10) % 20
    batches = pair_batches(order, partner, fraction=1.0, batch_size=4)
    flat = np.concatenate(batches)
    assert len(flat) == len(set(flat.tolist())) == 20
    assert all(partner[a] == b for batch in batches for a, b in zip(batch[::2], batch[1::2]))
