"""Listwise ITM loss over stage-1 candidate lists: trains the ITM head on the reranking task itself.

The binary ITM loss (``losses``) asks "is this pair a match?" one pair at a time; a head trained that way
can keep a per-image (or per-caption) offset in its logit that does not hurt the binary loss much but ruins
the ranking of several images for one caption. This loss scores, for each of R captions, a list of L images
(its own image first, then L-1 hard negatives drawn from its stage-1 top-k, never a positive) and, for each of
the R captions' images, a list of L captions (the caption first, then L-1 hard negative captions of that
image), and applies softmax cross-entropy over each list with the positive as target:

    loss = (CE_t2i + CE_i2t) / 2,   score(pair) = itm_logit[match] - itm_logit[no-match]

The score is the logit gap, so ``softmax(itm_logits)[match]`` (the ``alpha`` fusion rule) ranks by it. The
pairs go through the same scorer as reranking (each distinct image's cross-attention keys/values computed
once).

Residual form (``residual_scale`` > 0, with stage-1 embeddings): the list is ranked by
``residual_scale * <stage1_text, stage1_image> + gap``, the score the ``residual`` fusion rule gives at
reranking time. The stage-1 term is a constant offset per pair, so the head learns only what stage 1 gets
wrong; with out-of-fold stage-1 embeddings and lists (``crossfit_stage1``) those errors are the kind it makes
on unseen data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from stage2_rerank.training.hard_negatives import TopKNegatives, masked_softmax
from stage2_rerank.training.losses import Stage1Embeddings
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData


@dataclass
class ListwiseLosses:
    """Listwise losses of one batch.

    Attributes:
        loss: ``(t2i + i2t) / 2``.
        t2i: cross-entropy of the caption -> images lists.
        i2t: cross-entropy of the image -> captions lists.
        top1: fraction of the 2R lists whose positive scores highest.
        t2i_images: int64 ``[R, L]`` each caption's image list (its own image first).
        i2t_captions: int64 ``[R, L]`` each caption's image's caption list (the caption first).
    """

    loss: torch.Tensor
    t2i: torch.Tensor
    i2t: torch.Tensor
    top1: float
    t2i_images: np.ndarray
    i2t_captions: np.ndarray


def sample_lists(candidates: np.ndarray, scores: np.ndarray, positive: np.ndarray, count: int,
                 pool: int, is_positive, generator: torch.Generator, temperature: float) -> np.ndarray:
    """int64 ``[R, count]`` distinct negatives per row: drawn without replacement by softmax(scores /
    temperature) over the row's non-positive candidates (``candidates [R, k]``, -1 = padding); a row with fewer
    than ``count`` of them is filled with uniform draws from ``range(pool)`` for which ``is_positive(row, id)``
    is False (never a positive, never a repeat)."""
    rows = len(candidates)
    out = np.full((rows, count), -1, dtype=np.int64)
    allowed = (candidates >= 0) & ~positive
    for r in range(rows):  # a repeated id counts once
        first = np.zeros(candidates.shape[1], dtype=bool)
        first[np.unique(candidates[r], return_index=True)[1]] = True
        allowed[r] &= first
    weights = masked_softmax(torch.from_numpy(scores), torch.from_numpy(allowed), temperature)
    for r in range(rows):
        take = min(count, int(allowed[r].sum()))
        if take:
            columns = torch.multinomial(weights[r], take, replacement=False, generator=generator).numpy()
            out[r, :take] = candidates[r, columns]
        filled = take
        while filled < count:
            draw = int(torch.randint(pool, (1,), generator=generator))
            if not is_positive(r, draw) and draw not in out[r, :filled]:
                out[r, filled] = draw
                filled += 1
    return out


def listwise_itm_loss(trainable: ItmTrainable, data: ItmTrainingData, captions: torch.Tensor,
                      topk: TopKNegatives, generator: torch.Generator, list_size: int,
                      stage1: Optional[Stage1Embeddings] = None, residual_scale: float = 0.0) -> ListwiseLosses:
    """Listwise losses (module doc) of the captions ``captions`` (int64 ``[R]``) with lists of ``list_size``
    (positive + ``list_size - 1`` negatives from ``topk``); 2 R ``list_size`` pairs are scored. With
    ``residual_scale`` > 0 each pair's score adds ``residual_scale`` x its ``stage1`` dot product."""
    if list_size < 2:
        raise ValueError(f"list_size must be >= 2, got {list_size}")
    if residual_scale < 0 or (residual_scale > 0 and stage1 is None):
        raise ValueError("residual_scale must be >= 0 and needs stage-1 embeddings when > 0")
    device = trainable.temperature.device
    rows = captions.numpy()
    own_image = topk.caption_image[rows]
    n_images, n_captions, negatives = len(data.image_inputs), len(topk.caption_image), list_size - 1
    image_cands = topk.images_of_caption[rows]
    neg_images = sample_lists(image_cands, topk.image_scores[rows], image_cands == own_image[:, None], negatives,
                              n_images, lambda r, i: i == own_image[r], generator, topk.temperature)
    caption_cands = topk.captions_of_image[own_image]
    owner = np.where(caption_cands >= 0, topk.caption_image[np.maximum(caption_cands, 0)], -1)
    neg_captions = sample_lists(caption_cands, topk.caption_scores[own_image], owner == own_image[:, None],
                                negatives, n_captions, lambda r, c: topk.caption_image[c] == own_image[r],
                                generator, topk.temperature)
    t2i_images = np.concatenate([own_image[:, None], neg_images], axis=1)            # [R, L]
    t2i_captions = np.repeat(rows[:, None], list_size, axis=1)
    i2t_images = np.repeat(own_image[:, None], list_size, axis=1)
    i2t_captions = np.concatenate([rows[:, None], neg_captions], axis=1)
    pair_images = torch.from_numpy(np.concatenate([t2i_images, i2t_images]).reshape(-1))
    pair_captions = torch.from_numpy(np.concatenate([t2i_captions, i2t_captions]).reshape(-1))
    images, slot = torch.unique(pair_images, return_inverse=True)
    features = trainable.features(data.image_inputs[images].to(device))
    ids, mask = data.tokens(pair_captions, device)
    scorer = trainable.scorer
    logits = scorer.itm_logits(ids, mask, kv=scorer.cross_attention_kv(features).select(slot.to(device))).float()
    gap = logits[:, 1] - logits[:, 0]
    if residual_scale > 0:
        prior = np.einsum("pe,pe->p", stage1.image[pair_images.numpy()], stage1.text[pair_captions.numpy()])
        gap = gap + residual_scale * torch.from_numpy(prior.astype(np.float32)).to(device)
    gap = gap.view(2, len(rows), list_size)
    target = torch.zeros(len(rows), dtype=torch.long, device=device)
    t2i, i2t = F.cross_entropy(gap[0], target), F.cross_entropy(gap[1], target)
    top1 = float((gap.argmax(dim=-1) == 0).float().mean())
    return ListwiseLosses((t2i + i2t) / 2, t2i, i2t, top1, t2i_images, i2t_captions)
