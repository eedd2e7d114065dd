"""Compact FAISS indexes: every gallery vector stored in fewer bytes than float32, all of them scanned.

- ``sq``: faiss ``IndexScalarQuantizer`` (inner product). ``sq_type: fp16`` stores each dimension as float16
  (``2 * D`` bytes per vector, no training); ``int8`` as one byte (faiss ``QT_8bit``: each dimension's min..max
  mapped to 0..255, trained on the whole gallery; ``D`` bytes per vector).
- ``pq``: faiss ``IndexPQ`` (inner product, exhaustive asymmetric scan over the codes): ``pq_m`` sub-quantisers
  of ``pq_nbits`` bits (``pq_m * pq_nbits / 8`` bytes per vector), k-means trained on a seeded sample of the
  gallery; ``pq_fast_scan`` uses ``IndexPQFastScan`` (4-bit, SIMD). ``refine_factor > 0`` wraps it in
  ``IndexRefineFlat``: the top ``refine_factor * k`` are re-scored exactly from float32 copies of the vectors
  (which then cost ``4 * D`` bytes per vector more).

A gallery too small to train PQ (fewer than ``2 ** pq_nbits`` vectors) is refused with a ValueError naming
``index.pq_nbits`` and ``index.type``. Both run on CPU (faiss has no GPU version of these flat compact
indexes). ``info`` records the parameters and the memory from :func:`faiss_index_memory`.
"""

from __future__ import annotations

import logging
from typing import Any

import faiss
import numpy as np

from stage1_dual.config import IndexConfig
from stage1_dual.faiss_index import FaissIndex, faiss_gpu_available

log = logging.getLogger(__name__)

SQ_TYPES: dict[str, int] = {"fp16": faiss.ScalarQuantizer.QT_fp16, "int8": faiss.ScalarQuantizer.QT_8bit}
"""``IndexConfig.sq_type`` -> faiss scalar-quantiser type."""

PQ_POINTS_PER_CENTROID = 256  # faiss's k-means samples at most this many training points per centroid


def _per_vector_and_fixed_bytes(index: Any) -> tuple[int, int]:
    """(bytes stored per vector, bytes independent of the number of vectors) of a CPU faiss index."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        base = _per_vector_and_fixed_bytes(index.base_index)
        refine = _per_vector_and_fixed_bytes(index.refine_index)
        return base[0] + refine[0], base[1] + refine[1]
    if isinstance(index, faiss.IndexIVF):
        quantizer = faiss_index_memory(index.quantizer)["total_bytes"]
        tables = int(index.pq.centroids.size()) * 4 if hasattr(index, "pq") else 0
        return int(index.code_size) + 8, quantizer + tables  # each list entry also stores an int64 id
    if isinstance(index, (faiss.IndexPQ, faiss.IndexPQFastScan)):
        return int(index.pq.code_size), int(index.pq.centroids.size()) * 4
    if isinstance(index, faiss.IndexScalarQuantizer):
        return int(index.code_size), int(index.sq.trained.size()) * 4
    if isinstance(index, faiss.IndexFlat):
        return int(index.code_size), 0
    raise TypeError(f"no memory model for faiss index type {type(index).__name__}")


def faiss_index_memory(index: Any) -> dict[str, int]:
    """Memory of a CPU faiss index (flat, scalar quantiser, PQ, IVF, refine): ``bytes_per_vector`` (codes, plus
    float32 copies when re-ranking, plus an 8-byte id per IVF entry), ``fixed_bytes`` (trained tables:
    PQ centroids, SQ ranges, IVF centroids) and ``total_bytes`` = ntotal * bytes_per_vector + fixed_bytes.
    Counts the data faiss keeps, not allocator slack or fast-scan block padding."""
    per_vector, fixed = _per_vector_and_fixed_bytes(index)
    return {"bytes_per_vector": per_vector, "fixed_bytes": fixed, "total_bytes": int(index.ntotal) * per_vector + fixed}


def _cpu_only(cfg: IndexConfig, what: str) -> str:
    if cfg.use_gpu is True:
        raise RuntimeError(f"index.use_gpu is true but faiss has no GPU {what}; use flat or ivfpq on GPU")
    return f"cpu (faiss has no GPU {what})" if cfg.use_gpu == "auto" and faiss_gpu_available() else "cpu"


def build_sq(gallery: np.ndarray, cfg: IndexConfig) -> FaissIndex:
    """Scalar-quantised exhaustive index (fp16 or int8, see module docstring)."""
    device = _cpu_only(cfg, "flat scalar quantiser")
    index = faiss.IndexScalarQuantizer(gallery.shape[1], SQ_TYPES[cfg.sq_type], faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(gallery)
    index.add(gallery)
    info: dict[str, Any] = {"type": "sq", "exact": False, "sq_type": cfg.sq_type, "device": device,
                            **faiss_index_memory(index)}
    return FaissIndex(index, info)


def _check_pq_trainable(n: int, d: int, cfg: IndexConfig) -> None:
    if d % cfg.pq_m:
        raise ValueError(f"index.pq_m={cfg.pq_m} must divide the embedding dimension {d}")
    nbits = 4 if cfg.pq_fast_scan else cfg.pq_nbits
    if n < 2 ** nbits:
        raise ValueError(f"index.type pq needs at least 2 ** index.pq_nbits = {2 ** nbits} gallery vectors to train "
                         f"its k-means (index.pq_nbits={nbits}), got {n}; lower index.pq_nbits or use index.type "
                         f"sq or flat for small galleries")


def build_pq(gallery: np.ndarray, cfg: IndexConfig) -> FaissIndex:
    """Product-quantised exhaustive index, optionally re-ranked exactly (see module docstring)."""
    device = _cpu_only(cfg, "flat PQ")
    n, d = gallery.shape
    _check_pq_trainable(n, d, cfg)
    if cfg.pq_fast_scan:
        pq_index = faiss.IndexPQFastScan(d, cfg.pq_m, 4, faiss.METRIC_INNER_PRODUCT)
    else:
        pq_index = faiss.IndexPQ(d, cfg.pq_m, cfg.pq_nbits, faiss.METRIC_INNER_PRODUCT)
    pq_index.pq.cp.seed = cfg.seed
    nbits = int(pq_index.pq.nbits)
    index = pq_index
    if cfg.refine_factor > 0:
        index = faiss.IndexRefineFlat(pq_index)
        index.k_factor = float(cfg.refine_factor)
    train_size = min(n, cfg.ivf_train_size or PQ_POINTS_PER_CENTROID * 2 ** nbits)
    sample = np.sort(np.random.default_rng(cfg.seed).choice(n, size=train_size, replace=False))
    index.train(np.ascontiguousarray(gallery[sample]))
    index.add(gallery)
    info: dict[str, Any] = {"type": "pq", "exact": False, "pq_m": cfg.pq_m, "pq_nbits": nbits,
                            "fast_scan": cfg.pq_fast_scan, "refine_factor": cfg.refine_factor,
                            "train_size": train_size, "device": device, **faiss_index_memory(index)}
    return FaissIndex(index, info, (pq_index,))
