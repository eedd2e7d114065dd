"""Top-N candidates per query, in both directions.

- text-to-image (``t2i``): caption embeddings query the image gallery;
- image-to-text (``i2t``): image embeddings query the caption gallery.
Depth N larger than a gallery is clamped to the gallery size (``clamped`` records it). The result is the
pipeline's one candidate-list type, :class:`rrbench_base.candidates.Candidates`.

Multi-vector items (``[N, V, D]``, e.g. ``blip2_itc`` images) are scored by the max over vector pairs and searched
through ``stage1_dual.multivector_search`` (``index.type`` torch: exact; a FAISS type: over all vectors).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

import numpy as np

from rrbench_base.candidates import Candidates, Direction
from stage1_dual.config import IndexConfig
from stage1_dual.index import SearchIndex, as_vectors, build_index
from stage1_dual.multivector_search import as_multivectors, build_multivector_index

log = logging.getLogger(__name__)


def search_candidates(queries: Any, gallery: Any, index_cfg: IndexConfig, depth: int, *, direction: Direction,
                      query_positions: Optional[np.ndarray] = None, gallery_positions: Optional[np.ndarray] = None,
                      index: Optional[SearchIndex] = None) -> Candidates:
    """Top-``depth`` gallery rows per query row (see :class:`Candidates`).

    ``queries`` float ``[Q, D]`` and ``gallery`` float ``[G, D]`` (rows L2-normalised; numpy or
    torch); either may be multi-vector, ``[Q, V, D]`` / ``[G, V, D]`` (see the module docstring).
    ``query_positions`` / ``gallery_positions`` map rows to input positions (default: the
    row numbers). ``index``: an index already built over ``gallery`` (otherwise built here).
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    multivector = np.ndim(queries) == 3 or np.ndim(gallery) == 3
    as_items = as_multivectors if multivector else as_vectors
    query_vectors = as_items(queries, f"{direction} queries")
    gallery_vectors = as_items(gallery, f"{direction} gallery")
    if len(gallery_vectors) == 0:
        raise ValueError(f"{direction}: the gallery is empty (every item skipped?)")
    if query_vectors.shape[-1] != gallery_vectors.shape[-1]:
        raise ValueError(f"{direction}: query dim {query_vectors.shape[-1]} != gallery dim {gallery_vectors.shape[-1]}")
    effective = min(depth, len(gallery_vectors))
    if effective < depth:
        log.info("%s: depth %d clamped to the gallery size %d", direction, depth, effective)
    build_seconds = 0.0
    if index is None:
        started = time.perf_counter()
        index = (build_multivector_index if multivector else build_index)(gallery_vectors, index_cfg)
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

    ``image_embeddings`` ``[I, D]`` or multi-vector ``[I, V, D]`` (the images that have embeddings;
    ``image_positions`` their input positions, default ``0..I-1``), ``text_embeddings`` ``[T, D]`` (all captions).
    """
    text_to_image = search_candidates(text_embeddings, image_embeddings, index_cfg, depth, direction="t2i",
                                      gallery_positions=image_positions)
    image_to_text = search_candidates(image_embeddings, text_embeddings, index_cfg, depth, direction="i2t",
                                      query_positions=image_positions)
    return {"t2i": text_to_image, "i2t": image_to_text}
