"""Gradient caching gives the gradients of the plain full-batch backward."""

from __future__ import annotations

import copy

import pytest
import torch

from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.training.grad_cache import grad_cached_backward
from stage1_dual.training.losses import contrastive_loss
from tests.stage1_dual.trainable_helpers import tiny_model_config

CAPTIONS = ["a red square left of a blue square", "a blue square right of a red square",
            "a green square left of a white square", "a yellow square", "a white square right of a green square",
            "a red square", "a blue square left of a yellow square", "a green square"]
TEXT_IMAGE = torch.tensor([0, 0, 1, 2, 1, 3, 4, 5])


def _inputs(model: DualEncoderModel) -> tuple[dict, dict]:
    torch.manual_seed(1)
    return {"pixels": torch.randn(6, 3, 16, 16, dtype=torch.float64)}, model.text_tower.frozen_features(CAPTIONS)


def _loss_fn(model: DualEncoderModel):
    return lambda images, texts: contrastive_loss(images, texts, torch.arange(6), TEXT_IMAGE, model.scale()).loss


def _grads(model: DualEncoderModel) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_grad_cache_equals_full_batch_gradients(chunk_size: int):
    torch.manual_seed(0)
    plain = DualEncoderModel(tiny_model_config(dropout=0.0)).double().train()  # float64: exact comparison
    cached = copy.deepcopy(plain)
    image_features, text_features = _inputs(plain)
    images, texts = plain(image_features=image_features, text_features=text_features)
    plain_loss = _loss_fn(plain)(images, texts)
    plain_loss.backward()
    loss, cached_images, cached_texts = grad_cached_backward(cached, image_features, text_features,
                                                             _loss_fn(cached), chunk_size)
    assert loss.item() == pytest.approx(plain_loss.item(), rel=1e-12)
    torch.testing.assert_close(cached_images, images.detach())
    plain_grads, cached_grads = _grads(plain), _grads(cached)
    assert set(plain_grads) == set(cached_grads) and "logit_scale" in plain_grads
    for name, grad in plain_grads.items():
        torch.testing.assert_close(cached_grads[name], grad, rtol=1e-9, atol=1e-10, msg=name)


def test_dropout_masks_are_replayed():
    """With dropout on and one chunk per side, the cached pass must replay the RNG of the first pass to
    match the plain backward (which draws images first, then texts, in the same order)."""
    torch.manual_seed(0)
    plain = DualEncoderModel(tiny_model_config(dropout=0.3)).double().train()
    cached = copy.deepcopy(plain)
    image_features, text_features = _inputs(plain)
    torch.manual_seed(5)
    images, texts = plain(image_features=image_features, text_features=text_features)
    _loss_fn(plain)(images, texts).backward()
    after_plain = torch.get_rng_state()
    torch.manual_seed(5)
    grad_cached_backward(cached, image_features, text_features, _loss_fn(cached), chunk_size=8)
    assert torch.equal(torch.get_rng_state(), after_plain)
    for name, grad in _grads(plain).items():
        torch.testing.assert_close(_grads(cached)[name], grad, rtol=1e-9, atol=1e-10, msg=name)
