"""build_random_model: the same seed gives the same weights as ever, and the caller's global RNG is untouched."""

from __future__ import annotations

import numpy as np
import torch
from transformers import Blip2ForImageTextRetrieval

from stage2_rerank.bench.random_checkpoint import build_random_model, tiny_blip2_itm_config


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_weights_match_the_globally_seeded_construction_and_global_state_is_unchanged():
    config = tiny_blip2_itm_config()
    torch.manual_seed(99)
    np.random.seed(5)
    torch_before, numpy_before = torch.get_rng_state(), np.random.get_state()
    built = _weights(build_random_model(config, seed=3))
    assert torch.equal(torch.get_rng_state(), torch_before)
    numpy_after = np.random.get_state()
    assert np.array_equal(numpy_after[1], numpy_before[1]) and numpy_after[2] == numpy_before[2]

    torch.manual_seed(3)  # how random checkpoints were built before: bit-identical weights for a seed
    reference = Blip2ForImageTextRetrieval(config).eval()
    with torch.no_grad():
        reference.query_tokens.normal_(std=config.qformer_config.initializer_range)
    assert built.keys() == reference.state_dict().keys()
    assert all(torch.equal(built[name], tensor) for name, tensor in reference.state_dict().items())
    assert all(torch.equal(built[name], tensor) for name, tensor in _weights(build_random_model(config, 3)).items())
    other = _weights(build_random_model(config, seed=4))
    assert not torch.equal(other["query_tokens"], built["query_tokens"])
