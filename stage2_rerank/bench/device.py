"""Stage-2 speed and precision on one accelerator (``scripts/bench_rerank_device.py``; prints nothing).

Same workload and methods as :mod:`stage2_rerank.bench.runner` (a: stock forward, b: LAVIS loop with
cached vision, c: the Reranker), all on ``device`` in ``dtype`` (fp16 on CUDA by default), plus the
reduced-precision parity of (c) against an fp32 run of (c) on the same device and pairs. Every timed
phase is preceded by an untimed warm-up (kernel selection, allocator growth: a whole pass for (c), 10 calls
for (a) and (b)) and closed by a device synchronisation.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from stage2_rerank.backends import build_blip2_itm
from stage2_rerank.bench.parity import rule_parity, stock_itm_logits
from stage2_rerank.bench.random_checkpoint import (blip2_itm_vit_g_config, build_processor, build_random_model,
                                                   tiny_blip2_itm_config)
from stage2_rerank.bench.speed import BENCH_WORDS, BenchData, lavis_queries, make_bench_data
from stage2_rerank.config import RerankerConfig
from stage2_rerank.rerank import Reranker
from stage2_rerank.types import PairScores

log = logging.getLogger(__name__)

PRECISION_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


@dataclass
class DeviceBenchOptions:
    """Attributes:
        small: tiny random config instead of blip2-itm-vit-g.
        device: torch device string (``cuda`` on the GPU machine; ``cpu`` works, slowly, for checks).
        images, captions, depth: workload (top-``depth`` candidates of both directions), as the CPU bench.
        pair_batch_size: the reranker's pairs per Q-Former forward.
        stock_pairs, stock_batch_size: pairs timed with the stock forward (a), pairs per call.
        lavis_queries: queries of the LAVIS loop (b): this many text queries and a fifth as many image queries.
        parity_queries: text queries whose candidates enter the rank-agreement statistics.
        seed: seed of weights and data.
    """

    small: bool = False
    device: str = "cuda"
    images: int = 50
    captions: int = 250
    depth: int = 10
    pair_batch_size: int = 128
    stock_pairs: int = 400
    stock_batch_size: int = 4
    lavis_queries: int = 250
    parity_queries: int = 250
    seed: int = 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _scored(model, processor, config: RerankerConfig, data: BenchData, pairs: np.ndarray) -> PairScores:
    """Warm up on all ``pairs`` with a throw-away Reranker (the kernels of every batch shape get selected: a
    partial warm-up left 2.5 s of one-time cost in the fp16 timing on an H200), then score ``pairs`` with a
    fresh one (empty caches)."""
    warm = Reranker(build_blip2_itm(model, processor, config, "random-init"), config)
    warm.score_pairs(data.images, data.captions, pairs, progress=False)
    reranker = Reranker(build_blip2_itm(model, processor, config, "random-init"), config)
    _sync(torch.device(config.device))
    return reranker.score_pairs(data.images, data.captions, pairs, progress=False), reranker


def _time_stock(model, processor, data: BenchData, pairs: np.ndarray, batch_size: int, device: torch.device,
                dtype: torch.dtype) -> float:
    """Seconds of (a): processor + stock ITM forward, ``batch_size`` pairs per call, inputs moved per call
    (after 10 untimed calls)."""
    def call(batch):
        inputs = processor(images=[data.images[i].open() for i in batch[:, 0]],
                           text=[data.captions[c] for c in batch[:, 1]], padding=True, return_tensors="pt")
        stock_itm_logits(model, inputs["pixel_values"].to(device, dtype), inputs["input_ids"].to(device),
                         inputs["attention_mask"].to(device))
    for s in range(0, min(len(pairs), 10 * batch_size), batch_size):  # warm-up: 10 calls of mixed shapes
        call(pairs[s:s + batch_size])
    _sync(device)
    start = time.perf_counter()
    for s in tqdm(range(0, len(pairs), batch_size), desc="(a) stock forward", unit="call"):
        call(pairs[s:s + batch_size])
    _sync(device)
    return time.perf_counter() - start


def _time_lavis(reranker: Reranker, data: BenchData, queries, max_length: int, device: torch.device) -> float:
    """Seconds of (b): one query at a time, its k candidates padded to ``max_length``, vision cached."""
    scorer, tokenizer = reranker.model.scorer, reranker.model.tokenizer

    def call(image_ids, caption_ids):
        text = tokenizer([data.captions[c] for c in caption_ids], padding="max_length", truncation=True,
                         max_length=max_length, return_tensors="pt").to(device)
        features = torch.stack([reranker.features.get(data.images[int(i)].fingerprint()).to(device)
                                for i in image_ids])
        scorer.itm_logits(text["input_ids"], text["attention_mask"], features=features)
    with torch.inference_mode():
        for image_ids, caption_ids in queries[:10]:  # warm-up
            call(image_ids, caption_ids)
        _sync(device)
        start = time.perf_counter()
        for image_ids, caption_ids in tqdm(queries, desc="(b) LAVIS loop", unit="query"):
            call(image_ids, caption_ids)
        _sync(device)
    return time.perf_counter() - start


def _model_and_data(options: DeviceBenchOptions):
    """(fp32 random model on the CPU, its processor, the bench workload) of ``options``."""
    arch = tiny_blip2_itm_config() if options.small else blip2_itm_vit_g_config()
    model = build_random_model(arch, seed=options.seed)
    processor = build_processor(arch.vision_config.image_size, BENCH_WORDS)
    data = make_bench_data(options.images, options.captions, options.depth, arch.vision_config.image_size,
                           seed=options.seed)
    return model, processor, data


def run_device_benchmark(options: DeviceBenchOptions, dtype: torch.dtype) -> dict:
    """pairs/s of (a), (b), (c) at ``dtype`` on ``options.device``; parity of (c) vs (c) in fp32 there."""
    device = torch.device(options.device)
    fp32_model, processor, data = _model_and_data(options)
    pairs = data.candidate_pairs.pairs
    slots = data.candidate_slots
    name = PRECISION_NAMES[dtype]
    base = RerankerConfig(model="random-init", device=options.device, pair_batch_size=options.pair_batch_size,
                          precision="fp32", vision_precision="fp32")
    log.info("(c) fp32 reference on %s, %d pairs", device, len(pairs))
    reference, _ = _scored(copy.deepcopy(fp32_model), processor, base, data, pairs)
    low_config = dataclasses.replace(base, precision=name, vision_precision="fp16" if device.type == "cuda"
                                     else "fp32")
    log.info("(c) %s on %s", name, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    scores, reranker = _scored(copy.deepcopy(fp32_model), processor, low_config, data, pairs)
    peak_c = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    queries = lavis_queries(data, options.lavis_queries, max(1, options.lavis_queries // 5))
    seconds_b = _time_lavis(reranker, data, queries, base.text_max_length, device)
    pairs_b = int(sum(len(q[0]) for q in queries))
    stock_model = copy.deepcopy(fp32_model).to(device, dtype)
    stock_pairs = pairs[:options.stock_pairs]
    seconds_a = _time_stock(stock_model, processor, data, stock_pairs, options.stock_batch_size, device, dtype)
    rows = data.candidate_pairs.t2i_rows[:options.parity_queries]
    rate_a, rate_b = len(stock_pairs) / seconds_a, pairs_b / seconds_b
    # (c) as a workload rate: every candidate slot of both directions answered, as (a) and (b) count them
    rate_c = slots / scores.stats.seconds["total"]
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": {"qformer": name, "vision": low_config.vision_precision},
        "workload": {"images": options.images, "captions": options.captions, "depth": options.depth,
                     "candidate_slots_both_directions": slots, "distinct_pairs": int(len(pairs))},
        "stock_forward": {"pairs": int(len(stock_pairs)), "batch_size": options.stock_batch_size,
                          "seconds": seconds_a, "pairs_per_second": rate_a},
        "lavis_loop": {"queries": len(queries), "pairs": pairs_b, "seconds_after_vision": seconds_b,
                       "pairs_per_second_after_vision": rate_b},
        "reranker": {"seconds": scores.stats.seconds, "slots_per_second": rate_c,
                     "fp32_seconds": reference.stats.seconds, "peak_gpu_memory_gb": peak_c},
        "ratios": {"c_over_a": rate_c / rate_a,
                   "c_over_b_after_vision": (slots / (scores.stats.seconds["total"]
                                                      - scores.stats.seconds.get("vision", 0.0))) / rate_b},
        "parity_vs_fp32": {**rule_parity(reference, scores, rows),
                           "itc_max_abs_error": float(np.abs(reference.itc - scores.itc).max())},
    }


def interleaved_precision_timings(options: DeviceBenchOptions, rounds: int = 2, profile: bool = True) -> dict:
    """Seconds per phase of (c) at fp32, fp16 and bf16 (Q-Former; vision fp16 except for fp32), interleaved
    ``rounds`` times on one model and the same pairs, so order and warm-up effects show; with ``profile``, the
    top operators (by device time, else CPU time) of one more fp16 run as a text table."""
    device = torch.device(options.device)
    model, processor, data = _model_and_data(options)
    pairs = data.candidate_pairs.pairs
    base = RerankerConfig(model="random-init", device=options.device, pair_batch_size=options.pair_batch_size)
    low_vision = "fp16" if device.type == "cuda" else "fp32"
    settings = {"fp32": dataclasses.replace(base, precision="fp32", vision_precision="fp32"),
                "fp16": dataclasses.replace(base, precision="fp16", vision_precision=low_vision),
                "bf16": dataclasses.replace(base, precision="bf16", vision_precision=low_vision)}
    if device.type != "cuda":
        settings.pop("fp16")
    seconds: dict[str, list[dict]] = {name: [] for name in settings}
    for _ in range(rounds):
        for name, config in settings.items():
            log.info("interleaved timing: %s", name)
            seconds[name].append(_scored(copy.deepcopy(model), processor, config, data, pairs)[0].stats.seconds)
    result: dict = {"pairs": int(len(pairs)), "seconds": seconds}
    if profile:
        config = settings.get("fp16", settings["bf16"])
        warm = Reranker(build_blip2_itm(copy.deepcopy(model), processor, config, "random-init"), config)
        warm.score_pairs(data.images, data.captions, pairs[:16], progress=False)
        fresh = Reranker(build_blip2_itm(copy.deepcopy(model), processor, config, "random-init"), config)
        activities = [torch.profiler.ProfilerActivity.CPU]
        sort_by = "cpu_time_total"
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
            sort_by = "cuda_time_total"
        with torch.profiler.profile(activities=activities) as prof:
            fresh.score_pairs(data.images, data.captions, pairs, progress=False)
            _sync(device)
        result["profile_precision"] = config.precision
        result["profile_by_device_time"] = prof.key_averages().table(sort_by=sort_by, row_limit=20)
        result["profile_by_cpu_time"] = prof.key_averages().table(sort_by="cpu_time_total", row_limit=20)
    return result
