"""Fusion of stage-1 and stage-2 scores (pure functions, one per ablation setting) and reranking depth.

:data:`FUSION_RULES` maps each rule name of ``fusion_rules`` (where the names and what each ranks by are written)
to its function; each scores the first k candidates of every query, higher = better:

- ``itm``: the ITM match logit (ALBEF, X-VLM rerank with ITM alone).
- ``itm+itc``: match logit + stage 2's own ITC score (the Q-Former ITC of the reranker's checkpoint, computed
  for each candidate pair): LAVIS BLIP/BLIP-2's ``itm_logit + itc_sim`` whatever stage 1 is.
- ``itm+stage1``: match logit + the stage-1 score. With stage 1 = ``blip2_itc`` on the reranker's checkpoint this
  is LAVIS's ``compute_sim_matrix`` exactly (``score_matrix[i, topk] = itm_logit + topk_sim``: the ITC
  similarity stage 1 ranked by); ``itm+itc`` then differs from it only by float rounding.
- ``alpha``: ``alpha * itm_prob + (1 - alpha) * s1``, ``itm_prob = softmax(itm_logits)[1]`` in [0, 1] and
  ``s1`` the stage-1 score min-max scaled per query over its first k candidates to [0, 1] (a constant row
  gives 0.5); so both terms share the [0, 1] range whatever the stage-1 similarity's scale.
- ``rrf``: ``1 / (rrf_k + r1) + 1 / (rrf_k + r_itm)``, ``r1`` = stage-1 rank (1-based position in the
  candidate list, which stage 1 returns best first), ``r_itm`` = rank by match logit among the k.
- ``residual``: ``stage1_scale * s1 + (itm_logit[match] - itm_logit[no-match])``, raw stage-1 score ``s1``:
  the product of the stage-1 softmax and the ITM odds, the score the residual listwise loss
  (``training.listwise``) trains the head for.

Depth (DESIGN.md): :func:`rerank_at_depth` reorders the first k candidates by the fused score (ties keep
stage-1 order; NaN scores, e.g. skipped images, go last among the k) and leaves the rest in stage-1 order
below them; ``k = 0`` returns stage 1 unchanged. Scores computed once at the largest depth serve every k.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion_rules import FUSION_RULE_NAMES, FusionRuleName
from stage2_rerank.types import CandidateScores


def minmax_per_query(scores: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] by the min and max of its finite entries; a row whose finite entries are all equal
    gives 0.5 there. Non-finite entries (NaN, the ``-inf`` stage-1 score of a padding slot when a query has fewer
    candidates than k) give NaN and do not move the others' scale."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    masked = np.where(finite, scores, np.inf)
    low = masked.min(axis=1, keepdims=True)
    high = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.where(np.isfinite(low) & (high > low), high - low, 0.0)
    low = np.where(np.isfinite(low), low, 0.0)
    scaled = np.where(span > 0, (np.where(finite, scores, low) - low) / np.where(span > 0, span, 1.0), 0.5)
    return np.where(finite, scaled, np.nan)


def descending_ranks(values: np.ndarray) -> np.ndarray:
    """1-based rank of each entry in its row by descending value; ties by column order; NaN ranked last."""
    order = fused_order(values)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, order.shape[1] + 1)[None, :], axis=1)
    return ranks


def fuse_itm(stage2: CandidateScores, stage1: np.ndarray, fusion: FusionConfig) -> np.ndarray:
    return stage2.itm.astype(np.float64)


def fuse_itm_itc(stage2: CandidateScores, stage1: np.ndarray, fusion: FusionConfig) -> np.ndarray:
    return stage2.itm.astype(np.float64) + stage2.itc


def fuse_itm_stage1(stage2: CandidateScores, stage1: np.ndarray, fusion: FusionConfig) -> np.ndarray:
    return stage2.itm.astype(np.float64) + stage1


def fuse_alpha(stage2: CandidateScores, stage1: np.ndarray, fusion: FusionConfig) -> np.ndarray:
    return fusion.alpha * stage2.itm_prob + (1.0 - fusion.alpha) * minmax_per_query(stage1)


def fuse_rrf(stage2: CandidateScores, stage1: np.ndarray, fusion: FusionConfig) -> np.ndarray:
    stage1_rank = np.arange(1, stage1.shape[1] + 1)[None, :]
    fused = 1.0 / (fusion.rrf_k + stage1_rank) + 1.0 / (fusion.rrf_k + descending_ranks(stage2.itm))
    return np.where(np.isnan(stage2.itm), np.nan, fused)


def fuse_residual(stage2: CandidateScores, stage1: np.ndarray, fusion: FusionConfig) -> np.ndarray:
    gap = stage2.itm_logits[..., 1].astype(np.float64) - stage2.itm_logits[..., 0]
    return fusion.stage1_scale * stage1 + gap


FUSION_RULES: dict[FusionRuleName, Callable[[CandidateScores, np.ndarray, FusionConfig], np.ndarray]] = dict(
    zip(FUSION_RULE_NAMES, (fuse_itm, fuse_itm_itc, fuse_itm_stage1, fuse_alpha, fuse_rrf, fuse_residual),
        strict=True))
"""Rule name -> its function, in the order of ``fusion_rules.FUSION_RULE_NAMES``."""


def fused_scores(stage2: CandidateScores, stage1_scores: np.ndarray, fusion: FusionConfig) -> np.ndarray:
    """float64 ``[Q, k]`` fused score of rule ``fusion.rule`` (k = number of columns of ``stage2``)."""
    if fusion.rule not in FUSION_RULES:
        raise ValueError(f"unknown fusion rule {fusion.rule!r}; known: {', '.join(sorted(FUSION_RULES))}")
    stage1_scores = np.asarray(stage1_scores, dtype=np.float64)
    if stage1_scores.shape != stage2.itc.shape:
        raise ValueError(f"stage-1 scores {stage1_scores.shape} and stage-2 scores {stage2.itc.shape} differ")
    return FUSION_RULES[fusion.rule](stage2, stage1_scores, fusion)


def fused_order(fused: np.ndarray) -> np.ndarray:
    """int64 ``[Q, k]`` permutation sorting each row by descending score; ties stable, NaN last."""
    fused = np.asarray(fused, dtype=np.float64)
    nan = np.isnan(fused)
    key = np.where(nan, 0.0, -fused)
    order = np.lexsort((np.broadcast_to(np.arange(fused.shape[1]), fused.shape), key, nan), axis=1)
    return order.astype(np.int64)


def rerank_at_depth(candidate_ids: np.ndarray, stage1_scores: np.ndarray, stage2: CandidateScores, depth: int,
                    fusion: FusionConfig) -> np.ndarray:
    """Final ranking ``[Q, N]``: the first ``min(depth, N)`` candidates reordered by the fused score, the rest
    in stage-1 order below them. ``stage2`` must cover at least that many candidates per query."""
    candidate_ids = np.asarray(candidate_ids)
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    k = min(depth, candidate_ids.shape[1])
    out = candidate_ids.copy()
    if k == 0 or len(candidate_ids) == 0:
        return out
    fused = fused_scores(stage2.first(k), np.asarray(stage1_scores)[:, :k], fusion)
    out[:, :k] = np.take_along_axis(candidate_ids[:, :k], fused_order(fused), axis=1)
    return out
