"""Multi-positive symmetric InfoNCE against hand-computed values and against CLIP's loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stage1_dual.training.losses import FeatureBank, contrastive_loss


def _log_softmax(values: list[float], index: int) -> float:
    return values[index] - math.log(sum(math.exp(v) for v in values))


def test_multi_positive_loss_matches_hand_computation():
    # image 0 has captions 0 and 1, image 1 has caption 2; logit scale 2
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    result = contrastive_loss(images, texts, torch.tensor([0, 1]), torch.tensor([0, 0, 1]), torch.tensor(2.0))
    # text -> image rows: logits 2 * <text, image>
    t2i = -(_log_softmax([2.0, 0.0], 0) + _log_softmax([1.2, 1.6], 0) + _log_softmax([0.0, 2.0], 1)) / 3
    # image -> text rows: image 0 has two positives (target 1/2 each), image 1 one
    i2t = -((0.5 * _log_softmax([2.0, 1.2, 0.0], 0) + 0.5 * _log_softmax([2.0, 1.2, 0.0], 1))
            + _log_softmax([0.0, 1.6, 2.0], 2)) / 2
    assert result.t2i.item() == pytest.approx(t2i, rel=1e-6)
    assert result.i2t.item() == pytest.approx(i2t, rel=1e-6)
    assert result.loss.item() == pytest.approx((t2i + i2t) / 2, rel=1e-6)


def test_one_caption_per_image_is_clip_loss():
    torch.manual_seed(0)
    images = F.normalize(torch.randn(5, 8), dim=-1)
    texts = F.normalize(torch.randn(5, 8), dim=-1)
    keys = torch.arange(5)
    result = contrastive_loss(images, texts, keys, keys, torch.tensor(10.0))
    logits = 10.0 * images @ texts.T
    clip = (F.cross_entropy(logits, keys) + F.cross_entropy(logits.T, keys)) / 2
    assert result.loss.item() == pytest.approx(clip.item(), rel=1e-6)


def test_bank_rows_with_the_same_key_count_as_positives():
    images = torch.tensor([[1.0, 0.0]])
    texts = torch.tensor([[1.0, 0.0]])
    bank = FeatureBank(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([7, 0]))
    result = contrastive_loss(images, texts, torch.tensor([0]), torch.tensor([0]), torch.tensor(1.0), image_bank=bank)
    # columns: image 0 (positive), bank key 7 (negative), bank key 0 (positive, same image)
    expected = -(0.5 * _log_softmax([1.0, 0.0, 1.0], 0) + 0.5 * _log_softmax([1.0, 0.0, 1.0], 2))
    assert result.t2i.item() == pytest.approx(expected, rel=1e-6)
    assert result.i2t.item() == pytest.approx(0.0, abs=1e-7)  # one column, its own positive


def test_gradient_flows_to_embeddings_and_scale():
    images = F.normalize(torch.randn(3, 4), dim=-1).requires_grad_(True)
    texts = F.normalize(torch.randn(3, 4), dim=-1).requires_grad_(True)
    scale = torch.tensor(5.0, requires_grad=True)
    contrastive_loss(images, texts, torch.arange(3), torch.arange(3), scale).loss.backward()
    assert images.grad.abs().sum() > 0 and texts.grad.abs().sum() > 0 and scale.grad.abs() > 0


def test_a_query_without_positive_is_an_error():
    with pytest.raises(ValueError, match="no positive"):
        contrastive_loss(torch.eye(2), torch.eye(2), torch.tensor([0, 1]), torch.tensor([0, 5]), torch.tensor(1.0))
