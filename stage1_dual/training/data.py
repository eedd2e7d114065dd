"""Training data of the stage-1 trainer and the batch plan of an epoch.

A :class:`TrainingSplit` is images (any :class:`~rrbench_base.image_refs.ImageRef`), caption strings and
``text_image[t]`` = position of caption ``t``'s image. A :class:`Batch` holds the image positions of a
step and ``captions_per_image`` caption positions per image (its keys for the multi-positive loss are
image positions). The plan of epoch ``e`` is a pure function of ``(seed, e)`` and the hard-negative
partners, so a resumed run replays the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from rrbench_base.image_refs import ImageRef
from stage1_dual.training.hard_negatives import pair_batches


@dataclass
class TrainingSplit:
    """Images, captions and which image each caption describes.

    ``images``: image references; ``texts``: captions; ``text_image``: int64 ``[len(texts)]`` positions
    into ``images``. Images without captions never enter a training batch.
    """

    images: Sequence[ImageRef]
    texts: list[str]
    text_image: np.ndarray
    image_texts: list[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.texts = [str(t) for t in self.texts]
        self.text_image = np.asarray(self.text_image, dtype=np.int64)
        if self.text_image.shape != (len(self.texts),):
            raise ValueError(f"text_image must have one entry per text ({len(self.texts)}), "
                             f"got shape {self.text_image.shape}")
        if len(self.texts) and (self.text_image.min() < 0 or self.text_image.max() >= len(self.images)):
            raise ValueError(f"text_image holds positions outside [0, {len(self.images)})")
        order = np.argsort(self.text_image, kind="stable")
        bounds = np.searchsorted(self.text_image[order], np.arange(len(self.images) + 1))
        self.image_texts = [order[bounds[i]:bounds[i + 1]] for i in range(len(self.images))]

    def subset_images(self, keep: np.ndarray) -> "TrainingSplit":
        """The split restricted to image positions ``keep`` (their captions follow; order preserved)."""
        keep = np.asarray(keep, dtype=np.int64)
        new_position = np.full(len(self.images), -1, dtype=np.int64)
        new_position[keep] = np.arange(len(keep))
        texts = [t for t, i in zip(self.texts, self.text_image) if new_position[i] >= 0]
        return TrainingSplit([self.images[int(i)] for i in keep], texts,
                             new_position[self.text_image[new_position[self.text_image] >= 0]])


@dataclass
class Batch:
    """Image positions ``[B]`` and caption positions ``[B * captions_per_image]`` of one step; ``text_keys``
    = image position of each caption (the loss keys)."""

    images: np.ndarray
    texts: np.ndarray
    text_keys: np.ndarray


def _captions_for(split: TrainingSplit, image: int, count: int, rng: np.random.Generator) -> np.ndarray:
    own = split.image_texts[image]
    if len(own) >= count:
        return rng.choice(own, size=count, replace=False)
    return np.concatenate([rng.permutation(own), rng.choice(own, size=count - len(own), replace=True)])


def plan_epoch(split: TrainingSplit, batch_size: int, captions_per_image: int, seed: int, epoch: int,
               partner: Optional[np.ndarray] = None, partner_fraction: float = 0.0) -> list[Batch]:
    """The batches of ``epoch``: images shuffled by ``(seed, epoch)``, ``batch_size`` per batch (the
    last, incomplete batch is dropped unless it is the only one), each with ``captions_per_image``
    distinct captions when it has that many (else some repeat). With ``partner`` (hard-negative image
    per image, -1 = none), a ``partner_fraction`` of images bring their partner into the same batch.
    """
    rng = np.random.default_rng([seed, epoch])
    usable = np.asarray([i for i, texts in enumerate(split.image_texts) if len(texts)], dtype=np.int64)
    if len(usable) == 0:
        raise ValueError("training split has no image with a caption")
    order = rng.permutation(usable)
    size = min(batch_size, len(order))
    if partner is not None and partner_fraction > 0:
        groups = pair_batches(order, partner, partner_fraction, size)
    else:
        groups = [order[b * size:(b + 1) * size] for b in range(len(order) // size)]
    batches = []
    for images in groups:
        texts = np.concatenate([_captions_for(split, int(i), captions_per_image, rng) for i in images])
        batches.append(Batch(images=images, texts=texts.astype(np.int64), text_keys=split.text_image[texts]))
    return batches
