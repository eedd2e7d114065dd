"""Exact top-k by chunked matmul + ``torch.topk`` on any torch device (CPU, CUDA).

Queries are scored ``torch_query_chunk`` at a time against ``torch_gallery_chunk`` gallery rows;
each chunk's top-k is merged into a running top-k, so memory stays ``O(query_chunk * gallery_chunk)``.

Reproducible across CPUs: on CPU the inner products of the float32 vectors are accumulated in float64 (error
about 1e-16, where float32 kernels of different instruction sets differ by about 1e-7) and returned rounded to
float32, so two machines get the same scores unless a score sits within 1e-16 of a float32 rounding boundary; each
query's list is ordered by (score descending, gallery position ascending), so exact ties (duplicate captions or
images) come in gallery order whatever the top-k kernel does. On CUDA the products stay float32 (speed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stage1_dual.config import IndexConfig


def _torch_device(cfg: IndexConfig) -> torch.device:
    if cfg.use_gpu is True and not torch.cuda.is_available():
        raise RuntimeError("index.use_gpu is true but CUDA is not available to torch; set index.use_gpu: auto")
    return torch.device("cuda" if cfg.use_gpu is not False and torch.cuda.is_available() else "cpu")


def order_by_score_then_id(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (scores, ids) ``[Q, k]`` sorted by score descending, ties by id ascending."""
    order = np.lexsort((ids, -scores.astype(np.float64)), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


class TorchExactIndex:
    """Exact inner-product search; ``search`` returns (scores float32 [Q, k], ids int64 [Q, k]), each row by
    score descending, ties by gallery position (see the module docstring)."""

    def __init__(self, gallery: np.ndarray, device: torch.device, query_chunk: int, gallery_chunk: int) -> None:
        self.device = device
        self.compute_dtype = torch.float64 if device.type == "cpu" else torch.float32
        self.gallery = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32)).to(
            device=device, dtype=self.compute_dtype)
        self.query_chunk = query_chunk
        self.gallery_chunk = gallery_chunk
        self.info: dict[str, Any] = {"type": "torch", "exact": True, "device": str(device),
                                     "query_chunk": query_chunk, "gallery_chunk": gallery_chunk,
                                     "compute_dtype": str(self.compute_dtype).replace("torch.", "")}

    @property
    def ntotal(self) -> int:
        return int(self.gallery.shape[0])

    @torch.no_grad()
    def _search_chunk(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        best_scores = torch.empty((queries.shape[0], 0), device=self.device, dtype=self.compute_dtype)
        best_ids = torch.empty((queries.shape[0], 0), dtype=torch.int64, device=self.device)
        for start in range(0, self.ntotal, self.gallery_chunk):
            block = self.gallery[start:start + self.gallery_chunk]
            scores = queries @ block.T
            top = torch.topk(scores, min(k, block.shape[0]), dim=1)
            merged_scores = torch.cat([best_scores, top.values], dim=1)
            merged_ids = torch.cat([best_ids, top.indices + start], dim=1)
            keep = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
            best_scores, best_ids = keep.values, torch.gather(merged_ids, 1, keep.indices)
        return best_scores, best_ids

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(int(k), self.ntotal)
        scores = np.empty((len(queries), k), dtype=np.float32)
        ids = np.empty((len(queries), k), dtype=np.int64)
        for start in range(0, len(queries), self.query_chunk):
            chunk = torch.from_numpy(np.ascontiguousarray(queries[start:start + self.query_chunk], dtype=np.float32))
            top_scores, top_ids = self._search_chunk(chunk.to(device=self.device, dtype=self.compute_dtype), k)
            scores[start:start + len(chunk)] = top_scores.cpu().numpy().astype(np.float32)
            ids[start:start + len(chunk)] = top_ids.cpu().numpy()
        return order_by_score_then_id(scores, ids)


def build_torch(gallery: np.ndarray, cfg: IndexConfig) -> TorchExactIndex:
    """Exact torch top-k index on the device chosen by ``cfg.use_gpu``."""
    return TorchExactIndex(gallery, _torch_device(cfg), cfg.torch_query_chunk, cfg.torch_gallery_chunk)
