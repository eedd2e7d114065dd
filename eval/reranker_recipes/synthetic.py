"""The synthetic demo reranker: a tiny Q-Former + a jointly trained CNN grid (``conv_grid``), from scratch.

Trained on the synthetic benchmark's train split with ITM (+ITC); hard negatives are the generator's sibling
scenes (same objects with two colours, positions or sizes swapped: exactly what a bag-of-words stage 1
confuses), mixed with in-batch ITC negatives; selected on a val subset by the best fusion rule's rsum after
reranking the model's own ITC top-k. The checkpoint directory (``<run_dir>/best``) loads with
``RerankerConfig(backend="blip2_itm", model=<dir>)`` (the provider, ``conv_grid``, is named inside it).
The demo's values of the options and the trainer schedule: ``configs/train/stage2_synthetic.yaml``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import BasicTokenizer

from eval.data.benchmark import Benchmark
from eval.data.dataset_config import DEFAULT_CACHE_DIR, DatasetConfig, SyntheticConfig
from eval.data.loaders import load_benchmark
from eval.data.synthetic import read_manifest, synthetic_split_dir
from eval.reranker_recipes.common import padded_lists, processed_pixels, rerank_validator, subset, training_data
from rrbench_base.global_rng import seeded_torch_rng
from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.training.hard_negatives import TopKNegatives
from stage2_rerank.training.model_spec import ItmModelSpec, build_itm_model_unseeded
from stage2_rerank.training.trainable import ItmTrainable, score_pairs_in_memory
from stage2_rerank.training.trainer import FitResult, ItmTrainer
from stage2_rerank.vision.conv_grid import ConvGrid, ConvGridConfig

log = logging.getLogger(__name__)


@dataclass
class SyntheticItmOptions:
    """What to train for the synthetic demo reranker (the model and its data; the schedule is an
    ``ItmTrainerConfig``).

    Attributes:
        synthetic: sizes, seed and image size of the synthetic benchmark (must match the evaluated one's seed
            and image size; the test split is never read).
        data_cache_dir: where the synthetic images are generated (``DatasetConfig.cache_dir``).
        grid: the CNN feature grid trained jointly.
        hidden_size: Q-Former width.
        num_layers: Q-Former layers.
        num_attention_heads: Q-Former heads.
        num_query_tokens: learned queries.
        cross_attention_frequency: a cross-attention layer every this many Q-Former layers.
        initializer_range: std of the fresh Q-Former weights (about 0.5 / sqrt(hidden_size); see ItmModelSpec).
        group_batches: keep each scene's distractor siblings together in training batches, so that in-batch
            ITC and its hard negatives contrast them (binding colours, sizes and positions).
        val_images: validation uses the first this many val images and their captions.
        val_depth: validation reranking depth.
    """

    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    data_cache_dir: Path = DEFAULT_CACHE_DIR
    grid: ConvGridConfig = field(default_factory=lambda: ConvGridConfig(image_size=64, widths=(16, 32, 64),
                                                                        feature_dim=64, groups=8, first_stride=2))
    hidden_size: int = 64
    num_layers: int = 2
    num_attention_heads: int = 4
    num_query_tokens: int = 8
    cross_attention_frequency: int = 1
    initializer_range: float = 0.08
    group_batches: bool = False
    val_images: int = 200
    val_depth: int = 8

    def __post_init__(self) -> None:
        self.data_cache_dir = Path(self.data_cache_dir)
        if self.val_images < 2 or self.val_depth < 1:
            raise ValueError("val_images must be >= 2 and val_depth >= 1")


def load_split(options: SyntheticItmOptions, split: str) -> Benchmark:
    """The synthetic ``split`` (train, val or test) of ``options.synthetic``."""
    return load_benchmark(DatasetConfig(format="synthetic", split=split, synthetic=options.synthetic,
                                        cache_dir=options.data_cache_dir, verify_images=False))


def caption_words(bench: Benchmark) -> list[str]:
    """Distinct lower-cased word and punctuation tokens of the captions (the word-level vocabulary)."""
    basic = BasicTokenizer(do_lower_case=True)
    return sorted({token for caption in bench.captions for token in basic.tokenize(caption.text)})


def scene_groups(options: SyntheticItmOptions, bench: Benchmark, split: str) -> np.ndarray:
    """int64 ``[N_img]``: the distractor group of each image (a base scene and its swapped siblings)."""
    manifest = read_manifest(synthetic_split_dir(options.synthetic, split, options.data_cache_dir))
    group_of = {entry["id"]: entry["group"] for entry in manifest["images"]}
    return np.array([group_of[image.id] for image in bench.images], dtype=np.int64)


def sibling_negatives(groups: np.ndarray, bench: Benchmark) -> TopKNegatives:
    """Top-k lists = the other scenes of each image's distractor group (and their captions), uniform scores."""
    members: dict[int, list[int]] = {}
    for row, group in enumerate(groups.tolist()):
        members.setdefault(group, []).append(row)
    caption_image = bench.text_to_image()
    captions_of = bench.image_to_texts()
    siblings = [[s for s in members[group] if s != row] for row, group in enumerate(groups.tolist())]
    images_of_caption = padded_lists([siblings[caption_image[c]] for c in range(len(caption_image))])
    captions_of_image = padded_lists([np.concatenate([captions_of[s] for s in sib]).tolist() if sib else []
                                      for sib in siblings])
    return TopKNegatives(caption_image, images_of_caption, np.zeros(images_of_caption.shape, np.float32),
                         captions_of_image, np.zeros(captions_of_image.shape, np.float32))


def train_synthetic_reranker(options: SyntheticItmOptions, trainer_config: ItmTrainerConfig,
                             run_dir: Path) -> FitResult:
    """Train (or resume) the demo reranker into ``run_dir``; returns the fit result (``best_dir`` is the
    checkpoint)."""
    train, val = load_split(options, "train"), subset(load_split(options, "val"), options.val_images)
    spec = ItmModelSpec(vision_provider="conv_grid", feature_dim=options.grid.feature_dim,
                        image_size=options.grid.image_size, num_layers=options.num_layers,
                        hidden_size=options.hidden_size, num_attention_heads=options.num_attention_heads,
                        intermediate_size=4 * options.hidden_size, num_query_tokens=options.num_query_tokens,
                        image_text_hidden_size=options.hidden_size, max_position_embeddings=64, dropout=0.0,
                        cross_attention_frequency=options.cross_attention_frequency,
                        initializer_range=options.initializer_range,
                        seed=trainer_config.seed)
    with seeded_torch_rng(spec.seed):  # the model's, then the grid's initialisation, from one seeded stream
        model, processor, _ = build_itm_model_unseeded(spec, caption_words(train))
        grid = ConvGrid(options.grid)
    trainable = ItmTrainable(model, grid, trainer_config.temperature_init)
    length = trainer_config.text_max_length
    groups = scene_groups(options, train, "train")
    train_data = training_data(train, processor.tokenizer, processed_pixels(processor.image_processor, train), length,
                               image_group=groups if options.group_batches else None)
    val_data = training_data(val, processor.tokenizer, processed_pixels(processor.image_processor, val), length)
    trainer = ItmTrainer(trainable, processor, train_data, trainer_config, run_dir,
                         validate=rerank_validator(val_data, val, options.val_depth),
                         topk=sibling_negatives(groups, train))
    result = trainer.fit()
    log.info("synthetic reranker: best %s (%s) after %d steps, %.0f s", result.best_dir,
             {k: round(v, 1) for k, v in result.best_metrics.items() if k.endswith("/R@1")}, result.steps,
             result.seconds)
    return result


def distractor_accuracy(trainable: ItmTrainable, bench: Benchmark, groups: np.ndarray, image_inputs,
                        tokenizer, max_length: int = 35, seed: int = 0) -> dict[str, float]:
    """Pairwise ITM/ITC accuracy of each caption's own image against (a) each of its sibling distractors (same bag
    of words: a bag-of-words model scores exactly 0.5) and (b) one random other scene of the split.

    Returns ``{"itm/siblings", "itc/siblings", "itm/random", "itc/random"}`` (fractions; ties count half).
    """
    data = training_data(bench, tokenizer, image_inputs, max_length)
    own = data.caption_image.numpy()
    captions = np.arange(len(own))
    members: dict[int, list[int]] = {}
    for row, group in enumerate(groups.tolist()):
        members.setdefault(group, []).append(row)
    sib_pairs = [(s, c) for c, image in zip(captions, own) for s in members[groups[image]] if s != image]
    other = (own + np.random.default_rng(seed).integers(1, len(bench.images), len(own))) % len(bench.images)
    pairs = np.concatenate([np.stack([own, captions], 1), np.array(sib_pairs, dtype=np.int64).reshape(-1, 2),
                            np.stack([other, captions], 1)])
    logits, itc = score_pairs_in_memory(trainable, data, pairs)
    itm = logits[:, 1] - logits[:, 0]
    n, n_sib = len(own), len(sib_pairs)
    sib_caption = np.array([c for _, c in sib_pairs], dtype=np.int64)

    def accuracy(scores: np.ndarray, against: np.ndarray, rows: np.ndarray) -> float:
        return float(((scores[rows] > against) + 0.5 * (scores[rows] == against)).mean())

    return {"itm/siblings": accuracy(itm, itm[n: n + n_sib], sib_caption),
            "itc/siblings": accuracy(itc, itc[n: n + n_sib], sib_caption),
            "itm/random": accuracy(itm, itm[n + n_sib:], captions),
            "itc/random": accuracy(itc, itc[n + n_sib:], captions)}
