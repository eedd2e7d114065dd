"""GPU proof: ``rrbench run`` end to end on a COCO-5K-sized synthetic workload, with FLOP-floor ratios.

    HF_HUB_OFFLINE=1 python scripts/bench_gpu_e2e.py --out results/bench_gpu_e2e          # one H200: ~5 min
    python scripts/bench_gpu_e2e.py --tiny --device cpu --images 40 --captions 200 --depth 16 --out /tmp/e2e

Builds, under ``--work``: a random-weight ``blip2-itm-vit-g`` checkpoint at 364 px (``--tiny``: a test-size
BLIP-2), the synthetic shapes benchmark (``--images`` test images at 364 px, ``--captions`` / ``--images``
captions each, rendered by ``--workers`` processes) and an experiment config with random open_clip ViT-B-32
(``--tiny``: a 1-layer CLIP), the exact torch index, stage 2 in fp16 on CUDA (fp32 on the CPU) at depths up to
``--depth`` in both directions. Then runs ``rrbench run`` in this process (``eval.cli.main``) and reads its
results.json: seconds per stage, candidate slots/s and unique pairs/s of stage 2, peak GPU memory
(``torch.cuda.max_memory_allocated``; None on the CPU), and the FLOP efficiency (floor seconds / measured
seconds, ``stage2_rerank.bench.flops``) of the Q-Former (ITM + ITC phases: pairs x ITM FLOPs per pair, K/V and
ITC per image, ITC per caption) and of the vision phase (images x the tower's FLOPs; the measured phase also
decodes and preprocesses the images on the CPU). The FLOP rate is ``--peak-tflops`` (a data sheet's dense
peak, e.g. 989 for an H100/H200 SXM in fp16) or, by default, a measured large matrix product on the device.
Targets (issue 20): Q-Former efficiency >= 0.5, vision within 2x of its floor (efficiency >= 0.5).
Writes ``bench_gpu_e2e.json`` and ``bench_gpu_e2e.md`` to ``--out``.

Time on one H200 (results/cost_model/README.md): about 3.84M candidate slots (<= 3.84M distinct pairs). The
cost model predicts 7.6 min for ``rrbench run`` at the ITM rate measured in results/bench_rerank_gpu (86.8 us
per pair in batches of 128, launch-bound: 181 ms of GPU time in a 372 ms pass of its operator profile) and 2.9 min
with stage 2 at the targets; batches of 1024 amortise the launches, so ~4-6 min is expected, plus ~1 min for the
checkpoint (random init, 4.6 GB written) and the data (16 processes). ``--depth 64`` halves stage 2 if needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch

from eval.cli import main as rrbench_main
from eval.data.dataset_config import SyntheticConfig
from eval.data.synthetic import read_manifest, synthetic_split_dir
from rrbench_base.provenance import provenance
from stage2_rerank.bench.flops import RerankFlops, efficiency, matmul_flop_rate
from stage2_rerank.bench.random_checkpoint import (blip2_itm_vit_g_config, save_random_checkpoint,
                                                   tiny_blip2_itm_config)

REPO = Path(__file__).resolve().parents[1]


def run_provenance(config: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    """The project's provenance record of this run (``rrbench_base.provenance``)."""
    return provenance(config=config, argv=argv, seed=0, repo=REPO)


log = logging.getLogger("bench_gpu_e2e")
TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
             "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
TARGET_EFFICIENCY = {"qformer": 0.5, "vision": 0.5}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--captions", type=int, default=25000, help="a multiple of --images, at most 5x")
    parser.add_argument("--depth", type=int, default=128, help="largest rerank depth, both directions")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="test-size BLIP-2 and CLIP, 32 px images")
    parser.add_argument("--pair-batch-size", type=int, default=1024)
    parser.add_argument("--vision-batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=16, help="processes rendering data, stage-1 loaders")
    parser.add_argument("--peak-tflops", type=float, default=None, help="FLOP rate of the floor (default: measured)")
    parser.add_argument("--work", type=Path, default=Path(".cache/bench_gpu_e2e"))
    parser.add_argument("--out", type=Path, default=Path("results/bench_gpu_e2e"))
    args = parser.parse_args(argv)
    if args.captions % args.images or not 1 <= args.captions // args.images <= 5:
        parser.error("--captions must be 1 to 5 times --images")
    return args


def caption_words(directory: Path) -> list[str]:
    """Distinct words and punctuation of the split's captions (the random checkpoint's vocabulary)."""
    captions = [c.lower() for e in read_manifest(directory)["images"] for c in e["captions"]]
    return sorted({w for c in captions for w in re.findall(r"\w+|[^\w\s]", c)})


def experiment_yaml(args: argparse.Namespace, synthetic: SyntheticConfig, clip_model: str, cuda: bool) -> str:
    precision = "fp16" if cuda else "fp32"
    return f"""experiment: gpu_e2e
output_dir: {args.work / 'results'}
cache_dir: {args.work / 'cache'}
write_trec: false
dataset:
  format: synthetic
  split: test
  cache_dir: {args.work / 'data'}
  synthetic: {{num_train: 1, num_val: 1, num_test: {synthetic.num_test}, image_size: {synthetic.image_size},
               captions_per_image: {synthetic.captions_per_image}, seed: 0}}
stage1:
  depth: {args.depth}
  encoder: {{backend: open_clip, model: {clip_model}, device: {args.device}, batch_size: 256,
             num_workers: {args.workers if cuda else 0}}}
  index: {{type: torch}}
stage2:
  model: {args.work / 'blip2'}
  device: {args.device}
  precision: {precision}
  vision_precision: {precision}
  pair_batch_size: {args.pair_batch_size}
  vision_batch_size: {args.vision_batch_size}
  vision_memory_mb: 32768
  kv_chunk_mb: 4096
ablation:
  depths: {sorted({0, min(16, args.depth), args.depth})}
  rules: [itm, itm+itc]
analysis:
  significance: false
"""


def prepare(args: argparse.Namespace, cuda: bool) -> tuple[Path, Any, dict[str, float]]:
    """Data, checkpoint and config under ``args.work`` (a previous run's caches and results removed first);
    returns (config path, BLIP-2 config, seconds of each step)."""
    seconds: dict[str, float] = {}
    for stale in ("cache", "results"):
        shutil.rmtree(args.work / stale, ignore_errors=True)
    synthetic = SyntheticConfig(num_train=1, num_val=1, num_test=args.images, image_size=32 if args.tiny else 364,
                                captions_per_image=args.captions // args.images, seed=0)
    t0 = time.perf_counter()
    directory = synthetic_split_dir(synthetic, "test", args.work / "data", workers=args.workers)
    seconds["data"] = time.perf_counter() - t0
    config = (tiny_blip2_itm_config(image_size=32, vocab_size=256) if args.tiny
              else blip2_itm_vit_g_config(image_size=364))
    t0 = time.perf_counter()
    shutil.rmtree(args.work / "blip2", ignore_errors=True)
    save_random_checkpoint(args.work / "blip2", config, caption_words(directory), seed=0)
    seconds["checkpoint"] = time.perf_counter() - t0
    clip_model = "ViT-B-32"
    if args.tiny:
        import open_clip

        clip_model = "rrbench-e2e-tiny-clip"
        (args.work / f"{clip_model}.json").write_text(json.dumps(TINY_CLIP))
        open_clip.add_model_config(args.work / f"{clip_model}.json")
    path = args.work / "gpu_e2e.yaml"
    path.write_text(experiment_yaml(args, synthetic, clip_model, cuda))
    return path, config, seconds


def mean_text_tokens(work: Path, captions: list[str], max_length: int) -> float:
    """Mean tokens per caption (incl. [CLS]/[SEP], truncated at ``max_length``) with the checkpoint's tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(work / "blip2")
    lengths = [len(ids) for ids in tokenizer(captions, truncation=True, max_length=max_length)["input_ids"]]
    return sum(lengths) / len(lengths)


def summarise(results: dict, run_seconds: float, config, text_tokens: float, flop_rate: float,
              peak_memory: Optional[int]) -> dict[str, Any]:
    """Per-stage seconds, stage-2 rates and FLOP efficiencies of one results.json."""
    timings, counts, costs = results["timings"], results["counts"], results["costs"]
    s2, s1 = counts["stage2"], timings["stage1"]
    images, pairs = s2["images_encoded"], s2["pairs_scored"]
    captions = counts["dataset"]["captions"]
    vision_s = costs["stage2"]["vision_image"]["seconds_per_item"] * images
    qformer_s = costs["stage2"]["pair"]["seconds_per_item"] * pairs
    rerank_s = timings["stage2"]["rerank_seconds_at_max_depth"]
    flops = RerankFlops.of(config, text_tokens)
    qformer_flops = flops.stage2_qformer(pairs, images, captions)
    vision_flops = images * flops.vision_per_image
    ratios = {"qformer": efficiency(qformer_flops, qformer_s, flop_rate),
              "vision": efficiency(vision_flops, vision_s, flop_rate)}
    return {
        "seconds": {"run_total": run_seconds, "load_data": timings["load_data_seconds"],
                    "stage1": s1["total_seconds"], "stage1_encode_images": s1["encode_images_seconds"],
                    "stage1_encode_texts": s1["encode_texts_seconds"],
                    "stage1_search": sum(s1["search_seconds"].values()),
                    "stage2_rerank": rerank_s, "stage2_vision": vision_s, "stage2_qformer": qformer_s,
                    "stage2_other": rerank_s - vision_s - qformer_s,
                    "grid": timings["stage2"]["grid_derivation_seconds"], "analysis": timings["analysis_seconds"],
                    "run_other": run_seconds - timings["load_data_seconds"] - s1["total_seconds"] - rerank_s
                    - timings["stage2"]["grid_derivation_seconds"] - timings["analysis_seconds"]},
        "stage2": {"candidate_slots": s2["candidate_slots"], "unique_pairs": s2["unique_pairs"],
                   "pairs_scored": pairs, "images_encoded": images, "depth": s2["depth"],
                   "candidate_slots_per_s": s2["candidate_slots"] / rerank_s,
                   "unique_pairs_per_s": s2["unique_pairs"] / rerank_s,
                   "qformer_pairs_per_s": pairs / qformer_s if qformer_s else None},
        "peak_gpu_memory_gib": None if peak_memory is None else peak_memory / 2**30,
        "flops": {"text_tokens_mean": text_tokens, "vision_tokens": flops.vision_tokens,
                  "itm_per_pair": flops.itm_per_pair, "kv_per_image": flops.kv_per_image,
                  "itc_per_image": flops.itc_per_image, "itc_per_caption": flops.itc_per_caption,
                  "vision_per_image": flops.vision_per_image, "qformer_total": qformer_flops,
                  "vision_total": vision_flops, "rate_flop_per_s": flop_rate},
        "efficiency": ratios,
        "targets": {name: {"min_efficiency": TARGET_EFFICIENCY[name],
                           "met": None if ratios[name] is None else ratios[name] >= TARGET_EFFICIENCY[name]}
                    for name in TARGET_EFFICIENCY},
    }


def render_markdown(report: dict) -> str:
    s, st, fl, ef = report["summary"]["seconds"], report["summary"]["stage2"], report["summary"]["flops"], \
        report["summary"]["efficiency"]
    met = report["summary"]["targets"]
    mem = report["summary"]["peak_gpu_memory_gib"]
    lines = [f"# GPU proof: rrbench run end to end ({report['workload']['architecture']})", "",
             f"Command: `{report['command']}`; device {report['device']}; FLOP rate {fl['rate_flop_per_s'] / 1e9:,.1f} "
             f"GFLOP/s ({report['flop_rate_source']}). Provenance (versions, git, hardware) in the JSON. "
             "`run_other`: model loading and the report (tables, plots) inside `rrbench run`.", "",
             "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in s.items()]
    lines += ["", f"Stage 2: {st['candidate_slots']:,} candidate slots, {st['unique_pairs']:,} unique pairs, "
              f"{st['candidate_slots_per_s']:,.0f} slots/s, {st['unique_pairs_per_s']:,.0f} unique pairs/s; "
              f"peak GPU memory {'n/a (CPU)' if mem is None else f'{mem:.2f} GiB'}.", "",
              f"FLOPs: ITM {fl['itm_per_pair']:.4g} per pair (mean text {fl['text_tokens_mean']:.1f} tokens), "
              f"K/V {fl['kv_per_image']:.4g} and ITC {fl['itc_per_image']:.4g} per image, "
              f"ITC {fl['itc_per_caption']:.4g} per caption, vision {fl['vision_per_image']:.4g} per image ({fl['vision_tokens']} tokens); "
              f"Q-Former total {fl['qformer_total']:.4g}, vision total {fl['vision_total']:.4g}.", "",
              "| part | efficiency (floor / measured) | target | met |", "|---|---|---|---|"]
    for name in ("qformer", "vision"):
        value = "n/a" if ef[name] is None else f"{ef[name]:.3f}"
        lines.append(f"| {name} | {value} | >= {met[name]['min_efficiency']} | {met[name]['met']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse(argv)
    args.work = args.work.resolve()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    start = time.perf_counter()
    config_path, config, prep_seconds = prepare(args, cuda)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    if rrbench_main(["run", str(config_path)]) != 0:
        raise SystemExit("rrbench run failed")
    run_seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) if cuda else None
    results = json.loads((args.work / "results" / "gpu_e2e" / "results.json").read_text())
    captions = [c for e in read_manifest(next((args.work / "data" / "synthetic").iterdir()))["images"]
                for c in e["captions"]]
    max_length = results["provenance"]["config"]["stage2"]["text_max_length"]
    text_tokens = mean_text_tokens(args.work, captions, max_length)
    dtype = torch.float16 if cuda else torch.float32
    rate = (args.peak_tflops * 1e12 if args.peak_tflops else
            matmul_flop_rate(device, dtype, size=8192 if cuda else 512))
    summary = summarise(results, run_seconds, config, text_tokens, rate, peak)
    summary["seconds"].update({f"prepare_{k}": v for k, v in prep_seconds.items()})
    summary["seconds"]["script_total"] = time.perf_counter() - start
    report = {"command": " ".join(["python", "scripts/bench_gpu_e2e.py", *argv]),
              "device": torch.cuda.get_device_name(device) if cuda else "cpu",
              "flop_rate_source": "--peak-tflops" if args.peak_tflops else f"measured {dtype} matmul",
              "workload": {"images": args.images, "captions": args.captions, "depth": args.depth,
                           "image_px": 32 if args.tiny else 364,
                           "architecture": "tiny BLIP-2 + tiny CLIP" if args.tiny
                           else "blip2-itm-vit-g (364 px) + open_clip ViT-B-32, random weights"},
              "summary": summary,
              "provenance": run_provenance(vars(args) | {"work": str(args.work), "out": str(args.out)},
                                           ["scripts/bench_gpu_e2e.py", *argv])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_gpu_e2e.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / "bench_gpu_e2e.md").write_text(render_markdown(report))
    print(render_markdown(report))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
