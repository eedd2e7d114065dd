"""Where the trainer gets tower inputs for a list of batches: cached frozen features, or live inputs.

Every source has ``iterate(batches, epoch, train) -> iterator of Features`` (one per batch of item
positions, in order):
- :class:`CachedSource`: rows of a :class:`FeatureTable` (LiT: frozen towers, features computed once);
- :class:`PixelSource`: images decoded and preprocessed by a DataLoader (workers), for image towers that
  train; in training with augmentation on, each image gets a random resized crop / flip drawn from a
  generator seeded by ``(seed, epoch, position)``, so augmentation does not depend on workers or on
  where a run was resumed;
- :class:`LiveTextSource`: the text tower's ``frozen_features`` of the captions (tokenisation for towers
  that train end to end).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from rrbench_base.image_refs import BadImageError, ImageRef
from stage1_dual.trainable.image_towers import ImageTower
from stage1_dual.trainable.towers import Features, Tower
from stage1_dual.training.feature_table import FeatureTable


class CachedSource:
    """Rows of a feature table (row = item position)."""

    def __init__(self, table: FeatureTable) -> None:
        self.table = table

    def iterate(self, batches: Sequence[np.ndarray], epoch: int, train: bool) -> Iterator[Features]:
        for rows in batches:
            yield self.table.batch(rows)


class LiveTextSource:
    """Captions through the text tower's ``frozen_features`` at every step."""

    def __init__(self, texts: Sequence[str], tower: Tower) -> None:
        self.texts = list(texts)
        self.tower = tower

    def iterate(self, batches: Sequence[np.ndarray], epoch: int, train: bool) -> Iterator[Features]:
        for positions in batches:
            yield {k: v.cpu() for k, v in self.tower.frozen_features([self.texts[int(i)] for i in positions]).items()}


class _PixelBatches(Dataset):
    """Item ``k`` = stacked pixels of batch ``k`` (worker-safe; augmentation seeded per image)."""

    def __init__(self, images: Sequence[ImageRef], batches: Sequence[np.ndarray], transform: Any,
                 seed: Optional[tuple[int, int]]) -> None:
        self.images, self.batches, self.transform, self.seed = images, list(batches), transform, seed

    def __len__(self) -> int:
        return len(self.batches)

    def _load(self, position: int) -> torch.Tensor:
        try:
            image = self.images[position].open()
        except Exception as exc:  # noqa: BLE001 - training data must be readable
            raise BadImageError(f"training image {self.images[position].id!r} could not be read: {exc} "
                                f"(set on_bad_input: skip to leave unreadable images out)") from exc
        if self.seed is None:
            return self.transform(image)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([*self.seed, position]).generate_state(1)[0]))
            return self.transform(image)

    def __getitem__(self, k: int) -> torch.Tensor:
        return torch.stack([self._load(int(p)) for p in self.batches[k]])


class PixelSource:
    """Decoded, preprocessed pixels (augmented in training when ``augment``) through the image tower's
    ``frozen_features`` on ``device`` (for a tower trained end to end that is the pixels themselves)."""

    def __init__(self, images: Sequence[ImageRef], tower: ImageTower, *, augment: bool, min_crop_scale: float,
                 flip: bool, seed: int, num_workers: int, device: torch.device) -> None:
        self.images = images
        self.tower = tower
        self.device = device
        self.eval_transform = tower.eval_transform()
        self.train_transform = tower.train_transform(min_crop_scale, flip) if augment else self.eval_transform
        self.augment = augment
        self.seed = seed
        self.num_workers = num_workers

    def iterate(self, batches: Sequence[np.ndarray], epoch: int, train: bool) -> Iterator[Features]:
        augmenting = train and self.augment
        dataset = _PixelBatches(self.images, batches, self.train_transform if augmenting else self.eval_transform,
                                (self.seed, epoch) if augmenting else None)
        # own generator: creating the loader must not draw from the global RNG (exact resume)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.num_workers,
                            generator=generator)
        for pixels in loader:
            yield self.tower.frozen_features(pixels.to(self.device))


def readable_images(images: Sequence[ImageRef]) -> tuple[np.ndarray, list[dict]]:
    """Positions of the images that open, and ``{"position", "id", "reason"}`` for those that do not."""
    keep, skipped = [], []
    for position, image in enumerate(images):
        try:
            image.open()
            keep.append(position)
        except Exception as exc:  # noqa: BLE001 - recorded under on_bad_input=skip
            skipped.append({"position": position, "id": image.id, "reason": f"{type(exc).__name__}: {exc}"})
    return np.asarray(keep, dtype=np.int64), skipped
