"""Train a stage-1 dual encoder (backend ``rrbench_dual``) on a benchmark's train split, select on val, and
report R@1/5/10 of both directions on the test split through the normal stage-1 path (load_encoder +
run_stage1 + eval.metrics).

    python scripts/train_stage1.py configs/train/stage1_synthetic.yaml [key.sub=value ...]
        [--run-dir DIR] [--threads N (default 1)] [--no-resume] [--skip-test]

Outputs in the run directory: ``best/`` (load with ``EncoderConfig(backend="rrbench_dual", model=<run
dir>/best)``), ``last/`` (resumable), ``log.jsonl``, ``test_metrics.json``. Training resumes from
``last/`` unless ``--no-resume``; a finished run is not retrained.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from eval.data.benchmark import Benchmark
from eval.data.loaders import DatasetConfig, load_benchmark
from eval.malloc_tuning import tune_malloc
from eval.metrics import retrieval_metrics
from eval.typed_config import load_config
from stage1_dual.config import EncoderConfig, IndexConfig, Stage1Config
from stage1_dual.encoders import load_encoder
from stage1_dual.pipeline import run_stage1
from stage1_dual.training.config import TrainConfig
from stage1_dual.training.data import TrainingSplit
from stage1_dual.training.trainer import train_dual_encoder

log = logging.getLogger("train_stage1")


@dataclass
class Stage1TrainingRun:
    """One stage-1 training run.

    Attributes:
        dataset: the benchmark; its ``split`` is replaced by the three splits below.
        train_split: split trained on.
        val_split: split used for best-checkpoint selection (empty = none).
        test_split: split reported after training (empty = none).
        run_dir: checkpoints, log and test metrics.
        depth: stage-1 candidate depth used for the test report.
        training: the trainer configuration (model architecture included).
    """

    dataset: DatasetConfig
    training: TrainConfig = field(default_factory=TrainConfig)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    run_dir: Path = Path(".cache/rrbench/models/stage1")
    depth: int = 50


def _benchmark(run: Stage1TrainingRun, split: str) -> Benchmark:
    return load_benchmark(dataclasses.replace(run.dataset, split=split)).drop_images_without_captions()


def _training_split(bench: Benchmark) -> TrainingSplit:
    return TrainingSplit(bench.images, [c.text for c in bench.captions], bench.text_to_image())


def _ranked(similarity: np.ndarray, depth: int) -> np.ndarray:
    depth = min(depth, similarity.shape[1])
    top = np.argpartition(-similarity, depth - 1, axis=1)[:, :depth]
    order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def eval_metrics_scorer(image_embeddings: np.ndarray, text_embeddings: np.ndarray,
                        text_image: np.ndarray) -> dict[str, float]:
    """Validation scorer: exact ranking of the embeddings, metrics from ``eval.metrics``."""
    similarity = text_embeddings @ image_embeddings.T
    image_texts = [np.flatnonzero(text_image == i) for i in range(len(image_embeddings))]
    return retrieval_metrics(_ranked(similarity, 50), text_image, _ranked(similarity.T, 50), image_texts)


def evaluate_test(model_dir: Path, bench: Benchmark, depth: int, batch_size: int) -> dict:
    """R@K etc. of the trained encoder on ``bench`` through load_encoder + run_stage1 (exact index)."""
    start = time.perf_counter()
    encoder_cfg = EncoderConfig(backend="rrbench_dual", model=str(model_dir), batch_size=batch_size, num_workers=0)
    result = run_stage1(Stage1Config(encoder=encoder_cfg, index=IndexConfig(type="flat"), depth=depth),
                        bench.images, [c.text for c in bench.captions], encoder=load_encoder(encoder_cfg))
    t2i, i2t = result.candidates["t2i"], result.candidates["i2t"]
    metrics = retrieval_metrics(t2i.ids, bench.text_to_image()[t2i.query_positions], i2t.ids,
                                [bench.image_to_texts()[p] for p in i2t.query_positions])
    return {"metrics": metrics, "images": len(bench.images), "captions": len(bench.captions),
            "seconds": round(time.perf_counter() - start, 2)}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="YAML file of a Stage1TrainingRun")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    parser.add_argument("--run-dir", type=Path, default=None, help="override run_dir")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared 2-core machine 2 threads ran 10x slower; "
                             "0 = torch default)")
    parser.add_argument("--no-resume", action="store_true", help="start from scratch even if <run_dir>/last exists")
    parser.add_argument("--skip-test", action="store_true", help="do not evaluate the test split")
    args = parser.parse_intermixed_args(argv)
    tune_malloc()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    run = load_config(Stage1TrainingRun, args.config, args.overrides)
    run_dir = args.run_dir or run.run_dir
    train = _training_split(_benchmark(run, run.train_split))
    val = _training_split(_benchmark(run, run.val_split)) if run.val_split else None
    start = time.perf_counter()
    result = train_dual_encoder(run.training, train, val, run_dir, scorer=eval_metrics_scorer,
                                resume=not args.no_resume)
    report: dict = {"config": str(args.config), "overrides": args.overrides, "run_dir": str(run_dir),
                    "train_seconds": round(result.train_seconds, 2), "steps": result.steps,
                    "wall_seconds_this_call": round(time.perf_counter() - start, 2),
                    "threads": torch.get_num_threads(), "best_val": result.best_metrics}
    if run.test_split and not args.skip_test:
        test = _benchmark(run, run.test_split)
        report["test"] = evaluate_test(result.best_dir, test, run.depth, run.training.feature_batch_size)
        (Path(run_dir) / "test_metrics.json").write_text(json.dumps(report, indent=1))
    log.info("%s", json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
