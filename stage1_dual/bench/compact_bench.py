"""Compact embeddings: memory per vector and recall against exact search of float16, int8 and PQ storage.

One gallery (``vectors.make_gallery_and_queries``, the search benchmark's generator), exact float32 ``flat``
first (its top-``depth`` is the reference), then each compact configuration of :func:`compact_index_configs`.
Each row: storage, bytes per vector and total index memory (``compact_index.faiss_index_memory``: codes,
re-ranking copies, IVF ids and trained tables), build seconds, search seconds for all queries, recall@depth =
mean |top-depth ∩ exact top-depth| / depth, and the resident-set growth across the build (a cross-check).
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rrbench_base.provenance import describe as describe_provenance

from stage1_dual.bench.report import current_rss_gib
from stage1_dual.bench.search_bench import ivf_nlist_for
from stage1_dual.bench.vectors import VectorSpec, describe, make_gallery_and_queries, recall_at_k
from stage1_dual.compact_index import faiss_index_memory
from stage1_dual.config import IndexConfig
from stage1_dual.index import build_index

log = logging.getLogger(__name__)


@dataclass
class CompactBenchOptions:
    """What the compact-embedding benchmark runs (see module docstring)."""

    size: int = 1_000_000
    num_queries: int = 1000
    depth: int = 100
    dim: int = 512
    items_per_cluster: int = 250
    seed: int = 0


def compact_index_configs(size: int) -> dict[str, tuple[str, IndexConfig]]:
    """Name -> (storage description, config) at gallery ``size``, all on CPU; the float32 reference first.

    PQ: 64 sub-quantisers x 8 bits (64 B), the same re-ranked exactly from float32 copies of the top 4 * k,
    and 4-bit fast-scan with 256 sub-quantisers (128 B). IVF-PQ: the search benchmark's cells and probes
    (:func:`~stage1_dual.bench.search_bench.ivf_nlist_for`, nprobe = nlist / 16) over the same 128-byte
    fast-scan codes, without re-ranking (the compact form; the search table has the re-ranked one).
    """
    nlist = ivf_nlist_for(size)
    return {
        "flat": ("float32", IndexConfig(type="flat", use_gpu=False)),
        "sq_fp16": ("float16", IndexConfig(type="sq", sq_type="fp16", use_gpu=False)),
        "sq_int8": ("int8", IndexConfig(type="sq", sq_type="int8", use_gpu=False)),
        "pq_64x8": ("PQ 64 x 8 bit", IndexConfig(type="pq", pq_m=64, pq_nbits=8, refine_factor=0, use_gpu=False)),
        "pq_64x8_refine4": ("PQ 64 x 8 bit + float32 re-rank", IndexConfig(
            type="pq", pq_m=64, pq_nbits=8, refine_factor=4, use_gpu=False)),
        "pq_256x4_fastscan": ("PQ 256 x 4 bit (fast scan)", IndexConfig(
            type="pq", pq_m=256, pq_nbits=4, pq_fast_scan=True, refine_factor=0, use_gpu=False)),
        "ivfpq_256x4": ("IVF + PQ 256 x 4 bit (fast scan)", IndexConfig(
            type="ivfpq", ivf_nlist=nlist, ivf_nprobe=max(8, nlist // 16), ivf_train_size=min(size, 32 * nlist),
            ivf_by_residual=True, pq_m=256, pq_nbits=4, pq_fast_scan=True, refine_factor=0, use_gpu=False)),
    }


def _memory(index: Any) -> dict[str, int]:
    if "bytes_per_vector" in index.info:
        return {key: index.info[key] for key in ("bytes_per_vector", "fixed_bytes", "total_bytes")}
    return faiss_index_memory(index.index)


def _measure(name: str, storage: str, cfg: IndexConfig, gallery: np.ndarray, queries: np.ndarray,
             depth: int) -> tuple[dict[str, Any], np.ndarray]:
    gc.collect()
    rss_before = current_rss_gib()
    started = time.perf_counter()
    index = build_index(gallery, cfg)
    build_seconds = time.perf_counter() - started
    rss_delta = current_rss_gib() - rss_before
    started = time.perf_counter()
    _, ids = index.search(queries, depth)
    search_seconds = time.perf_counter() - started
    row = {"index": name, "storage": storage, "info": dict(index.info), **_memory(index),
           "build_seconds": build_seconds, "search_seconds": search_seconds,
           "queries_per_s": len(queries) / search_seconds, "rss_delta_gib": rss_delta}
    del index
    gc.collect()
    return row, ids


def run_compact_bench(options: CompactBenchOptions) -> dict[str, Any]:
    """Setup description and one row per configuration (see module docstring)."""
    spec = VectorSpec(dim=options.dim, num_clusters=max(10, options.size // options.items_per_cluster),
                      seed=options.seed)
    started = time.perf_counter()
    gallery, queries = make_gallery_and_queries(spec, options.size, options.num_queries)
    log.info("compact: gallery %d x %d generated in %.1f s", options.size, options.dim, time.perf_counter() - started)
    rows: list[dict[str, Any]] = []
    exact_ids = None
    for name, (storage, cfg) in compact_index_configs(options.size).items():
        log.info("compact: %s (%s)", name, storage)
        row, ids = _measure(name, storage, cfg, gallery, queries, options.depth)
        exact_ids = ids if exact_ids is None else exact_ids
        row["recall"] = recall_at_k(ids, exact_ids)
        log.info("%s", {k: v for k, v in row.items() if k != "info"})
        rows.append(row)
    setup = {"gallery": options.size, "dim": options.dim, "queries": options.num_queries, "depth": options.depth,
             **asdict(spec), **describe(gallery, queries)}
    return {"setup": setup, "rows": rows}


def _params(info: dict[str, Any]) -> str:
    keys = ("sq_type", "nlist", "nprobe", "pq_m", "pq_nbits", "fast_scan", "refine_factor", "train_size")
    return ", ".join(f"{k}={info[k]}" for k in keys if k in info)


def render_compact_markdown(results: dict[str, Any]) -> str:
    """``{"provenance", "load_average", "compact"}`` as Markdown: machine and command, then one table row per configuration."""
    prov, setup, rows = results["provenance"], results["compact"]["setup"], results["compact"]["rows"]
    reference = rows[0]["bytes_per_vector"]
    load = results.get("load_average", {})
    lines = ["# Compact embeddings", "", *describe_provenance(prov),
             f"Load average (1, 5, 15 min) at start {load.get('start')}, at end {load.get('end')}.", "",
             f"## {setup['gallery']:,} synthetic clustered vectors, d={setup['dim']}, "
             f"{setup['queries']:,} queries, recall@{setup['depth']} vs exact float32 flat", "",
             "| index | storage | parameters | bytes/vector | vs float32 | index memory MiB | build s | search s | "
             f"queries/s | recall@{setup['depth']} |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['index']} | {row['storage']} | {_params(row['info'])} | {row['bytes_per_vector']:,} | "
                     f"{row['bytes_per_vector'] / reference:.3f} | {row['total_bytes'] / 2**20:,.1f} | "
                     f"{row['build_seconds']:.1f} | {row['search_seconds']:.2f} | {row['queries_per_s']:.0f} | "
                     f"{row['recall']:.4f} |")
    lines += ["", "Bytes/vector: codes, plus float32 copies when re-ranking and an 8-byte id per IVF entry; index "
              "memory adds the trained tables (PQ centroids, SQ ranges, IVF centroids)."]
    return "\n".join(lines)
