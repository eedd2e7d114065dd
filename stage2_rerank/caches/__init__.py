"""Stage-2 caches: vision features per image (:class:`VisionFeatureCache`, memory + safetensors spill) and pair
scores per (model, image, caption) (:class:`ScoreCache`, SQLite); a damaged entry is moved aside
(``rrbench_base.cache_files.move_aside``) and recomputed, never trusted."""

from __future__ import annotations

from stage2_rerank.caches.pair_scores import SCORE_CODE_VERSION, ScoreCache
from stage2_rerank.caches.vision_features import VisionFeatureCache

__all__ = ["SCORE_CODE_VERSION", "ScoreCache", "VisionFeatureCache"]
