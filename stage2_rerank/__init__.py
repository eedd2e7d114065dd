"""Stage 2 of rrbench: cross-encoder rerankers (BLIP-2 Q-Former ITM), their caches, and score fusion.

Public API (inference only; training lives in ``stage2_rerank.training``, benchmarks in ``stage2_rerank.bench``):
- :class:`RerankerConfig` / :class:`FusionConfig` / :class:`FusionParameters` (``stage2:`` YAML key, fusion settings);
- :func:`load_reranker` (backends in ``BACKENDS``, vision providers in ``VISION_PROVIDERS``) -> :class:`Reranker`,
  whose ``score_pairs`` returns :class:`PairScores` (with :class:`RerankStats`) and ``score_candidates`` scores
  candidate lists (``rrbench_base.candidates.Candidates``, also exported here) -> :class:`RerankedCandidates`;
  images may be dataset items, PIL images or file paths (:func:`as_image_refs`);
- :func:`collect_candidate_pairs` / :func:`gather_candidate_scores`: candidate lists of both directions ->
  distinct pairs (:class:`CandidatePairs`) -> per-query :class:`CandidateScores`;
- fusion: the rules' names ``FUSION_RULE_NAMES`` and ``FUSION_RULE_DESCRIPTIONS`` (``fusion_rules``), their
  functions ``FUSION_RULES``, :func:`fused_scores`, :func:`fused_order`, :func:`rerank_at_depth`;
- protocols and errors: :class:`ImageRef`, :class:`VisionFeatureProvider`, :class:`RerankerLoadError`,
  :class:`RerankInputError`, :class:`BadImageError` (an image that is not supported or cannot be read).

Names are resolved on first use (PEP 562), so ``import stage2_rerank.config`` stays light and does not
import transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "BACKENDS": "stage2_rerank.backends",
    "RerankerModel": "stage2_rerank.backends",
    "load_backend": "stage2_rerank.backends",
    "collect_candidate_pairs": "stage2_rerank.candidate_pairs",
    "gather_candidate_scores": "stage2_rerank.candidate_pairs",
    "score_candidate_lists": "stage2_rerank.candidate_pairs",
    "ConfigFieldError": "rrbench_base.config_errors",
    "FusionConfig": "stage2_rerank.config",
    "FusionParameters": "stage2_rerank.config",
    "RerankerConfig": "stage2_rerank.config",
    "check_loadable": "stage2_rerank.config",
    "FUSION_RULES": "stage2_rerank.fusion",
    "fused_order": "stage2_rerank.fusion",
    "fused_scores": "stage2_rerank.fusion",
    "rerank_at_depth": "stage2_rerank.fusion",
    "BadImageError": "rrbench_base.image_refs",
    "FUSION_RULE_DESCRIPTIONS": "stage2_rerank.fusion_rules",
    "FUSION_RULE_NAMES": "stage2_rerank.fusion_rules",
    "ImageRef": "rrbench_base.image_refs",
    "as_image_ref": "rrbench_base.image_refs",
    "as_image_refs": "rrbench_base.image_refs",
    "RerankInputError": "stage2_rerank.protocols",
    "RerankerLoadError": "stage2_rerank.protocols",
    "VisionFeatureProvider": "stage2_rerank.protocols",
    "Reranker": "stage2_rerank.rerank",
    "load_reranker": "stage2_rerank.rerank",
    "Candidates": "rrbench_base.candidates",
    "CandidatePairs": "stage2_rerank.types",
    "CandidateScores": "stage2_rerank.types",
    "OomEvent": "stage2_rerank.types",
    "PairScores": "stage2_rerank.types",
    "RerankStats": "stage2_rerank.types",
    "RerankedCandidates": "stage2_rerank.types",
    "VISION_PROVIDERS": "stage2_rerank.vision",
    "ProviderSource": "stage2_rerank.vision",
    "make_vision_provider": "stage2_rerank.vision",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stage2_rerank' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
