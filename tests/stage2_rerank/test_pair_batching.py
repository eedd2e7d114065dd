"""Batch planning: OOM back-off (fake CUDA and CPU allocator OOMs), memory budget, image chunks, length buckets,
padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stage2_rerank.pair_batching import (
    OomEvent,
    image_chunks,
    length_bucketed_order,
    memory_capped_batch_size,
    pad_token_batch,
    run_adaptive_batches,
)
from stage2_rerank.pair_scoring import pair_memory_budget, tokenize_captions
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


CPU_OOM = ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
           "allocate 6600000000 bytes. Error code 12 (Cannot allocate memory)")


@pytest.mark.parametrize("error", [RuntimeError(CPU_OOM), MemoryError(),
                                   RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8 GB")])
def test_cpu_allocation_failure_backs_off_like_cuda_oom(error):
    seen, events = [], []

    def run_batch(start, stop):
        if stop - start > 3:
            raise error
        seen.extend(range(start, stop))

    assert run_adaptive_batches(11, 8, run_batch, "itm", events) == 2
    assert seen == list(range(11))
    assert events == [OomEvent("itm", 8, 4), OomEvent("itm", 4, 2)]
    assert events[0].error.startswith(type(error).__name__)


def test_reranker_recovers_from_cpu_allocator_failure_with_same_scores(tiny_config, tiny_images, monkeypatch):
    captions = make_captions(5, seed=4)
    pairs = np.array([(i, c) for i in range(3) for c in range(5)])
    with load_reranker(tiny_config(pair_batch_size=8)) as reranker:
        reference = reranker.score_pairs(tiny_images, captions, pairs, progress=False)
    with load_reranker(tiny_config(pair_batch_size=8)) as reranker:
        real = reranker.model.scorer.itm_logits

        def starved(input_ids, attention_mask, **kw):
            if input_ids.shape[0] > 2:
                raise RuntimeError(CPU_OOM)
            return real(input_ids, attention_mask, **kw)

        monkeypatch.setattr(reranker.model.scorer, "itm_logits", starved)
        scores = reranker.score_pairs(tiny_images, captions, pairs, progress=False)
        assert reranker.pair_batch_size == 2
    assert [(e.stage, e.batch_size, e.new_batch_size) for e in scores.stats.oom_events] == [
        ("itm", 8, 4), ("itm", 4, 2)]
    assert "DefaultCPUAllocator" in scores.stats.oom_events[0].error
    np.testing.assert_allclose(scores.itm_logits, reference.itm_logits, atol=1e-6)


@pytest.mark.parametrize("cache_kv", [True, False])
def test_memory_budget_caps_a_huge_pair_batch_size(tiny_config, tiny_images, monkeypatch, cache_kv):
    captions = make_captions(5, seed=4)
    pairs = np.array([(i, c) for i in range(6) for c in range(5)])
    with load_reranker(tiny_config(pair_batch_size=4, cache_cross_attention_kv=cache_kv)) as reranker:
        reference = reranker.score_pairs(tiny_images, captions, pairs, progress=False)
    config = tiny_config(pair_batch_size=1_000_000, pair_memory_mb=1, cache_cross_attention_kv=cache_kv)
    with load_reranker(config) as reranker:
        scorer = reranker.model.scorer
        tokens = tokenize_captions(reranker.model.tokenizer, captions, config.text_max_length)
        per_pair = scorer.pair_activation_bytes(max(map(len, tokens)), reranker.model.vision.feature_shape[0], cache_kv)
        cap = 2**20 // per_pair
        assert 1 <= cap < len(pairs)
        used, real = [], scorer.itm_logits

        def recording(input_ids, attention_mask, **kw):
            used.append(input_ids.shape[0])
            return real(input_ids, attention_mask, **kw)

        monkeypatch.setattr(scorer, "itm_logits", recording)
        scores = reranker.score_pairs(tiny_images, captions, pairs, progress=False)
        assert reranker.pair_batch_size == 1_000_000  # the cap is per call, the configured size is kept
    assert max(used) == cap and sum(used) == len(pairs) and scores.stats.qformer_batches == len(used)
    assert scores.stats.oom_events == []
    np.testing.assert_allclose(scores.itm_logits, reference.itm_logits, atol=1e-5)
    np.testing.assert_allclose(scores.itc, reference.itc, atol=1e-5)


def test_memory_budget_defaults_to_1gib_on_cpu_only(tiny_config):
    assert pair_memory_budget(tiny_config(), torch.device("cpu")) == 2**30
    assert pair_memory_budget(tiny_config(), torch.device("cuda")) is None
    assert pair_memory_budget(tiny_config(pair_memory_mb=64), torch.device("cuda")) == 64 * 2**20
    with pytest.raises(ValueError, match="pair_memory_mb must be >= 1"):
        tiny_config(pair_memory_mb=0)
    assert memory_capped_batch_size(1_000_000, 2**20, 2**30) == 1024
    assert memory_capped_batch_size(8, 2**20, 2**30) == 8 and memory_capped_batch_size(8, 2**31, 2**30) == 1
    assert memory_capped_batch_size(8, 2**31, None) == 8
