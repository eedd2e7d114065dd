"""Flickr8k-lite reranker, residual phase: the listwise ITM loss over cross-fitted real stage-1 lists, ranking by
``stage-1 logit + ITM gap`` (the ``residual`` fusion rule), so the head is trained to correct stage 1 where it
errs on unseen data.

Data flow: the trained ``rrbench_dual`` stage 1 (its config and cached frozen tower features) ->
``crossfit_stage1`` (out-of-fold embeddings and top-k lists of the train split) -> a second phase from a
first-phase reranker (``FlickrItmOptions.init_from``) with binary ITM on mined out-of-fold negatives, ITC and the
residual listwise loss, its stage-1 weight the cross-fitted copies' mean logit scale -> validation on the first
``val_images`` val images, reranking the real stage 1's top-``val_depth`` with every default fusion and
``residual`` at the real stage 1's logit scale.

Measured (README): no gain over the first phase; the head does not learn to separate the near-duplicates that
stage 1 confuses.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from eval.data.benchmark import Benchmark
from eval.reranker_recipes.common import DEFAULT_FUSIONS, rerank_validator, subset, training_data
from eval.reranker_recipes.crossfit_stage1 import CrossFitConfig, CrossFitLists, crossfit_stage1
from eval.reranker_recipes.flickr8k import FlickrItmOptions, build_flickr_model, load_split, split_features
from stage1_dual.trainable.checkpoint import load_model_dir
from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.trainable.towers import Features
from stage1_dual.training.feature_cache import FrozenFeatureCache
from stage2_rerank.config import FusionConfig
from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.training.trainable import ItmTrainable
from stage2_rerank.training.trainer import FitResult, ItmTrainer
from stage2_rerank.training.validation import candidates_from_similarity

log = logging.getLogger(__name__)

STAGE1_CHECKPOINT = Path(".cache/rrbench/models/stage1_flickr8k_lite/best")


@dataclass
class ResidualOptions:
    """What the residual phase adds to :class:`FlickrItmOptions` (whose ``init_from`` names the first phase).

    Attributes:
        stage1: the trained ``rrbench_dual`` stage 1 whose lists are cross-fitted and whose top-k the
            validation reranks.
        crossfit: how the out-of-fold stage-1 copies train.
    """

    stage1: Path = STAGE1_CHECKPOINT
    crossfit: CrossFitConfig = field(default_factory=CrossFitConfig)

    def __post_init__(self) -> None:
        self.stage1 = Path(self.stage1)


def frozen_stage1_features(model: DualEncoderModel, bench: Benchmark, cache_root: Path) -> tuple[Features, Features]:
    """Stage 1's cached frozen tower features of ``bench`` (images, captions), row = item position."""
    cache = FrozenFeatureCache(Path(cache_root), "float16")
    images = cache.images(model.image_tower, bench.images)
    if not np.array_equal(images.positions, np.arange(len(bench.images))):
        raise ValueError(f"{len(bench.images) - len(images.positions)} {bench.split} images have no stage-1 features")
    texts = cache.texts(model.text_tower, [c.text for c in bench.captions])
    side = set(model.image_tower.side_features)
    return {k: v for k, v in images.dense.items() if k not in side}, dict(texts.dense)


def trained_stage1_similarity(model: DualEncoderModel, bench: Benchmark, cache_root: Path) -> np.ndarray:
    """float32 ``[N_cap, N_img]`` cosine similarity of the trained stage 1 on ``bench``."""
    images, texts = frozen_stage1_features(model, bench, cache_root)
    with torch.no_grad():
        image_emb = model.embed_images({k: v.float() for k, v in images.items()}).numpy()
        text_emb = model.embed_texts({k: v.float() for k, v in texts.items()}).numpy()
    return text_emb @ image_emb.T


def train_flickr_residual(options: FlickrItmOptions, trainer_config: ItmTrainerConfig, run_dir: Path,
                          residual: ResidualOptions) -> tuple[FitResult, CrossFitLists]:
    """The residual phase (module doc) into ``run_dir``; ``options.init_from`` must name the first phase's
    checkpoint. ``trainer_config.listwise_residual_scale`` is replaced by the cross-fitted copies' mean logit
    scale."""
    if options.init_from is None:
        raise ValueError("the residual phase starts from a first-phase reranker: set flickr8k.init_from "
                         "(e.g. flickr8k.init_from=<first run>/best)")
    stage1 = load_model_dir(residual.stage1)
    train, val = load_split(options, "train"), load_split(options, "val")
    images, texts = frozen_stage1_features(stage1, train, options.frozen_feature_cache)
    lists = crossfit_stage1(stage1.config, images, texts, train.text_to_image(), residual.crossfit)
    lists.topk.temperature = options.negative_temperature
    scale = float(np.mean(lists.logit_scales))
    trainer_config = dataclasses.replace(trainer_config, listwise_residual_scale=scale)
    model, processor, report = build_flickr_model(options, trainer_config.seed)
    train_store = split_features(options, processor.image_processor, train, "train")
    val_small = subset(val, options.val_images)
    val_store = split_features(options, processor.image_processor, val, "val")
    rows = np.arange(len(val_small.images))
    caption_rows = np.flatnonzero(np.isin(val.text_to_image(), rows))
    val_similarity = trained_stage1_similarity(stage1, val, options.frozen_feature_cache)[np.ix_(caption_rows, rows)]
    candidates = candidates_from_similarity(val_similarity, options.val_depth)
    fusions = {**DEFAULT_FUSIONS, "residual": FusionConfig("residual", stage1_scale=float(stage1.scale().detach()))}
    length = trainer_config.text_max_length
    train_data = training_data(train, processor.tokenizer, torch.from_numpy(np.array(train_store.features)), length)
    val_data = training_data(val_small, processor.tokenizer,
                             torch.from_numpy(np.array(val_store.features[: len(rows)])), length)
    trainer = ItmTrainer(ItmTrainable(model, temperature=trainer_config.temperature_init), processor, train_data,
                         trainer_config, Path(run_dir),
                         validate=rerank_validator(val_data, val_small, options.val_depth, candidates, fusions),
                         topk=lists.topk, stage1=lists.embeddings,
                         pretrained_parameters={f"model.{name}" for name in report.copied})
    return trainer.fit(), lists
