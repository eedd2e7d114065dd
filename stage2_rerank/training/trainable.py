"""What ITM training updates, and the training data it reads (plain tensors, token lists and index arrays).

:class:`ItmTrainable` = a ``Blip2ForImageTextRetrieval`` (Q-Former, query tokens, text embeddings, ITM head,
ITC projections), a ``vision`` module mapping the trainer's image inputs to the ``[B, T, D]`` features the
Q-Former cross-attends to (:class:`CachedFeatures` for features of a frozen provider computed once;
``vision.conv_grid.ConvGrid`` for a CNN trained jointly from pixels), and the ITC temperature (BLIP-2: learnable,
initialised at 0.07, clamped to [0.001, 0.5]). ``scorer`` views the model through
``qformer_scorer.QFormerItm``, the exact code that scores pairs at rerank time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from transformers import Blip2ForImageTextRetrieval

from stage2_rerank.pair_batching import pad_token_batch
from stage2_rerank.qformer_scorer import QFormerItm, itc_scores

TEMPERATURE_RANGE = (0.001, 0.5)


class CachedFeatures(nn.Module):
    """Vision module of a frozen provider: image inputs ARE its cached features ``[B, T, D]`` (cast to fp32)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.float()

    def save_to(self, directory: Path) -> None:
        """Nothing to save: the provider named in the checkpoint recomputes the features."""


class ItmTrainable(nn.Module):
    """Trainable parts of a BLIP-2 ITM reranker (see module doc)."""

    def __init__(self, model: Blip2ForImageTextRetrieval, vision: nn.Module | None = None,
                 temperature: float = 0.07) -> None:
        super().__init__()
        self.model = model
        self.vision = vision if vision is not None else CachedFeatures()
        self.temperature = nn.Parameter(torch.tensor(float(temperature)))

    @property
    def scorer(self) -> QFormerItm:
        """The model's per-pair parts as the reranker runs them (shares the parameters)."""
        return QFormerItm.from_retrieval_model(self.model)

    def clamped_temperature(self) -> torch.Tensor:
        return self.temperature.clamp(*TEMPERATURE_RANGE)

    def features(self, image_inputs: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` fp32 features of a batch of image inputs (fp16 inputs are cast to fp32 first)."""
        return self.vision(image_inputs.float()).float()


@dataclass
class ItmTrainingData:
    """Images and captions of a training (or validation) set.

    Attributes:
        image_inputs: ``[N_img, ...]`` what ``ItmTrainable.vision`` takes: cached provider features
            ``[N, T, D]`` (fp16 or fp32), or preprocessed pixels ``[N, 3, S, S]`` for a jointly trained CNN.
        caption_tokens: per caption its token ids with [CLS]/[SEP], truncated (``pair_scoring.tokenize_captions``).
        caption_image: int64 ``[N_cap]``: the image (row of ``image_inputs``) each caption describes.
        pad_token_id: the tokenizer's padding id.
        image_group: optional int64 ``[N_img]`` group id per image (e.g. a scene and its hard-distractor
            siblings); when given, training batches keep the images of a group together (see
            :func:`grouped_caption_order`), so in-batch ITC and hard negatives see them side by side.
    """

    image_inputs: torch.Tensor
    caption_tokens: list[list[int]]
    caption_image: torch.Tensor
    pad_token_id: int
    image_group: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        self.caption_image = torch.as_tensor(np.asarray(self.caption_image), dtype=torch.long)
        if len(self.caption_tokens) != len(self.caption_image):
            raise ValueError(f"{len(self.caption_tokens)} token lists but {len(self.caption_image)} caption images")
        if len(self.caption_image) and (int(self.caption_image.min()) < 0 or
                                        int(self.caption_image.max()) >= len(self.image_inputs)):
            raise ValueError(f"caption_image must index the {len(self.image_inputs)} images")
        if len(set(self.caption_image.tolist())) < 2:
            raise ValueError("training needs captions of at least 2 different images (negatives)")
        if self.image_group is not None:
            self.image_group = torch.as_tensor(np.asarray(self.image_group), dtype=torch.long)
            if self.image_group.shape != (len(self.image_inputs),):
                raise ValueError(f"image_group must have one entry per image ({len(self.image_inputs)})")

    def tokens(self, captions: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded ``input_ids`` and ``attention_mask`` ``[B, L]`` of captions (indices)."""
        return pad_token_batch([self.caption_tokens[c] for c in captions.tolist()], self.pad_token_id, device)


def score_pairs_in_memory(trainable: ItmTrainable, data: ItmTrainingData, pairs: np.ndarray,
                          batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """ITM logits float32 ``[P, 2]`` and ITC float32 ``[P]`` of pairs (image row, caption row) of ``data``.

    Same math as ``Reranker.score_pairs`` (``QFormerItm.itm_logits`` over features, ``itc_scores``), without
    caches or files: for validation during training. Runs in eval mode, restores the previous mode.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    was_training = trainable.training
    trainable.eval()
    scorer = trainable.scorer
    device = trainable.temperature.device
    images, image_slot = np.unique(pairs[:, 0], return_inverse=True)
    captions, caption_slot = np.unique(pairs[:, 1], return_inverse=True)
    logits = np.zeros((len(pairs), 2), dtype=np.float32)
    itc = np.zeros(len(pairs), dtype=np.float32)
    try:
        with torch.inference_mode():
            features = torch.cat([trainable.features(data.image_inputs[torch.as_tensor(images[s: s + batch_size])]
                                                     .to(device)) for s in range(0, len(images), batch_size)])
            image_embeds = torch.cat([scorer.image_embeddings(features[s: s + batch_size])
                                      for s in range(0, len(images), batch_size)])
            text_embeds = torch.cat([scorer.text_embeddings(*data.tokens(torch.as_tensor(captions[s: s + batch_size]),
                                                                          device))
                                     for s in range(0, len(captions), batch_size)])
            for start in range(0, len(pairs), batch_size):
                rows = slice(start, start + batch_size)
                slots = torch.as_tensor(image_slot[rows], device=device)
                ids, mask = data.tokens(torch.as_tensor(pairs[rows, 1]), device)
                logits[rows] = scorer.itm_logits(ids, mask, features=features[slots]).float().cpu().numpy()
                itc[rows] = itc_scores(image_embeds[slots], text_embeds[torch.as_tensor(caption_slot[rows])]
                                       ).cpu().numpy()
    finally:
        trainable.train(was_training)
    return logits, itc


def caption_rows_of_images(caption_image: Sequence[int], n_images: int) -> list[np.ndarray]:
    """Per image, the int64 rows of its captions (the image-to-text ground truth)."""
    caption_image = np.asarray(caption_image, dtype=np.int64)
    order = np.argsort(caption_image, kind="stable")
    bounds = np.searchsorted(caption_image[order], np.arange(n_images + 1))
    return [order[bounds[i]: bounds[i + 1]] for i in range(n_images)]


def grouped_caption_order(caption_image: torch.Tensor, image_group: torch.Tensor,
                          generator: torch.Generator) -> torch.Tensor:
    """A permutation of the captions in which the images of one group come one after the other.

    Round ``r`` takes the ``r``-th caption (in a random order per image) of every image; within a round, groups
    come in random order and each group's images consecutively (in random order). Every caption appears once.
    """
    caption_image = caption_image.numpy()
    n_captions, n_images = len(caption_image), int(caption_image.max()) + 1
    group = image_group.numpy()
    noise = torch.rand(n_captions, generator=generator).numpy()
    by_image = np.lexsort((noise, caption_image))
    starts = np.searchsorted(caption_image[by_image], caption_image[by_image], side="left")
    rounds = np.empty(n_captions, dtype=np.int64)
    rounds[by_image] = np.arange(n_captions) - starts
    n_rounds = int(rounds.max()) + 1
    group_key = torch.rand(n_rounds, int(group.max()) + 1, generator=generator).numpy()
    image_key = torch.rand(n_rounds, n_images, generator=generator).numpy()
    order = np.lexsort((image_key[rounds, caption_image], group_key[rounds, group[caption_image]], rounds))
    return torch.from_numpy(order.astype(np.int64))
