"""build_itm_model: seeded by the spec, without setting the caller's global RNG state."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from stage2_rerank.training.model_spec import build_itm_model
from tests.stage2_rerank.helpers import WORDS
from tests.stage2_rerank.training.helpers import tiny_spec


def test_same_seed_same_weights_and_the_global_state_is_unchanged():
    torch.manual_seed(11)
    np.random.seed(11)
    torch_before, numpy_before = torch.get_rng_state(), np.random.get_state()
    first, _, _ = build_itm_model(tiny_spec(), WORDS)
    assert torch.equal(torch.get_rng_state(), torch_before)
    assert np.array_equal(np.random.get_state()[1], numpy_before[1])
    torch.rand(3)  # a different global state must not change what the spec's seed builds
    second, _, _ = build_itm_model(tiny_spec(), WORDS)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    reseeded, _, _ = build_itm_model(dataclasses.replace(tiny_spec(), seed=2), WORDS)
    assert not torch.equal(reseeded.query_tokens, first.query_tokens)


def test_unseeded_builder_inside_a_seeded_scope_gives_the_seeded_weights_and_continues_the_stream():
    from rrbench_base.global_rng import seeded_torch_rng
    from stage2_rerank.training.model_spec import build_itm_model_unseeded

    seeded, _, _ = build_itm_model(tiny_spec(), WORDS)
    with seeded_torch_rng(tiny_spec().seed):
        unseeded, _, _ = build_itm_model_unseeded(tiny_spec(), WORDS)
        after_model = torch.rand(3)  # what a module built next (the synthetic recipe's conv grid) draws from
    assert all(torch.equal(a, b) for a, b in zip(seeded.state_dict().values(), unseeded.state_dict().values()))
    torch.manual_seed(tiny_spec().seed)  # the stream as build_itm_model used to leave it seeded
    build_itm_model_unseeded(tiny_spec(), WORDS)
    assert torch.equal(after_model, torch.rand(3))
