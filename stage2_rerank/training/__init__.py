"""Stage-2 ITM fine-tuning (only training imports this package; inference never does).

- :class:`ItmModelSpec` / :func:`build_itm_model`: a trainable BLIP-2 ITM reranker from a spec (``model_spec``),
  its Q-Former optionally initialised from BERT (``bert_init``);
- :class:`ItmTrainable` / :class:`ItmTrainingData` (``trainable``), losses (``losses``, ``listwise``), hard
  negatives (``hard_negatives``), :class:`ItmTrainer` with :class:`ItmTrainerConfig` (``trainer``, ``config``),
  resumable state (``rrbench_base.training_state``), checkpoints the ``blip2_itm`` backend loads (``checkpoint``);
- :class:`FeatureStore` (precomputed vision features, ``feature_store``) and in-memory validation
  (``validation``).

Names are resolved on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "load_itm_checkpoint": "stage2_rerank.training.checkpoint",
    "save_itm_checkpoint": "stage2_rerank.training.checkpoint",
    "ItmTrainerConfig": "stage2_rerank.training.config",
    "FeatureStore": "stage2_rerank.training.feature_store",
    "cached_features": "stage2_rerank.training.feature_store",
    "load_feature_store": "stage2_rerank.training.feature_store",
    "TopKNegatives": "stage2_rerank.training.hard_negatives",
    "listwise_itm_loss": "stage2_rerank.training.listwise",
    "Stage1Embeddings": "stage2_rerank.training.losses",
    "batch_losses": "stage2_rerank.training.losses",
    "ItmModelSpec": "stage2_rerank.training.model_spec",
    "build_itm_model": "stage2_rerank.training.model_spec",
    "ItmTrainable": "stage2_rerank.training.trainable",
    "ItmTrainingData": "stage2_rerank.training.trainable",
    "score_pairs_in_memory": "stage2_rerank.training.trainable",
    "FitResult": "stage2_rerank.training.trainer",
    "ItmTrainer": "stage2_rerank.training.trainer",
    "candidates_from_similarity": "stage2_rerank.training.validation",
    "rerank_in_memory": "stage2_rerank.training.validation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stage2_rerank.training' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
