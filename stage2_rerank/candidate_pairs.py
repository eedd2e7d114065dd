"""Stage-1 candidate lists of both directions -> the distinct pairs to score, and back.

:func:`collect_candidate_pairs` takes the first ``depth`` candidates of every text-to-image query (a caption
with image candidates) and every image-to-text query (an image with caption candidates) and returns each
distinct (image, caption) pair once (a pair in both directions' lists is scored once), with per-direction
index arrays that map every candidate slot to its row in ``pairs``. :func:`gather_candidate_scores` turns
row-aligned pair scores into per-query ``[Q, depth]`` :class:`~stage2_rerank.fusion.CandidateScores`.
Negative candidate ids (FAISS's "no result") map to row -1 and get NaN scores. :func:`score_candidate_lists`
is the whole collect -> score -> gather sequence over :class:`~rrbench_base.candidates.Candidates` objects, with
the scoring function passed in (``Reranker.score_candidates`` and in-memory training validation use it).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from rrbench_base.candidates import Candidates
from stage2_rerank.types import CandidatePairs, CandidateScores, RerankedCandidates, RerankStats

PairScorer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, Optional[RerankStats]]]
"""Pairs int64 ``[P, 2]`` -> (itm_logits ``[P, 2]``, itc ``[P]``, stats or None)."""


def _as_candidates(ids: np.ndarray | None, depth: int, name: str) -> np.ndarray:
    if ids is None:
        return np.zeros((0, depth), dtype=np.int64)
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array [Q, N], got {ids.dtype} {ids.shape}")
    return ids[:, :depth].astype(np.int64)


def collect_candidate_pairs(t2i_candidates: np.ndarray | None, i2t_candidates: np.ndarray | None, depth: int,
                            t2i_query_captions: np.ndarray | None = None,
                            i2t_query_images: np.ndarray | None = None) -> CandidatePairs:
    """Distinct pairs among the first ``depth`` candidates of both directions.

    ``t2i_candidates``: int ``[Qt, N]`` image indices per caption query; ``t2i_query_captions``: int ``[Qt]``
    caption index of each query (default ``arange(Qt)``). ``i2t_candidates``: int ``[Qi, N]`` caption indices
    per image query; ``i2t_query_images``: int ``[Qi]`` (default ``arange(Qi)``). Either direction may be None.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    t2i = _as_candidates(t2i_candidates, depth, "t2i_candidates")
    i2t = _as_candidates(i2t_candidates, depth, "i2t_candidates")
    t2i_queries = np.arange(len(t2i)) if t2i_query_captions is None else np.asarray(t2i_query_captions, np.int64)
    i2t_queries = np.arange(len(i2t)) if i2t_query_images is None else np.asarray(i2t_query_images, np.int64)
    if len(t2i_queries) != len(t2i) or len(i2t_queries) != len(i2t):
        raise ValueError("query index arrays must have one entry per candidate row")
    t2i_pairs = np.stack([t2i, np.broadcast_to(t2i_queries[:, None], t2i.shape)], axis=-1).reshape(-1, 2)
    i2t_pairs = np.stack([np.broadcast_to(i2t_queries[:, None], i2t.shape), i2t], axis=-1).reshape(-1, 2)
    both = np.concatenate([t2i_pairs, i2t_pairs]).astype(np.int64)
    valid = (both >= 0).all(axis=1)
    pairs, inverse = np.unique(both[valid], axis=0, return_inverse=True)
    rows = np.full(len(both), -1, dtype=np.int64)
    rows[valid] = inverse.reshape(-1)
    return CandidatePairs(pairs=pairs.reshape(-1, 2), t2i_rows=rows[:t2i.size].reshape(t2i.shape),
                          i2t_rows=rows[t2i.size:].reshape(i2t.shape))


def gather_candidate_scores(itm_logits: np.ndarray, itc: np.ndarray, rows: np.ndarray) -> CandidateScores:
    """Per-query candidate scores from row-aligned pair scores (``PairScores.itm_logits`` / ``.itc``);
    rows of -1 give NaN."""
    rows = np.asarray(rows, dtype=np.int64)
    missing = rows < 0
    safe = np.where(missing, 0, rows)
    logits = np.asarray(itm_logits, dtype=np.float32)[safe] if len(itm_logits) else \
        np.zeros((*rows.shape, 2), np.float32)
    sims = np.asarray(itc, dtype=np.float32)[safe] if len(itc) else np.zeros(rows.shape, np.float32)
    logits = np.where(missing[..., None], np.nan, logits)
    sims = np.where(missing, np.nan, sims)
    return CandidateScores(itm_logits=logits.astype(np.float32), itc=sims.astype(np.float32))


def _ids_and_queries(candidates: Candidates | np.ndarray | None, direction: str
                     ) -> tuple[np.ndarray | None, np.ndarray | None]:
    if candidates is None:
        return None, None
    if isinstance(candidates, np.ndarray):  # plain ids [Q, N]: query rows are positions 0..Q-1
        return candidates, None
    if not isinstance(candidates, Candidates):
        raise TypeError(f"{direction} candidates must be rrbench_base.candidates.Candidates or an int ids array "
                        f"[Q, N], got {type(candidates).__name__}")
    if candidates.direction != direction:
        raise ValueError(f"a {candidates.direction} candidate list was passed as {direction}")
    return candidates.ids, candidates.query_positions


def score_candidate_lists(score: PairScorer, t2i: Candidates | np.ndarray | None,
                          i2t: Candidates | np.ndarray | None, depth: int) -> RerankedCandidates:
    """Collect the distinct pairs of the first ``depth`` candidates of ``t2i`` and ``i2t``, score each once with
    ``score``, and gather the scores back per direction (see the module doc).

    Each list is a :class:`~rrbench_base.candidates.Candidates`, a plain int ids array ``[Q, N]`` (query rows =
    positions ``0..Q-1``), or None (that direction's scores are None). Raises ValueError when a list's
    ``direction`` is not the slot it was passed in."""
    t2i_ids, t2i_queries = _ids_and_queries(t2i, "t2i")
    i2t_ids, i2t_queries = _ids_and_queries(i2t, "i2t")
    pairs = collect_candidate_pairs(t2i_ids, i2t_ids, depth, t2i_queries, i2t_queries)
    logits, itc, stats = score(pairs.pairs)
    return RerankedCandidates(
        t2i=None if t2i is None else gather_candidate_scores(logits, itc, pairs.t2i_rows),
        i2t=None if i2t is None else gather_candidate_scores(logits, itc, pairs.i2t_rows), pairs=pairs, stats=stats)
