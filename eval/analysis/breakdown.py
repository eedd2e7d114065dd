"""Where a reranker's quality comes from: win/loss counts against stage 1, the ceiling a reranker can reach at
each depth, and the depth worth paying for.

- Win/loss: per query, the rank of the first relevant item in the cell against stage 1's (same stage-1 setting):
  ``improved`` (rank went down), ``worsened`` (up), ``unchanged``; ``fixed`` / ``broken`` are the queries whose
  first relevant item moved into / out of rank 1.
- Ceiling: reranking the first k candidates cannot bring in an item stage 1 did not list there, so the best any
  reranker can reach at depth k is R@1 = stage 1's R@k. ``share`` = the cell's R@1 / that ceiling, in percent.
- Recommendation: per rule (and stage-1 setting), the smallest depth whose rsum is within ``within`` points of the
  rule's best rsum over the depths, with its latency.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def win_loss(cell_rank: np.ndarray, stage1_rank: np.ndarray) -> dict[str, int]:
    """Counts of queries improved / worsened / unchanged / fixed / broken (see the module docstring)."""
    cell_rank, stage1_rank = np.asarray(cell_rank), np.asarray(stage1_rank)
    if cell_rank.shape != stage1_rank.shape:
        raise ValueError(f"rank arrays differ in shape: {cell_rank.shape} vs {stage1_rank.shape}")
    return {"improved": int(np.sum(cell_rank < stage1_rank)), "worsened": int(np.sum(cell_rank > stage1_rank)),
            "unchanged": int(np.sum(cell_rank == stage1_rank)),
            "fixed": int(np.sum((cell_rank == 1) & (stage1_rank > 1))),
            "broken": int(np.sum((cell_rank > 1) & (stage1_rank == 1)))}


def ceiling(stage1_curve: Sequence[float], depth: int) -> float:
    """Stage 1's R@depth (percent) from its recall curve ``[R@1, ..., R@N]``; depths past N give R@N."""
    if depth < 1 or not stage1_curve:
        raise ValueError(f"a ceiling needs depth >= 1 and a non-empty curve (depth {depth})")
    return float(stage1_curve[min(depth, len(stage1_curve)) - 1])


def ceiling_share(r_at_1: float, ceiling_value: float) -> float | None:
    """The cell's R@1 as a percentage of its ceiling (None when the ceiling is 0)."""
    return 100.0 * r_at_1 / ceiling_value if ceiling_value > 0 else None


def recommend_depth(rsum_by_depth: Mapping[int, float], within: float) -> dict[str, Any]:
    """``{"depth", "rsum", "best_depth", "best_rsum", "within"}``: the smallest depth whose rsum is at least
    ``best - within``; ``best_depth`` is the smallest depth reaching the best rsum."""
    if not rsum_by_depth:
        raise ValueError("no depths to recommend from")
    if within < 0:
        raise ValueError(f"within must be >= 0, got {within}")
    best = max(rsum_by_depth.values())
    best_depth = min(k for k, v in rsum_by_depth.items() if v == best)
    depth = min(k for k, v in rsum_by_depth.items() if v >= best - within)
    return {"depth": depth, "rsum": rsum_by_depth[depth], "best_depth": best_depth, "best_rsum": best,
            "within": within}
