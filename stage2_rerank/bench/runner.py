"""One run of the stage-2 benchmark (``scripts/bench_rerank.py``): speed of (a)/(b)/(c), parity, precision.

Steps, all on the same random-weight model and the same candidate pairs: (c) the Reranker on every distinct
pair (fp32, K/V cache); (b) the LAVIS loop on a subset of queries, reusing (c)'s vision features; (a) the
stock forward on a subset of pairs; parity of (c) (and of the no-K/V path) against the stock forward on
pairs of mixed caption lengths and images; the Q-Former at bf16 vs fp32 on the candidates of the first text
queries; on CUDA (when present) the fp16 path on all pairs.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from rrbench_base.provenance import provenance
from stage2_rerank.backends import RerankerModel, build_blip2_itm
from stage2_rerank.bench.parity import parity_report, rule_parity
from stage2_rerank.bench.random_checkpoint import (
    blip2_itm_vit_g_config,
    build_processor,
    build_random_model,
    tiny_blip2_itm_config,
)
from stage2_rerank.bench.report import memory_snapshot, rates_and_ratios
from stage2_rerank.bench.speed import (
    BENCH_WORDS,
    BenchData,
    lavis_queries,
    make_bench_data,
    mixed_parity_pairs,
    stock_reference_scores,
    time_lavis_loop,
    time_stock_forward,
)
from stage2_rerank.caches.vision_features import VisionFeatureCache
from stage2_rerank.config import RerankerConfig
from stage2_rerank.rerank import Reranker
from stage2_rerank.types import PairScores

log = logging.getLogger(__name__)


@dataclass
class BenchOptions:
    """Attributes:
        small: tiny random config instead of blip2-itm-vit-g (and at most 12 images, 40 captions, depth 5).
        images, captions, depth: workload (top-``depth`` candidates of both directions).
        pair_batch_size: the reranker's pairs per Q-Former forward.
        stock_pairs, stock_batch_size: pairs timed with the stock forward (a), pairs per call.
        lavis_t2i, lavis_i2t: text and image queries timed in the LAVIS loop (b).
        parity_pairs: pairs checked against the stock forward.
        kv_ablation_pairs: random distinct pairs timed with and without the cross-attention K/V cache
            (interleaved, two rounds each; vision features already cached).
        precision_queries: text queries whose candidates enter the reduced-precision parity report.
        bf16_all_pairs: also time (c) with a bf16 Q-Former on every distinct pair (vision fp32, its measured
            phase reused), giving c/a and c/b for the CPU's allowed reduced precision; (a) and (b) stay fp32
            as the stock model and LAVIS run the Q-Former.
        seed: seed of weights and data.
    """

    small: bool = False
    images: int = 50
    captions: int = 250
    depth: int = 10
    pair_batch_size: int = 32
    stock_pairs: int = 8
    stock_batch_size: int = 4
    lavis_t2i: int = 16
    lavis_i2t: int = 4
    parity_pairs: int = 6
    kv_ablation_pairs: int = 200
    precision_queries: int = 30
    bf16_all_pairs: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.small:
            self.images, self.captions, self.depth = min(self.images, 12), min(self.captions, 40), min(self.depth, 5)
        if min(self.images, self.captions, self.depth, self.stock_pairs, self.parity_pairs) < 1:
            raise ValueError("images, captions, depth, stock_pairs and parity_pairs must be >= 1")


def _reranker(model, processor, base: RerankerConfig, features: VisionFeatureCache | None = None,
              **overrides) -> Reranker:
    config = dataclasses.replace(base, **overrides)
    return Reranker(build_blip2_itm(model, processor, config, "random-init"), config, features=features)


def run_benchmark(options: BenchOptions, argv: Sequence[str]) -> dict:
    """All measurements, as a JSON-ready dict with the run's provenance (``argv``, program first, is recorded as
    the command) and the load average at its start and end."""
    arch = tiny_blip2_itm_config() if options.small else blip2_itm_vit_g_config()
    results: dict = {"options": dataclasses.asdict(options),
                     "architecture": "tiny" if options.small else "blip2-itm-vit-g", "memory": {},
                     "load_average": {"start": list(os.getloadavg())}}
    model = build_random_model(arch, seed=options.seed)
    processor = build_processor(arch.vision_config.image_size, BENCH_WORDS)
    results["memory"]["after_model_build"] = memory_snapshot()
    data = make_bench_data(options.images, options.captions, options.depth, arch.vision_config.image_size,
                           seed=options.seed)
    pairs = data.candidate_pairs.pairs
    slots = data.candidate_slots
    results["workload"] = {"images": options.images, "captions": options.captions, "depth": options.depth,
                           "candidate_slots_both_directions": int(slots), "distinct_pairs": int(len(pairs))}
    base = RerankerConfig(model="random-init", device="cpu", precision="fp32", vision_precision="fp32",
                          pair_batch_size=options.pair_batch_size)

    log.info("(c) reranker on %d distinct pairs", len(pairs))
    reranker = _reranker(model, processor, base)
    scores = reranker.score_pairs(data.images, data.captions, pairs)
    results["reranker"] = {"seconds": scores.stats.seconds, "qformer_batches": scores.stats.qformer_batches,
                           "images_encoded": scores.stats.images_encoded}
    results["memory"]["after_reranker"] = memory_snapshot()

    queries = lavis_queries(data, options.lavis_t2i, options.lavis_i2t)
    log.info("(b) LAVIS-style loop on %d queries", len(queries))
    seconds_b, pairs_b = time_lavis_loop(reranker.model.scorer,
                                         lambda i: reranker.features.get(data.images[i].fingerprint()),
                                         processor.tokenizer, data, queries, base.text_max_length)
    results["lavis_loop"] = {"seconds": seconds_b, "pairs": pairs_b, "queries": len(queries)}

    stock_pairs = pairs[:options.stock_pairs]
    log.info("(a) stock forward on %d pairs", len(stock_pairs))
    seconds_a, stock_logits = time_stock_forward(model, processor, data, stock_pairs, options.stock_batch_size)
    results["stock_forward"] = {
        "seconds": seconds_a, "pairs": int(len(stock_pairs)), "batch_size": options.stock_batch_size,
        "itm_max_abs_diff_vs_reranker": float(np.abs(stock_logits - scores.itm_logits[:len(stock_pairs)]).max())}
    results["rates"] = rates_and_ratios(results, slots)

    if options.kv_ablation_pairs > 0:
        results["kv_cache_ablation"] = kv_cache_ablation(model, processor, base, reranker, data,
                                                         options.kv_ablation_pairs, options.seed)
    results["parity_vs_stock"] = stock_parity(model, processor, base, reranker, data, scores, options)
    log.info("precision parity: Q-Former bf16 vs fp32")
    results["precision_parity"] = precision_parity(reranker, data, torch.bfloat16, options.precision_queries,
                                                   scores)
    if options.bf16_all_pairs:
        log.info("(c) with a bfloat16 Q-Former on all %d distinct pairs", len(pairs))
        results["reranker_bf16"] = low_precision_rates(reranker, data, torch.bfloat16, results, slots)
    results["memory"]["peak_end_cpu"] = memory_snapshot()
    results["load_average"]["end"] = list(os.getloadavg())
    if torch.cuda.is_available():
        results["cuda_fp16"] = cuda_fp16_run(model, processor, base, data, scores, options.precision_queries)
    return {"provenance": provenance(argv=argv, seed=options.seed), **results}


def kv_cache_ablation(model, processor, base: RerankerConfig, reranker: Reranker, data: BenchData,
                      n_pairs: int, seed: int, rounds: int = 2) -> dict:
    """Seconds of the ITM phase (K/V computation included) with and without the per-image K/V cache on the
    same random pairs, interleaved ``rounds`` times; vision features come from ``reranker``'s cache."""
    pairs = data.candidate_pairs.pairs
    subset = pairs[np.sort(np.random.default_rng(seed).permutation(len(pairs))[:n_pairs])]
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for cache_kv in (True, False):
            log.info("K/V cache ablation: cache_cross_attention_kv=%s on %d pairs", cache_kv, len(subset))
            fresh = _reranker(model, processor, base, features=reranker.features, cache_cross_attention_kv=cache_kv)
            seconds[cache_kv].append(fresh.score_pairs(data.images, data.captions, subset).stats.seconds["itm"])
    return {"pairs": int(len(subset)), "distinct_images": int(len(np.unique(subset[:, 0]))),
            "itm_seconds_with_kv_cache": seconds[True], "itm_seconds_without_kv_cache": seconds[False],
            "speedup": float(np.median(seconds[False]) / np.median(seconds[True]))}


def stock_parity(model, processor, base: RerankerConfig, reranker: Reranker, data: BenchData,
                 scores: PairScores, options: BenchOptions) -> dict:
    """Max abs error of (c)'s scores (K/V path) and of the no-K/V path vs the stock forward."""
    pairs = data.candidate_pairs.pairs
    check = mixed_parity_pairs(data, options.parity_pairs)
    log.info("parity against the stock forward on %d pairs", len(check))
    rows = np.array([np.flatnonzero((pairs == p).all(axis=1))[0] for p in check])
    ref_itm, ref_itc = stock_reference_scores(model, processor, data, check, base.text_max_length)
    plain = _reranker(model, processor, base, features=reranker.features, cache_cross_attention_kv=False)
    no_kv = plain.score_pairs(data.images, data.captions, check, progress=False)
    return {"pairs": int(len(check)), "distinct_images": int(len(set(check[:, 0].tolist()))),
            "caption_words": sorted({len(data.captions[c].split()) for c in check[:, 1]}),
            "itm_max_abs_error_kv_cache": float(np.abs(scores.itm_logits[rows] - ref_itm).max()),
            "itc_max_abs_error_kv_cache": float(np.abs(scores.itc[rows] - ref_itc).max()),
            "itm_max_abs_error_no_kv_cache": float(np.abs(no_kv.itm_logits - ref_itm).max()),
            "itc_max_abs_error_no_kv_cache": float(np.abs(no_kv.itc - ref_itc).max()),
            "itm_match_logit_spread": float(np.ptp(ref_itm[:, 1])),
            "tolerance": 1e-5 if options.small else 1e-4}


def _low_precision_copy(reranker: Reranker, dtype: torch.dtype) -> Reranker:
    """A Reranker like ``reranker`` whose Q-Former + heads run at ``dtype``, sharing its vision features."""
    scorer = copy.deepcopy(reranker.model.scorer).to(dtype)
    low_model = RerankerModel(reranker.model.backend, reranker.model.checkpoint_identity, reranker.model.vision,
                              scorer, reranker.model.tokenizer, reranker.model.device)
    return Reranker(low_model, reranker.config, features=reranker.features)


def precision_parity(reranker: Reranker, data: BenchData, dtype: torch.dtype, n_queries: int,
                     reference: PairScores) -> dict:
    """Q-Former at ``dtype`` (same fp32 vision features) vs the fp32 scores, on the candidates of the first
    ``n_queries`` text queries; rank agreement measured per query."""
    low = _low_precision_copy(reranker, dtype)
    rows = data.candidate_pairs.t2i_rows[:n_queries]
    subset = np.unique(rows.reshape(-1))
    scored = low.score_pairs(data.images, data.captions, data.candidate_pairs.pairs[subset], progress=False)
    query_rows = np.searchsorted(subset, rows)
    reference_subset = PairScores(reference.itm_logits[subset], reference.itc[subset], reference.stats)
    return {"dtype": str(dtype).replace("torch.", ""), "pairs": int(len(subset)),
            **rule_parity(reference_subset, scored, query_rows),
            "itc_max_abs_error": float(np.abs(reference.itc[subset] - scored.itc).max()),
            "qformer_seconds": scored.stats.seconds.get("itm", 0.0) + scored.stats.seconds.get("itc", 0.0)}


def low_precision_rates(reranker: Reranker, data: BenchData, dtype: torch.dtype, results: dict,
                        slots: int) -> dict:
    """(c) with the Q-Former at ``dtype`` on every distinct pair, reusing (c)'s fp32 vision features: its
    workload rate counts (c)'s measured vision phase plus the measured reduced-precision Q-Former phases."""
    low = _low_precision_copy(reranker, dtype)
    scored = low.score_pairs(data.images, data.captions, data.candidate_pairs.pairs)
    vision = results["reranker"]["seconds"].get("vision", 0.0)
    qformer = scored.stats.seconds.get("itc", 0.0) + scored.stats.seconds.get("itm", 0.0)
    rates = results["rates"]
    c_rate, c_after_vision = slots / (vision + qformer), slots / qformer
    return {"dtype": str(dtype).replace("torch.", ""), "vision_seconds_fp32": vision, "qformer_seconds": qformer,
            "qformer_phases": scored.stats.seconds, "pairs_per_s": c_rate, "after_vision_pairs_per_s": c_after_vision,
            "c_over_a": c_rate / rates["a_stock_pairs_per_s"], "c_over_b": c_rate / rates["b_lavis_pairs_per_s"],
            "c_over_b_after_vision": c_after_vision / rates["b_lavis_qformer_phase_pairs_per_s"]}


def cuda_fp16_run(model, processor, base: RerankerConfig, data: BenchData, reference: PairScores,
                  n_queries: int) -> dict:
    """GPU path (moves the model to CUDA): vision and Q-Former fp16 on all pairs; parity vs CPU fp32."""
    reranker = _reranker(model, processor, base, device="cuda", precision="fp16", vision_precision="fp16")
    torch.cuda.synchronize()
    scores = reranker.score_pairs(data.images, data.captions, data.candidate_pairs.pairs, progress=False)
    torch.cuda.synchronize()
    rows = data.candidate_pairs.t2i_rows[:n_queries]
    return {"device": torch.cuda.get_device_name(), "seconds": scores.stats.seconds,
            "distinct_pairs_per_second": len(data.candidate_pairs.pairs) / scores.stats.seconds["total"],
            "itm_parity_vs_cpu_fp32": parity_report(reference.itm, scores.itm, rows).as_dict(),
            "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 2**30}
