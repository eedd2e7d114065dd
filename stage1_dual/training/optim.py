"""AdamW parameter groups and the warm-up + cosine learning-rate schedule of stage-1 training."""

from __future__ import annotations

import math

import torch

from stage1_dual.trainable.model import DualEncoderModel


def parameter_groups(model: DualEncoderModel, learning_rate: float, tower_learning_rate: float,
                     weight_decay: float) -> list[dict]:
    """Trainable parameters in up to four groups: {new, pretrained-tower} x {decay, no decay}.

    Pretrained-tower parameters (a tower with frozen pretrained parts, e.g. MiniLM's trained top layers)
    get ``tower_learning_rate``; biases, norms and other <2-D parameters (and the logit scale) get no
    weight decay. Each group records its peak rate under ``peak_lr``.
    """
    pretrained = {id(p) for tower in (model.image_tower, model.text_tower) if tower.frozen_state_keys()
                  for p in tower.parameters()}
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for param in model.parameters():
        if param.requires_grad:
            groups.setdefault((id(param) in pretrained, param.ndim >= 2), []).append(param)
    return [{"params": params, "lr": tower_learning_rate if is_tower else learning_rate,
             "peak_lr": tower_learning_rate if is_tower else learning_rate,
             "weight_decay": weight_decay if decays else 0.0}
            for (is_tower, decays), params in sorted(groups.items())]


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak rate at optimizer step ``step`` (0-based): linear warm-up over
    ``warmup_steps``, then cosine from 1 to ``min_ratio`` at ``total_steps``."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_learning_rates(optimizer: torch.optim.Optimizer, factor: float) -> float:
    """Set every group's rate to ``peak_lr * factor``; returns the first group's rate."""
    for group in optimizer.param_groups:
        group["lr"] = group["peak_lr"] * factor
    return float(optimizer.param_groups[0]["lr"])
