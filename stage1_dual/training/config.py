"""Typed configuration of stage-1 contrastive training (plain dataclasses, validated in ``__post_init__``;
buildable from YAML by ``eval.typed_config.from_dict`` in scripts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from stage1_dual.trainable.model_config import DualModelConfig


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class AugmentationConfig:
    """Image augmentation, applied only when image pixels go through the tower at every step (a trained
    image tower, or ``cache_frozen_features: false``).

    Attributes:
        enabled: apply random resized crop (+ flip) to training images.
        min_crop_scale: smallest crop area as a fraction of the image.
        flip: random horizontal flip (leave off when captions say left/right).
    """

    enabled: bool = False
    min_crop_scale: float = 0.6
    flip: bool = False

    def __post_init__(self) -> None:
        _require(0.05 <= self.min_crop_scale <= 1.0, "augmentation.min_crop_scale must be in [0.05, 1]")


@dataclass
class HardNegativeConfig:
    """Hard-negative batches: images are paired with a similar image (by the current model, refreshed
    every ``refresh_every_epochs``) and the pair goes into the same batch.

    Attributes:
        enabled: mine partners and build paired batches.
        fraction: share of images that bring their partner into their batch.
        top_k: the partner is drawn among the ``top_k`` most similar non-matching images.
        start_epoch: first epoch (0-based) that uses paired batches (the model should know something first).
        refresh_every_epochs: re-mine partners every this many epochs.
    """

    enabled: bool = False
    fraction: float = 0.5
    top_k: int = 10
    start_epoch: int = 1
    refresh_every_epochs: int = 1

    def __post_init__(self) -> None:
        _require(0.0 <= self.fraction <= 1.0, "hard_negatives.fraction must be in [0, 1]")
        _require(self.top_k >= 1 and self.refresh_every_epochs >= 1 and self.start_epoch >= 0,
                 "hard_negatives.top_k and refresh_every_epochs must be >= 1, start_epoch >= 0")


@dataclass
class TrainConfig:
    """Contrastive training of a :class:`DualModelConfig` model.

    Attributes:
        model: the architecture (towers, projections, shared dimension, initial temperature).
        init_from: fine-tuning: an ``rrbench_dual`` model directory whose architecture and weights start the
            run (``model`` is then ignored); None = fresh initialisation from ``model``.
        epochs: passes over the training images.
        batch_size: images per step on each process (global batch = batch_size x processes).
        captions_per_image: captions drawn per image per step (several = multi-positive image-to-text).
        learning_rate: peak AdamW learning rate of projections, trained-from-scratch towers and the logit scale.
        tower_learning_rate: peak learning rate of the trained layers of pretrained towers (MiniLM top layers).
        weight_decay: AdamW weight decay of matrices (not of biases, norms, the logit scale).
        warmup_steps: linear warm-up steps, then cosine decay to ``min_lr_ratio`` x peak.
        min_lr_ratio: final learning rate as a fraction of the peak.
        grad_clip_norm: clip the global gradient norm to this (0 = no clipping).
        grad_cache_chunk: gradient caching: embed the batch in chunks of this many items with exact
            full-batch gradients (0 = off; only worth it when a tower trains).
        queue_size: memory queue of past embeddings used as extra loss columns (0 = off).
        hard_negatives: hard-negative batch construction.
        cache_frozen_features: compute cacheable towers' frozen features once (LiT) instead of every step.
        feature_cache_dir: where frozen features are cached on disk (None = in memory only).
        feature_cache_dtype: storage dtype of cached float features (float16 halves memory for states).
        feature_batch_size: batch size when computing frozen features and validation embeddings.
        augmentation: image augmentation (see :class:`AugmentationConfig`).
        num_workers: DataLoader workers decoding images.
        on_bad_input: an unreadable training/validation image: ``error`` raises naming it, ``skip``
            drops it and its captions (recorded in the log).
        validate_every_epochs: validate every this many epochs (and after the last one).
        selection_metric: validation metric that picks the best checkpoint (higher is better).
        checkpoint_every_steps: also save the resumable ``last`` checkpoint every this many steps (0 = epochs only).
        log_every_steps: write a training-loss record every this many steps.
        max_train_seconds: stop after the step that crosses this wall time (0 = no limit), then validate.
        max_steps: stop after this many optimizer steps in total (0 = no limit), then validate; the
            schedule still spans ``epochs``, so a later call with a larger limit continues the same run.
        seed: seed of initialisation, batch order, augmentation and dropout.
        device: ``auto`` (cuda when available), ``cpu``, ``cuda``, ``cuda:N``.
    """

    model: DualModelConfig = field(default_factory=DualModelConfig)
    init_from: Optional[Path] = None
    epochs: int = 10
    batch_size: int = 256
    captions_per_image: int = 1
    learning_rate: float = 1e-3
    tower_learning_rate: float = 5e-5
    weight_decay: float = 0.1
    warmup_steps: int = 50
    min_lr_ratio: float = 0.0
    grad_clip_norm: float = 0.0
    grad_cache_chunk: int = 0
    queue_size: int = 0
    hard_negatives: HardNegativeConfig = field(default_factory=HardNegativeConfig)
    cache_frozen_features: bool = True
    feature_cache_dir: Optional[Path] = None
    feature_cache_dtype: Literal["float32", "float16"] = "float32"
    feature_batch_size: int = 128
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    num_workers: int = 0
    on_bad_input: Literal["error", "skip"] = "error"
    validate_every_epochs: int = 1
    selection_metric: str = "rsum"
    checkpoint_every_steps: int = 0
    log_every_steps: int = 20
    max_train_seconds: float = 0.0
    max_steps: int = 0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "captions_per_image", "feature_batch_size", "validate_every_epochs",
                    "log_every_steps"):
            _require(getattr(self, key) >= 1, f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("warmup_steps", "grad_clip_norm", "grad_cache_chunk", "queue_size", "num_workers",
                    "checkpoint_every_steps", "max_train_seconds", "max_steps", "weight_decay"):
            _require(getattr(self, key) >= 0, f"{key} must be >= 0, got {getattr(self, key)}")
        _require(self.learning_rate > 0 and self.tower_learning_rate > 0, "learning rates must be > 0")
        _require(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio must be in [0, 1]")
        _require(self.on_bad_input in ("error", "skip"), "on_bad_input must be error or skip")
        _require(self.feature_cache_dtype in ("float32", "float16"), "feature_cache_dtype must be float32 or float16")
        _require(bool(self.selection_metric), "selection_metric must name a validation metric")
        if self.feature_cache_dir is not None:
            self.feature_cache_dir = Path(self.feature_cache_dir)
        if self.init_from is not None:
            self.init_from = Path(self.init_from)
