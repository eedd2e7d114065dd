"""Index backends and candidates in both directions: exact backends equal brute force, approximate ones
reach a recall floor, depth clamps, skipped images map back to input positions, GPU guards."""

from __future__ import annotations

import dataclasses
import typing

import faiss
import numpy as np
import pytest

from stage1_dual.config import IndexConfig, IndexType
from stage1_dual.faiss_index import faiss_gpu_available
from stage1_dual.index import INDEX_BUILDERS, build_index
from stage1_dual.protocols import UnknownBackendError
from stage1_dual.retrieve import retrieve_both_directions, search_candidates


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """faiss's OpenMP threads spin badly on a busy 2-core machine; tests run it single-threaded."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries.astype(np.float64) @ gallery.astype(np.float64).T
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(scores, ids, axis=1)


EXACT = [IndexConfig(type="flat"), IndexConfig(type="torch"),
         IndexConfig(type="torch", torch_query_chunk=7, torch_gallery_chunk=13)]


@pytest.mark.parametrize("cfg", EXACT, ids=["flat", "torch", "torch-small-chunks"])
def test_exact_backends_equal_brute_force_in_both_directions(cfg):
    rng = np.random.default_rng(0)
    images, texts = _unit(rng, 60, 24), _unit(rng, 150, 24)
    candidates = retrieve_both_directions(images, texts, cfg, depth=20)
    for name, queries, gallery in (("t2i", texts, images), ("i2t", images, texts)):
        got = candidates[name]
        expected_ids, expected_scores = _brute_force(queries, gallery, 20)
        assert got.ids.shape == (len(queries), 20) and got.ids.dtype == np.int64 and got.scores.dtype == np.float32
        np.testing.assert_array_equal(got.ids, expected_ids)
        np.testing.assert_allclose(got.scores, expected_scores, atol=1e-5)
        assert got.depth == 20 and not got.clamped and got.missing == 0 and got.index["exact"]
        assert got.query_positions.tolist() == list(range(len(queries)))


def _recall(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx_ids, exact_ids)]))


@pytest.mark.parametrize("cfg, floor", [
    (IndexConfig(type="ivfpq", ivf_nlist=32, ivf_nprobe=8, pq_m=8, pq_nbits=6, refine_factor=8), 0.9),
    (IndexConfig(type="ivfpq", ivf_nlist=32, ivf_nprobe=8, pq_m=16, pq_fast_scan=True, pq_nbits=4,
                 refine_factor=8), 0.9),
    (IndexConfig(type="hnsw", hnsw_m=16, hnsw_ef_construction=40, hnsw_ef_search=64), 0.95),
], ids=["ivfpq-refine", "ivfpq-fastscan-refine", "hnsw"])
def test_approximate_backends_recall_against_exact(cfg, floor):
    rng = np.random.default_rng(1)
    centres = _unit(rng, 40, 32)
    gallery = centres[rng.integers(0, 40, 3000)] + 0.35 * _unit(rng, 3000, 32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    queries = gallery[rng.integers(0, 3000, 200)] + 0.3 * _unit(rng, 200, 32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    got = search_candidates(queries, gallery, cfg, 10, direction="t2i")
    exact_ids, _ = _brute_force(queries, gallery, 10)
    recall = _recall(got.ids, exact_ids)
    assert recall >= floor, f"recall@10 {recall:.3f} < {floor}"
    assert not got.index["exact"] and got.missing == 0
    assert np.all(np.diff(got.scores, axis=1) <= 1e-6)


def test_ivf_without_refinement_is_measurably_worse_but_still_useful():
    rng = np.random.default_rng(2)
    gallery, queries = _unit(rng, 2000, 32), _unit(rng, 100, 32)
    exact_ids, _ = _brute_force(queries, gallery, 10)
    raw = search_candidates(queries, gallery, IndexConfig(type="ivfpq", ivf_nlist=16, ivf_nprobe=16, pq_m=8,
                                                          pq_nbits=6, refine_factor=0), 10, direction="t2i")
    refined = search_candidates(queries, gallery, IndexConfig(type="ivfpq", ivf_nlist=16, ivf_nprobe=16, pq_m=8,
                                                              pq_nbits=6, refine_factor=8), 10, direction="t2i")
    assert _recall(raw.ids, exact_ids) < _recall(refined.ids, exact_ids)
    assert _recall(raw.ids, exact_ids) > 0.2 and raw.index["nlist"] == 16


def test_small_gallery_clamps_depth_and_nlist():
    rng = np.random.default_rng(3)
    images, texts = _unit(rng, 12, 8), _unit(rng, 30, 8)
    candidates = retrieve_both_directions(images, texts, IndexConfig(type="flat"), depth=100)
    t2i, i2t = candidates["t2i"], candidates["i2t"]
    assert (t2i.depth_requested, t2i.depth, t2i.clamped, t2i.ids.shape) == (100, 12, True, (30, 12))
    assert (i2t.depth, i2t.clamped, i2t.ids.shape) == (30, True, (12, 30))
    ivf = build_index(_unit(rng, 400, 8), IndexConfig(type="ivfpq", ivf_nlist=4096, pq_m=4, pq_nbits=6))
    assert ivf.info["nlist"] == 400 // 39 and ivf.info["nlist_requested"] == 4096
    with pytest.raises(ValueError, match="at least 256"):
        build_index(_unit(rng, 100, 8), IndexConfig(type="ivfpq", pq_m=4))
    with pytest.raises(ValueError, match="must divide"):
        build_index(_unit(rng, 400, 10), IndexConfig(type="ivfpq", pq_m=4, pq_nbits=6))


def test_skipped_images_map_to_input_positions():
    rng = np.random.default_rng(4)
    images, texts = _unit(rng, 5, 8), _unit(rng, 9, 8)
    positions = np.array([0, 1, 3, 4, 6])  # inputs 2 and 5 were skipped
    candidates = retrieve_both_directions(images, texts, IndexConfig(type="flat"), depth=5, image_positions=positions)
    expected_rows, _ = _brute_force(texts, images, 5)
    np.testing.assert_array_equal(candidates["t2i"].ids, positions[expected_rows])
    assert candidates["i2t"].query_positions.tolist() == positions.tolist()


def test_gpu_guards_and_unknown_type(monkeypatch):
    rng = np.random.default_rng(5)
    gallery = _unit(rng, 50, 8)
    assert set(INDEX_BUILDERS) == {"flat", "ivfpq", "hnsw", "torch", "sq", "pq"} == set(typing.get_args(IndexType))
    if not faiss_gpu_available():
        for kind in ("flat", "hnsw"):
            with pytest.raises(RuntimeError, match="GPU"):
                build_index(gallery, IndexConfig(type=kind, use_gpu=True))
        assert build_index(gallery, IndexConfig(type="flat", use_gpu="auto")).info["device"] == "cpu"
    cfg = dataclasses.replace(IndexConfig(), type="flat")
    cfg.type = "annoy"  # bypasses __post_init__ validation, as a config built in code could
    with pytest.raises(UnknownBackendError, match="flat, hnsw, ivfpq, pq, sq, torch"):
        build_index(gallery, cfg)
