"""``rrbench compete --data DIR --out DIR [--config YAML] [key=value ...]``: the competition's two tasks.

Reads ``word_test.csv``, ``image_data.csv``, ``image_test.csv``, ``word_data.csv`` and ``ImageData/`` from
``--data`` (plus ``ImageWordData.csv`` when fine-tuning, and ``ground_truth.csv`` when present), writes
``result1.csv``, ``result2.csv`` and ``compete.json`` to ``--out`` and prints the R@K when an answer key exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = """\
examples:
  rrbench compete --data DIR --out OUT               # built-in defaults
  rrbench compete --data DIR --out OUT --config configs/compete/teddy2024_zh_lite.yaml --threads 1
  rrbench compete --data DIR --out OUT files.images=/data/ImageData finetune.enabled=true
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="competition folder (task CSVs + ImageData/)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for result1.csv, result2.csv")
    parser.add_argument("--config", type=Path, default=None, help="compete YAML (default: built-in defaults)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. finetune.enabled=true")


def run(args: argparse.Namespace) -> int:
    import torch

    from eval.competition.config import load_compete_config
    from eval.competition.runner import run_compete

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_compete_config(args.config, args.overrides)
    report = run_compete(cfg, args.data, args.out)
    for task in ("task1", "task2"):
        entry = report[task]
        line = f"{task} ({entry['direction']}): {entry['file']} {entry['queries_answered']}/{entry['queries']} queries"
        metrics = entry.get("metrics") or {}
        direction = entry["direction"]
        scores = [f"R@{k} {metrics[f'{direction}/R@{k}']:.2f}" for k in (1, 5, 10) if f"{direction}/R@{k}" in metrics]
        sys.stdout.write(line + (": " + ", ".join(scores) if scores else "") + "\n")
    sys.stdout.write(f"skipped items: {report['skipped_total']}\noutputs: {args.out}\n")
    sys.stdout.write(json.dumps({"counts": report["counts"]}, ensure_ascii=False) + "\n")
    return 0
