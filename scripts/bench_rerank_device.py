"""Stage-2 speed and reduced-precision parity on an accelerator (the GPU half of ``bench_rerank.py``).

    HF_HUB_OFFLINE=1 python scripts/bench_rerank_device.py --out results/bench_rerank_gpu      # CUDA, fp16 + bf16
    HF_HUB_OFFLINE=1 python scripts/bench_rerank_device.py --small --device cpu --dtypes bf16  # quick CPU check

Full blip2-itm-vit-g architecture with random weights; the same 50 images x 250 captions, top-10 of both
directions as the CPU benchmark. For each precision: pairs/s of (a) the stock forward, (b) the LAVIS loop
(vision cached), (c) the Reranker, their ratios, peak GPU memory, and the parity of (c) against (c) in fp32
on the same device (max score error, Kendall tau, top-1 agreement). Writes JSON to --out and prints it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch

from rrbench_base.provenance import provenance
from stage2_rerank.bench.device import DeviceBenchOptions, interleaved_precision_timings, run_device_benchmark

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def main(argv: list[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    defaults = DeviceBenchOptions()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--device", default=defaults.device)
    for field in dataclasses.fields(DeviceBenchOptions):
        if field.type == "int":
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=getattr(defaults, field.name))
    parser.add_argument("--dtypes", default="fp16,bf16", help="comma-separated: fp16, bf16")
    parser.add_argument("--interleaved", action="store_true",
                        help="instead: (c) at fp32/fp16/bf16 interleaved twice, plus an operator profile of fp16")
    parser.add_argument("--out", type=Path, default=Path("results/bench_rerank_gpu"))
    args = vars(parser.parse_args(argv))
    out, dtypes = args.pop("out"), [DTYPES[name] for name in args.pop("dtypes").split(",")]
    interleaved = args.pop("interleaved")
    options = DeviceBenchOptions(**args)
    if interleaved:
        timings = interleaved_precision_timings(options)
        results = {"provenance": provenance(argv=["scripts/bench_rerank_device.py", *argv]),
                   "options": dataclasses.asdict(options), "interleaved": timings}
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_rerank_device_interleaved.json").write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results["interleaved"]["seconds"], indent=1))
        print(results["interleaved"].get("profile_by_device_time", ""))
        print(results["interleaved"].get("profile_by_cpu_time", ""))
        return results
    runs = [run_device_benchmark(options, dtype) for dtype in dtypes]
    results = {"provenance": provenance(argv=["scripts/bench_rerank_device.py", *argv]),
               "options": dataclasses.asdict(options), "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("bench_rerank_device_small.json" if options.small else "bench_rerank_device.json")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
