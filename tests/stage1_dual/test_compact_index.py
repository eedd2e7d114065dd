"""Compact indexes (fp16 / int8 scalar quantisation, PQ): recall against exact flat search on clustered vectors,
memory per vector as the formats promise, small-gallery and GPU refusals, config validation."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from eval.typed_config import ConfigError, from_dict
from stage1_dual.compact_index import faiss_index_memory
from stage1_dual.config import IndexConfig, Stage1Config
from stage1_dual.index import build_index

DIM = 32


@pytest.fixture(autouse=True)
def one_faiss_thread():
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered():
    """3,000 gallery vectors in 40 clusters (d = 32) and 200 queries near gallery items."""
    rng = np.random.default_rng(5)
    centres = _unit(rng.standard_normal((40, DIM)))
    gallery = _unit(centres[rng.integers(0, 40, 3000)] + 0.35 * _unit(rng.standard_normal((3000, DIM))))
    queries = _unit(gallery[rng.integers(0, 3000, 200)] + 0.3 * _unit(rng.standard_normal((200, DIM))))
    return gallery, queries


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


# config, recall@20 floor, bytes per vector (codes; + 4 * D float32 copies when re-ranking). The PQ floors sit
# well above what ranking by cluster alone gives (about 20 / 75 items per cluster = 0.27) and below the measured
# 0.47-0.60 of these short codes on tight clusters; re-ranking must bring PQ back to (nearly) exact.
CASES = [
    (IndexConfig(type="sq", sq_type="fp16"), 0.99, 2 * DIM),
    (IndexConfig(type="sq", sq_type="int8"), 0.9, DIM),
    (IndexConfig(type="pq", pq_m=8, pq_nbits=8, refine_factor=0), 0.45, 8),
    (IndexConfig(type="pq", pq_m=16, pq_nbits=6, refine_factor=0), 0.5, 12),
    (IndexConfig(type="pq", pq_m=16, pq_nbits=4, pq_fast_scan=True, refine_factor=0), 0.4, 8),
    (IndexConfig(type="pq", pq_m=8, pq_nbits=8, refine_factor=8), 0.95, 8 + 4 * DIM),
]


@pytest.mark.parametrize("cfg, floor, bytes_per_vector", CASES,
                         ids=["sq-fp16", "sq-int8", "pq-8x8", "pq-16x6", "pq-16x4-fastscan", "pq-8x8-refine"])
def test_recall_against_exact_and_memory_per_vector(clustered, cfg, floor, bytes_per_vector):
    gallery, queries = clustered
    _, exact_ids = build_index(gallery, IndexConfig(type="flat")).search(queries, 20)
    index = build_index(gallery, cfg)
    scores, ids = index.search(queries, 20)
    recall = _recall(ids, exact_ids)
    assert recall >= floor, f"recall@20 {recall:.3f} < {floor}"
    assert np.all(ids >= 0) and np.all(np.diff(scores, axis=1) <= 1e-5)
    assert index.info["type"] == cfg.type and index.info["exact"] is False and index.info["device"] == "cpu"
    assert index.info["bytes_per_vector"] == bytes_per_vector
    assert index.info["total_bytes"] == len(gallery) * bytes_per_vector + index.info["fixed_bytes"]
    assert index.ntotal == len(gallery)


def test_fp16_ranks_like_float32_and_int8_stays_close(clustered):
    gallery, queries = clustered
    exact_scores, exact_ids = build_index(gallery, IndexConfig(type="flat")).search(queries, 10)
    fp16_scores, fp16_ids = build_index(gallery, IndexConfig(type="sq", sq_type="fp16")).search(queries, 10)
    int8_scores, _ = build_index(gallery, IndexConfig(type="sq", sq_type="int8")).search(queries, 10)
    assert np.max(np.abs(fp16_scores - exact_scores)) < 2e-3  # fp16 rounding of unit vectors: ~1e-3 relative
    assert np.mean(fp16_ids[:, 0] == exact_ids[:, 0]) >= 0.99
    assert np.max(np.abs(int8_scores - exact_scores)) < 0.05


def test_trained_tables_are_counted(clustered):
    gallery, _ = clustered
    pq = build_index(gallery, IndexConfig(type="pq", pq_m=8, pq_nbits=8, refine_factor=0))
    assert pq.info["fixed_bytes"] == 8 * 256 * (DIM // 8) * 4  # m sub-quantisers x 256 centroids x D/m floats
    int8 = build_index(gallery, IndexConfig(type="sq", sq_type="int8"))
    assert int8.info["fixed_bytes"] == 2 * DIM * 4  # per-dimension min and range
    flat = faiss.IndexFlatIP(DIM)
    flat.add(gallery)
    assert faiss_index_memory(flat) == {"bytes_per_vector": 4 * DIM, "fixed_bytes": 0,
                                        "total_bytes": len(gallery) * 4 * DIM}


def test_pq_is_seeded(clustered):
    gallery, queries = clustered
    cfg = IndexConfig(type="pq", pq_m=8, pq_nbits=6, refine_factor=0, seed=3)
    first = build_index(gallery, cfg).search(queries, 10)
    again = build_index(gallery, cfg).search(queries, 10)
    np.testing.assert_array_equal(first[1], again[1])


def test_too_small_gallery_for_pq_names_the_fields(clustered):
    gallery, _ = clustered
    with pytest.raises(ValueError, match=r"index\.pq_nbits=8.*got 100.*index\.type"):
        build_index(gallery[:100], IndexConfig(type="pq", pq_m=8, pq_nbits=8))
    with pytest.raises(ValueError, match=r"index\.pq_m=5 must divide the embedding dimension 32"):
        build_index(gallery, IndexConfig(type="pq", pq_m=5))
    small = build_index(gallery[:100], IndexConfig(type="pq", pq_m=8, pq_nbits=6, refine_factor=0))
    assert small.info["train_size"] == 100 and small.info["pq_nbits"] == 6
    assert build_index(gallery[:3], IndexConfig(type="sq", sq_type="int8")).ntotal == 3  # SQ trains on any size


def test_use_gpu_true_is_refused_for_compact_indexes(clustered):
    gallery, _ = clustered
    for cfg in (IndexConfig(type="sq", use_gpu=True), IndexConfig(type="pq", pq_m=8, use_gpu=True)):
        with pytest.raises(RuntimeError, match="faiss has no GPU"):
            build_index(gallery, cfg)


@pytest.mark.parametrize("data, key", [
    ({"index": {"type": "opq"}}, "index.type"),
    ({"index": {"type": "sq", "sq_type": "int4"}}, "index.sq_type"),
    ({"index": {"type": "pq", "pq_nbits": 9}}, "index.pq_nbits"),
    ({"index": {"type": "pq", "pq_fast_scan": True, "pq_nbits": 8}}, "index.pq_fast_scan"),
    ({"cache_dtype": "bfloat16"}, "cache_dtype"),
])
def test_invalid_compact_settings_name_the_key(data, key):
    with pytest.raises(ConfigError) as info:
        from_dict(Stage1Config, data, source="exp.yaml")
    assert key in str(info.value) and "exp.yaml" in str(info.value)


def test_compact_settings_load_from_yaml_mappings():
    cfg = from_dict(Stage1Config, {"cache_dtype": "float16", "index": {"type": "sq", "sq_type": "int8"}})
    assert cfg.cache_dtype == "float16" and cfg.index.type == "sq" and cfg.index.sq_type == "int8"
    assert from_dict(Stage1Config, {"index": {"type": "pq", "pq_m": 32, "refine_factor": 0}}).index.pq_m == 32
