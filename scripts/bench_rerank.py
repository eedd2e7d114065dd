"""Stage-2 speed and parity benchmark on the blip2-itm-vit-g architecture with random weights.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_rerank.py            # full size (~5 GB RAM, ~10 min CPU)
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_rerank.py --small    # tiny config, seconds

Prints pairs/s of (a) the stock forward, (b) a LAVIS-style loop, (c) the Reranker on the same candidate
pairs, the ratios c/a and c/b, peak RSS, parity of (c) with the stock forward and the bf16-vs-fp32 parity
report (plus fp16 on CUDA when a GPU is present); writes JSON + Markdown with provenance to --out.
See stage2_rerank/bench/runner.py for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from stage2_rerank.bench.report import render_markdown
from stage2_rerank.bench.runner import BenchOptions, run_benchmark


def parse_args(argv: list[str]) -> tuple[BenchOptions, Path]:
    defaults = BenchOptions()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="tiny random config (quick check)")
    for name in ("images", "captions", "depth", "pair_batch_size", "stock_pairs", "stock_batch_size",
                 "lavis_t2i", "lavis_i2t", "parity_pairs", "kv_ablation_pairs", "precision_queries", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--bf16-all-pairs", action="store_true",
                        help="also time (c) with a bf16 Q-Former on every pair (CPU's allowed reduced precision)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own); 1 avoids OpenMP stalls on a busy machine")
    parser.add_argument("--out", type=Path, default=Path("results/bench_rerank"))
    args = vars(parser.parse_args(argv))
    out, threads = args.pop("out"), args.pop("threads")
    if threads is not None:
        torch.set_num_threads(threads)
    return BenchOptions(**args), out


def main(argv: list[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options, out = parse_args(argv)
    results = run_benchmark(options, ["scripts/bench_rerank.py", *argv])
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("bench_rerank_small" if options.small else "bench_rerank_full")
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render_markdown(results)
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"written: {stem}.json and {stem}.md")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
