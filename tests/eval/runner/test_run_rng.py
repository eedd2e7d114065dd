"""A run sets no global RNG state: torch's and numpy's generators are as the caller left them, the seed is recorded,
and the same config gives the same metrics whatever the caller's generator state (and, with checkpoint weights and
seeded random-init encoders, whatever the run's seed)."""

from __future__ import annotations

import json

import numpy as np
import torch

from eval.experiment_config import load_experiment
from eval.runner.experiment import run_experiment
from tests.tiny_experiment import write_tiny_experiment


def _numpy_state_equal(a, b) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def test_run_leaves_the_global_generators_alone_and_reproduces_from_any_caller_state(tmp_path):
    config = write_tiny_experiment(tmp_path)
    metrics = []
    for caller_seed, run_seed, name in ((1, 17, "first"), (2, 17, "second"), (1, 18, "other_seed")):
        torch.manual_seed(caller_seed)
        np.random.seed(caller_seed)
        torch_before, numpy_before = torch.get_rng_state(), np.random.get_state()
        cfg = load_experiment(config, [f"experiment={name}", f"seed={run_seed}",
                                       f"cache_dir={tmp_path / name / 'cache'}"])
        results = json.loads(run_experiment(cfg).read_text(encoding="utf-8"))
        assert torch.equal(torch.get_rng_state(), torch_before)
        assert _numpy_state_equal(np.random.get_state(), numpy_before)
        assert results["provenance"]["seed"] == run_seed
        metrics.append(results["metrics"])
    assert metrics[0] == metrics[1]
    assert metrics[2] == metrics[0]  # the seed only feeds initialisations that checkpoint weights replace
