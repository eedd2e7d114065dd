"""Batch planning: OOM back-off (with a fake CUDA OOM), image chunks, length buckets, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stage2_rerank.pair_batching import (
    OomEvent,
    image_chunks,
    length_bucketed_order,
    pad_token_batch,
    run_adaptive_batches,
)
from stage2_rerank.rerank import load_reranker
from tests.stage2_rerank.helpers import make_captions


def test_oom_halves_batch_size_and_retries_the_same_items():
    seen, events = [], []

    def run_batch(start, stop):
        if stop - start > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        seen.extend(range(start, stop))

    final = run_adaptive_batches(11, 8, run_batch, "itm", events)
    assert seen == list(range(11))
    assert events == [OomEvent("itm", 8, 4), OomEvent("itm", 4, 2)]
    assert final == 2


def test_oom_at_batch_size_one_and_other_errors_propagate():
    def always_oom(start, stop):
        raise torch.cuda.OutOfMemoryError("fake")

    events: list = []
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_adaptive_batches(3, 2, always_oom, "itm", events)
    assert events == [OomEvent("itm", 2, 1)]

    def broken(start, stop):
        raise RuntimeError("shape mismatch")

    events = []
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_adaptive_batches(3, 2, broken, "itm", events)
    assert events == []


def test_reranker_recovers_from_fake_oom_with_same_scores(tiny_config, tiny_images, monkeypatch):
    captions = make_captions(5, seed=4)
    pairs = np.array([(i, c) for i in range(3) for c in range(5)])
    with load_reranker(tiny_config(pair_batch_size=8)) as reranker:
        reference = reranker.score_pairs(tiny_images, captions, pairs, progress=False)
    with load_reranker(tiny_config(pair_batch_size=8)) as reranker:
        real = reranker.model.scorer.itm_logits

        def flaky(input_ids, attention_mask, **kw):
            if input_ids.shape[0] > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
            return real(input_ids, attention_mask, **kw)

        monkeypatch.setattr(reranker.model.scorer, "itm_logits", flaky)
        scores = reranker.score_pairs(tiny_images, captions, pairs, progress=False)
        assert reranker.pair_batch_size == 2
    assert [(e.batch_size, e.new_batch_size) for e in scores.stats.oom_events] == [(8, 4), (4, 2)]
    np.testing.assert_allclose(scores.itm_logits, reference.itm_logits, atol=1e-6)


def test_image_chunks_respect_budget():
    chunks = image_chunks(7, bytes_per_image=100, budget_bytes=250)
    assert [c.tolist() for c in chunks] == [[0, 1], [2, 3], [4, 5], [6]]
    assert [c.tolist() for c in image_chunks(2, 1000, 10)] == [[0], [1]]


def test_length_bucketed_order_sorts_by_length_then_image():
    order = length_bucketed_order(np.array([5, 3, 5, 3]), np.array([1, 2, 0, 0]))
    assert order.tolist() == [3, 1, 2, 0]


def test_pad_token_batch():
    ids, mask = pad_token_batch([[2, 7, 3], [2, 3]], pad_id=0, device=torch.device("cpu"))
    assert ids.tolist() == [[2, 7, 3], [2, 3, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
