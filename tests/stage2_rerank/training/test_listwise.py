"""Listwise ITM loss: lists never hold a second positive, the loss is the CE of the scorer's logit gaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.training.hard_negatives import TopKNegatives
from stage2_rerank.training.listwise import listwise_itm_loss, sample_lists
from stage2_rerank.training.losses import Stage1Embeddings
from stage2_rerank.training.trainable import score_pairs_in_memory
from stage2_rerank.training.trainer import ItmTrainer
from tests.stage2_rerank.training.helpers import tiny_feature_data, tiny_trainable


def _topk(data, depth: int = 5, seed: int = 0) -> TopKNegatives:
    """Random 'stage-1' top-``depth`` lists that include positives (which the sampler must skip)."""
    rng = np.random.default_rng(seed)
    n_img, n_cap = len(data.image_inputs), len(data.caption_tokens)
    images = np.stack([rng.permutation(n_img)[:depth] for _ in range(n_cap)])
    captions = np.stack([rng.permutation(n_cap)[:depth] for _ in range(n_img)])
    return TopKNegatives(data.caption_image.numpy(), images, rng.normal(size=images.shape), captions,
                         rng.normal(size=captions.shape), temperature=0.5)


def test_sample_lists_are_distinct_negatives_and_filled_when_candidates_run_short():
    candidates = np.array([[0, 1, 2, -1], [3, 3, -1, -1]])
    positive = np.array([[True, False, False, False], [False, False, False, False]])
    owner_positive = {0: {0}, 1: {5}}
    out = sample_lists(candidates, np.zeros((2, 4)), positive, 3, 6, lambda r, i: i in owner_positive[r],
                       torch.Generator().manual_seed(0), 1.0)
    assert out.shape == (2, 3)
    for row, values in enumerate(out):
        assert len(set(values.tolist())) == 3
        assert not owner_positive[row] & set(values.tolist())
    assert set(out[0, :2].tolist()) == {1, 2}  # both top-k negatives are used before any filler
    assert 3 in out[1, :2]


def test_listwise_loss_is_the_cross_entropy_of_the_scorer_logit_gaps():
    trainable, processor = tiny_trainable()
    data = tiny_feature_data(processor)
    topk = _topk(data)
    captions = torch.tensor([0, 4, 9, 13])
    result = listwise_itm_loss(trainable.eval(), data, captions, topk, torch.Generator().manual_seed(1), list_size=4)
    own = data.caption_image.numpy()[captions.numpy()]
    assert (result.t2i_images[:, 0] == own).all() and (result.i2t_captions[:, 0] == captions.numpy()).all()
    assert (result.t2i_images[:, 1:] != own[:, None]).all()
    assert (data.caption_image.numpy()[result.i2t_captions[:, 1:]] != own[:, None]).all()
    t2i_pairs = np.stack([result.t2i_images.reshape(-1), np.repeat(captions.numpy(), 4)], axis=1)
    i2t_pairs = np.stack([np.repeat(own, 4), result.i2t_captions.reshape(-1)], axis=1)
    target = torch.zeros(4, dtype=torch.long)
    expected = []
    for pairs in (t2i_pairs, i2t_pairs):
        logits, _ = score_pairs_in_memory(trainable, data, pairs)
        gap = torch.from_numpy(logits[:, 1] - logits[:, 0]).view(4, 4)
        expected.append(F.cross_entropy(gap, target).item())
    assert result.t2i.item() == pytest.approx(expected[0], abs=1e-4)
    assert result.i2t.item() == pytest.approx(expected[1], abs=1e-4)
    assert result.loss.item() == pytest.approx(sum(expected) / 2, abs=1e-4)


def test_residual_listwise_loss_adds_the_scaled_stage1_similarity_to_each_gap():
    trainable, processor = tiny_trainable()
    data = tiny_feature_data(processor)
    rng = np.random.default_rng(4)
    stage1 = Stage1Embeddings(rng.normal(size=(len(data.image_inputs), 5)).astype(np.float32),
                              rng.normal(size=(len(data.caption_tokens), 5)).astype(np.float32))
    captions = torch.tensor([1, 5, 10])
    trainable.eval()
    plain = listwise_itm_loss(trainable, data, captions, _topk(data), torch.Generator().manual_seed(2), 4)
    result = listwise_itm_loss(trainable, data, captions, _topk(data), torch.Generator().manual_seed(2), 4,
                               stage1=stage1, residual_scale=3.0)
    assert (result.t2i_images == plain.t2i_images).all() and (result.i2t_captions == plain.i2t_captions).all()
    own = data.caption_image.numpy()[captions.numpy()]
    t2i_pairs = np.stack([result.t2i_images.reshape(-1), np.repeat(captions.numpy(), 4)], axis=1)
    i2t_pairs = np.stack([np.repeat(own, 4), result.i2t_captions.reshape(-1)], axis=1)
    expected = []
    for pairs in (t2i_pairs, i2t_pairs):
        logits, _ = score_pairs_in_memory(trainable, data, pairs)
        prior = np.einsum("pe,pe->p", stage1.image[pairs[:, 0]], stage1.text[pairs[:, 1]])
        fused = torch.from_numpy(logits[:, 1] - logits[:, 0] + 3.0 * prior).view(3, 4)
        expected.append(F.cross_entropy(fused, torch.zeros(3, dtype=torch.long)).item())
    assert result.t2i.item() == pytest.approx(expected[0], abs=1e-4)
    assert result.i2t.item() == pytest.approx(expected[1], abs=1e-4)
    assert result.t2i.item() != pytest.approx(plain.t2i.item(), abs=1e-3)
    with pytest.raises(ValueError, match="stage-1 embeddings"):
        listwise_itm_loss(trainable, data, captions, _topk(data), torch.Generator(), 4, residual_scale=1.0)


def test_trainer_adds_the_listwise_loss_and_it_falls(tmp_path):
    torch.manual_seed(0)
    trainable, processor = tiny_trainable()
    data = tiny_feature_data(processor, n_images=6, per_image=2)
    config = ItmTrainerConfig(epochs=1, batch_size=4, steps_per_epoch=None, learning_rate=3e-3, warmup_steps=0,
                              itc_weight=0.0, negatives="topk", listwise_weight=1.0, list_size=3, list_rows=4,
                              schedule="constant", progress=False, seed=3)
    trainer = ItmTrainer(trainable, processor, data, config, tmp_path, topk=_topk(data, depth=4))
    captions = torch.arange(4)
    records = [trainer.train_step(captions) for _ in range(25)]
    assert all("listwise" in r and "listwise_top1" in r for r in records)
    assert np.mean([r["listwise"] for r in records[-5:]]) < np.mean([r["listwise"] for r in records[:5]])


def test_listwise_needs_topk_negatives():
    with pytest.raises(ValueError, match="topk"):
        ItmTrainerConfig(listwise_weight=1.0, negatives="itc")
