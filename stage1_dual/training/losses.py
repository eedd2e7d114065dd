"""Symmetric InfoNCE (CLIP loss) that knows several captions can describe one image.

Every row and column carries a key: the image it belongs to (images: their own id; captions: the id
of the image they describe). A pair is positive when the keys match, so a second caption of the same
image in the batch (or in the memory queue) is never a negative. With ``P`` the positive mask and
``s`` the logit scale (inverse temperature):

    t2i = mean over texts t of  -sum_i  P[t, i] / |P[t]|  * log softmax_i(s * <text_t, image_i>)
    i2t = mean over images i of -sum_t  P[i, t] / |P[i]|  * log softmax_t(s * <image_i, text_t>)
    loss = (t2i + i2t) / 2

With one caption per image and no queue this is exactly CLIP's loss (cross-entropy on the diagonal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass
class ContrastiveLoss:
    """The loss and its two directions (scalars; ``loss`` is differentiable)."""

    loss: torch.Tensor
    t2i: torch.Tensor
    i2t: torch.Tensor


@dataclass
class FeatureBank:
    """Extra, non-differentiable columns (e.g. a memory queue): embeddings ``[M, D]`` and keys ``[M]``."""

    embeddings: torch.Tensor
    keys: torch.Tensor


def positive_mask(row_keys: torch.Tensor, column_keys: torch.Tensor) -> torch.Tensor:
    """bool ``[R, C]``: ``row_keys[r] == column_keys[c]``."""
    return row_keys[:, None] == column_keys[None, :]


def soft_cross_entropy(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean over rows of cross-entropy against the uniform distribution over each row's positives."""
    counts = positives.sum(dim=1)
    if bool((counts == 0).any()):
        row = int(torch.nonzero(counts == 0)[0, 0])
        raise ValueError(f"contrastive loss: row {row} has no positive column (every query needs its match)")
    targets = positives.to(logits.dtype) / counts[:, None].to(logits.dtype)
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _with_bank(embeddings: torch.Tensor, keys: torch.Tensor,
               bank: Optional[FeatureBank]) -> tuple[torch.Tensor, torch.Tensor]:
    if bank is None or len(bank.keys) == 0:
        return embeddings, keys
    return (torch.cat([embeddings, bank.embeddings.to(embeddings.dtype).detach()]),
            torch.cat([keys, bank.keys.to(keys.device)]))


def contrastive_loss(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, image_keys: torch.Tensor,
                     text_keys: torch.Tensor, logit_scale: torch.Tensor, image_bank: Optional[FeatureBank] = None,
                     text_bank: Optional[FeatureBank] = None) -> ContrastiveLoss:
    """Multi-positive symmetric InfoNCE (module docstring).

    ``image_embeddings [Ni, D]`` and ``text_embeddings [Nt, D]`` (L2-normalised), ``image_keys [Ni]``,
    ``text_keys [Nt]`` (int), ``logit_scale``: scalar inverse temperature. ``image_bank`` adds columns
    to the text-to-image logits, ``text_bank`` to the image-to-text logits.
    """
    image_columns, image_column_keys = _with_bank(image_embeddings, image_keys, image_bank)
    text_columns, text_column_keys = _with_bank(text_embeddings, text_keys, text_bank)
    t2i = soft_cross_entropy(logit_scale * text_embeddings @ image_columns.T,
                             positive_mask(text_keys, image_column_keys))
    i2t = soft_cross_entropy(logit_scale * image_embeddings @ text_columns.T,
                             positive_mask(image_keys, text_column_keys))
    return ContrastiveLoss(loss=(t2i + i2t) / 2, t2i=t2i, i2t=i2t)
