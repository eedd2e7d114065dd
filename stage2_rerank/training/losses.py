"""The BLIP-2 ITM (+ optional ITC) loss of one batch of positive (image, caption) pairs.

For a batch of B positive pairs ``(image[b], caption[b])`` (``positive[b, b'] = image[b] == image[b']``: two
captions of one image are both positives of it):

- ITC (BLIP-2): image embeddings ``[B, Q, E]`` (query outputs, projected, normalised), text embeddings
  ``[B, E]`` ([CLS] output, projected, normalised); ``sim[b, b'] = max_q <img[b, q], txt[b']> / temperature``.
  Loss = mean of the image-to-text and text-to-image cross-entropies with multi-positive targets
  (``positive`` rows normalised to sum 1; with one positive per row this is plain InfoNCE).
- Hard negatives: for each image a negative caption and for each caption a negative image, never a positive
  (``hard_negatives.py``): in-batch by the ITC similarity (``"itc"``, BLIP-2), in-batch by stage-1 embeddings
  (``"stage1"``), or from stage-1 top-k lists of the whole training set (``"topk"``; rows without a valid
  candidate, and a random ``1 - mined_fraction`` of the rows, keep the in-batch negative: by stage-1
  embeddings when they are given, else by ITC).
- ITM: the Q-Former ITM logits (mean over queries, as the reranker scores, with each distinct image's
  cross-attention keys/values computed once) of the 3B pairs
  ``[(image, caption) ; (image, negative caption) ; (negative image, caption)]`` with labels ``[1 ; 0 ; 0]``,
  2-way cross-entropy. With ``itm_rows = R``, only the first R rows of the batch (the batch order is random)
  form ITM pairs (3R), while ITC and the in-batch negatives still use all B rows: a large ITC batch at a
  smaller ITM cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F

from stage2_rerank.training.hard_negatives import TopKNegatives, sample_in_batch
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData

NegativeSource = Literal["itc", "stage1", "topk"]


@dataclass
class Stage1Embeddings:
    """Stage-1 embeddings of the training set for in-batch hard-negative sampling (``negatives="stage1"``).

    Attributes:
        image: float ``[N_img, E]`` (rows of the trainer's images).
        text: float ``[N_cap, E]`` (rows of the trainer's captions).
        temperature: softmax temperature over their dot products.
    """

    image: np.ndarray
    text: np.ndarray
    temperature: float = 0.05

    def similarity(self, images: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """``[B, B]`` dot products of the batch's images and captions, divided by the temperature."""
        img = torch.from_numpy(np.asarray(self.image[images.numpy()], dtype=np.float32))
        txt = torch.from_numpy(np.asarray(self.text[captions.numpy()], dtype=np.float32))
        return img @ txt.T / self.temperature


@dataclass
class StepLosses:
    """Losses of one batch.

    Attributes:
        loss: the optimised total ``itm + itc_weight * itc``.
        itm: ITM cross-entropy over the 3B pairs.
        itc: ITC loss (0 when ``itc_weight == 0``).
        itm_accuracy: fraction of the 3B pairs classified correctly (argmax of the logits).
    """

    loss: torch.Tensor
    itm: torch.Tensor
    itc: torch.Tensor
    itm_accuracy: float


def itc_loss(similarity: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE of ``similarity [B, B]`` (already divided by the temperature)."""
    targets = positive.float()
    i2t = -(F.log_softmax(similarity, dim=1) * targets / targets.sum(1, keepdim=True)).sum(1).mean()
    t2i = -(F.log_softmax(similarity.T, dim=1) * targets.T / targets.T.sum(1, keepdim=True)).sum(1).mean()
    return (i2t + t2i) / 2


def _in_batch(similarity: torch.Tensor, positive: torch.Tensor, images: torch.Tensor, captions: torch.Tensor,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(negative caption per image, negative image per caption), global indices, from a ``[B, B]`` similarity."""
    neg_captions = captions[sample_in_batch(similarity, positive, generator)]
    neg_images = images[sample_in_batch(similarity.T, positive.T, generator)]
    return neg_captions, neg_images


def _with_extra_images(trainable: ItmTrainable, data: ItmTrainingData, batch_images: torch.Tensor,
                       batch_features: torch.Tensor, wanted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of the batch's images plus those of ``wanted`` images outside it (computed once), and the row of
    each ``wanted`` image in them."""
    extra = wanted[~torch.isin(wanted, batch_images)].unique()
    known = torch.cat([batch_images, extra])
    if len(extra):
        device = batch_features.device
        batch_features = torch.cat([batch_features, trainable.features(data.image_inputs[extra].to(device))])
    order = torch.argsort(known)
    return batch_features, order[torch.searchsorted(known[order], wanted)]


def batch_losses(trainable: ItmTrainable, data: ItmTrainingData, captions: torch.Tensor, *,
                 itc_weight: float, negatives: NegativeSource, generator: torch.Generator,
                 topk: Optional[TopKNegatives] = None, stage1: Optional[Stage1Embeddings] = None,
                 mined_fraction: float = 1.0, itm_rows: Optional[int] = None) -> StepLosses:
    """Losses of the batch of positive pairs ``(caption_image[c], c)`` for ``captions`` (int64 ``[B]``);
    with ``topk``, each row takes its mined negative with probability ``mined_fraction``; ITM on the first
    ``itm_rows`` rows only (``None``: all)."""
    device = trainable.temperature.device
    images = data.caption_image[captions]
    positive = images[:, None] == images[None, :]
    scorer = trainable.scorer
    ids, mask = data.tokens(captions, device)
    need_itc = itc_weight > 0 or negatives in ("itc", "topk")
    similarity = None
    itc = torch.zeros((), device=device)
    batch_images, image_slot = torch.unique(images, return_inverse=True)
    batch_features = trainable.features(data.image_inputs[batch_images].to(device))
    if need_itc:
        with torch.set_grad_enabled(itc_weight > 0 and torch.is_grad_enabled()):
            image_embeds = scorer.image_embeddings(batch_features)
            text_embeds = scorer.text_embeddings(ids, mask)
            sim = torch.einsum("iqe,te->itq", image_embeds[image_slot], text_embeds).max(dim=-1).values
            similarity = sim / trainable.clamped_temperature()
        if itc_weight > 0:
            itc = itc_loss(similarity, positive.to(device))
    if negatives == "stage1" and stage1 is None:
        raise ValueError("negatives='stage1' needs stage-1 embeddings")
    if negatives == "stage1" or (negatives == "topk" and stage1 is not None):
        neg_captions, neg_images = _in_batch(stage1.similarity(images, captions), positive, images, captions,
                                             generator)
    else:
        neg_captions, neg_images = _in_batch(similarity.detach().cpu(), positive, images, captions, generator)
    if negatives == "topk":
        if topk is None:
            raise ValueError("negatives='topk' needs TopKNegatives")
        mined_images, mined_captions = topk.negative_images(captions, generator), topk.negative_captions(
            images, generator)
        take_image = (mined_images >= 0) & (torch.rand(len(captions), generator=generator) < mined_fraction)
        take_caption = (mined_captions >= 0) & (torch.rand(len(captions), generator=generator) < mined_fraction)
        neg_images = torch.where(take_image, mined_images, neg_images)
        neg_captions = torch.where(take_caption, mined_captions, neg_captions)
    if itm_rows is not None and itm_rows < len(captions):
        captions, images = captions[:itm_rows], images[:itm_rows]
        neg_captions, neg_images = neg_captions[:itm_rows], neg_images[:itm_rows]
    features, slot = _with_extra_images(trainable, data, batch_images, batch_features,
                                        torch.cat([images, images, neg_images]))
    pair_ids, pair_mask = data.tokens(torch.cat([captions, neg_captions, captions]), device)
    kv = scorer.cross_attention_kv(features)  # once per distinct image, shared by its 2-3 pairs (same math)
    logits = scorer.itm_logits(pair_ids, pair_mask, kv=kv.select(slot.to(device)))
    batch = len(captions)
    labels = torch.cat([torch.ones(batch, dtype=torch.long), torch.zeros(2 * batch, dtype=torch.long)]).to(device)
    itm = F.cross_entropy(logits.float(), labels)
    accuracy = float((logits.argmax(dim=1) == labels).float().mean())
    return StepLosses(itm + itc_weight * itc, itm, itc, accuracy)
