"""``rrbench run CONFIG [key=value ...] [--processes N]``: run one experiment and print its summary table."""

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
  rrbench run configs/demo.yaml --processes 2        # one job in 2 local processes (one GPU each, or gloo on CPU)
  accelerate launch --num_processes 8 -m eval.cli run configs/demo.yaml   # the same under accelerate
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML (e.g. configs/demo.yaml)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. stage1.depth=50")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="run the job in N local processes (default 1; results as with one)")


def run(args: argparse.Namespace) -> int:
    from eval.experiment_config import load_experiment

    cfg = load_experiment(args.config, args.overrides)
    if args.processes > 1:
        from eval.runner.launch import run_in_processes

        run_in_processes(args.processes, run_config_process, args.config, list(args.overrides),
                         bool(getattr(args, "verbose", False)))
        path = cfg.results_dir / "results.json"
    else:
        from eval.runner.experiment import run_experiment

        path = run_experiment(cfg)
    table = path.parent / "table.md"
    if table.exists():
        sys.stdout.write(f"\n{table.read_text(encoding='utf-8')}\n")
    sys.stdout.write(f"outputs: {path.parent}\n")
    return 0


def run_config_process(config: str, overrides: list[str], verbose: bool) -> None:
    """One process of ``--processes N``: the CLI's logging, then its share of the experiment."""
    from eval.cli import configure_logging
    from eval.experiment_config import load_experiment
    from eval.runner.experiment import run_experiment

    configure_logging(verbose)
    run_experiment(load_experiment(config, overrides))
