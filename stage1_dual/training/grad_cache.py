"""Gradient caching (Gao et al., 2021, "GradCache"): a contrastive step over a batch larger than fits
through the towers at once, with exactly the gradients of the full batch.

1. Embed the batch chunk by chunk without gradients, remembering the RNG state before each chunk.
2. Compute the loss on the full embedding matrices (detached leaves) and backpropagate into them:
   this gives d loss / d embedding for every row (and the logit-scale gradient, directly).
3. Re-embed each chunk with gradients under its remembered RNG state (same dropout masks and
   augmentation draws) and backpropagate ``sum(embedding * cached gradient)``.

The model must not depend on batch composition (no BatchNorm in training mode: the small towers use
GroupNorm/LayerNorm; frozen towers run in eval mode). ``no_sync`` is the data-parallel context that
skips gradient all-reduce (``accelerator.no_sync(model)``); it wraps every chunk but the last.
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Optional

import torch
from torch import nn

from stage1_dual.trainable.towers import Features

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def split_features(features: Features, chunk_size: int) -> list[Features]:
    """Cut every tensor of ``features`` along the batch dimension into chunks of ``chunk_size`` rows."""
    first = next(iter(features.values()))
    return [{k: v[i:i + chunk_size] for k, v in features.items()} for i in range(0, len(first), chunk_size)]


def _rng_states() -> tuple[torch.Tensor, Optional[list[torch.Tensor]]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return torch.get_rng_state(), cuda


def _set_rng_states(states: tuple[torch.Tensor, Optional[list[torch.Tensor]]]) -> None:
    torch.set_rng_state(states[0])
    if states[1] is not None:
        torch.cuda.set_rng_state_all(states[1])


def _embed(model: nn.Module, chunk: Features, side: str) -> torch.Tensor:
    images, texts = model(**{f"{side}_features": chunk})
    return images if side == "image" else texts


def grad_cached_backward(model: nn.Module, image_features: Features, text_features: Features,
                         loss_fn: LossFn, chunk_size: int,
                         no_sync: Optional[Callable[[], ContextManager]] = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Accumulate into ``.grad`` the gradients of ``loss_fn(model images, model texts)`` (module docstring).

    ``model(image_features=...)`` / ``model(text_features=...)`` must return ``(images, texts)``
    embeddings as :class:`~stage1_dual.trainable.model.DualEncoderModel` does. Returns the loss value
    (detached) and the detached full image and text embeddings.
    """
    if chunk_size < 1:
        raise ValueError(f"grad cache chunk size must be >= 1, got {chunk_size}")
    no_sync = no_sync or contextlib.nullcontext
    sides = {"image": split_features(image_features, chunk_size), "text": split_features(text_features, chunk_size)}
    rng_before: dict[str, list] = {side: [] for side in sides}
    cached: dict[str, list[torch.Tensor]] = {side: [] for side in sides}
    with torch.no_grad():
        for side, chunks in sides.items():
            for chunk in chunks:
                rng_before[side].append(_rng_states())
                cached[side].append(_embed(model, chunk, side))
    rng_after = _rng_states()
    images = torch.cat(cached["image"]).requires_grad_(True)
    texts = torch.cat(cached["text"]).requires_grad_(True)
    loss = loss_fn(images, texts)
    with no_sync():
        loss.backward()
    gradients = {"image": images.grad.split(chunk_size), "text": texts.grad.split(chunk_size)}
    last = ("text", len(sides["text"]) - 1)
    for side, chunks in sides.items():
        for index, chunk in enumerate(chunks):
            _set_rng_states(rng_before[side][index])
            with contextlib.nullcontext() if (side, index) == last else no_sync():
                (_embed(model, chunk, side) * gradients[side][index]).sum().backward()
    _set_rng_states(rng_after)
    return loss.detach(), images.detach(), texts.detach()
