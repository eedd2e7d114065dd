"""Evaluation side of rrbench: benchmarks, metrics, the experiment runner, reports and competition mode.

Public API, importable from ``eval`` (resolved on first use, PEP 562, so ``import eval`` stays light):
- data: :func:`load_benchmark` (a ``dataset:`` config -> :class:`Benchmark` of :class:`ImageItem` /
  :class:`CaptionItem`), :class:`DatasetConfig` (:class:`SyntheticConfig` for the generated shapes benchmark);
- metrics (``eval.metrics``): :func:`retrieval_metrics`, :func:`text_to_image_metrics`,
  :func:`image_to_text_metrics`, :func:`recall_curves`, :func:`rsum`;
- experiments: :func:`load_experiment` (YAML + ``key=value`` overrides -> :class:`ExperimentConfig`),
  :func:`run_experiment` (-> the results directory), :func:`direction_data` (a stage-1 result -> per-direction
  :class:`DirectionData` with relevance);
- analysis (``eval.analysis``): :class:`AnalysisConfig`, :func:`analyse` (significance, ceilings, win/loss, depth
  recommendation from per-query values), :func:`query_values`, :func:`read_per_query` (a run's ``per_query.npz``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "AnalysisConfig": "eval.analysis",
    "analyse": "eval.analysis",
    "query_values": "eval.analysis",
    "read_per_query": "eval.analysis",
    "Benchmark": "eval.data.benchmark",
    "CaptionItem": "eval.data.benchmark",
    "ImageItem": "eval.data.benchmark",
    "DatasetConfig": "eval.data.dataset_config",
    "SyntheticConfig": "eval.data.dataset_config",
    "load_benchmark": "eval.data.loaders",
    "ExperimentConfig": "eval.experiment_config",
    "load_experiment": "eval.experiment_config",
    "image_to_text_metrics": "eval.metrics",
    "recall_curves": "eval.metrics",
    "retrieval_metrics": "eval.metrics",
    "rsum": "eval.metrics",
    "text_to_image_metrics": "eval.metrics",
    "DirectionData": "eval.runner.cells",
    "direction_data": "eval.runner.experiment",
    "run_experiment": "eval.runner.experiment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'eval' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
