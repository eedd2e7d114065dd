"""Short synthetic ITM training (the demo recipe at test size): the Q-Former learns to match, and its checkpoint
reranks through load_reranker. 500 steps: about 30 s on 2 idle CPU cores (2 minutes when heavily shared)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.data.dataset_config import SyntheticConfig
from eval.reranker_recipes.common import processed_pixels
from eval.reranker_recipes.synthetic import (SyntheticItmOptions, distractor_accuracy, load_split, scene_groups,
                                         train_synthetic_reranker)
from stage2_rerank.config import RerankerConfig
from stage2_rerank.rerank import load_reranker
from stage2_rerank.training.checkpoint import load_itm_checkpoint
from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.vision.conv_grid import ConvGridConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_itm")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is as fast, and immune to spin-waiting on shared cores
    options = SyntheticItmOptions(
        data_cache_dir=root / "data",
        synthetic=SyntheticConfig(num_train=800, num_val=100, num_test=100, image_size=32, seed=3),
        grid=ConvGridConfig(image_size=32, widths=(16, 32, 48), feature_dim=48, groups=8, first_stride=1),
        hidden_size=48, num_layers=2, num_attention_heads=4, num_query_tokens=4, initializer_range=0.1,
        group_batches=False, val_images=50, val_depth=5)
    trainer = ItmTrainerConfig(epochs=4, batch_size=32, learning_rate=2e-3, warmup_steps=20, schedule="constant",
                               negatives="itc", itc_weight=1.0, temperature_init=0.1, weight_decay=0.0, progress=False)
    try:
        result = train_synthetic_reranker(options, trainer, root / "run")
    finally:
        torch.set_num_threads(threads)
    return options, result


def test_itm_separates_matching_pairs_from_other_scenes(trained):
    options, result = trained
    assert result.steps == 500 and (result.best_dir / "conv_grid.safetensors").is_file()
    val = load_split(options, "val")
    trainable, processor = load_itm_checkpoint(result.best_dir)
    accuracy = distractor_accuracy(trainable, val, scene_groups(options, val, "val"),
                                   processed_pixels(processor.image_processor, val), processor.tokenizer)
    # chance is 0.5 (500 held-out captions: 0.75 is > 10 standard errors above it); sibling distractors (same
    # bag of words) need far longer training and are not asserted here
    assert accuracy["itm/random"] > 0.75, accuracy
    assert accuracy["itc/random"] > 0.9, accuracy


def test_validation_was_logged_and_the_checkpoint_reranks_through_load_reranker(trained):
    options, result = trained
    assert "itm/t2i/R@1" in result.best_metrics and "stage1/t2i/R@1" in result.best_metrics
    val = load_split(options, "val")
    with load_reranker(RerankerConfig(backend="blip2_itm", model=str(result.best_dir), device="cpu")) as reranker:
        assert reranker.model.vision.identity.startswith("conv_grid|")
        scores = reranker.score_pairs(val.images[:3], [c.text for c in val.captions[:15]],
                                      np.array([[i, c] for i in range(3) for c in range(15)]), progress=False)
    own = scores.itm.reshape(3, 15)
    assert np.isfinite(own).all() and np.ptp(own) > 0.1
