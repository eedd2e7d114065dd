"""The contract every tower of a trainable dual encoder follows, split into a frozen and a trained part.

A tower maps raw inputs (pixels ``[B, 3, H, W]`` or a list of strings) to features ``[B, output_dim]``
in two steps, so that the frozen part can be computed once and cached (LiT training):

- ``frozen_features(inputs) -> dict[str, Tensor]`` runs without gradients. Every tensor has the batch
  as its first dimension. Keys: ``pooled`` ``[B, C]`` (a finished feature vector), or sequence
  states ``hidden`` ``[B, T, C]`` with ``attention_mask`` ``[B, T]`` (1 = real token; the cache stores
  only real tokens), or the raw model inputs of a tower that trains end to end (``pixels``,
  ``input_ids`` + ``attention_mask``).
- ``trainable_forward(features) -> Tensor [B, output_dim]`` is differentiable.

``cacheable`` says whether ``frozen_features`` is worth caching (pretrained frozen computation);
``side_features`` names frozen features that are computed and cached for another consumer (EfficientNet's
unpooled ``grid`` for a stage-2 reranker) and that training leaves out of its batches;
``identity()`` names the frozen computation (tower, weights file hash, layers, input size) and keys
the feature cache; ``frozen_state_keys()`` lists the state-dict keys restored from a pretrained
package rather than from a checkpoint. Frozen submodules stay in eval mode when the tower trains.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Features = dict[str, torch.Tensor]


class Tower(nn.Module):
    """Base class of image and text towers (see the module docstring for the contract)."""

    output_dim: int = 0
    cacheable: bool = False
    # frozen features computed and cached for other consumers (e.g. a stage-2 reranker), unused in training
    side_features: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self._frozen_modules: list[nn.Module] = []

    def freeze(self, module: nn.Module) -> None:
        """Stop gradients into ``module`` and keep it in eval mode (no dropout, fixed batch-norm)."""
        module.requires_grad_(False)
        module.eval()
        self._frozen_modules.append(module)

    def train(self, mode: bool = True) -> "Tower":
        super().train(mode)
        for module in self._frozen_modules:
            module.eval()
        return self

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def frozen_features(self, inputs: Any) -> Features:
        raise NotImplementedError

    def trainable_forward(self, features: Features) -> torch.Tensor:
        raise NotImplementedError

    def frozen_state_keys(self) -> set[str]:
        """State-dict keys (relative to this tower) restored from a pretrained package, not checkpoints."""
        return set()

    def forward(self, inputs: Any) -> torch.Tensor:
        return self.trainable_forward(self.frozen_features(inputs))


def prefixed_state_keys(module: nn.Module, prefix: str) -> set[str]:
    """State-dict keys of ``module`` with ``prefix`` (e.g. ``"net."``) in front."""
    return {prefix + key for key in module.state_dict()}


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden [B, T, C]`` over real tokens (``attention_mask [B, T]``), as sentence-transformers."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
