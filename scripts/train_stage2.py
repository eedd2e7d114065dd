"""Train a stage-2 BLIP-2 ITM reranker, then score it on the test split through load_reranker.

  python scripts/train_stage2.py synthetic [--run-dir DIR] [--stage1 DIR] [--threads N] [--time-budget S]
  python scripts/train_stage2.py flickr8k  [--run-dir DIR] [--stage1 DIR] [--threads N] [--time-budget S]
        [--recipe base|listwise|residual] [--init-from CHECKPOINT] [--provider NAME] [--grid-image-size PX]
  python scripts/train_stage2.py evaluate  {synthetic|flickr8k} --checkpoint DIR [--stage1 DIR]

``synthetic``: the demo reranker (tiny Q-Former + jointly trained conv grid, from scratch). ``flickr8k``: the
MiniLM-initialised Q-Former over frozen EfficientNet-Lite0 grid features (cached; ``--provider
efficientnet_lite0+lite2``: the Lite0+Lite2 grids of stage 1's cached pass, kept when stage 1 trains with
``training.model.image_tower.keep_grid=true``, else computed here), hard negatives from a linear stand-in
stage 1 (``--recipe listwise --init-from <first run>/best``: the second phase, which adds the listwise ITM
loss; ``--recipe residual --init-from <first run>/best``: the residual listwise phase over cross-fitted lists of
the trained stage 1 in ``--stage1``, default ``.cache/rrbench/models/stage1_flickr8k_lite/best``). Both resume
from ``<run-dir>/last`` and write ``<run-dir>/best`` (the checkpoint to use as ``stage2.model``). The test
evaluation reranks stage-1 candidates: ``--stage1 DIR`` = a trained ``rrbench_dual`` checkpoint; without it,
the flickr8k linear stand-in / the reranker's own ITC (synthetic). Results go to
``<run-dir>/test_results_<checkpoint>_<stage1>.json`` and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch

from eval.reranker_recipes.evaluate import r1_table
from eval.reranker_recipes.recipes import evaluate_flickr, evaluate_synthetic
from eval.reranker_recipes.flickr8k import (PROVIDERS, FlickrItmOptions, flickr_listwise_trainer_config,
                                       flickr_trainer_config, train_flickr_reranker)
from eval.reranker_recipes.flickr8k_residual import (STAGE1_CHECKPOINT, flickr_residual_trainer_config,
                                                train_flickr_residual)
from eval.reranker_recipes.synthetic import SyntheticItmOptions, demo_trainer_config, train_synthetic_reranker
from eval.malloc_tuning import tune_malloc

RUN_DIRS = {"synthetic": ".cache/rrbench/models/stage2_synthetic",
            "flickr8k": ".cache/rrbench/models/stage2_flickr8k_lite"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("synthetic", "flickr8k"):
        cmd = sub.add_parser(name, help=f"train the {name} reranker, then evaluate it on test")
        cmd.add_argument("--run-dir", type=Path, default=Path(RUN_DIRS[name]))
        cmd.add_argument("--time-budget", type=float, default=None, help="stop training after this many seconds")
        cmd.add_argument("--epochs", type=int, default=None)
        cmd.add_argument("--steps-per-epoch", type=int, default=None)
        cmd.add_argument("--no-eval", action="store_true", help="train only")
        if name == "flickr8k":
            cmd.add_argument("--recipe", choices=("base", "listwise", "residual"), default="base",
                             help="base: first phase from MiniLM; listwise / residual: second phases (use "
                                  "--init-from; residual cross-fits the --stage1 checkpoint)")
            cmd.add_argument("--init-from", type=Path, default=None, help="start from this checkpoint's weights")
            cmd.add_argument("--provider", choices=PROVIDERS, default="efficientnet_lite0",
                             help="frozen grid the Q-Former cross-attends to")
            cmd.add_argument("--grid-image-size", type=int, default=None,
                             help="input side of a single-network provider (multiple of 32; default native, "
                                  "224 for Lite0: 7x7; 448: 14x14)")
    evaluate = sub.add_parser("evaluate", help="score a trained checkpoint on the test split")
    evaluate.add_argument("dataset", choices=sorted(RUN_DIRS))
    evaluate.add_argument("--checkpoint", type=Path, required=True)
    for cmd in (*sub.choices.values(),):
        cmd.add_argument("--stage1", type=Path, default=None, help="rrbench_dual stage-1 checkpoint for test")
        cmd.add_argument("--depths", default="1,2,4,8,16", help="rerank depths evaluated on test")
        cmd.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        cmd.add_argument("-v", "--verbose", action="store_true")
    return parser


def _trainer(defaults, args):
    overrides = {k: v for k, v in (("time_budget_s", args.time_budget), ("epochs", args.epochs),
                                   ("steps_per_epoch", args.steps_per_epoch)) if v is not None}
    return dataclasses.replace(defaults, **overrides)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    tune_malloc()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    depths = [int(d) for d in args.depths.split(",")]
    dataset = args.dataset if args.command == "evaluate" else args.command
    checkpoint, run_dir = (args.checkpoint, args.checkpoint.parent) if args.command == "evaluate" else (None, None)
    if args.command == "synthetic":
        options = SyntheticItmOptions(run_dir=args.run_dir, trainer=_trainer(demo_trainer_config(), args))
        checkpoint, run_dir = train_synthetic_reranker(options).best_dir, args.run_dir
    elif args.command == "flickr8k":
        recipe = {"base": flickr_trainer_config, "listwise": flickr_listwise_trainer_config,
                  "residual": flickr_residual_trainer_config}[args.recipe]()
        options = FlickrItmOptions(run_dir=args.run_dir, init_from=args.init_from, provider=args.provider,
                                   grid_image_size=args.grid_image_size, trainer=_trainer(recipe, args))
        if args.recipe == "residual":
            fit, _ = train_flickr_residual(options, args.stage1 or STAGE1_CHECKPOINT)
        else:
            fit = train_flickr_reranker(options)
        checkpoint, run_dir = fit.best_dir, args.run_dir
    if getattr(args, "no_eval", False):
        return 0
    evaluate = {"synthetic": evaluate_synthetic, "flickr8k": evaluate_flickr}[dataset]
    results = evaluate(checkpoint, args.stage1, depths)
    stage1_name = "linear_or_own_itc" if args.stage1 is None else args.stage1.name
    out = run_dir / f"test_results_{checkpoint.name}_{stage1_name}.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(r1_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
