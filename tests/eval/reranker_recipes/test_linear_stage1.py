"""The linear stand-in stage 1: one seed gives one fit whatever the caller's global RNG, which it leaves alone."""

from __future__ import annotations

import numpy as np
import torch

from eval.reranker_recipes.linear_stage1 import fit_linear_stage1


def _data():
    rng = np.random.default_rng(0)
    pooled = rng.normal(size=(12, 6)).astype(np.float32)
    caption_image = np.repeat(np.arange(12), 2)
    text = (pooled[caption_image] @ rng.normal(size=(6, 5)) + 0.1 * rng.normal(size=(24, 5))).astype(np.float32)
    return text, pooled, caption_image


def test_fit_leaves_the_callers_global_rng_alone_and_one_seed_gives_one_fit():
    text, pooled, caption_image = _data()
    fits = []
    for caller_seed in (1, 2):
        torch.manual_seed(caller_seed)
        np.random.seed(caller_seed)
        torch_before, numpy_before = torch.get_rng_state(), np.random.get_state()
        fits.append(fit_linear_stage1(text, pooled, caption_image, dim=4, epochs=2, batch_size=4, seed=3))
        assert torch.equal(torch.get_rng_state(), torch_before)
        assert np.array_equal(np.random.get_state()[1], numpy_before[1])
    for name, value in vars(fits[0]).items():
        np.testing.assert_array_equal(value, vars(fits[1])[name], err_msg=name)
    other = fit_linear_stage1(text, pooled, caption_image, dim=4, epochs=2, batch_size=4, seed=4)
    assert not np.array_equal(other.text_weight, fits[0].text_weight)
