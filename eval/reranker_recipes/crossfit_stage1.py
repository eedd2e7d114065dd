"""Out-of-fold stage-1 scores of the training split: the candidate lists the reranker meets at test time.

Stage 1 is trained on the train split, so on train its own ranking is far better than on unseen data (the
Flickr8k-lite stage 1 ranks the true image first for about 80% of train captions among 1,000 images, 27.6% on
the 1K test). Lists mined from it on train are not what the reranker sees at test time. Cross-fitting fixes
that: the train images are split into ``folds`` groups; for each group a fresh copy of stage 1's projections
(same :class:`DualModelConfig`, same cached frozen tower features, multi-positive InfoNCE as stage-1 training)
is trained on the other groups and embeds the held-out group. Each group's captions are then ranked against
that group's images only (about 1,200 images for 5 folds, like the 1K test gallery), by the model that never
saw them.

The result holds the out-of-fold embeddings (:class:`Stage1Embeddings`, fold-local: a dot product is
meaningful only within one fold) and the top-k lists of both directions (:class:`TopKNegatives`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from rrbench_base.global_rng import PrivateGlobalRng
from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.trainable.model_config import DualModelConfig
from stage1_dual.trainable.towers import Features
from stage1_dual.training.losses import contrastive_loss
from stage1_dual.training.optim import lr_factor, parameter_groups, set_learning_rates
from stage2_rerank.training.hard_negatives import TopKNegatives
from stage2_rerank.training.losses import Stage1Embeddings
from stage2_rerank.training.validation import top_candidates

log = logging.getLogger(__name__)


@dataclass
class CrossFitConfig:
    """How the out-of-fold stage-1 copies train (defaults: the Flickr8k-lite stage-1 recipe,
    ``configs/train/stage1_flickr8k_lite.yaml``, on cached features).

    Attributes:
        folds: image groups (each copy trains on ``folds - 1`` of them).
        epochs: passes over a copy's training images.
        batch_images: images per step, each with all its captions (multi-positive InfoNCE).
        learning_rate / weight_decay / warmup_steps: AdamW and the warm-up + cosine schedule of stage 1.
        depth: candidates per list (both directions).
        seed: fold assignment, initialisation and batch order (the caller's global RNG is left alone).
    """

    folds: int = 5
    epochs: int = 40
    batch_images: int = 1024
    learning_rate: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 30
    depth: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        for name in ("epochs", "batch_images", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class CrossFitLists:
    """Out-of-fold stage 1 of a training split.

    Attributes:
        embeddings: fold-local L2-normalised embeddings (``image [I, E]``, ``text [C, E]``).
        topk: top-``depth`` lists, each caption against its fold's images, each image against its fold's
            captions (scores = cosine similarities).
        image_fold: int64 ``[I]`` fold of each image (a caption's fold is its image's).
        logit_scales: each copy's learned inverse temperature.
    """

    embeddings: Stage1Embeddings
    topk: TopKNegatives
    image_fold: np.ndarray
    logit_scales: list[float]

    def r_at_1(self) -> dict[str, float]:
        """Out-of-fold R@1 (%) of both directions within the folds' galleries."""
        topk = self.topk
        t2i = float(np.mean(topk.images_of_caption[:, 0] == topk.caption_image)) * 100
        first = topk.captions_of_image[:, 0]
        i2t = float(np.mean(topk.caption_image[np.maximum(first, 0)] == np.arange(len(first)))) * 100
        return {"t2i": t2i, "i2t": i2t}


def _rows(features: Features, rows: np.ndarray) -> Features:
    """Rows ``rows`` of every feature (floating ones as float32, e.g. float16 cache entries)."""
    index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
    return {k: v[index].float() if v.is_floating_point() else v[index] for k, v in features.items()}


def _train_copy(model_config: DualModelConfig, image_features: Features, text_features: Features,
                caption_image: np.ndarray, train_images: np.ndarray, cfg: CrossFitConfig,
                generator: torch.Generator) -> DualEncoderModel:
    """A fresh stage-1 copy trained on ``train_images`` and all their captions."""
    model = DualEncoderModel(model_config)
    model.train()
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg.learning_rate, cfg.learning_rate, cfg.weight_decay))
    captions_of = [[] for _ in range(len(image_features[next(iter(image_features))]))]
    for caption, image in enumerate(caption_image):
        captions_of[image].append(caption)
    steps_per_epoch = max(1, len(train_images) // cfg.batch_images)
    total = steps_per_epoch * cfg.epochs
    step = 0
    for _ in range(cfg.epochs):
        order = train_images[torch.randperm(len(train_images), generator=generator).numpy()]
        for start in range(0, steps_per_epoch * cfg.batch_images, cfg.batch_images):
            images = order[start: start + cfg.batch_images]
            captions = np.array([c for i in images for c in captions_of[i]], dtype=np.int64)
            set_learning_rates(optimizer, lr_factor(step, total, cfg.warmup_steps, 0.0))
            image_emb, text_emb = model(image_features=_rows(image_features, images),
                                        text_features=_rows(text_features, captions))
            loss = contrastive_loss(image_emb, text_emb, torch.from_numpy(images),
                                    torch.from_numpy(caption_image[captions]), model.scale()).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
    return model.eval()


def crossfit_stage1(model_config: DualModelConfig, image_features: Features, text_features: Features,
                    caption_image: np.ndarray, cfg: CrossFitConfig) -> CrossFitLists:
    """Out-of-fold stage 1 (module doc) from cached frozen tower features (``image_features[name] [I, ...]``,
    ``text_features[name] [C, ...]``, as stage 1's frozen-feature cache stores them) and the caption ->
    image map ``caption_image`` (int64 ``[C]``)."""
    caption_image = np.asarray(caption_image, dtype=np.int64)
    n_images = len(image_features[next(iter(image_features))])
    generator = torch.Generator().manual_seed(cfg.seed)
    init_rng = PrivateGlobalRng(cfg.seed)  # initialisation of the copies (nn.init draws from the global RNG)
    image_fold = torch.randperm(n_images, generator=generator).numpy() % cfg.folds
    image_emb = np.zeros((n_images, model_config.embed_dim), dtype=np.float32)
    text_emb = np.zeros((len(caption_image), model_config.embed_dim), dtype=np.float32)
    t2i_ids = np.full((len(caption_image), cfg.depth), -1, dtype=np.int64)
    t2i_scores = np.zeros((len(caption_image), cfg.depth), dtype=np.float32)
    i2t_ids = np.full((n_images, cfg.depth), -1, dtype=np.int64)
    i2t_scores = np.zeros((n_images, cfg.depth), dtype=np.float32)
    scales = []
    for fold in tqdm(range(cfg.folds), desc="cross-fitted stage 1", unit="fold"):
        held = np.flatnonzero(image_fold == fold)
        with init_rng.use():
            model = _train_copy(model_config, image_features, text_features, caption_image,
                                np.flatnonzero(image_fold != fold), cfg, generator)
        captions = np.flatnonzero(np.isin(caption_image, held))
        with torch.no_grad():
            images_out = model.embed_images(_rows(image_features, held)).numpy()
            texts_out = model.embed_texts(_rows(text_features, captions)).numpy()
        image_emb[held], text_emb[captions] = images_out, texts_out
        similarity = texts_out @ images_out.T
        ids, scores = top_candidates(similarity, min(cfg.depth, len(held)))
        t2i_ids[captions, : ids.shape[1]], t2i_scores[captions, : ids.shape[1]] = held[ids], scores
        ids, scores = top_candidates(similarity.T, min(cfg.depth, len(captions)))
        i2t_ids[held, : ids.shape[1]], i2t_scores[held, : ids.shape[1]] = captions[ids], scores
        scales.append(float(model.scale().detach()))
    topk = TopKNegatives(caption_image, t2i_ids, t2i_scores, i2t_ids, i2t_scores)
    result = CrossFitLists(Stage1Embeddings(image_emb, text_emb), topk, image_fold, scales)
    log.info("cross-fitted stage 1 (%d folds): out-of-fold R@1 %s, logit scales %s", cfg.folds,
             {k: round(v, 1) for k, v in result.r_at_1().items()}, [round(s, 2) for s in scales])
    return result
