"""``rrbench run CONFIG [key=value ...]``: run one experiment and print its summary table."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  rrbench run configs/demo.yaml                      # the shipped demo: tables, plots, results.json
  rrbench run configs/demo.yaml stage1.depth=50 ablation.depths=[1,5,20]
  rrbench run configs/flickr8k_lite.yaml threads=2 output_dir=/tmp/runs
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML (e.g. configs/demo.yaml)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. stage1.depth=50")


def run(args: argparse.Namespace) -> int:
    from eval.experiment_config import load_experiment
    from eval.runner.experiment import run_experiment

    cfg = load_experiment(args.config, args.overrides)
    path = run_experiment(cfg)
    table = path.parent / "table.md"
    if table.exists():
        sys.stdout.write(f"\n{table.read_text(encoding='utf-8')}\n")
    sys.stdout.write(f"outputs: {path.parent}\n")
    return 0
