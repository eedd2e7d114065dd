"""Effect of ``eval.malloc_tuning.tune_malloc`` on a frozen EfficientNet-Lite0+Lite2 forward on CPU, same run.

    python scripts/bench_malloc.py [--batch-size 64] [--batches 3] [--threads 2] [--out FILE]

Runs the stage-1 ``efficientnet_lite0+lite2`` tower (260 px, the Flickr8k-lite feature pass) over random
pixel batches in two child processes, glibc defaults first, then with :func:`tune_malloc`, and reports each
one's median seconds per batch, images per second and the children's user / kernel CPU seconds (kernel time is
where the page faults of freshly mmap'd activations show), plus the speed-up. Prints JSON (and writes it to
``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def child(batch_size: int, batches: int, threads: int, tuned: bool) -> None:
    """Time ``batches`` forwards (after one warm-up) and print the seconds of each as JSON."""
    if tuned:
        from eval.malloc_tuning import tune_malloc

        if not tune_malloc():
            raise SystemExit("mallopt refused the settings (not glibc?)")
    import torch

    from stage1_dual.trainable.image_towers import build_image_tower
    from stage1_dual.trainable.model_config import ImageTowerConfig

    torch.set_num_threads(threads)
    tower = build_image_tower(ImageTowerConfig(name="efficientnet_lite0+lite2", keep_grid=True))
    pixels = torch.rand(batch_size, 3, tower.image_size, tower.image_size, generator=torch.Generator().manual_seed(0))
    tower.frozen_features(pixels * 2 - 1)
    seconds = []
    for _ in range(batches):
        start = time.perf_counter()
        tower.frozen_features(pixels * 2 - 1)
        seconds.append(time.perf_counter() - start)
    print(json.dumps(seconds))


def measure(args: argparse.Namespace, tuned: bool) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, __file__, "--child", "--batch-size", str(args.batch_size), "--batches",
               str(args.batches), "--threads", str(args.threads)] + (["--tuned"] if tuned else [])
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = json.loads(out.strip().splitlines()[-1])
    median = statistics.median(seconds)
    return {"median_s_per_batch": median, "images_per_s": args.batch_size / median, "seconds": seconds,
            "child_user_cpu_s": after.ru_utime - before.ru_utime,
            "child_kernel_cpu_s": after.ru_stime - before.ru_stime}


def main(argv: list[str]) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=3, help="timed batches per setting (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tuned", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.batch_size, args.batches, args.threads, args.tuned)
        return None
    from rrbench_base.provenance import provenance

    results = {"glibc_default": measure(args, tuned=False), "tune_malloc": measure(args, tuned=True)}
    report = {"provenance": provenance(argv=["scripts/bench_malloc.py", *argv]),
              "options": {k: v for k, v in vars(args).items() if k not in ("child", "tuned", "out")}, **results,
              "speedup": results["glibc_default"]["median_s_per_batch"] / results["tune_malloc"]["median_s_per_batch"]}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "provenance"}, indent=1))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
