"""Search when items are several vectors each: score(a, b) = max over their vector pairs of the inner product.

Used for multi-vector images (``blip2_itc``: ``[N, V, E]``, V = 32 Q-Former query embeddings) against
single-vector texts (``[M, E]``): text-to-image queries are ``[Q, 1, E]`` against an image gallery ``[N, V, E]``,
image-to-text queries ``[N, V, E]`` against a text gallery ``[M, 1, E]``; the score is LAVIS's BLIP-2 ITC
similarity (max over query vectors of the cosine). Two indexes, chosen by ``IndexConfig.type``:

- ``torch`` -> :class:`MultiVectorTorchIndex`: exact. Chunked like ``torch_index.TorchExactIndex`` (at most
  ``torch_query_chunk * torch_gallery_chunk`` vector products at once), on CPU accumulated in float64 and
  returned as float32, each list ordered by (score descending, gallery position ascending).
- ``flat`` / ``hnsw`` / ``ivfpq`` -> :class:`MultiVectorFaissIndex`: a FAISS index over all ``G * Vg`` gallery
  vectors; every query vector searches its ``k'`` nearest gallery vectors, the hits are reduced to items
  (an item's score = the best of its vectors found, over all query vectors), the ``k`` best items kept.
  ``k'`` is ``k`` for a single-vector gallery (texts) and otherwise ``index.multivector_search_factor * k``
  (0 = ``(k - 1) * Vg + 1``). Recall trade-off: with a single-vector gallery, or with the default ``k'`` for a
  multi-vector one, a ``flat`` index returns exactly the top k of the torch index (the k-th distinct item
  appears within the first ``(k - 1) * Vg + 1`` vectors, and an item of the top k is among the top k of the
  query vector that gives its maximum), at ``Vg`` times the search cost of a single-vector gallery; a smaller
  factor searches fewer vectors (cheaper, especially for HNSW, whose beam must cover ``k'``) but may return
  fewer than k items (padded with -1) and miss items whose best vector falls outside the ``k'``; ``hnsw`` and
  ``ivfpq`` add their own approximation. ``scripts/bench_stage1.py``-style recall against ``torch`` measures it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stage1_dual.config import IndexConfig
from stage1_dual.index import build_index
from stage1_dual.torch_index import _torch_device, order_by_score_then_id


def as_multivectors(array: Any, what: str) -> np.ndarray:
    """C-contiguous float32 ``[N, V, D]`` of ``array`` (numpy or torch; ``[N, D]`` becomes ``[N, 1, D]``)."""
    if hasattr(array, "detach"):
        array = array.detach().to("cpu").numpy()
    vectors = np.ascontiguousarray(array, dtype=np.float32)
    if vectors.ndim == 2:
        vectors = vectors[:, None, :]
    if vectors.ndim != 3:
        raise ValueError(f"{what} must be [N, D] or [N, V, D], got shape {vectors.shape}")
    return vectors


def best_per_item(scores: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, each distinct item (>= 0) once with its highest score; the ``k`` best items, by score descending
    then item ascending; ``(scores float32 [R, k], items int64 [R, k])``, padded with (-inf, -1)."""
    scores = np.asarray(scores, dtype=np.float32)
    items = np.asarray(items, dtype=np.int64)
    rows, columns = items.shape
    by_item = np.lexsort((-scores.astype(np.float64), items), axis=1)
    items_sorted = np.take_along_axis(items, by_item, axis=1)
    scores_sorted = np.take_along_axis(scores, by_item, axis=1)
    first = np.ones_like(items_sorted, dtype=bool)
    first[:, 1:] = items_sorted[:, 1:] != items_sorted[:, :-1]
    first &= items_sorted >= 0
    key_score = np.where(first, -scores_sorted.astype(np.float64), np.inf)
    key_item = np.where(first, items_sorted, np.iinfo(np.int64).max)
    order = np.lexsort((key_item, key_score, ~first), axis=1)[:, :k]
    out_scores = np.full((rows, k), -np.inf, dtype=np.float32)
    out_items = np.full((rows, k), -1, dtype=np.int64)
    kept = np.take_along_axis(first, order, axis=1)
    width = order.shape[1]
    out_scores[:, :width] = np.where(kept, np.take_along_axis(scores_sorted, order, axis=1), -np.inf)
    out_items[:, :width] = np.where(kept, np.take_along_axis(items_sorted, order, axis=1), -1)
    return out_scores, out_items


class MultiVectorTorchIndex:
    """Exact max-over-vector-pairs search (see module docstring); ``search(queries [Q, Vq, D] or [Q, D], k)``."""

    def __init__(self, gallery: np.ndarray, device: torch.device, query_chunk: int, gallery_chunk: int) -> None:
        gallery = as_multivectors(gallery, "gallery")
        self.device = device
        self.compute_dtype = torch.float64 if device.type == "cpu" else torch.float32
        self.items, self.vectors, self.dim = gallery.shape
        self.gallery = torch.from_numpy(gallery.reshape(-1, self.dim)).to(device=device, dtype=self.compute_dtype)
        self.query_chunk = query_chunk
        self.gallery_chunk = gallery_chunk
        self.info: dict[str, Any] = {"type": "multivector-torch", "exact": True, "device": str(device),
                                     "gallery_vectors_per_item": self.vectors, "query_chunk": query_chunk,
                                     "gallery_chunk": gallery_chunk,
                                     "compute_dtype": str(self.compute_dtype).replace("torch.", "")}

    @property
    def ntotal(self) -> int:
        return int(self.items)

    @torch.no_grad()
    def _search_chunk(self, queries: torch.Tensor, query_vectors: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = queries.shape[0] // query_vectors
        step = max(1, self.gallery_chunk // (self.vectors * query_vectors))  # gallery items per block
        best_scores = torch.empty((n, 0), device=self.device, dtype=self.compute_dtype)
        best_ids = torch.empty((n, 0), dtype=torch.int64, device=self.device)
        for start in range(0, self.items, step):
            stop = min(start + step, self.items)
            block = self.gallery[start * self.vectors:stop * self.vectors]
            scores = (queries @ block.T).view(n, query_vectors, stop - start, self.vectors).amax(dim=(1, 3))
            top = torch.topk(scores, min(k, stop - start), dim=1)
            merged_scores = torch.cat([best_scores, top.values], dim=1)
            merged_ids = torch.cat([best_ids, top.indices + start], dim=1)
            keep = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
            best_scores, best_ids = keep.values, torch.gather(merged_ids, 1, keep.indices)
        return best_scores, best_ids

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = as_multivectors(queries, "queries")
        count, query_vectors, _ = queries.shape
        k = min(int(k), self.ntotal)
        chunk = max(1, self.query_chunk // query_vectors)
        scores = np.empty((count, k), dtype=np.float32)
        ids = np.empty((count, k), dtype=np.int64)
        for start in range(0, count, chunk):
            part = torch.from_numpy(queries[start:start + chunk].reshape(-1, self.dim))
            top_scores, top_ids = self._search_chunk(part.to(device=self.device, dtype=self.compute_dtype),
                                                     query_vectors, k)
            scores[start:start + chunk] = top_scores.cpu().numpy().astype(np.float32)
            ids[start:start + chunk] = top_ids.cpu().numpy()
        return order_by_score_then_id(scores, ids)


class MultiVectorFaissIndex:
    """FAISS over every gallery vector, hits reduced to items by their best vector (see module docstring)."""

    def __init__(self, gallery: np.ndarray, cfg: IndexConfig) -> None:
        gallery = as_multivectors(gallery, "gallery")
        self.items, self.vectors, self.dim = gallery.shape
        self.factor = cfg.multivector_search_factor
        self.index = build_index(gallery.reshape(-1, self.dim), cfg)
        self.info: dict[str, Any] = {"type": f"multivector-{cfg.type}", "gallery_vectors_per_item": self.vectors,
                                     "search_factor": self.factor, "vector_index": dict(self.index.info),
                                     "exact": cfg.type == "flat" and (self.vectors == 1 or self.factor == 0)}

    @property
    def ntotal(self) -> int:
        return int(self.items)

    def vectors_searched(self, k: int) -> int:
        """``k'``: gallery vectors each query vector searches for ``k`` items."""
        wanted = k if self.vectors == 1 else (self.factor * k if self.factor else (k - 1) * self.vectors + 1)
        return max(1, min(wanted, self.items * self.vectors))

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = as_multivectors(queries, "queries")
        count, query_vectors, _ = queries.shape
        k = min(int(k), self.ntotal)
        searched = self.vectors_searched(k)
        scores, vector_ids = self.index.search(queries.reshape(-1, self.dim), searched)
        items = np.where(vector_ids >= 0, vector_ids // self.vectors, -1)
        return best_per_item(scores.reshape(count, query_vectors * searched),
                             items.reshape(count, query_vectors * searched), k)


def build_multivector_index(gallery: Any, cfg: IndexConfig) -> MultiVectorTorchIndex | MultiVectorFaissIndex:
    """The multi-vector index for ``cfg.type`` (``torch``: exact; a FAISS type: see module docstring) over
    ``gallery`` ``[G, Vg, D]`` (or ``[G, D]``), every vector L2-normalised."""
    if cfg.type == "torch":
        return MultiVectorTorchIndex(gallery, _torch_device(cfg), cfg.torch_query_chunk, cfg.torch_gallery_chunk)
    return MultiVectorFaissIndex(gallery, cfg)
