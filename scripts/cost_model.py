"""Predicted wall time and memory of COCO 5K and of a 1M-image gallery (``eval.cost_model``), from measured files.

    python scripts/cost_model.py --out results/cost_model      # prints the table, writes cost_model.json / .md

Per-unit costs (every source file and field is named in the JSON under ``sources``):

- ``H200 fp16, measured``: results/bench_rerank_gpu/bench_rerank_device.json (``runs[0]``, Q-Former fp16: vision,
  itc and itm seconds of the reranker on 50 images x 2,500 distinct pairs at 224 px; ``peak_gpu_memory_gb``),
  the vision seconds scaled to 364 px by the tower's FLOP ratio; exact search from
  results/bench_stage1_gpu/bench_stage1.json (the ``torch_cuda`` row at 1M); stage-1 encoding (not
  measured on a GPU) = ViT-B-32 FLOPs at the effective FLOP rate of the measured ViT-g phase.
- ``H200 fp16, at the targets``: every model cost = its FLOPs at 50% of the H200's 989 TFLOP/s dense fp16 peak
  (the issue's targets); search and bookkeeping as measured.
- ``this CPU, 1 thread``: results/bench_stage1/bench_stage1.json (encoding rates, ``flat`` exact search at 1M),
  results/bench_rerank/with_bf16/bench_rerank_full.json (fp32 reranker seconds, peak RSS), vision scaled to 364 px.
- per candidate slot, all rows: results/cost_model/cpu_tiny_e2e/bench_gpu_e2e.json, a tiny-model run of
  ``scripts/bench_gpu_e2e.py`` on this CPU: ``summary.seconds.stage2_other`` / slots (bookkeeping of the scoring
  process) and ``summary.seconds.grid`` / slots (2 rules x 3 depths, on the gathering process).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch
from transformers import Blip2ForImageTextRetrieval

from eval.cost_model import UnitCosts, Workload, predict
from stage2_rerank.bench.flops import RerankFlops, encoder_layer_flops, vision_tower_flops
from stage2_rerank.bench.random_checkpoint import blip2_itm_vit_g_config

GPU_FILE = "results/bench_rerank_gpu/bench_rerank_device.json"
GPU_SEARCH_FILE = "results/bench_stage1_gpu/bench_stage1.json"
CPU_STAGE1_FILE = "results/bench_stage1/bench_stage1.json"
CPU_RERANK_FILE = "results/bench_rerank/with_bf16/bench_rerank_full.json"
SLOT_FILE = "results/cost_model/cpu_tiny_e2e/bench_gpu_e2e.json"
H200_PEAK = 989e12  # dense fp16/bf16 tensor-core FLOP/s of an H100/H200 SXM (NVIDIA data sheet)
TARGET = 0.5
TEXT_TOKENS = 16  # a COCO caption averages ~10.5 words: ~14-16 BERT tokens with [CLS]/[SEP]
CLIP_IMAGE_FLOPS = 2 * 49 * 3 * 32**2 * 768 + 12 * encoder_layer_flops(50, 768, 3072)  # ViT-B-32, 224 px
CLIP_TEXT_FLOPS = 12 * encoder_layer_flops(77, 512, 2048)  # open_clip's text tower pads to 77 tokens
CLIP_PARAMS = 151_277_313  # open_clip ViT-B-32
EMBEDDING_BYTES = 512 * 4  # float32, d = 512
WORKLOADS = [Workload("COCO 5K, k=128 both ways", 5000, 25000, 25000, 5000, 128),
             Workload("1M images, 100k text queries, k=128", 1_000_000, 100_000, 100_000, 0, 128)]


def load(root: Path, name: str) -> dict:
    return json.loads((root / name).read_text())


def blip2_params() -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in Blip2ForImageTextRetrieval(blip2_itm_vit_g_config(364)).parameters())


def unit_costs(root: Path) -> tuple[list[UnitCosts], dict]:
    """The three rows of per-unit costs and the values read from each source."""
    small, big = blip2_itm_vit_g_config(224), blip2_itm_vit_g_config(364)
    flops = RerankFlops.of(big, TEXT_TOKENS)
    to_364 = vision_tower_flops(big.vision_config) / vision_tower_flops(small.vision_config)
    itc_image, itc_text = flops.itc_per_image, flops.itc_per_caption
    weights16 = (blip2_params() + CLIP_PARAMS) * 2
    feature16 = flops.vision_tokens * big.vision_config.hidden_size * 2

    gpu = load(root, GPU_FILE)["runs"][0]
    g_sec, g_work = gpu["reranker"]["seconds"], gpu["workload"]
    g_vision224 = g_sec["vision"] / g_work["images"]
    g_rate = vision_tower_flops(small.vision_config) / g_vision224  # effective FLOP/s of the measured vision phase
    itc_share = g_sec["itc"] / (g_work["images"] * itc_image + g_work["captions"] * itc_text)
    search = [r for r in load(root, GPU_SEARCH_FILE)["search"]["rows"]
              if r["index"] == "torch_cuda" and r["gallery"] == 1_000_000][0]
    search_queries = load(root, GPU_SEARCH_FILE)["search"]["setup"]["queries"]
    slot_run = load(root, SLOT_FILE)["summary"]
    slots = slot_run["stage2"]["candidate_slots"]
    rank_slot_s, gather_slot_s = slot_run["seconds"]["stage2_other"] / slots, slot_run["seconds"]["grid"] / slots
    measured = UnitCosts(
        "H200 fp16, measured", CLIP_IMAGE_FLOPS / g_rate, CLIP_TEXT_FLOPS / g_rate,
        search["search_seconds"] / (search_queries * search["gallery"]), g_vision224 * to_364,
        itc_share * itc_image, itc_share * itc_text, g_sec["itm"] / g_work["distinct_pairs"], rank_slot_s,
        gather_slot_s, weights16,
        gpu["reranker"]["peak_gpu_memory_gb"] * 2**30 - weights16, EMBEDDING_BYTES, feature16)
    rate = TARGET * H200_PEAK
    target = replace(measured, name="H200 fp16, at the targets", image_encode_s=CLIP_IMAGE_FLOPS / rate,
                     text_encode_s=CLIP_TEXT_FLOPS / rate, vision_s=flops.vision_per_image / rate,
                     qformer_image_s=(flops.kv_per_image + itc_image) / rate, qformer_text_s=itc_text / rate,
                     pair_s=flops.itm_per_pair / rate)

    enc = load(root, CPU_STAGE1_FILE)
    flat = [r for r in enc["search"]["rows"] if r["index"] == "flat" and r["gallery"] == 1_000_000][0]
    cpu = load(root, CPU_RERANK_FILE)
    c_sec, c_work = cpu["reranker"]["seconds"], cpu["workload"]
    c_itc = c_sec["itc"] / (c_work["images"] * itc_image + c_work["captions"] * itc_text)
    weights32 = weights16 * 2
    cpu_costs = UnitCosts(
        "this CPU (AMD EPYC), 1 thread, fp32", 1 / enc["encoding"]["images_per_s"], 1 / enc["encoding"]["texts_per_s"],
        flat["search_seconds"] / (enc["search"]["setup"]["queries"] * flat["gallery"]),
        c_sec["vision"] / c_work["images"] * to_364, c_itc * itc_image, c_itc * itc_text,
        c_sec["itm"] / c_work["distinct_pairs"], rank_slot_s, gather_slot_s, weights32,
        cpu["memory"]["peak_end_cpu"]["peak_rss_gb"] * 2**30 - weights32, EMBEDDING_BYTES, feature16 * 2)
    sources = {"files": [GPU_FILE, GPU_SEARCH_FILE, CPU_STAGE1_FILE, CPU_RERANK_FILE, SLOT_FILE],
               "vision_flops_ratio_364_over_224": to_364, "h200_vision_effective_flop_rate": g_rate,
               "flops_at_text_tokens": TEXT_TOKENS, "flops": asdict(flops), "h200_peak_flop_rate": H200_PEAK,
               "target_efficiency": TARGET, "clip_image_flops": CLIP_IMAGE_FLOPS, "clip_text_flops": CLIP_TEXT_FLOPS,
               "slot_bookkeeping_run": slot_run["seconds"] | {"candidate_slots": slot_run["stage2"]["candidate_slots"]}}
    return [measured, target, cpu_costs], sources


def table(predictions: list[dict]) -> str:
    rows = ["| workload | device | devices | stage 1 encode | stage 1 search | stage 2 vision | stage 2 Q-Former "
            "| stage 2 bookkeeping | grid on gatherer | **total** | device memory | host features per device |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in predictions:
        s, m = p["seconds"], p["memory"]
        cells = [human(s[k]) for k in ("stage1_encode", "stage1_search", "stage2_vision", "stage2_qformer",
                                       "stage2_bookkeeping", "grid_on_gatherer")]
        rows.append(f"| {p['workload']} | {p['device']} | {p['devices']} | " + " | ".join(cells)
                    + f" | **{human(s['total'])}** | {m['device_bytes'] / 2**30:.1f} GiB "
                    f"| {m['host_vision_features_bytes'] / 2**30:,.1f} GiB |")
    return "\n".join(rows) + "\n"


def human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} s"


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="repository root")
    parser.add_argument("--out", type=Path, default=None, help="write cost_model.json and cost_model.md here")
    args = parser.parse_args(argv)
    costs, sources = unit_costs(args.root)
    predictions = [predict(c, w, g) for w in WORKLOADS for c in costs
                   for g in ((1,) if c.name.startswith("this CPU") else (1, 8, 64))]
    text = table(predictions)
    print(text)
    result = {"unit_costs": [asdict(c) for c in costs], "workloads": [asdict(w) for w in WORKLOADS],
              "predictions": predictions, "sources": sources}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cost_model.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "cost_model.md").write_text(text)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
