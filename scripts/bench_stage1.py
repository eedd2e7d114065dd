"""Stage-1 benchmark: encoding throughput and index search speed / recall on this machine.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_stage1.py              # full: 25k and 1M galleries (~15 min)
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_stage1.py --quick      # 25k gallery, 1,000 queries (~1 min)
    .venv/bin/python scripts/bench_stage1.py --compact-only --threads 1    # only the compact table, at 1M

Encoding: open_clip ViT-B-32 with random weights (pretrained=None) on CPU, images/s and texts/s.
Search: flat (exact, the reference), torch top-k, IVF-PQ and HNSW on synthetic clustered vectors
(d=512), recall@100 against exact search and speed-up over it, memory. Compact embeddings (at the largest
size): float32 flat, float16 and int8 scalar quantisation, PQ, IVF-PQ: bytes per vector, index memory, build
and search time, recall@100 against exact (stage1_dual/bench/compact_bench.py). Prints Markdown tables and writes
JSON + Markdown with provenance to --out (bench_stage1.*; the compact table to compact.*). What is measured:
stage1_dual/bench/*.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import faiss
import torch

from rrbench_base.provenance import provenance
from stage1_dual.bench.compact_bench import CompactBenchOptions, render_compact_markdown, run_compact_bench
from stage1_dual.bench.encode_bench import EncodeBenchOptions, run_encode_bench
from stage1_dual.bench.report import MEMORY_METHOD, load_average, render_markdown
from stage1_dual.bench.search_bench import SearchBenchOptions, run_search_bench

QUICK = {"sizes": [25_000], "queries": 1000, "images": 32, "texts": 64}
FULL = {"sizes": [25_000, 1_000_000], "queries": 5000, "images": 256, "texts": 256}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run: 25k gallery, 1,000 queries, 32 images")
    parser.add_argument("--sizes", type=int, nargs="+", help="gallery sizes (default 25000 1000000; quick 25000)")
    parser.add_argument("--queries", type=int, help="queries per gallery (default 5000; quick 1000)")
    parser.add_argument("--images", type=int, help="images to encode (default 256; quick 32)")
    parser.add_argument("--texts", type=int, help="texts to encode (default 256; quick 64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=1, help="DataLoader workers decoding images")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="faiss (OpenMP) and torch threads (default: all cores)")
    parser.add_argument("--skip-encoding", action="store_true", help="only the search benchmark")
    parser.add_argument("--cuda", action="store_true", help="also time the exact torch top-k index on the GPU")
    compact = parser.add_mutually_exclusive_group()
    compact.add_argument("--compact-only", action="store_true",
                         help="only the compact-embedding table (at the largest of --sizes), written to compact.*")
    compact.add_argument("--skip-compact", action="store_true", help="leave out the compact-embedding table")
    parser.add_argument("--compact-queries", type=int, default=1000,
                        help="queries of the compact table (default 1000: SQ and PQ scan every code per query)")
    parser.add_argument("--out", type=Path, help="output folder (default results/bench_stage1; "
                                                 "quick: results/_scratch/bench_stage1_quick)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None:
        args.out = Path("results/_scratch/bench_stage1_quick" if args.quick else "results/bench_stage1")
    return args


def run_compact(args: argparse.Namespace) -> dict:
    """The compact-embedding table at the largest gallery size; writes compact.json / compact.md."""
    start = load_average()
    compact = run_compact_bench(CompactBenchOptions(size=max(args.sizes), num_queries=args.compact_queries))
    results = {"provenance": provenance(argv=["scripts/bench_stage1.py", *args.argv],
                                        threads={"count": args.threads, "source": "--threads"}),
               "load_average": {"start": start, "end": load_average()}, "compact": compact}
    markdown = render_compact_markdown(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compact.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "compact.md").write_text(markdown + "\n")
    print(markdown)
    return results


def main(argv: list[str]) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    args.argv = list(argv)
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    if args.compact_only:
        return run_compact(args)
    results: dict = {"load_average": {"start": load_average()}, "memory_method": MEMORY_METHOD}
    if not args.skip_encoding:
        with tempfile.TemporaryDirectory(prefix="bench_stage1_") as workdir:
            results["encoding"] = run_encode_bench(EncodeBenchOptions(
                images=args.images, texts=args.texts, batch_size=args.batch_size, num_workers=args.num_workers),
                Path(workdir))
    results["search"] = run_search_bench(SearchBenchOptions(sizes=args.sizes, num_queries=args.queries,
                                                            cuda=args.cuda))
    results["load_average"]["end"] = load_average()
    results = {"provenance": provenance(argv=["scripts/bench_stage1.py", *argv],
                                        threads={"count": args.threads, "source": "--threads"}), **results}
    markdown = render_markdown(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_stage1.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "bench_stage1.md").write_text(markdown + "\n")
    print(markdown)
    if not args.skip_compact:
        results["compact"] = run_compact(args)["compact"]
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
