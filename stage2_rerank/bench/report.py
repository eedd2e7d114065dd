"""Memory, throughput arithmetic and the Markdown table of the stage-2 benchmark (provenance:
``rrbench_base.provenance``).

Throughput definition (all three methods): candidate slots of both directions served per second, where
the workload is every (query, candidate) slot of the top-k lists of both directions. (a) and (b) are per-call
loops with a constant cost per pair, timed on a subset and extrapolated linearly; (b) and (c) both run the
vision tower once per image, and (b)'s end-to-end time adds the vision time measured in (c).
"""

from __future__ import annotations

import os
import resource

from rrbench_base.provenance import describe
from stage2_rerank.fusion_rules import STAGE2_ONLY_RULES


def memory_snapshot() -> dict:
    """Current and peak resident set size of this process, GiB."""
    with open("/proc/self/statm", encoding="utf-8") as statm:
        rss_pages = int(statm.read().split()[1])
    return {"rss_gb": rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**30,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def rates_and_ratios(results: dict, slots: int) -> dict:
    """pairs/s of (a), (b), (c) over the same workload of ``slots`` candidate slots, and the ratios."""
    stock = results["stock_forward"]
    lavis = results["lavis_loop"]
    seconds = results["reranker"]["seconds"]
    vision = seconds.get("vision", 0.0)
    a_rate = stock["pairs"] / stock["seconds"]
    b_qformer_rate = lavis["pairs"] / lavis["seconds"]
    b_rate = slots / (vision + slots / b_qformer_rate)
    c_rate = slots / seconds["total"]
    c_qformer_rate = slots / (seconds["total"] - vision)
    return {"a_stock_pairs_per_s": a_rate, "b_lavis_pairs_per_s": b_rate,
            "b_lavis_qformer_phase_pairs_per_s": b_qformer_rate, "c_reranker_pairs_per_s": c_rate,
            "c_reranker_after_vision_pairs_per_s": c_qformer_rate,
            "c_over_a": c_rate / a_rate, "c_over_b": c_rate / b_rate,
            "c_over_b_after_vision": c_qformer_rate / b_qformer_rate,
            "vision_seconds_per_image": vision / max(1, results["reranker"]["images_encoded"])}


def render_markdown(results: dict) -> str:
    """The benchmark's tables as Markdown."""
    prov, load, work, rates = results["provenance"], results["load_average"], results["workload"], results["rates"]
    stock, lavis, seconds = results["stock_forward"], results["lavis_loop"], results["reranker"]["seconds"]
    parity, precision = results["parity_vs_stock"], results["precision_parity"]
    lines = [
        f"# Stage-2 rerank benchmark ({results['architecture']}, random weights)", "",
        *describe(prov),
        f"Load average at start {', '.join(f'{x:.2f}' for x in load['start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in load['end'])}.", "",
        f"Workload: {work['images']} images x {work['captions']} captions, top-{work['depth']} candidates of "
        f"both directions = {work['candidate_slots_both_directions']} candidate slots, "
        f"{work['distinct_pairs']} distinct pairs.", "",
        "| method | timed on | seconds | pairs/s (workload) | pairs/s after vision |",
        "|---|---|---|---|---|",
        f"| (a) stock forward, {stock['batch_size']} pairs/call | {stock['pairs']} pairs | {stock['seconds']:.1f} | "
        f"{rates['a_stock_pairs_per_s']:.3f} | - |",
        f"| (b) LAVIS loop, vision cached | {lavis['pairs']} pairs ({lavis['queries']} queries) | "
        f"{lavis['seconds']:.1f} | {rates['b_lavis_pairs_per_s']:.2f} | "
        f"{rates['b_lavis_qformer_phase_pairs_per_s']:.2f} |",
        f"| (c) this reranker | all {work['distinct_pairs']} distinct pairs | {seconds['total']:.1f} | "
        f"{rates['c_reranker_pairs_per_s']:.2f} | {rates['c_reranker_after_vision_pairs_per_s']:.2f} |", "",
        f"**c/a = {rates['c_over_a']:.1f}**, **c/b = {rates['c_over_b']:.2f}** (after vision: "
        f"{rates['c_over_b_after_vision']:.2f}). Vision tower {rates['vision_seconds_per_image']:.2f} s/image. "
        f"Peak RSS {results['memory']['peak_end_cpu']['peak_rss_gb']:.2f} GiB "
        f"(after model build {results['memory']['after_model_build']['rss_gb']:.2f} GiB).", "",
        "(c) phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + ".", "",
    ]
    if "reranker_bf16" in results:
        low = results["reranker_bf16"]
        lines += [f"(c) with a {low['dtype']} Q-Former (vision fp32; (a) and (b) stay fp32, as the stock model and "
                  f"LAVIS run it): Q-Former phases {low['qformer_seconds']:.1f} s on all distinct pairs, "
                  f"{low['pairs_per_s']:.2f} pairs/s (after vision {low['after_vision_pairs_per_s']:.2f}): "
                  f"**c/a = {low['c_over_a']:.1f}**, **c/b = {low['c_over_b']:.2f}** (after vision: "
                  f"{low['c_over_b_after_vision']:.2f}).", ""]
    if "kv_cache_ablation" in results:
        kv = results["kv_cache_ablation"]
        lines += [f"Cross-attention K/V cache: ITM phase on {kv['pairs']} pairs ({kv['distinct_images']} images) "
                  f"took {', '.join(f'{x:.1f}' for x in kv['itm_seconds_with_kv_cache'])} s with the cache vs "
                  f"{', '.join(f'{x:.1f}' for x in kv['itm_seconds_without_kv_cache'])} s without "
                  f"(interleaved runs): speedup {kv['speedup']:.2f}x.", ""]
    lines += [
        "## Parity with the stock forward (fp32)", "",
        f"{parity['pairs']} pairs, {parity['distinct_images']} images, caption lengths {parity['caption_words']} "
        f"words; match-logit spread {parity['itm_match_logit_spread']:.3g}; tolerance {parity['tolerance']:g}.", "",
        "| path | ITM max abs error | ITC max abs error |", "|---|---|---|",
        f"| K/V cache (as timed in c) | {parity['itm_max_abs_error_kv_cache']:.2e} | "
        f"{parity['itc_max_abs_error_kv_cache']:.2e} |",
        f"| no K/V cache | {parity['itm_max_abs_error_no_kv_cache']:.2e} | "
        f"{parity['itc_max_abs_error_no_kv_cache']:.2e} |", "",
        f"## Q-Former {precision['dtype']} vs fp32 (same fp32 vision features, {precision['pairs']} pairs)", "",
        "| score | max abs error | mean abs error | Kendall tau (mean / min) | top-1 agreement | queries |",
        "|---|---|---|---|---|---|",
    ]
    for name in STAGE2_ONLY_RULES:
        rep = precision[name]
        lines.append(f"| {name} | {rep['max_abs_error']:.2e} | {rep['mean_abs_error']:.2e} | "
                     f"{rep['kendall_tau_mean']:.3f} / {rep['kendall_tau_min']:.3f} | "
                     f"{rep['top1_agreement']:.3f} | {rep['n_queries']} |")
    lines.append(f"\nITC max abs error {precision['itc_max_abs_error']:.2e}; {precision['dtype']} Q-Former time "
                 f"{precision['qformer_seconds']:.1f} s for {precision['pairs']} pairs.")
    if "cuda_fp16" in results:
        cuda = results["cuda_fp16"]
        lines.append(f"\n## CUDA fp16 ({cuda['device']})\n\n{cuda['distinct_pairs_per_second']:.1f} distinct pairs/s (all phases); "
                     f"ITM top-1 agreement vs CPU fp32 {cuda['itm_parity_vs_cpu_fp32']['top1_agreement']:.3f}.")
    return "\n".join(lines) + "\n"
