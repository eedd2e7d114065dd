"""Rankings of both competition tasks: stage-1 candidates, optional stage-2 rerank, metrics.

Task 1 (text to image): each text query of ``word_test.csv`` against the images of ``image_data.csv``.
Task 2 (image to text): each image query of ``image_test.csv`` against the texts of ``word_data.csv``.
Each task has its own gallery, so each gets its own encode (cached) and index.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from eval.competition.task_files import CompetitionTasks
from eval.metrics import hits_multi_relevant, ranking_metrics
from rrbench_base.candidates import Candidates
from stage1_dual.config import Stage1Config
from stage1_dual.pipeline import encode_with_cache
from stage1_dual.protocols import DualEncoder
from stage1_dual.retrieve import search_candidates
from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion import rerank_at_depth
from stage2_rerank.rerank import Reranker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskRanking:
    """The ranking of one task (immutable).

    Attributes:
        name: ``task1`` (text to image) or ``task2`` (image to text).
        candidates: stage 1's lists (``rrbench_base.candidates.Candidates``: direction, ids int64 ``[Q, N]``, stage-1
            scores float32 ``[Q, N]``, query_positions int64 ``[Q]`` of the answered queries in the task's query list;
            skipped query images are absent).
        reranked_ids: int64 ``[Q, N]`` the final order after stage 2 (None: stage 1's order).
        skipped: gallery or query images that could not be encoded (``{"id", "reason", "role"}``).
        info: counts and timings for the report.
    """

    name: str
    candidates: Candidates
    reranked_ids: Optional[np.ndarray] = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return self.candidates.direction

    @property
    def query_positions(self) -> np.ndarray:
        return self.candidates.query_positions

    @property
    def ids(self) -> np.ndarray:
        """The final ranking: ``reranked_ids`` when stage 2 ran, else stage 1's ids."""
        return self.candidates.ids if self.reranked_ids is None else self.reranked_ids


def text_to_image(encoder: DualEncoder, cfg: Stage1Config, tasks: CompetitionTasks) -> TaskRanking:
    """Task 1 stage-1 candidates: word_test texts query the image_data gallery."""
    start = time.perf_counter()
    images, texts = encode_with_cache(encoder, cfg, tasks.image_gallery, tasks.text_queries.texts)
    candidates = search_candidates(texts.embeddings, images.embeddings, cfg.index, cfg.depth, direction="t2i",
                                   gallery_positions=images.positions)
    skipped = [{"id": s.id, "reason": s.reason, "role": "gallery image"} for s in images.skipped]
    return TaskRanking("task1", candidates, None, skipped,
                       {"stage1_seconds": round(time.perf_counter() - start, 2), **candidates.summary()})


def image_to_text(encoder: DualEncoder, cfg: Stage1Config, tasks: CompetitionTasks) -> TaskRanking:
    """Task 2 stage-1 candidates: image_test images query the word_data gallery."""
    start = time.perf_counter()
    images, texts = encode_with_cache(encoder, cfg, tasks.image_queries, tasks.text_gallery.texts)
    candidates = search_candidates(images.embeddings, texts.embeddings, cfg.index, cfg.depth, direction="i2t",
                                   query_positions=images.positions)
    skipped = [{"id": s.id, "reason": s.reason, "role": "query image"} for s in images.skipped]
    return TaskRanking("task2", candidates, None, skipped,
                       {"stage1_seconds": round(time.perf_counter() - start, 2), **candidates.summary()})


def rerank_task(ranking: TaskRanking, reranker: Reranker, tasks: CompetitionTasks, depth: int,
                fusion: FusionConfig) -> TaskRanking:
    """``ranking`` with its first ``depth`` candidates reordered by the fused stage-2 score."""
    start = time.perf_counter()
    t2i = ranking.direction == "t2i"
    images, texts = (tasks.image_gallery, tasks.text_queries.texts) if t2i else \
        (tasks.image_queries, tasks.text_gallery.texts)
    stage1 = ranking.candidates
    scored = reranker.score_candidates(images, texts, stage1 if t2i else None, None if t2i else stage1, depth)
    stats = scored.stats
    ranked = rerank_at_depth(stage1.ids, stage1.scores, scored.t2i if t2i else scored.i2t, depth, fusion)
    info = {**ranking.info, "rerank_depth": depth, "fusion": fusion.rule, "pairs_scored": stats.scored,
            "pairs_from_cache": stats.cache_hits, "stage2_seconds": round(time.perf_counter() - start, 2)}
    skipped = ranking.skipped + [{"id": i, "reason": r, "role": "stage-2 image"} for i, r in stats.skipped]
    return TaskRanking(ranking.name, stage1, ranked, skipped, info)


def result_ids(ranking: TaskRanking, gallery_ids: list[str], top_k: int) -> list[list[str]]:
    """Gallery ids of the first ``top_k`` candidates of every answered query (padding dropped)."""
    return [[gallery_ids[p] for p in row[:top_k] if p >= 0] for row in ranking.ids.tolist()]


def _relevant_positions(relevant_ids: list[list[str]], gallery: dict[str, int]) -> tuple[list[np.ndarray], int]:
    """Gallery positions of each query's relevant ids; an id the gallery lacks gets a position past its end
    (never retrieved, so a miss). Returns the arrays and how many relevant ids were absent."""
    absent: dict[str, int] = {}
    out = []
    for ids in relevant_ids:
        positions = []
        for item in ids:
            if item not in gallery:
                absent.setdefault(item, len(gallery) + len(absent))
            positions.append(gallery.get(item, absent.get(item, -1)))
        out.append(np.array(sorted(positions), np.int64))
    return out, len(absent)


def task_metrics(ranking: TaskRanking, tasks: CompetitionTasks) -> Optional[dict[str, Any]]:
    """R@1/5/10, MRR, ... of one task against the answer key (None without one).

    Scored queries: the answered queries (query images that could not be read or decoded have no result
    rows and are not scored) that the answer key lists. A relevant item that is not in the task's gallery
    (skipped as missing, or never listed) and a gallery image that could not be encoded count as misses,
    so skipping never inflates the scores. ``queries_without_answer``: answered queries the key lacks.
    """
    if tasks.ground_truth is None:
        return None
    truth = tasks.ground_truth
    if ranking.direction == "t2i":
        gallery = {item.id: p for p, item in enumerate(tasks.image_gallery)}
        query_ids = [tasks.text_queries.ids[p] for p in ranking.query_positions]
        relevant_ids = [sorted(truth.get(q, ())) for q in query_ids]
    else:
        image_texts: dict[str, list[str]] = {}
        for text_id, image_ids in truth.items():
            for image_id in image_ids:
                image_texts.setdefault(image_id, []).append(text_id)
        gallery = {t: p for p, t in enumerate(tasks.text_gallery.ids)}
        query_ids = [tasks.image_queries[p].id for p in ranking.query_positions]
        relevant_ids = [sorted(image_texts.get(q, ())) for q in query_ids]
    keep = np.array([len(r) > 0 for r in relevant_ids], dtype=bool)
    relevant, absent = _relevant_positions([r for r, k in zip(relevant_ids, keep) if k], gallery)
    out: dict[str, Any] = {"queries_scored": int(keep.sum()), "queries_without_answer": int((~keep).sum()),
                           "relevant_not_in_gallery": absent}
    if keep.any():
        hits, num_relevant = hits_multi_relevant(ranking.ids[keep], relevant)
        out.update(ranking_metrics(hits, num_relevant, true_recall=ranking.direction == "i2t",
                                   prefix=f"{ranking.direction}/"))
    return out
