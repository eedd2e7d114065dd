"""The candidate-list type of the whole pipeline: ranked gallery candidates of one direction's queries.

Imports nothing heavy (numpy and dataclasses only), so every layer can hold one: stage 1 produces it
(``stage1_dual.retrieve.search_candidates``), stage-2 training validation and benchmarks build it from a
similarity matrix, the experiment runner (``eval.runner.cells.DirectionData``) and competition mode
(``eval.competition.retrieval.TaskRanking``) hold it beside what evaluation adds, and stage 2 scores it
(``stage2_rerank.Reranker.score_candidates``). Immutable: the dataclass is frozen and its arrays are read-only copies;
derive new lists with :meth:`Candidates.select_queries`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

Direction = Literal["t2i", "i2t"]


def _frozen(array: Any, dtype: Any) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Candidates:
    """Ranked candidates of one direction.

    Attributes:
        direction: ``t2i`` (queries = captions, gallery = images) or ``i2t`` (queries = images,
            gallery = captions).
        ids: int64 ``[Q, N]``: gallery positions in the caller's input list (for images: input
            positions, skipped images never appear); -1 where fewer than N were found.
        scores: float32 ``[Q, N]``: stage-1 scores, non-increasing along each row; ``-inf`` where ``ids`` is -1.
        query_positions: int64 ``[Q]``: input position of each query row.
        depth_requested: N asked for (default: N).
        depth: N delivered = min(depth_requested, gallery size) (default: N).
        clamped: True when depth < depth_requested.
        missing: number of -1 entries in ``ids``.
        index: the index's info (type, effective parameters, device).
        build_seconds: time to build the index (0 when a built index was passed in).
        search_seconds: time to search all queries.

    Raises ValueError when the shapes disagree or the direction is unknown.
    """

    direction: Direction
    ids: np.ndarray
    scores: np.ndarray
    query_positions: np.ndarray
    depth_requested: int = -1
    depth: int = -1
    clamped: bool = False
    missing: int = 0
    index: dict[str, Any] = field(default_factory=dict)
    build_seconds: float = 0.0
    search_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.direction not in ("t2i", "i2t"):
            raise ValueError(f"direction must be t2i or i2t, got {self.direction!r}")
        ids, scores = _frozen(self.ids, np.int64), _frozen(self.scores, np.float32)
        positions = _frozen(self.query_positions, np.int64)
        if ids.ndim != 2 or scores.shape != ids.shape or positions.shape != ids.shape[:1]:
            raise ValueError(f"{self.direction}: ids {ids.shape}, scores {scores.shape} and query_positions "
                             f"{positions.shape} must be [Q, N], [Q, N] and [Q]")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "query_positions", positions)
        object.__setattr__(self, "index", dict(self.index))
        if self.depth < 0:
            object.__setattr__(self, "depth", int(ids.shape[1]))
        if self.depth_requested < 0:
            object.__setattr__(self, "depth_requested", self.depth)

    def select_queries(self, keep: np.ndarray) -> "Candidates":
        """A new list with the query rows where boolean ``keep`` ``[Q]`` is true (metadata kept)."""
        keep = np.asarray(keep, dtype=bool)
        return replace(self, ids=self.ids[keep], scores=self.scores[keep], query_positions=self.query_positions[keep],
                       missing=int((self.ids[keep] < 0).sum()))

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no arrays)."""
        return {"direction": self.direction, "queries": int(self.ids.shape[0]), "depth_requested": self.depth_requested,
                "depth": self.depth, "clamped": self.clamped, "missing": self.missing, "index": self.index,
                "build_seconds": self.build_seconds, "search_seconds": self.search_seconds}
