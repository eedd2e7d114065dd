"""Typed configuration of ``rrbench compete`` (one YAML file, ``key.sub=value`` overrides).

Plain dataclasses validated in ``__post_init__``; the stage sections are the stages' own configs
(``Stage1Config``, ``RerankerConfig``, ``FusionConfig``, ``TrainConfig``). Load with
:func:`load_compete_config`, which also refuses, before any work, backend names the stages do not know
and devices this machine does not have; every error names the dotted key and the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

from eval.typed_config import apply_overrides, check_field, from_dict, load_config, to_dict
from rrbench_base.config_errors import ConfigFieldError
from stage1_dual.config import EncoderConfig, Stage1Config, device_problem
from stage1_dual.config import check_loadable as check_stage1_loadable
from stage1_dual.training.config import TrainConfig
from stage2_rerank.config import FusionConfig, RerankerConfig
from stage2_rerank.config import check_loadable as check_stage2_loadable

DEFAULT_STAGE1_MODEL = ".cache/rrbench/models/stage1_flickr8k_zh_lite/best"


def _default_stage1() -> Stage1Config:
    return Stage1Config(encoder=EncoderConfig(backend="rrbench_dual", model=DEFAULT_STAGE1_MODEL, batch_size=64,
                                              num_workers=0), depth=100)


@dataclass
class CompetitionFiles:
    """Where the competition's files are, relative to the ``--data`` folder (absolute paths allowed).

    Attributes:
        train: training pairs ``ImageWordData.csv`` (columns ``image_id,caption``); only read when
            fine-tuning is on.
        images: the image folder ``ImageData/``; every ``image_id`` is a file name inside it.
        text_queries: task 1 queries ``word_test.csv`` (columns ``text_id,caption``).
        image_gallery: task 1 gallery ``image_data.csv`` (column ``image_id``).
        image_queries: task 2 queries ``image_test.csv`` (column ``image_id``).
        text_gallery: task 2 gallery ``word_data.csv`` (columns ``text_id,caption``).
        ground_truth: optional answer key (columns ``text_id,image_id``, one row per matching pair);
            when the file exists, R@1/5/10 of both tasks are reported.
    """

    train: str = "ImageWordData.csv"
    images: str = "ImageData"
    text_queries: str = "word_test.csv"
    image_gallery: str = "image_data.csv"
    image_queries: str = "image_test.csv"
    text_gallery: str = "word_data.csv"
    ground_truth: str = "ground_truth.csv"

    def __post_init__(self) -> None:
        for name in ("train", "images", "text_queries", "image_gallery", "image_queries", "text_gallery",
                     "ground_truth"):
            if not getattr(self, name):
                raise ConfigFieldError(name, f"{name} must be a non-empty file name")

    def path(self, data_dir: Path, name: str) -> Path:
        """Path of file ``name`` (a field of this class) under ``data_dir`` (unless absolute)."""
        return Path(data_dir) / getattr(self, name)


@dataclass
class FinetuneConfig:
    """Optional stage-1 fine-tuning on the training pairs before retrieval.

    Attributes:
        enabled: fine-tune (true) or use the stage-1 encoder as configured (false).
        training: the stage-1 trainer's settings (``stage1_dual.training.config.TrainConfig``; its
            ``on_bad_input`` is replaced by the compete-level policy).
        start_from_stage1: when the stage-1 encoder is an ``rrbench_dual`` checkpoint and
            ``training.init_from`` is unset, start from that checkpoint (fine-tuning); otherwise train
            ``training.model`` from scratch.
        val_fraction: share of training images held out (deterministically, by ``training.seed``) to
            select the best epoch; 0 = no validation, the last epoch is used.
        run_dir: checkpoints and training log; None = ``<out>/finetune``. An existing finished run there
            is reused (the trainer resumes from ``last/``).
    """

    enabled: bool = False
    training: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=256,
                                                                     captions_per_image=1, warmup_steps=5,
                                                                     learning_rate=2e-4, device="cpu"))
    start_from_stage1: bool = True
    val_fraction: float = 0.0
    run_dir: Optional[Path] = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigFieldError("val_fraction", f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.run_dir is not None:
            self.run_dir = Path(self.run_dir)


@dataclass
class CompeteConfig:
    """One competition run: files, optional fine-tuning, stage 1, optional stage-2 rerank, outputs.

    Attributes:
        files: names of the competition files inside the ``--data`` folder.
        stage1: dual encoder, index and candidate depth N (default: the offline Chinese checkpoint
            trained by configs/train/stage1_flickr8k_zh_lite.yaml); N >= 10 so R@10 can be reported.
        finetune: optional fine-tuning of stage 1 on the training pairs (``files.train``).
        stage2: reranker; null = stage 1 alone.
        rerank_depth: stage 2 reorders the first this many stage-1 candidates of every query (at most
            ``stage1.depth``; used only with a ``stage2`` section).
        fusion: how stage-2 and stage-1 scores combine: ``rule`` and its parameters (the rules are described
            under "Fusion rules" in ``rrbench config --doc``).
        top_k: result rows per query (the competition asks for 5).
        on_bad_input: a missing/undecodable image or a bad row in any file: ``error`` stops with a
            message naming it; ``skip`` leaves it out (a skipped query gets no result rows) and counts it.
        encoding: result file encoding: ``utf-8`` (no byte-order mark) or ``utf-8-sig`` (with one, for Excel).
        cache_dir: root of the embedding, feature and image-verification caches.
    """

    files: CompetitionFiles = field(default_factory=CompetitionFiles)
    stage1: Stage1Config = field(default_factory=_default_stage1)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    stage2: Optional[RerankerConfig] = None
    rerank_depth: int = 20
    fusion: FusionConfig = field(default_factory=lambda: FusionConfig(rule="itm"))
    top_k: int = 5
    on_bad_input: Literal["error", "skip"] = "error"
    encoding: Literal["utf-8", "utf-8-sig"] = "utf-8"
    cache_dir: Path = Path(".cache/rrbench")

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir)
        if self.top_k < 1:
            raise ConfigFieldError("top_k", f"top_k must be >= 1, got {self.top_k}")
        if self.stage1.depth < max(self.top_k, 10):
            raise ConfigFieldError("stage1.depth", f"stage1.depth must be >= max(top_k, 10) = {max(self.top_k, 10)}, "
                                                   f"got {self.stage1.depth}")
        if self.rerank_depth < 1 or (self.stage2 is not None and self.rerank_depth > self.stage1.depth):
            raise ConfigFieldError("rerank_depth", f"rerank_depth must be in [1, stage1.depth={self.stage1.depth}], "
                                                   f"got {self.rerank_depth}")
        if self.on_bad_input not in ("error", "skip"):
            raise ConfigFieldError("on_bad_input", f"on_bad_input must be error or skip, got {self.on_bad_input!r}")


def load_compete_config(path: Optional[str | Path], overrides: Sequence[str] = ()) -> CompeteConfig:
    """The config of ``path`` with ``key.sub=value`` overrides; ConfigError on problems.

    ``path`` None = the defaults of every field, overrides applied on top of them (so
    ``stage1.depth=50`` keeps the default encoder).
    """
    if path is None:
        source = "<defaults>" + (f" (with overrides {' '.join(overrides)})" if overrides else "")
        cfg = from_dict(CompeteConfig, apply_overrides(to_dict(CompeteConfig()), overrides), source)
    else:
        source = str(path) + (f" (with overrides {' '.join(overrides)})" if overrides else "")
        cfg = load_config(CompeteConfig, path, overrides)
    check_field(source, "stage1", lambda: check_stage1_loadable(cfg.stage1))
    if cfg.stage2 is not None:
        check_field(source, "stage2", lambda: check_stage2_loadable(cfg.stage2))
    if cfg.finetune.enabled:
        problem = device_problem(cfg.finetune.training.device)
        check_field(source, "finetune.training", lambda: _refuse("device", problem))
    return cfg


def _refuse(key: str, problem: str | None) -> None:
    if problem is not None:
        raise ConfigFieldError(key, f"{key}: {problem}")
