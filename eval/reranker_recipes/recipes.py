"""Test-split evaluation of the two trained rerankers (synthetic demo, Flickr8k-lite) with their stage 1.

Stage 1 is a trained ``rrbench_dual`` checkpoint when given; otherwise a stand-in, named in the results under
``"stage1_source"``: for Flickr8k-lite the linear MiniLM/EfficientNet map fitted during reranker training
(``<run_dir>/stage1_linear.npz``), for the synthetic demo the reranker's own ITC similarity.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from eval.reranker_recipes.common import processed_pixels, training_data
from eval.reranker_recipes.evaluate import dual_encoder_candidates, evaluate_checkpoint
from eval.reranker_recipes.flickr8k import STAGE1_FILE, FlickrItmOptions, load_split, split_features, stage1_similarity
from eval.reranker_recipes.linear_stage1 import load_linear_stage1
from eval.reranker_recipes.synthetic import SyntheticItmOptions
from eval.reranker_recipes.synthetic import load_split as load_synthetic_split
from stage2_rerank.backends import RERANKER_PROVIDER_KEY
from stage2_rerank.training.checkpoint import load_itm_checkpoint
from stage2_rerank.training.validation import candidates_from_similarity, itc_similarity

STAGE1_DEPTH = 50
STAGE1_CACHE = Path(".cache/rrbench/embeddings")


def evaluate_synthetic(options: SyntheticItmOptions, checkpoint: Path, stage1: Optional[Path],
                       depths: Sequence[int]) -> dict[str, Any]:
    """Synthetic test split of ``options.synthetic``: stage 1 (``stage1`` checkpoint, else the reranker's own
    ITC) vs reranking."""
    bench = load_synthetic_split(options, "test")
    depth = max(STAGE1_DEPTH, *depths)
    if stage1 is not None:
        candidates, source = dual_encoder_candidates(stage1, bench, depth, STAGE1_CACHE), str(stage1)
    else:
        trainable, processor = load_itm_checkpoint(checkpoint)
        data = training_data(bench, processor.tokenizer, processed_pixels(processor.image_processor, bench), 35)
        with torch.inference_mode():
            candidates = candidates_from_similarity(itc_similarity(trainable, data), depth)
        source = "the reranker's own ITC (stand-in stage 1)"
    return {"stage1_source": source, **evaluate_checkpoint(checkpoint, bench, candidates, depths)}


def evaluate_flickr(options: FlickrItmOptions, checkpoint: Path, stage1: Optional[Path],
                    depths: Sequence[int]) -> dict[str, Any]:
    """Flickr8k 1K test: stage 1 (``stage1`` checkpoint, else the linear stand-in fitted during training, next
    to the checkpoint) vs reranking."""
    bench = load_split(options, "test")
    depth = max(STAGE1_DEPTH, *depths)
    if stage1 is not None:
        candidates, source = dual_encoder_candidates(stage1, bench, depth, STAGE1_CACHE), str(stage1)
    else:
        trainable, processor = load_itm_checkpoint(checkpoint)
        provider = getattr(trainable.model.config, RERANKER_PROVIDER_KEY, options.provider)
        options = dataclasses.replace(options, provider=provider)  # the grid the checkpoint was trained on
        linear = load_linear_stage1(Path(checkpoint).parent / STAGE1_FILE)
        store = split_features(options, processor.image_processor, bench, "test")
        similarity = stage1_similarity(options, linear, bench, store)
        candidates, source = candidates_from_similarity(similarity, depth), "linear MiniLM/EfficientNet stand-in"
    return {"stage1_source": source, **evaluate_checkpoint(checkpoint, bench, candidates, depths)}
