"""The trainable dual encoder: image tower + text tower + projections + a learnable logit scale.

``DualEncoderModel.embed_images(features)`` / ``embed_texts(features)`` take the towers' frozen
features (see ``trainable.towers``) and return L2-normalised float ``[B, embed_dim]`` embeddings
(differentiable). ``forward(image_features=..., text_features=...)`` returns both (either may be None),
so the model can be wrapped for data-parallel training. ``logit_scale`` holds ``log(1 / temperature)``;
:meth:`DualEncoderModel.scale` returns ``exp`` of it clamped to ``[1, max_logit_scale]``.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from stage1_dual.trainable.image_towers import ImageTower, build_image_tower
from stage1_dual.trainable.model_config import DualModelConfig, ProjectionConfig
from stage1_dual.trainable.text_towers import build_text_tower
from stage1_dual.trainable.towers import Features, Tower


class LinearProjection(nn.Module):
    """Dropout then one bias-free matrix (CLIP's projection)."""

    def __init__(self, dim_in: int, dim_out: int, cfg: ProjectionConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear = nn.Linear(dim_in, dim_out, bias=False)
        nn.init.normal_(self.linear.weight, std=dim_in ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))


class MLPProjection(nn.Module):
    """LayerNorm and dropout, then ``Linear-GELU-Dropout-Linear`` plus a bias-free linear skip path."""

    def __init__(self, dim_in: int, dim_out: int, cfg: ProjectionConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim_in)
        self.dropout = nn.Dropout(cfg.dropout)
        self.mlp = nn.Sequential(nn.Linear(dim_in, cfg.hidden_dim), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.hidden_dim, dim_out))
        self.skip = nn.Linear(dim_in, dim_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.norm(x))
        return self.skip(x) + self.mlp(x)


PROJECTIONS: dict[str, Callable[[int, int, ProjectionConfig], nn.Module]] = {
    "linear": LinearProjection,
    "mlp": MLPProjection,
}
"""Projection kind -> constructor ``(dim_in, dim_out, ProjectionConfig) -> nn.Module``."""


def build_projection(dim_in: int, dim_out: int, cfg: ProjectionConfig) -> nn.Module:
    """The projection named by ``cfg.kind``; an unknown kind lists the known ones."""
    if cfg.kind not in PROJECTIONS:
        raise ValueError(f"unknown projection kind {cfg.kind!r}; known: {', '.join(sorted(PROJECTIONS))}")
    return PROJECTIONS[cfg.kind](dim_in, dim_out, cfg)


class DualEncoderModel(nn.Module):
    """Towers + projections + logit scale, built from a :class:`DualModelConfig` (see module docstring)."""

    def __init__(self, cfg: DualModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.image_tower: ImageTower = build_image_tower(cfg.image_tower)
        self.text_tower: Tower = build_text_tower(cfg.text_tower)
        self.image_projection = build_projection(self.image_tower.output_dim, cfg.embed_dim, cfg.image_projection)
        self.text_projection = build_projection(self.text_tower.output_dim, cfg.embed_dim, cfg.text_projection)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    def scale(self) -> torch.Tensor:
        """``exp(logit_scale)`` clamped to ``[1, max_logit_scale]`` (the inverse temperature)."""
        return self.logit_scale.clamp(0.0, math.log(self.config.max_logit_scale)).exp()

    def embed_images(self, features: Features) -> torch.Tensor:
        """Image tower frozen features -> L2-normalised ``[B, embed_dim]``."""
        return F.normalize(self.image_projection(self.image_tower.trainable_forward(features)), dim=-1)

    def embed_texts(self, features: Features) -> torch.Tensor:
        """Text tower frozen features -> L2-normalised ``[B, embed_dim]``."""
        return F.normalize(self.text_projection(self.text_tower.trainable_forward(features)), dim=-1)

    def forward(self, image_features: Optional[Features] = None,
                text_features: Optional[Features] = None) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        images = self.embed_images(image_features) if image_features is not None else None
        texts = self.embed_texts(text_features) if text_features is not None else None
        return images, texts

    def frozen_state_keys(self) -> set[str]:
        """State-dict keys restored from pretrained packages (left out of checkpoints)."""
        return ({"image_tower." + k for k in self.image_tower.frozen_state_keys()}
                | {"text_tower." + k for k in self.text_tower.frozen_state_keys()})

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Every state-dict entry except the frozen pretrained ones: what a checkpoint stores."""
        frozen = self.frozen_state_keys()
        return {k: v for k, v in self.state_dict().items() if k not in frozen}
