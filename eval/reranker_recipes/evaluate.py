"""Score a trained reranker checkpoint on a benchmark split through the real stage-2 path.

``load_reranker(RerankerConfig(backend="blip2_itm", model=<checkpoint>))`` -> ``Reranker.score_pairs`` on the
distinct pairs among the first ``max(depths)`` stage-1 candidates of both directions (vision provider run
once per image, score cache when ``cache_dir`` is set) -> ``fusion.rerank_at_depth`` per depth and fusion
rule -> ``eval.metrics``. Stage-1 candidates come from a stage-1 checkpoint (``rrbench_dual``, through
``stage1_dual.pipeline.run_stage1``) or from any caption x image similarity.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from eval.data.benchmark import Benchmark
from eval.reranker_recipes.common import DEFAULT_FUSIONS, metrics_of_rankings
from rrbench_base.candidates import Candidates
from stage1_dual.config import EncoderConfig, Stage1Config
from stage1_dual.pipeline import run_stage1
from stage2_rerank.config import FusionConfig, RerankerConfig
from stage2_rerank.fusion import rerank_at_depth
from stage2_rerank.rerank import load_reranker

log = logging.getLogger(__name__)


def dual_encoder_candidates(model_dir: Path, bench: Benchmark, depth: int, cache_dir: Optional[Path]
                            ) -> dict[str, Candidates]:
    """Both directions' top-``depth`` candidates (``{"t2i": ..., "i2t": ...}``) of an ``rrbench_dual`` stage-1
    checkpoint (all captions and all images of ``bench`` are queries, in benchmark order)."""
    config = Stage1Config(encoder=EncoderConfig(backend="rrbench_dual", model=str(model_dir), device="cpu",
                                                num_workers=0), depth=depth, cache_dir=cache_dir)
    result = run_stage1(config, bench.images, [c.text for c in bench.captions])
    t2i, i2t = result.candidates["t2i"], result.candidates["i2t"]
    if not (np.array_equal(t2i.query_positions, np.arange(len(bench.captions)))
            and np.array_equal(i2t.query_positions, np.arange(len(bench.images)))):
        raise ValueError("stage 1 skipped some queries; evaluate on a benchmark without bad images")
    return {"t2i": t2i, "i2t": i2t}


def evaluate_checkpoint(checkpoint: Path, bench: Benchmark, candidates: Mapping[str, Candidates],
                        depths: Sequence[int], fusions: dict[str, FusionConfig] = DEFAULT_FUSIONS, cache_dir: Optional[Path] = None,
                        pair_batch_size: int = 64) -> dict[str, Any]:
    """``{"stage1": metrics, "<fusion>@<depth>": metrics, ..., "seconds": ..., "pairs": ...}``."""
    max_depth = max(depths)
    t2i, i2t = candidates["t2i"], candidates["i2t"]
    config = RerankerConfig(backend="blip2_itm", model=str(checkpoint), device="cpu", cache_dir=cache_dir,
                            pair_batch_size=pair_batch_size)
    start = time.perf_counter()
    with load_reranker(config) as reranker:
        scored = reranker.score_candidates(bench.images, [c.text for c in bench.captions], t2i, i2t, max_depth)
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {"stage1": metrics_of_rankings(bench, t2i.ids, i2t.ids)}
    for depth in depths:
        for name, fusion in fusions.items():
            out[f"{name}@{depth}"] = metrics_of_rankings(
                bench, rerank_at_depth(t2i.ids, t2i.scores, scored.t2i, depth, fusion),
                rerank_at_depth(i2t.ids, i2t.scores, scored.i2t, depth, fusion))
    out["pairs"] = int(len(scored.pairs.pairs))
    out["seconds"] = seconds
    return out


def r1_table(results: dict[str, Any]) -> str:
    """Markdown table of R@1/R@5 per setting (both directions)."""
    lines = ["| setting | t2i R@1 | t2i R@5 | i2t R@1 | i2t R@5 |", "|---|---|---|---|---|"]
    for name, metrics in results.items():
        if isinstance(metrics, dict):
            lines.append(f"| {name} | {metrics['t2i/R@1']:.1f} | {metrics['t2i/R@5']:.1f} | "
                         f"{metrics['i2t/R@1']:.1f} | {metrics['i2t/R@5']:.1f} |")
    return "\n".join(lines)
