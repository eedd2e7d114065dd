"""One small search interface over several index types, chosen by name from a plain dict."""

from __future__ import annotations

import logging
from typing import Any, Callable, Protocol

import numpy as np

from stage1_dual.compact_index import build_pq, build_sq
from stage1_dual.config import IndexConfig
from stage1_dual.faiss_index import build_flat, build_hnsw, build_ivfpq
from stage1_dual.protocols import UnknownBackendError
from stage1_dual.torch_index import build_torch

log = logging.getLogger(__name__)


class SearchIndex(Protocol):
    """A built index over gallery vectors (ids = gallery row positions).

    ``search(queries float32 [Q, D], k)`` -> ``(scores float32 [Q, k], ids int64 [Q, k])``, scores
    (inner products) non-increasing along each row; id -1 (score very negative) where an
    approximate index found fewer than k results. ``info``: type, effective parameters, device.
    """

    info: dict[str, Any]

    @property
    def ntotal(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


INDEX_BUILDERS: dict[str, Callable[[np.ndarray, IndexConfig], SearchIndex]] = {
    "flat": build_flat,
    "ivfpq": build_ivfpq,
    "hnsw": build_hnsw,
    "torch": build_torch,
    "sq": build_sq,
    "pq": build_pq,
}
"""Index type -> builder ``(gallery float32 [G, D], IndexConfig) -> SearchIndex``."""


def as_vectors(array: Any, what: str) -> np.ndarray:
    """C-contiguous float32 ``[N, D]`` copy/view of ``array`` (numpy or torch); ValueError otherwise."""
    if hasattr(array, "detach"):
        array = array.detach().to("cpu").numpy()
    vectors = np.ascontiguousarray(array, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array [N, D], got shape {vectors.shape}")
    return vectors


def build_index(gallery: Any, cfg: IndexConfig) -> SearchIndex:
    """Build the index named by ``cfg.type`` over ``gallery`` (``[G, D]``, rows L2-normalised)."""
    if cfg.type not in INDEX_BUILDERS:
        raise UnknownBackendError(f"unknown index type {cfg.type!r}; known: {', '.join(sorted(INDEX_BUILDERS))}")
    vectors = as_vectors(gallery, "gallery")
    if len(vectors) == 0:
        raise ValueError("cannot build an index over an empty gallery")
    return INDEX_BUILDERS[cfg.type](vectors, cfg)
