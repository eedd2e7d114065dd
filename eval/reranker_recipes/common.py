"""Glue between benchmarks and stage-2 ITM training: training data, stage-1 candidates, validation metrics.

``eval`` may import both stages; ``stage2_rerank`` sees only the plain tensors and arrays built here.
Validation (``rerank_validator``) reranks the top-``depth`` stage-1 candidates of a validation split with
the in-memory model (``stage2_rerank.training.validation``) and reports ``eval.metrics`` for stage 1 and each fusion
rule; ``rsum`` is the best rule's rsum (the model-selection key).
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from eval.data.benchmark import Benchmark
from eval.metrics import retrieval_metrics
from rrbench_base.candidates import Candidates
from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion_rules import DEFAULT_RULES
from stage2_rerank.pair_scoring import tokenize_captions
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData
from stage2_rerank.training.validation import candidates_from_similarity, itc_similarity, rerank_in_memory

log = logging.getLogger(__name__)

DEFAULT_FUSIONS: dict[str, FusionConfig] = {
    f"{rule}{FusionConfig.alpha}" if rule == "alpha" else rule: FusionConfig(rule=rule) for rule in DEFAULT_RULES}
"""Label -> fusion of the validation metrics: ``fusion_rules.DEFAULT_RULES`` with default parameters (the alpha
rule's label carries its alpha: ``alpha0.5``)."""


def training_data(bench: Benchmark, tokenizer, image_inputs: torch.Tensor, max_length: int,
                  image_group: Optional[np.ndarray] = None) -> ItmTrainingData:
    """``ItmTrainingData`` of a benchmark; ``image_inputs`` row ``i`` belongs to ``bench.images[i]``."""
    if len(image_inputs) != len(bench.images):
        raise ValueError(f"{len(image_inputs)} image inputs for {len(bench.images)} images")
    tokens = tokenize_captions(tokenizer, [c.text for c in bench.captions], max_length)
    return ItmTrainingData(image_inputs, tokens, bench.text_to_image(), tokenizer.pad_token_id, image_group)


def processed_pixels(image_processor, bench: Benchmark, batch_size: int = 256) -> torch.Tensor:
    """float32 ``[N, 3, S, S]`` pixels of every image, preprocessed exactly as the reranker's processor does."""
    parts = []
    for start in tqdm(range(0, len(bench.images), batch_size), desc="preprocessing images", unit="batch"):
        images = [item.open() for item in bench.images[start: start + batch_size]]
        parts.append(image_processor(images=images, return_tensors="pt")["pixel_values"].float())
    return torch.cat(parts)


def metrics_of_rankings(bench: Benchmark, t2i_ranked: np.ndarray, i2t_ranked: np.ndarray) -> dict[str, float]:
    """``eval.metrics.retrieval_metrics`` of rankings over all captions (t2i) and all images (i2t) of ``bench``."""
    return retrieval_metrics(t2i_ranked, bench.text_to_image(), i2t_ranked, bench.image_to_texts())


def rerank_metrics(trainable: ItmTrainable, data: ItmTrainingData, bench: Benchmark,
                   candidates: Mapping[str, Candidates], depth: int,
                   fusions: dict[str, FusionConfig] = DEFAULT_FUSIONS) -> dict[str, float]:
    """``stage1/<metric>`` and ``<fusion>/<metric>`` after reranking the first ``depth`` candidates of
    ``candidates["t2i"]`` / ``["i2t"]`` (every caption / image of ``bench`` a query, in order); ``rsum`` = the best
    fusion's rsum."""
    out = {f"stage1/{k}": v
           for k, v in metrics_of_rankings(bench, candidates["t2i"].ids, candidates["i2t"].ids).items()}
    for name, (t2i, i2t) in rerank_in_memory(trainable, data, candidates, depth, fusions).items():
        out.update({f"{name}/{k}": v for k, v in metrics_of_rankings(bench, t2i, i2t).items()})
    out["rsum"] = max(out[f"{name}/rsum"] for name in fusions)
    return out


def rerank_validator(data: ItmTrainingData, bench: Benchmark, depth: int,
                     candidates: Optional[Mapping[str, Candidates]] = None,
                     fusions: dict[str, FusionConfig] = DEFAULT_FUSIONS,
                     ) -> Callable[[ItmTrainable], dict[str, float]]:
    """``validate(model)`` for the trainer. Without ``candidates``, the model's own ITC ranks the stage-1 lists
    (``stage1/...`` then reports that ITC ranking)."""

    def validate(trainable: ItmTrainable) -> dict[str, float]:
        lists = candidates
        if lists is None:
            lists = candidates_from_similarity(itc_similarity(trainable, data), max(depth, 10))
        metrics = rerank_metrics(trainable, data, bench, lists, depth, fusions)
        log.info("validation: %s", {k: round(v, 2) for k, v in metrics.items() if k.endswith("R@1") or k == "rsum"})
        return metrics

    return validate


def subset(bench: Benchmark, n_images: int) -> Benchmark:
    """The first ``n_images`` images of ``bench`` and their captions (a cheaper validation split)."""
    if n_images >= len(bench.images):
        return bench
    keep = {image.id for image in bench.images[:n_images]}
    return Benchmark(bench.name, bench.split, bench.images[:n_images],
                     [c for c in bench.captions if c.image_id in keep], list(bench.skipped))


def padded_lists(lists: Sequence[Sequence[int]]) -> np.ndarray:
    """int64 ``[R, max len]`` of ragged lists, padded with -1."""
    width = max(1, max((len(row) for row in lists), default=1))
    out = np.full((len(lists), width), -1, dtype=np.int64)
    for row, values in enumerate(lists):
        out[row, : len(values)] = values
    return out
