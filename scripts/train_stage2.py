"""Train a stage-2 BLIP-2 ITM reranker from a recipe file, then score it on the test split through load_reranker.

    python scripts/train_stage2.py configs/train/stage2_synthetic.yaml [key.sub=value ...]
        [--run-dir DIR] [--threads N] [--no-resume] [--skip-test] [--stage1 DIR] [--evaluate-only CHECKPOINT]

Recipes (``configs/train/``): ``stage2_synthetic.yaml`` (the demo reranker), ``stage2_flickr8k_lite.yaml`` (the
Flickr8k-lite reranker's first phase), ``stage2_flickr8k_lite_listwise.yaml`` and
``stage2_flickr8k_lite_residual.yaml`` (second phases from the first phase's ``best/``, ``flickr8k.init_from``).
Overrides use the file's keys, e.g. ``trainer.max_train_seconds=1800 trainer.epochs=6``,
``flickr8k.provider=efficientnet_lite0+lite2``, ``flickr8k.grid_image_size=448``, ``residual.stage1=DIR``.

Outputs in the run directory: ``best/`` (the checkpoint to use as ``stage2.model``), ``last/`` (resumable),
``log.jsonl``; training resumes from ``last/`` unless ``--no-resume``. The test evaluation reranks stage-1
candidates: ``--stage1 DIR`` = a trained ``rrbench_dual`` checkpoint; without it, the Flickr8k linear stand-in
fitted during training / the reranker's own ITC (synthetic). ``--evaluate-only CHECKPOINT`` scores an existing
checkpoint without training. Results go to ``<checkpoint>/../test_results_<checkpoint>_<stage1>.json`` and a
Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch

from eval.malloc_tuning import tune_malloc
from eval.reranker_recipes.evaluate import r1_table
from eval.reranker_recipes.training_run import EVALUATORS, RECIPES, Stage2TrainingRun
from eval.typed_config import load_config

log = logging.getLogger("train_stage2")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="YAML file of a Stage2TrainingRun (configs/train/stage2_*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    parser.add_argument("--run-dir", type=Path, default=None, help="override run_dir")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--no-resume", action="store_true", help="start from scratch even if <run_dir>/last exists")
    parser.add_argument("--skip-test", action="store_true", help="do not evaluate on the test split")
    parser.add_argument("--stage1", type=Path, default=None, help="rrbench_dual stage-1 checkpoint for the test "
                                                                   "evaluation (default: the recipe's stand-in)")
    parser.add_argument("--evaluate-only", type=Path, default=None, metavar="CHECKPOINT",
                        help="score this checkpoint on the test split, without training")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str]) -> dict:
    args = _parser().parse_intermixed_args(argv)
    tune_malloc()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    run = load_config(Stage2TrainingRun, args.config, args.overrides)
    if args.run_dir is not None:
        run = dataclasses.replace(run, run_dir=args.run_dir)
    if args.no_resume:
        run = dataclasses.replace(run, trainer=dataclasses.replace(run.trainer, resume=False))
    if args.evaluate_only is not None:
        checkpoint = args.evaluate_only
    else:
        checkpoint = RECIPES[run.recipe](run).best_dir
        if args.skip_test:
            return {"checkpoint": str(checkpoint)}
    results = EVALUATORS[run.recipe](run, checkpoint, args.stage1)
    stage1_name = "linear_or_own_itc" if args.stage1 is None else args.stage1.name
    out = Path(checkpoint).parent / f"test_results_{Path(checkpoint).name}_{stage1_name}.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    log.info("test results: %s", out)
    print(r1_table(results))
    return {"checkpoint": str(checkpoint), "test": results}


if __name__ == "__main__":
    main(sys.argv[1:])
