"""Choose the input sources of a split for a model: cached frozen features (LiT) or live inputs.

A tower whose frozen part is pretrained (``tower.cacheable``) gets a :class:`CachedSource` when
``cache_frozen_features`` is on (features computed once, stored by :class:`FrozenFeatureCache`);
otherwise images are decoded (and augmented in training) every step and captions go through the
tower's ``frozen_features`` every step. Unreadable images follow ``on_bad_input``: ``skip`` removes them
and their captions from the split (the returned split) and records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.training.config import TrainConfig
from stage1_dual.training.data import TrainingSplit
from stage1_dual.training.feature_cache import FrozenFeatureCache
from stage1_dual.training.sources import CachedSource, LiveTextSource, PixelSource, readable_images


@dataclass
class SplitSources:
    """A split (possibly without skipped images) and where its image / caption inputs come from."""

    split: TrainingSplit
    images: Any
    texts: Any
    skipped: list[dict]


def build_split_sources(model: DualEncoderModel, cfg: TrainConfig, split: TrainingSplit,
                        cache: FrozenFeatureCache, device: torch.device, train: bool) -> SplitSources:
    """Sources for ``split`` (``train`` enables augmentation for live images)."""
    image_tower, text_tower = model.image_tower, model.text_tower
    if image_tower.cacheable and cfg.cache_frozen_features:
        table = cache.images(image_tower, split.images, batch_size=cfg.feature_batch_size,
                             num_workers=cfg.num_workers, on_bad_input=cfg.on_bad_input, device=device)
        skipped = list(table.skipped)
        if skipped:
            split = split.subset_images(table.positions)
        table.positions = np.arange(len(table.positions))
        for name in image_tower.side_features:  # cached for another consumer; not gathered into batches
            table.dense.pop(name, None)
        images: Any = CachedSource(table)
    else:
        skipped = []
        if cfg.on_bad_input == "skip":
            keep, skipped = readable_images(split.images)
            if skipped:
                split = split.subset_images(keep)
        augmentation = cfg.augmentation
        images = PixelSource(split.images, image_tower, augment=train and augmentation.enabled,
                             min_crop_scale=augmentation.min_crop_scale, flip=augmentation.flip, seed=cfg.seed,
                             num_workers=cfg.num_workers, device=device)
    if text_tower.cacheable and cfg.cache_frozen_features:
        texts: Any = CachedSource(cache.texts(text_tower, split.texts, batch_size=cfg.feature_batch_size))
    else:
        texts = LiveTextSource(split.texts, text_tower)
    return SplitSources(split, images, texts, skipped)
