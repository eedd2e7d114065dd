"""Search speed and recall of every index type against exact search, on synthetic clustered vectors.

For each gallery size: generate gallery + queries (``vectors.make_gallery_and_queries``), run the
exact flat index first (its top-``depth`` is the reference), then torch top-k, IVF-PQ and HNSW with
the parameters of :func:`bench_index_configs`. Each row: build seconds, search seconds for all
queries, queries/s, speed-up = flat search seconds / this search seconds (same run, same threads),
recall@depth = mean |top-depth ∩ exact top-depth| / depth, and memory (see ``report``).
"""

from __future__ import annotations

import gc
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from stage1_dual.bench.report import current_rss_gib, peak_rss_gib
from stage1_dual.bench.vectors import VectorSpec, describe, make_gallery_and_queries, recall_at_k
from stage1_dual.config import IndexConfig
from stage1_dual.index import build_index

log = logging.getLogger(__name__)

TARGET_SIZE = 1_000_000


@dataclass
class SearchBenchOptions:
    """What the search benchmark runs (see module docstring)."""

    sizes: list[int] = field(default_factory=lambda: [25_000, 1_000_000])
    num_queries: int = 5000
    depth: int = 100
    dim: int = 512
    items_per_cluster: int = 250
    seed: int = 0
    cuda: bool = False


def ivf_nlist_for(size: int) -> int:
    """IVF cells: the power of two nearest to 4 * sqrt(size) (4096 at 1M, 512 at 25k)."""
    return 2 ** round(math.log2(4 * math.sqrt(size)))


def bench_index_configs(size: int, cuda: bool = False) -> dict[str, IndexConfig]:
    """The configurations measured at gallery ``size``, on CPU; the reference ``flat`` first; with ``cuda``
    also the exact torch top-k on the GPU (``torch_cuda``).

    IVF-PQ: nlist from :func:`ivf_nlist_for`, nprobe = nlist / 16, k-means on 32 * nlist vectors,
    4-bit fast-scan PQ of the residuals with 256 sub-quantisers (2 dimensions each, 128 bytes per
    vector), exact re-ranking of the top 4 * k. HNSW: M 16, efConstruction 40, efSearch 512 (a
    cheaper build; the 1M build dominates the benchmark's run time).
    """
    nlist = ivf_nlist_for(size)
    configs = {
        "flat": IndexConfig(type="flat", use_gpu=False),
        "torch": IndexConfig(type="torch", use_gpu=False, torch_query_chunk=1024, torch_gallery_chunk=65536),
        "ivfpq": IndexConfig(type="ivfpq", use_gpu=False, ivf_nlist=nlist, ivf_nprobe=max(8, nlist // 16),
                             ivf_train_size=min(size, 32 * nlist), ivf_kmeans_iters=10, ivf_by_residual=True,
                             pq_m=256, pq_nbits=4, pq_fast_scan=True, refine_factor=4),
        "hnsw": IndexConfig(type="hnsw", use_gpu=False, hnsw_m=16, hnsw_ef_construction=40, hnsw_ef_search=512),
    }
    if cuda:
        configs["torch_cuda"] = IndexConfig(type="torch", use_gpu=True, torch_query_chunk=1024,
                                            torch_gallery_chunk=65536)
    return configs


def _measure(name: str, cfg: IndexConfig, gallery: np.ndarray, queries: np.ndarray, depth: int) -> tuple[dict[str, Any], np.ndarray]:
    gc.collect()
    rss_before = current_rss_gib()
    started = time.perf_counter()
    index = build_index(gallery, cfg)
    build_seconds = time.perf_counter() - started
    rss_delta = current_rss_gib() - rss_before
    if cfg.use_gpu:  # CUDA context, cuBLAS handles and kernel selection outside the timed search
        index.search(queries[:64], depth)
    started = time.perf_counter()
    _, ids = index.search(queries, depth)
    search_seconds = time.perf_counter() - started
    row = {"index": name, "info": dict(index.info), "build_seconds": build_seconds, "search_seconds": search_seconds,
           "queries_per_s": len(queries) / search_seconds, "rss_delta_gib": rss_delta, "peak_rss_gib": peak_rss_gib()}
    del index
    gc.collect()
    return row, ids


def run_search_bench(options: SearchBenchOptions) -> dict[str, Any]:
    """Rows for every (size, index) plus the setup description and the 1M target verdict lines."""
    rows: list[dict[str, Any]] = []
    data_notes = []
    for size in options.sizes:
        spec = VectorSpec(dim=options.dim, num_clusters=max(10, size // options.items_per_cluster), seed=options.seed)
        started = time.perf_counter()
        gallery, queries = make_gallery_and_queries(spec, size, options.num_queries)
        log.info("gallery %d x %d generated in %.1f s", size, options.dim, time.perf_counter() - started)
        data_notes.append({"gallery": size, **asdict(spec), **describe(gallery, queries)})
        exact_ids = None
        flat_seconds = None
        for name, cfg in bench_index_configs(size, options.cuda).items():
            log.info("size %d: %s", size, name)
            row, ids = _measure(name, cfg, gallery, queries, options.depth)
            if exact_ids is None:
                exact_ids, flat_seconds = ids, row["search_seconds"]
            row.update(gallery=size, recall=recall_at_k(ids, exact_ids),
                       speedup_vs_flat=flat_seconds / row["search_seconds"])
            log.info("%s", {k: v for k, v in row.items() if k != "info"})
            rows.append(row)
        del gallery, queries, exact_ids
        gc.collect()
    return {"setup": _setup_text(options, data_notes), "rows": rows, "target": _target_lines(rows, options)}


def _setup_text(options: SearchBenchOptions, data_notes: list[dict[str, Any]]) -> dict[str, Any]:
    cosines = "; ".join(f"{n['gallery']:,}: {n['num_clusters']} clusters, random-pair cos "
                        f"{n['cos_random_gallery_pairs_mean']:.2f}, query top-1 cos {n['cos_query_top1_mean']:.2f}"
                        for n in data_notes)
    text = ("Data: Gaussian-mixture gallery (Dirichlet cluster sizes, ~{per} items per cluster) with a power-law "
            "spectrum (dimension i scaled by (i+1)^-0.5, randomly rotated) around a shared mean direction, "
            "L2-normalised; queries are noisy copies of random gallery items. Measured: {cos}."
            ).format(per=options.items_per_cluster, cos=cosines)
    return {"dim": options.dim, "queries": options.num_queries, "depth": options.depth, "data": text,
            "vectors": data_notes}


def _target_lines(rows: list[dict[str, Any]], options: SearchBenchOptions) -> list[str]:
    """Verdict of the target (recall@depth >= 0.95 at >= 10x exact flat speed) at the 1M gallery."""
    if TARGET_SIZE not in options.sizes:
        return [f"the target is defined at a {TARGET_SIZE:,} gallery, not measured in this run"]
    lines = []
    for row in rows:
        if row["gallery"] != TARGET_SIZE or row["info"].get("exact"):
            continue
        met = row["recall"] >= 0.95 and row["speedup_vs_flat"] >= 10
        lines.append(f"{TARGET_SIZE:,}: {row['index']} recall@{options.depth} {row['recall']:.4f} at "
                     f"{row['speedup_vs_flat']:.1f}x the speed of exact flat search "
                     f"-> target (recall >= 0.95 at >= 10x) {'met' if met else 'not met'}")
    return lines
