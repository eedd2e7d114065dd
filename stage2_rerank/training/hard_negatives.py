"""Hard-negative sampling for ITM training (BLIP/BLIP-2 style): never returns a true positive.

Two sources, both sampling a negative with probability ``softmax(similarity / temperature)`` over the
candidates that are NOT positives (BLIP-2 samples in-batch by its ITC similarity; stage-1 similarity works the
same way):

- :func:`sample_in_batch`: ``similarity [R, C]`` between the batch's rows and columns, ``positive [R, C]``;
  returns a column per row.
- :func:`sample_from_candidates`: a precomputed top-k list per row (``candidates [R, k]``, -1 = padding, with
  ``scores [R, k]`` and ``positive [R, k]``); returns a candidate id per row, -1 when a row has no
  non-positive candidate (the caller falls back to another source).

:class:`TopKNegatives` holds stage-1 top-k lists for the whole training set in both directions (caption ->
images, image -> captions) and masks positives by the caption -> image ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def masked_softmax(similarity: torch.Tensor, allowed: torch.Tensor, temperature: float) -> torch.Tensor:
    """float ``[R, C]`` row-wise ``softmax(similarity / temperature)`` over the ``allowed`` entries (0 elsewhere;
    a row with nothing allowed is all 0)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = similarity.float() / temperature
    logits = torch.where(allowed & torch.isfinite(logits), logits, torch.full_like(logits, float("-inf")))
    has_any = allowed.any(dim=1, keepdim=True)
    safe = torch.where(has_any, logits, torch.zeros_like(logits))
    return torch.softmax(safe, dim=1) * allowed * has_any


def sample_in_batch(similarity: torch.Tensor, positive: torch.Tensor, generator: torch.Generator,
                    temperature: float = 1.0) -> torch.Tensor:
    """int64 ``[R]``: for each row a column ``c`` with ``positive[r, c] == False``, drawn by masked softmax.

    ValueError if some row has only positives (no negative exists in the batch).
    """
    if similarity.shape != positive.shape or similarity.dim() != 2:
        raise ValueError(f"similarity {tuple(similarity.shape)} and positive {tuple(positive.shape)} must be "
                         f"the same [R, C] shape")
    allowed = ~positive.bool()
    if not bool(allowed.any(dim=1).all()):
        raise ValueError("a batch row has no negative column (every column is a positive)")
    weights = masked_softmax(similarity.detach(), allowed, temperature)
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


def sample_from_candidates(candidates: torch.Tensor, scores: torch.Tensor, positive: torch.Tensor,
                           generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """int64 ``[R]``: a non-positive candidate id per row (masked softmax over its scores), -1 when none."""
    if not candidates.shape == scores.shape == positive.shape or candidates.dim() != 2:
        raise ValueError("candidates, scores and positive must share one [R, k] shape")
    allowed = (candidates >= 0) & ~positive.bool()
    has_any = allowed.any(dim=1)
    out = torch.full((candidates.shape[0],), -1, dtype=torch.long)
    if bool(has_any.any()):
        weights = masked_softmax(scores[has_any], allowed[has_any], temperature)
        column = torch.multinomial(weights, 1, generator=generator).squeeze(1)
        out[has_any] = candidates[has_any].gather(1, column[:, None]).squeeze(1).long()
    return out


@dataclass
class TopKNegatives:
    """Stage-1 top-k candidate lists of the training set (ids index the trainer's images / captions).

    Attributes:
        caption_image: int64 ``[C]`` ground truth (caption -> its image).
        images_of_caption: int64 ``[C, k]`` candidate images per caption, best first; -1 = padding.
        image_scores: float ``[C, k]`` their similarities.
        captions_of_image: int64 ``[I, k]`` candidate captions per image; -1 = padding.
        caption_scores: float ``[I, k]`` their similarities.
        temperature: softmax temperature over the scores.
    """

    caption_image: np.ndarray
    images_of_caption: np.ndarray
    image_scores: np.ndarray
    captions_of_image: np.ndarray
    caption_scores: np.ndarray
    temperature: float = 1.0

    def __post_init__(self) -> None:
        self.caption_image = np.asarray(self.caption_image, dtype=np.int64)
        if self.images_of_caption.shape != self.image_scores.shape or len(self.images_of_caption) != len(
                self.caption_image):
            raise ValueError("images_of_caption / image_scores must be [C, k] with C = len(caption_image)")
        if self.captions_of_image.shape != self.caption_scores.shape:
            raise ValueError("captions_of_image and caption_scores must share one [I, k] shape")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def negative_images(self, captions: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """int64 ``[B]``: a hard negative image per caption (never the caption's own image), -1 when none."""
        rows = captions.numpy()
        cand = torch.from_numpy(self.images_of_caption[rows])
        positive = cand == torch.from_numpy(self.caption_image[rows])[:, None]
        return sample_from_candidates(cand, torch.from_numpy(self.image_scores[rows]).float(), positive,
                                      generator, self.temperature)

    def negative_captions(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """int64 ``[B]``: a hard negative caption per image (never one of its own captions), -1 when none."""
        rows = images.numpy()
        cand = self.captions_of_image[rows]
        owner = np.where(cand >= 0, self.caption_image[np.maximum(cand, 0)], -1)
        positive = torch.from_numpy(owner == rows[:, None])
        return sample_from_candidates(torch.from_numpy(cand), torch.from_numpy(self.caption_scores[rows]).float(),
                                      positive, generator, self.temperature)
