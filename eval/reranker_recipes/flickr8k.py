"""Flickr8k-lite stage 2: a MiniLM-initialised Q-Former cross-attending to the frozen EfficientNet-Lite grid.

Data flow: Flickr8k train/val (English) -> EfficientNet-Lite grid features, computed once and cached
-> stage-1 similarity for hard negatives and validation candidates -> ITM
(+ITC) training with validation each epoch on a val subset (rerank the stage-1 top-``val_depth``) ->
``<run_dir>/best``, a checkpoint that ``RerankerConfig(backend="blip2_itm", model=<dir>)`` loads.

Grid features: with ``efficientnet_lite0`` (default) / ``_lite2`` the provider computes them into a store of
its own. With ``efficientnet_lite0+lite2`` they are the grids stage 1's ``efficientnet_lite0+lite2`` tower
(``keep_grid``) cached in its pass over the images, read back from stage 1's frozen-feature cache (computed
there when absent) and layer-normed per member as the ``efficientnet_lite0+lite2`` vision provider does at
scoring time: ``[N, 81, 2560]`` at 260 px.

Stage-1 similarity: frozen MiniLM sentence embeddings vs EfficientNet pooled grid
features through linear maps fitted with InfoNCE on train (``linear_stage1``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from transformers import Blip2ForImageTextRetrieval

from eval.data.benchmark import Benchmark
from eval.data.dataset_config import DatasetConfig
from eval.data.loaders import load_benchmark
from eval.reranker_recipes.common import rerank_validator, subset, training_data
from eval.reranker_recipes.linear_stage1 import (LinearStage1, fit_linear_stage1, minilm_sentence_embeddings,
                                             pooled_features, save_linear_stage1)
from stage1_dual.trainable.image_towers import build_image_tower
from stage1_dual.trainable.model_config import ImageTowerConfig
from stage1_dual.training.feature_cache import FrozenFeatureCache
from stage2_rerank.training.bert_init import minilm_dir
from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.training.feature_store import FeatureStore, cached_features
from stage2_rerank.training.hard_negatives import TopKNegatives
from stage2_rerank.training.losses import Stage1Embeddings
from stage2_rerank.training.model_spec import ItmModelSpec, build_itm_model
from stage2_rerank.training.trainable import ItmTrainable
from stage2_rerank.training.trainer import FitResult, ItmTrainer
from stage2_rerank.training.validation import candidates_from_similarity, top_candidates
from stage2_rerank.vision.efficientnet import (FEATURE_DIM, EfficientNetGridProvider, ensemble_grid_tokens,
                                               native_image_size)

log = logging.getLogger(__name__)

STAGE1_FILE = "stage1_linear.npz"
ENSEMBLE_PROVIDER = "efficientnet_lite0+lite2"
PROVIDERS = ("efficientnet_lite0", "efficientnet_lite2", ENSEMBLE_PROVIDER)


@dataclass
class FlickrItmOptions:
    """What to train for the Flickr8k-lite reranker (the model and its data; the schedule is an
    ``ItmTrainerConfig``; the values of each phase: ``configs/train/stage2_flickr8k_lite*.yaml``).

    Attributes:
        root: the Flickr8k folder (captions_en.tsv, splits/, images/).
        cache_dir: cached grid features.
        frozen_feature_cache: stage 1's frozen-feature cache (MiniLM sentence embeddings of the captions; the
            ``efficientnet_lite0+lite2`` grids).
        provider: the frozen grid the Q-Former cross-attends to: ``efficientnet_lite0`` (224 px, 49 x 1280),
            ``efficientnet_lite2`` (260 px, 81 x 1280) or ``efficientnet_lite0+lite2`` (stage 1's two backbones
            at 260 px, 81 x 2560, from stage 1's cached pass: best 1K-test rerank 28.1 / 35.7 and 28.3 / 34.9
            R@1 in two runs against 28.6 / 35.5 with Lite0, at 1.3x the step time).
        grid_image_size: input side of a single-network provider when not its native size (a multiple of 32;
            e.g. 448: Lite0's 14 x 14 grid, 196 tokens); ``None`` = native. Not for the ensemble provider,
            whose grids are stage 1's.
        num_layers: Q-Former layers, initialised from the first MiniLM layers (at most 6). All 6 (the whole
            text encoder stage 1 uses): with 2 the ITM barely beats chance on stage-1 top-5 lists after 1,000
            steps (val ITM t2i R@1 about 20), with 6 it passes 40 by step 800.
        num_query_tokens: learned queries.
        cross_attention_frequency: a cross-attention layer every this many layers (BLIP-2: 2; here layers
            0, 2 and 4).
        freeze_word_embeddings: keep MiniLM's word-embedding table frozen (11.7M parameters whose dense
            gradient and AdamW update would cost time every step while few of their rows are used).
        in_batch_temperature: softmax temperature of the in-batch negatives (``trainer.negatives`` ``stage1``,
            or ``topk`` for its unmined rows) over the stand-in stage-1 cosine similarities of the batch (0.3:
            mostly unrelated captions/images, similar ones a few times more often).
        stage1_depth: hard negatives are drawn from each query's stage-1 top this many (positives excluded).
        negative_temperature: softmax temperature over the stage-1 scores of those candidates.
        val_images: validation uses the first this many val images and their captions.
        val_depth: validation reranks the stage-1 top this many.
        init_from: start from the Q-Former weights of this checkpoint (a previous phase's ``best/``, same
            architecture) instead of MiniLM + fresh layers; ``None`` = fresh.
    """

    root: Path = Path("../shared/data/flickr8k")
    cache_dir: Path = Path(".cache/rrbench/stage2_train")
    frozen_feature_cache: Path = Path(".cache/rrbench/features")
    provider: str = "efficientnet_lite0"
    grid_image_size: Optional[int] = None
    num_layers: int = 6
    num_query_tokens: int = 8
    cross_attention_frequency: int = 2
    freeze_word_embeddings: bool = True
    in_batch_temperature: float = 0.3
    stage1_depth: int = 16
    negative_temperature: float = 0.05
    val_images: int = 100
    val_depth: int = 5
    init_from: Optional[Path] = None

    def __post_init__(self) -> None:
        self.root, self.cache_dir = Path(self.root), Path(self.cache_dir)
        self.frozen_feature_cache = Path(self.frozen_feature_cache)
        self.init_from = Path(self.init_from) if self.init_from is not None else None
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, got {self.provider!r}")
        if self.grid_image_size is not None:
            if self.provider == ENSEMBLE_PROVIDER:
                raise ValueError(f"grid_image_size applies to single-network providers, not {ENSEMBLE_PROVIDER} "
                                 "(its grids are stage 1's cached 260 px ones)")
            if self.grid_image_size < 32 or self.grid_image_size % 32:
                raise ValueError(f"grid_image_size must be a positive multiple of 32, got {self.grid_image_size}")

    @property
    def feature_dim(self) -> int:
        """D of the provider's grid tokens."""
        return 2 * FEATURE_DIM if self.provider == ENSEMBLE_PROVIDER else FEATURE_DIM

    @property
    def image_size(self) -> int:
        """Input side of the provider: ``grid_image_size`` when set, else the (largest member's) native size."""
        if self.grid_image_size is not None:
            return self.grid_image_size
        return native_image_size("lite2" if self.provider == ENSEMBLE_PROVIDER
                                 else self.provider.removeprefix("efficientnet_"))


def load_split(options: FlickrItmOptions, split: str) -> Benchmark:
    return load_benchmark(DatasetConfig(format="flickr8k", root=options.root, split=split, language="en",
                                        verify_images=False))


def stage1_grid_store(bench: Benchmark, cache_root: Path, batch_size: int = 64) -> FeatureStore:
    """float16 ``[N, 81, 2560]`` grids of ``bench``'s images from stage 1's ``efficientnet_lite0+lite2`` tower
    with ``keep_grid`` through its frozen-feature cache under ``cache_root`` (a hit when stage-1 training
    cached them; computed otherwise), each member's channels layer-normed (``ensemble_grid_tokens``)."""
    tower = build_image_tower(ImageTowerConfig(name=ENSEMBLE_PROVIDER, keep_grid=True))
    table = FrozenFeatureCache(Path(cache_root), "float16").images(tower, bench.images, batch_size=batch_size)
    raw = table.dense["grid"]
    if not np.array_equal(table.positions, np.arange(len(bench.images))):
        raise ValueError(f"{len(bench.images) - len(table.positions)} images have no cached grid")
    grids = np.empty(tuple(raw.shape), dtype=np.float16)
    for start in range(0, len(raw), 256):
        grids[start: start + 256] = ensemble_grid_tokens(raw[start: start + 256]).numpy()
    return FeatureStore(f"stage1 {ENSEMBLE_PROVIDER} grid|ln-per-member", [image.id for image in bench.images],
                        grids, [])


def split_features(options: FlickrItmOptions, image_processor, bench: Benchmark, split: str) -> FeatureStore:
    """Grid features of ``bench``: from stage 1's cache (``efficientnet_lite0+lite2``, see
    :func:`stage1_grid_store`) or computed by the provider with ``image_processor`` (single variants; cached
    under ``cache_dir/features/flickr8k_<split>_<provider>[_<size>px]``)."""
    if options.provider == ENSEMBLE_PROVIDER:
        return stage1_grid_store(bench, options.frozen_feature_cache)
    provider = EfficientNetGridProvider(options.provider.removeprefix("efficientnet_"), image_processor,
                                        torch.device("cpu"), torch.float32)
    variant = options.provider.removeprefix("efficientnet_")
    size = "" if options.image_size == native_image_size(variant) else f"_{options.image_size}px"
    directory = options.cache_dir / "features" / f"flickr8k_{split}_{options.provider}{size}"
    store = cached_features(provider, bench.images, directory)
    if store.ids != [image.id for image in bench.images]:
        raise ValueError(f"{split}: {len(store.skipped)} images could not be read: {store.skipped[:3]}")
    return store


def fit_stage1(options: FlickrItmOptions, bench: Benchmark, store: FeatureStore) -> LinearStage1:
    """The stand-in linear stage 1 fitted on the train split (see ``linear_stage1``)."""
    text = minilm_sentence_embeddings([c.text for c in bench.captions], options.frozen_feature_cache)
    return fit_linear_stage1(text, pooled_features(store.features), bench.text_to_image())


def stage1_similarity(options: FlickrItmOptions, stage1: LinearStage1, bench: Benchmark,
                      store: FeatureStore) -> np.ndarray:
    """float32 ``[N_cap, N_img]`` stage-1 similarity on ``bench``."""
    text = minilm_sentence_embeddings([c.text for c in bench.captions], options.frozen_feature_cache)
    return stage1.embed_texts(text) @ stage1.embed_images(pooled_features(store.features)).T


def mined_negatives(similarity: np.ndarray, caption_image: np.ndarray, depth: int, temperature: float,
                    chunk: int = 4096) -> TopKNegatives:
    """Top-``depth`` lists of both directions from a ``[N_cap, N_img]`` similarity (chunked over captions)."""
    t2i_ids, t2i_scores = zip(*(top_candidates(similarity[s: s + chunk], depth)
                                for s in range(0, len(similarity), chunk)))
    i2t_ids, i2t_scores = top_candidates(similarity.T, depth)
    return TopKNegatives(caption_image, np.concatenate(t2i_ids), np.concatenate(t2i_scores), i2t_ids, i2t_scores,
                         temperature)


def build_flickr_model(options: FlickrItmOptions, seed: int = 0):
    """(model, processor, BERT init report) of the MiniLM-initialised Q-Former over the EfficientNet grid (fresh
    layers initialised from ``seed``); the word-embedding table is frozen (``requires_grad=False``) when
    ``options.freeze_word_embeddings``."""
    spec = ItmModelSpec(vision_provider=options.provider, feature_dim=options.feature_dim,
                        image_size=options.image_size, text_init=minilm_dir(),
                        num_layers=options.num_layers, num_query_tokens=options.num_query_tokens,
                        cross_attention_frequency=options.cross_attention_frequency,
                        image_text_hidden_size=256, seed=seed)
    model, processor, report = build_itm_model(spec)
    if options.init_from is not None:
        start = Blip2ForImageTextRetrieval.from_pretrained(str(options.init_from), local_files_only=True)
        model.load_state_dict(start.state_dict())
        log.info("Q-Former weights from %s", options.init_from)
    model.embeddings.word_embeddings.weight.requires_grad_(not options.freeze_word_embeddings)
    return model, processor, report


def train_flickr_reranker(options: FlickrItmOptions, trainer_config: ItmTrainerConfig, run_dir: Path) -> FitResult:
    """Cache features, fit the stand-in stage 1 (saved as ``run_dir/stage1_linear.npz``), mine hard negatives,
    train into ``run_dir``; returns the fit result."""
    run_dir = Path(run_dir)
    model, processor, report = build_flickr_model(options, trainer_config.seed)
    log.info("Q-Former: %d tensors from MiniLM, %d fresh", len(report.copied), len(report.fresh))
    train, val = load_split(options, "train"), load_split(options, "val")
    train_store = split_features(options, processor.image_processor, train, "train")
    val_store = split_features(options, processor.image_processor, val, "val")
    stage1 = fit_stage1(options, train, train_store)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_linear_stage1(stage1, run_dir / STAGE1_FILE)
    topk = mined_negatives(stage1_similarity(options, stage1, train, train_store), train.text_to_image(),
                           options.stage1_depth, options.negative_temperature)
    train_text = minilm_sentence_embeddings([c.text for c in train.captions], options.frozen_feature_cache)
    in_batch = Stage1Embeddings(stage1.embed_images(pooled_features(train_store.features)),
                                stage1.embed_texts(train_text), options.in_batch_temperature)
    val_small = subset(val, options.val_images)
    val_sim = stage1_similarity(options, stage1, val, val_store)
    rows = np.arange(len(val_small.images))
    caption_rows = np.flatnonzero(np.isin(val.text_to_image(), rows))
    candidates = candidates_from_similarity(val_sim[np.ix_(caption_rows, rows)], options.val_depth)
    length = trainer_config.text_max_length
    train_data = training_data(train, processor.tokenizer, torch.from_numpy(np.array(train_store.features)), length)
    val_data = training_data(val_small, processor.tokenizer,
                             torch.from_numpy(np.array(val_store.features[: len(rows)])), length)
    trainer = ItmTrainer(ItmTrainable(model, temperature=trainer_config.temperature_init), processor, train_data,
                         trainer_config, run_dir,
                         validate=rerank_validator(val_data, val_small, options.val_depth, candidates), topk=topk,
                         stage1=in_batch,
                         pretrained_parameters={f"model.{name}" for name in report.copied})
    return trainer.fit()
