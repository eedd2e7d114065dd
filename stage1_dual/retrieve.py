"""Top-N candidates per query, in both directions.

- text-to-image (``t2i``): caption embeddings query the image gallery;
- image-to-text (``i2t``): image embeddings query the caption gallery.
Depth N larger than a gallery is clamped to the gallery size (``clamped`` records it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import numpy as np

from stage1_dual.config import IndexConfig
from stage1_dual.index import SearchIndex, as_vectors, build_index

log = logging.getLogger(__name__)

Direction = Literal["t2i", "i2t"]


@dataclass
class Candidates:
    """Stage-1 candidates of one direction.

    Attributes:
        direction: ``t2i`` (queries = captions, gallery = images) or ``i2t`` (queries = images,
            gallery = captions).
        ids: int64 ``[Q, N]``: gallery positions in the caller's input list (for images: input
            positions, skipped images never appear); -1 where an approximate index found fewer than N.
        scores: float32 ``[Q, N]``: inner product of L2-normalised embeddings (cosine), non-increasing
            along each row; ``-inf`` where ``ids`` is -1.
        query_positions: int64 ``[Q]``: input position of each query row.
        depth_requested: N asked for.
        depth: N delivered = min(depth_requested, gallery size).
        clamped: True when depth < depth_requested.
        missing: number of -1 entries in ``ids``.
        index: the index's info (type, effective parameters, device).
        build_seconds: time to build the index (0 when a built index was passed in).
        search_seconds: time to search all queries.
    """

    direction: Direction
    ids: np.ndarray
    scores: np.ndarray
    query_positions: np.ndarray
    depth_requested: int
    depth: int
    clamped: bool
    missing: int = 0
    index: dict[str, Any] = field(default_factory=dict)
    build_seconds: float = 0.0
    search_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no arrays)."""
        return {"direction": self.direction, "queries": int(self.ids.shape[0]), "depth_requested": self.depth_requested,
                "depth": self.depth, "clamped": self.clamped, "missing": self.missing, "index": self.index,
                "build_seconds": self.build_seconds, "search_seconds": self.search_seconds}


def search_candidates(queries: Any, gallery: Any, index_cfg: IndexConfig, depth: int, *, direction: Direction,
                      query_positions: Optional[np.ndarray] = None, gallery_positions: Optional[np.ndarray] = None,
                      index: Optional[SearchIndex] = None) -> Candidates:
    """Top-``depth`` gallery rows per query row (see :class:`Candidates`).

    ``queries`` float ``[Q, D]`` and ``gallery`` float ``[G, D]`` (rows L2-normalised; numpy or
    torch). ``query_positions`` / ``gallery_positions`` map rows to input positions (default: the
    row numbers). ``index``: an index already built over ``gallery`` (otherwise built here).
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    query_vectors = as_vectors(queries, f"{direction} queries")
    gallery_vectors = as_vectors(gallery, f"{direction} gallery")
    if len(gallery_vectors) == 0:
        raise ValueError(f"{direction}: the gallery is empty (every item skipped?)")
    if query_vectors.shape[1] != gallery_vectors.shape[1]:
        raise ValueError(f"{direction}: query dim {query_vectors.shape[1]} != gallery dim {gallery_vectors.shape[1]}")
    effective = min(depth, len(gallery_vectors))
    if effective < depth:
        log.info("%s: depth %d clamped to the gallery size %d", direction, depth, effective)
    build_seconds = 0.0
    if index is None:
        started = time.perf_counter()
        index = build_index(gallery_vectors, index_cfg)
        build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if len(query_vectors):
        scores, ids = index.search(query_vectors, effective)
    else:
        scores, ids = np.zeros((0, effective), np.float32), np.zeros((0, effective), np.int64)
    search_seconds = time.perf_counter() - started
    absent = ids < 0
    if gallery_positions is not None:
        ids = np.where(absent, -1, np.asarray(gallery_positions, np.int64)[np.where(absent, 0, ids)])
    scores = np.where(absent, -np.inf, scores).astype(np.float32)
    positions = np.arange(len(query_vectors), dtype=np.int64) if query_positions is None \
        else np.asarray(query_positions, np.int64)
    return Candidates(direction=direction, ids=ids.astype(np.int64), scores=scores, query_positions=positions,
                      depth_requested=depth, depth=effective, clamped=effective < depth, missing=int(absent.sum()),
                      index=dict(index.info), build_seconds=build_seconds, search_seconds=search_seconds)


def retrieve_both_directions(image_embeddings: Any, text_embeddings: Any, index_cfg: IndexConfig, depth: int = 100,
                             *, image_positions: Optional[np.ndarray] = None) -> dict[str, Candidates]:
    """``{"t2i": ..., "i2t": ...}`` candidates at ``depth`` with one index per gallery.

    ``image_embeddings`` ``[I, D]`` (the images that have embeddings; ``image_positions`` their
    input positions, default ``0..I-1``), ``text_embeddings`` ``[T, D]`` (all captions).
    """
    text_to_image = search_candidates(text_embeddings, image_embeddings, index_cfg, depth, direction="t2i",
                                      gallery_positions=image_positions)
    image_to_text = search_candidates(image_embeddings, text_embeddings, index_cfg, depth, direction="i2t",
                                      query_positions=image_positions)
    return {"t2i": text_to_image, "i2t": image_to_text}
