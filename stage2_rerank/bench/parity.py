"""Parity checks: this reranker vs the stock transformers forward, and reduced precision vs fp32.

- :func:`stock_itm_logits` / :func:`stock_itc_matrix`: ``Blip2ForImageTextRetrieval.forward`` with
  ``use_image_text_matching_head=True`` (``[B, 2]`` logits of image b with text b) / ``False`` (``[B, B]``
  ITC of image i with text j), the reference every parity test compares with.
- :func:`parity_report`: max / mean absolute score error over pairs, and rank agreement over the queries'
  candidate lists: Kendall tau-b (mean and min over queries) and top-1 agreement (fraction of queries whose
  best candidate is the same).
- :func:`rule_parity`: a parity report for each fusion rule that reads no stage-1 score (``itm``, ``itm+itc``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion import fused_scores
from stage2_rerank.fusion_rules import STAGE2_ONLY_RULES
from stage2_rerank.types import CandidateScores, PairScores


@dataclass(frozen=True)
class ParityReport:
    """Agreement of ``candidate`` scores with ``reference`` scores (same pairs).

    Attributes:
        n_pairs: pairs compared.
        n_queries: queries (candidate lists) the rank agreement is measured over.
        max_abs_error: max |candidate - reference| over pairs.
        mean_abs_error: mean |candidate - reference| over pairs.
        kendall_tau_mean: mean over queries of Kendall tau-b between the two scorings of its candidates.
        kendall_tau_min: the worst query's Kendall tau-b.
        top1_agreement: fraction of queries whose top candidate is the same under both scorings.
    """

    n_pairs: int
    n_queries: int
    max_abs_error: float
    mean_abs_error: float
    kendall_tau_mean: float
    kendall_tau_min: float
    top1_agreement: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau-b of two scorings of the same items (ties handled); NaN when undefined."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    upper = np.triu_indices(len(a), k=1)
    da = np.sign(a[:, None] - a[None, :])[upper]
    db = np.sign(b[:, None] - b[None, :])[upper]
    denom = np.sqrt(np.count_nonzero(da) * np.count_nonzero(db))
    return float(np.sum(da * db) / denom) if denom > 0 else float("nan")


def parity_report(reference: np.ndarray, candidate: np.ndarray,
                  query_rows: Sequence[np.ndarray] | np.ndarray) -> ParityReport:
    """Compare row-aligned scores ``[P]``; ``query_rows``: per query the rows of its candidates (best
    stage-1 first; rows < 0 ignored)."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"score shapes differ: {reference.shape} vs {candidate.shape}")
    error = np.abs(reference - candidate)
    taus, top1 = [], []
    for rows in query_rows:
        rows = np.asarray(rows)
        rows = rows[rows >= 0]
        if len(rows) < 2:
            continue
        tau = kendall_tau_b(reference[rows], candidate[rows])
        if not np.isnan(tau):
            taus.append(tau)
        top1.append(np.argmax(reference[rows]) == np.argmax(candidate[rows]))
    return ParityReport(
        n_pairs=int(reference.size), n_queries=len(top1),
        max_abs_error=float(error.max()) if error.size else 0.0,
        mean_abs_error=float(error.mean()) if error.size else 0.0,
        kendall_tau_mean=float(np.mean(taus)) if taus else float("nan"),
        kendall_tau_min=float(np.min(taus)) if taus else float("nan"),
        top1_agreement=float(np.mean(top1)) if top1 else float("nan"))


def stage2_rule_scores(scores: PairScores, rule: str) -> np.ndarray:
    """float64 ``[P]`` score of each pair under ``rule``, one of ``fusion_rules.STAGE2_ONLY_RULES``."""
    if rule not in STAGE2_ONLY_RULES:
        raise ValueError(f"rule {rule!r} reads stage-1 scores; pairs alone are scored by {', '.join(STAGE2_ONLY_RULES)}")
    as_one_query = CandidateScores(scores.itm_logits[None], scores.itc[None])
    return fused_scores(as_one_query, np.zeros(as_one_query.itc.shape), FusionConfig(rule=rule))[0]


def rule_parity(reference: PairScores, candidate: PairScores,
                query_rows: Sequence[np.ndarray] | np.ndarray) -> dict[str, dict[str, float]]:
    """``{rule: parity_report(...).as_dict()}`` of the scores of each rule in ``fusion_rules.STAGE2_ONLY_RULES``."""
    return {rule: parity_report(stage2_rule_scores(reference, rule), stage2_rule_scores(candidate, rule),
                                query_rows).as_dict() for rule in STAGE2_ONLY_RULES}


def stock_itm_logits(model: torch.nn.Module, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                     attention_mask: torch.Tensor) -> torch.Tensor:
    """Reference ITM logits ``[B, 2]`` of (image b, text b) from the stock forward (vision tower included)."""
    with torch.inference_mode():
        return model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask,
                     use_image_text_matching_head=True).logits_per_image


def stock_itc_matrix(model: torch.nn.Module, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                     attention_mask: torch.Tensor) -> torch.Tensor:
    """Reference ITC ``[B, B]`` (image i, text j) from the stock forward (vision tower included)."""
    with torch.inference_mode():
        return model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask,
                     use_image_text_matching_head=False).logits_per_image
