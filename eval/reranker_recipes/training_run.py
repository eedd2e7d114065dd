"""A stage-2 reranker training run as data: ``configs/train/stage2_*.yaml`` -> :class:`Stage2TrainingRun`.

A run names its procedure (``recipe``) and holds everything the procedure needs: the trainer schedule
(``trainer``, an ``ItmTrainerConfig``), the options of the recipe's model and data (the ``synthetic`` or
``flickr8k`` section; ``residual`` too for the residual phase), where it writes (``run_dir``) and the depths
of its test evaluation. :data:`RECIPES` maps a recipe name to the function that trains it,
:data:`EVALUATORS` to the one that scores a checkpoint on the test split; ``scripts/train_stage2.py`` runs
both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from eval.reranker_recipes.flickr8k import FlickrItmOptions, train_flickr_reranker
from eval.reranker_recipes.flickr8k_residual import ResidualOptions, train_flickr_residual
from eval.reranker_recipes.recipes import evaluate_flickr, evaluate_synthetic
from eval.reranker_recipes.synthetic import SyntheticItmOptions, train_synthetic_reranker
from rrbench_base.config_errors import ConfigFieldError
from stage2_rerank.training.config import ItmTrainerConfig
from stage2_rerank.training.trainer import FitResult

RecipeName = Literal["synthetic", "flickr8k", "flickr8k_residual"]

# the option sections each recipe reads (every other section must be absent)
SECTIONS: dict[str, tuple[str, ...]] = {
    "synthetic": ("synthetic",),
    "flickr8k": ("flickr8k",),
    "flickr8k_residual": ("flickr8k", "residual"),
}


@dataclass
class Stage2TrainingRun:
    """One stage-2 reranker training run.

    Attributes:
        recipe: the procedure: ``synthetic`` (the demo reranker: tiny Q-Former + jointly trained conv grid,
            from scratch), ``flickr8k`` (MiniLM-initialised Q-Former over frozen EfficientNet-Lite grids; a
            second phase when ``flickr8k.init_from`` names a first phase's checkpoint), ``flickr8k_residual``
            (the residual listwise phase over cross-fitted lists of a trained stage 1).
        trainer: the training schedule.
        run_dir: ``best/`` (the checkpoint to use as ``stage2.model``), ``last/`` (resumable), ``log.jsonl``,
            test results.
        synthetic: options of the ``synthetic`` recipe.
        flickr8k: options of the ``flickr8k`` and ``flickr8k_residual`` recipes.
        residual: what the ``flickr8k_residual`` recipe adds (the trained stage 1, the cross-fit).
        depths: rerank depths of the test evaluation.
    """

    recipe: RecipeName
    trainer: ItmTrainerConfig
    run_dir: Path = Path(".cache/rrbench/models/stage2")
    synthetic: Optional[SyntheticItmOptions] = None
    flickr8k: Optional[FlickrItmOptions] = None
    residual: Optional[ResidualOptions] = None
    depths: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.recipe not in SECTIONS:
            raise ConfigFieldError("recipe", f"recipe must be one of {', '.join(SECTIONS)}, got {self.recipe!r}")
        needed = SECTIONS[self.recipe]
        for section in needed:
            if getattr(self, section) is None:
                raise ConfigFieldError(section, f"{section} section missing: recipe {self.recipe} needs "
                                          f"{' and '.join(needed)}")
        for section in ("synthetic", "flickr8k", "residual"):
            if section not in needed and getattr(self, section) is not None:
                raise ConfigFieldError(section, f"{section} section is not read by recipe {self.recipe} "
                                          f"(it reads {' and '.join(needed)})")
        if not self.depths or min(self.depths) < 1:
            raise ConfigFieldError("depths", f"depths must be a non-empty list of positive ints, got {self.depths}")


def _train_synthetic(run: Stage2TrainingRun) -> FitResult:
    return train_synthetic_reranker(run.synthetic, run.trainer, run.run_dir)


def _train_flickr(run: Stage2TrainingRun) -> FitResult:
    return train_flickr_reranker(run.flickr8k, run.trainer, run.run_dir)


def _train_residual(run: Stage2TrainingRun) -> FitResult:
    return train_flickr_residual(run.flickr8k, run.trainer, run.run_dir, run.residual)[0]


def _evaluate_synthetic(run: Stage2TrainingRun, checkpoint: Path, stage1: Optional[Path]) -> dict[str, Any]:
    return evaluate_synthetic(run.synthetic, checkpoint, stage1, run.depths)


def _evaluate_flickr(run: Stage2TrainingRun, checkpoint: Path, stage1: Optional[Path]) -> dict[str, Any]:
    return evaluate_flickr(run.flickr8k, checkpoint, stage1, run.depths)


RECIPES: dict[str, Callable[[Stage2TrainingRun], FitResult]] = {
    "synthetic": _train_synthetic,
    "flickr8k": _train_flickr,
    "flickr8k_residual": _train_residual,
}

# test evaluation: (run, checkpoint, stage-1 checkpoint or None for the recipe's stand-in) -> results
EVALUATORS: dict[str, Callable[[Stage2TrainingRun, Path, Optional[Path]], dict[str, Any]]] = {
    "synthetic": _evaluate_synthetic,
    "flickr8k": _evaluate_flickr,
    "flickr8k_residual": _evaluate_flickr,
}
