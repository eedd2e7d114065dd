"""Optional stage-1 fine-tuning on the competition's training pairs (``ImageWordData.csv`` + ``ImageData/``).

The pairs are read as a caption table (image id = file name, the competition's Chinese captions),
optionally split into train/validation images by a seeded permutation, and trained with the stage-1
trainer (``stage1_dual.training.trainer.train_dual_encoder``). The result is an ``rrbench_dual``
checkpoint at ``<run_dir>/best`` that replaces the stage-1 encoder of the run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from eval.competition.config import CompeteConfig
from eval.data.benchmark import Benchmark
from eval.data.dataset_config import DatasetConfig
from eval.data.loaders import load_benchmark
from stage1_dual.config import EncoderConfig
from stage1_dual.training.data import TrainingSplit
from stage1_dual.training.trainer import train_dual_encoder

log = logging.getLogger(__name__)


def load_training_pairs(cfg: CompeteConfig, data_dir: Path) -> Benchmark:
    """The training pairs of ``data_dir`` as a Benchmark (bad rows/images follow ``cfg.on_bad_input``)."""
    files = cfg.files
    dataset = DatasetConfig(format="table", annotations=files.path(data_dir, "train"),
                            root=files.path(data_dir, "images"), image_column="image_id", caption_column="caption",
                            language="zh", name="competition-train", on_bad_input=cfg.on_bad_input,
                            cache_dir=cfg.cache_dir / "data")
    return load_benchmark(dataset)


def split_train_val(bench: Benchmark, val_fraction: float, seed: int) -> tuple[TrainingSplit, Optional[TrainingSplit]]:
    """Training split and (when ``val_fraction`` > 0) a validation split of whole images, chosen by a
    permutation seeded with ``seed``."""
    full = TrainingSplit(bench.images, [c.text for c in bench.captions], bench.text_to_image())
    if val_fraction <= 0:
        return full, None
    order = np.random.default_rng(seed).permutation(len(bench.images))
    n_val = max(1, int(round(val_fraction * len(order))))
    if n_val >= len(order):
        raise ValueError(f"finetune.val_fraction {val_fraction} leaves no training image of {len(order)}")
    return full.subset_images(np.sort(order[n_val:])), full.subset_images(np.sort(order[:n_val]))


def finetune_stage1(cfg: CompeteConfig, data_dir: Path, out_dir: Path) -> tuple[EncoderConfig, dict[str, Any]]:
    """Fine-tune stage 1 on the training pairs; returns the encoder config of the result and a report."""
    ft = cfg.finetune
    training = dataclasses.replace(ft.training, on_bad_input=cfg.on_bad_input)
    encoder = cfg.stage1.encoder
    if training.init_from is None and ft.start_from_stage1 and encoder.backend == "rrbench_dual":
        training = dataclasses.replace(training, init_from=Path(encoder.model))
    if training.feature_cache_dir is None:
        training = dataclasses.replace(training, feature_cache_dir=cfg.cache_dir / "features")
    bench = load_training_pairs(cfg, data_dir)
    train, val = split_train_val(bench, ft.val_fraction, training.seed)
    run_dir = ft.run_dir if ft.run_dir is not None else Path(out_dir) / "finetune"
    log.info("fine-tuning stage 1 on %d images / %d captions (%s) into %s", len(train.images), len(train.texts),
             f"from {training.init_from}" if training.init_from else "from scratch", run_dir)
    start = time.perf_counter()
    result = train_dual_encoder(training, train, val, run_dir)
    report = {"run_dir": str(run_dir), "init_from": str(training.init_from) if training.init_from else None,
              "train_images": len(train.images), "train_captions": len(train.texts),
              "val_images": len(val.images) if val is not None else 0, "steps": result.steps,
              "epochs": training.epochs, "train_seconds": round(result.train_seconds, 2),
              "wall_seconds": round(time.perf_counter() - start, 2), "best_val": result.best_metrics,
              "data": bench.summary(), "skipped": [s.as_dict() for s in bench.skipped] + list(result.skipped)}
    tuned = dataclasses.replace(encoder, backend="rrbench_dual", model=str(result.best_dir), pretrained=None)
    return tuned, report
