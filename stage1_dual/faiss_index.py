"""FAISS indexes over L2-normalised vectors (inner product = cosine): flat, IVF-PQ, HNSW; GPU when present.

GPU: used when faiss was built with GPU support and a GPU is visible
(``hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0``), for ``use_gpu: auto`` or
``true``; several GPUs replicate the index, or shard it with ``gpu_shard: true``. HNSW and fast-scan
PQ have no faiss GPU implementation and stay on CPU (recorded in ``info["device"]``). With
re-ranking, the IVF-PQ part moves to the GPU and the exact re-ranking stays on CPU.
"""

from __future__ import annotations

import logging
from typing import Any

import faiss
import numpy as np

from stage1_dual.config import IndexConfig

log = logging.getLogger(__name__)

MIN_POINTS_PER_CELL = 39  # faiss's own minimum of training points per k-means centroid


def faiss_gpu_available() -> bool:
    """True when this faiss build has GPU support and at least one GPU is visible."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class FaissIndex:
    """A built faiss index; ``search`` returns (scores float32 [Q, k], ids int64 [Q, k], -1 = none)."""

    def __init__(self, index: Any, info: dict[str, Any], keepalive: tuple[Any, ...] = ()) -> None:
        self.index = index
        self.info = info
        self._keepalive = keepalive  # objects the C++ index points to without owning them

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), int(k))
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)


class HNSWIndex(FaissIndex):
    """HNSW: ``efSearch`` is raised to ``k`` when smaller (HNSW cannot return more than its beam)."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.index.hnsw.efSearch = max(int(self.info["ef_search"]), int(k))
        return super().search(queries, k)


def _wants_gpu(cfg: IndexConfig) -> bool:
    if cfg.use_gpu is False:
        return False
    available = faiss_gpu_available()
    if cfg.use_gpu is True and not available:
        raise RuntimeError("index.use_gpu is true but faiss has no GPU support (faiss-cpu build) or sees no GPU; "
                           "install faiss-gpu or set index.use_gpu: auto")
    return available


def _clone_to_gpus(index: Any, cfg: IndexConfig, float16_tables: bool) -> tuple[Any, tuple[Any, ...], str]:
    ngpu = faiss.get_num_gpus() if cfg.num_gpus == 0 else min(cfg.num_gpus, faiss.get_num_gpus())
    if ngpu <= 1:
        resources = faiss.StandardGpuResources()
        options = faiss.GpuClonerOptions()
        options.useFloat16 = float16_tables
        return faiss.index_cpu_to_gpu(resources, 0, index, options), (resources,), "gpu:0"
    options = faiss.GpuMultipleClonerOptions()
    options.shard = bool(cfg.gpu_shard)
    options.useFloat16 = float16_tables
    layout = "sharded" if cfg.gpu_shard else "replicated"
    return faiss.index_cpu_to_all_gpus(index, co=options, ngpu=ngpu), (), f"gpu x{ngpu} ({layout})"


def _maybe_to_gpu(index: Any, cfg: IndexConfig, info: dict[str, Any], float16_tables: bool = False) -> tuple[Any, tuple[Any, ...]]:
    """Move ``index`` to GPU(s) when wanted; IndexRefine keeps its exact re-ranking on CPU."""
    info["device"] = "cpu"
    if not _wants_gpu(cfg):
        return index, ()
    try:
        if isinstance(index, faiss.IndexRefine):
            base, keep, device = _clone_to_gpus(faiss.downcast_index(index.base_index), cfg, float16_tables)
            moved = faiss.IndexRefine(base, index.refine_index)
            moved.k_factor = index.k_factor
            info["device"] = f"{device} + cpu re-ranking"
            return moved, (*keep, base, index)
        moved, keep, info["device"] = _clone_to_gpus(index, cfg, float16_tables)
        return moved, keep
    except RuntimeError as exc:
        if cfg.use_gpu is True:
            raise
        log.warning("faiss GPU clone failed, staying on CPU: %s", exc)
        info["device"] = f"cpu (GPU clone failed: {exc})"
        return index, ()


def build_flat(gallery: np.ndarray, cfg: IndexConfig) -> FaissIndex:
    """Exact inner-product search (IndexFlatIP)."""
    index = faiss.IndexFlatIP(gallery.shape[1])
    index.add(gallery)
    info: dict[str, Any] = {"type": "flat", "exact": True}
    moved, keep = _maybe_to_gpu(index, cfg, info)
    return FaissIndex(moved, info, (index, *keep))


def build_ivfpq(gallery: np.ndarray, cfg: IndexConfig) -> FaissIndex:
    """IVF + PQ (inner product), trained on a sample of the gallery; optional exact re-ranking."""
    n, d = gallery.shape
    if d % cfg.pq_m:
        raise ValueError(f"index.pq_m={cfg.pq_m} must divide the embedding dimension {d}")
    min_points = 2 ** cfg.pq_nbits
    if n < min_points:
        raise ValueError(f"ivfpq needs at least {min_points} gallery vectors to train PQ with pq_nbits="
                         f"{cfg.pq_nbits}, got {n}; use index.type flat for small galleries")
    nlist = max(1, min(cfg.ivf_nlist, n // MIN_POINTS_PER_CELL))
    if nlist != cfg.ivf_nlist:
        log.info("ivfpq: nlist %d clamped to %d for %d gallery vectors", cfg.ivf_nlist, nlist, n)
    quantizer = faiss.IndexFlatIP(d)
    if cfg.pq_fast_scan:
        ivf = faiss.IndexIVFPQFastScan(quantizer, d, nlist, cfg.pq_m, 4, faiss.METRIC_INNER_PRODUCT)
    else:
        ivf = faiss.IndexIVFPQ(quantizer, d, nlist, cfg.pq_m, cfg.pq_nbits, faiss.METRIC_INNER_PRODUCT)
    ivf.by_residual = cfg.ivf_by_residual
    ivf.cp.niter = cfg.ivf_kmeans_iters
    ivf.cp.seed = cfg.seed
    ivf.nprobe = min(cfg.ivf_nprobe, nlist)
    index = ivf
    if cfg.refine_factor > 0:
        index = faiss.IndexRefineFlat(ivf)
        index.k_factor = float(cfg.refine_factor)
    train_size = min(n, cfg.ivf_train_size or max(50 * nlist, 10_000))
    sample = np.sort(np.random.default_rng(cfg.seed).choice(n, size=train_size, replace=False))
    index.train(np.ascontiguousarray(gallery[sample]))
    index.add(gallery)
    info: dict[str, Any] = {
        "type": "ivfpq", "exact": False, "nlist": nlist, "nlist_requested": cfg.ivf_nlist,
        "nprobe": int(ivf.nprobe), "pq_m": cfg.pq_m, "pq_nbits": 4 if cfg.pq_fast_scan else cfg.pq_nbits,
        "fast_scan": cfg.pq_fast_scan, "by_residual": cfg.ivf_by_residual, "refine_factor": cfg.refine_factor, "train_size": train_size,
    }
    moved, keep = _maybe_to_gpu(index, cfg, info, float16_tables=cfg.pq_m >= 56)
    return FaissIndex(moved, info, (quantizer, ivf, index, *keep))


def build_hnsw(gallery: np.ndarray, cfg: IndexConfig) -> FaissIndex:
    """HNSW graph over the raw vectors (inner product); CPU only."""
    if cfg.use_gpu is True:
        raise RuntimeError("index.use_gpu is true but faiss has no GPU HNSW; use flat or ivfpq on GPU")
    index = faiss.IndexHNSWFlat(gallery.shape[1], cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = cfg.hnsw_ef_construction
    index.add(gallery)
    device = "cpu (faiss has no GPU HNSW)" if cfg.use_gpu == "auto" and faiss_gpu_available() else "cpu"
    info = {"type": "hnsw", "exact": False, "m": cfg.hnsw_m, "ef_construction": cfg.hnsw_ef_construction,
            "ef_search": cfg.hnsw_ef_search, "device": device}
    return HNSWIndex(index, info)
