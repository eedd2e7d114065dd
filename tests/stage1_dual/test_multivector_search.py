"""Multi-vector search (``stage1_dual.multivector_search``) against a brute-force max over vector pairs."""

import numpy as np
import pytest

from stage1_dual.config import IndexConfig
from stage1_dual.multivector_search import (MultiVectorFaissIndex, MultiVectorTorchIndex, best_per_item,
                                            build_multivector_index)
from stage1_dual.retrieve import retrieve_both_directions

V, E = 5, 8


def _unit(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _brute(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k by max over vector pairs, ties by gallery position ([Q, Vq, E] x [G, Vg, E])."""
    scores = np.einsum("qae,gbe->qgab", queries.astype(np.float64), gallery.astype(np.float64)).max(axis=(2, 3))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return _unit(rng, 23, V, E), _unit(rng, 41, E)  # images [N, V, E], texts [M, E]


@pytest.mark.parametrize("chunks", [(1024, 65536), (3, 7), (1, 1)])
def test_torch_index_is_exact_in_both_directions_whatever_the_chunking(data, chunks):
    images, texts = data
    cfg = IndexConfig(type="torch", use_gpu=False, torch_query_chunk=chunks[0], torch_gallery_chunk=chunks[1])
    for queries, gallery in ((texts[:, None], images), (images, texts[:, None])):
        index = build_multivector_index(gallery, cfg)
        assert isinstance(index, MultiVectorTorchIndex) and index.ntotal == len(gallery)
        scores, ids = index.search(queries, 6)
        want_scores, want_ids = _brute(queries, gallery, 6)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_allclose(scores, want_scores, rtol=0, atol=1e-6)


def test_faiss_flat_with_the_default_factor_equals_the_exact_search(data):
    images, texts = data
    exact = IndexConfig(type="torch", use_gpu=False)
    flat = IndexConfig(type="flat", use_gpu=False)
    for queries, gallery in ((texts, images), (images, texts)):
        index = build_multivector_index(gallery, flat)
        assert isinstance(index, MultiVectorFaissIndex) and index.info["exact"]
        got_scores, got_ids = index.search(queries, 7)
        want_scores, want_ids = build_multivector_index(gallery, exact).search(queries, 7)
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_allclose(got_scores, want_scores, rtol=0, atol=1e-5)
    assert build_multivector_index(images, flat).vectors_searched(7) == 6 * V + 1
    assert build_multivector_index(texts, flat).vectors_searched(7) == 7


def test_a_small_factor_searches_fewer_vectors_and_may_find_fewer_items(data):
    images, texts = data
    index = build_multivector_index(images, IndexConfig(type="flat", use_gpu=False, multivector_search_factor=1))
    assert not index.info["exact"] and index.vectors_searched(7) == 7
    scores, ids = index.search(texts, 7)
    want_scores, _ = _brute(texts[:, None], images, 7)
    found = ids >= 0
    assert found[:, 0].all() and (found.sum(axis=1) <= 7).all()
    assert np.isneginf(scores[~found]).all()
    # the first item is always the true best (its best vector is the nearest one)
    np.testing.assert_allclose(scores[:, 0], want_scores[:, 0], rtol=0, atol=1e-5)


def test_best_per_item_keeps_each_item_once_with_its_best_score():
    scores = np.array([[0.9, 0.8, 0.7, 0.5, 0.4], [0.3, 0.3, 0.2, -1.0, -1.0]], np.float32)
    items = np.array([[2, 2, 0, 1, 0], [4, 1, 4, -1, -1]])
    got_scores, got_items = best_per_item(scores, items, 4)
    np.testing.assert_array_equal(got_items, [[2, 0, 1, -1], [1, 4, -1, -1]])  # tie 0.3: lower id first
    np.testing.assert_array_equal(got_scores, np.array([[0.9, 0.7, 0.5, -np.inf], [0.3, 0.3, -np.inf, -np.inf]],
                                                       np.float32))


def test_retrieve_both_directions_with_multivector_images_maps_positions(data):
    images, texts = data
    positions = np.arange(len(images)) * 2 + 1  # images at odd input positions (others skipped)
    out = retrieve_both_directions(images, texts, IndexConfig(type="torch", use_gpu=False), depth=4,
                                   image_positions=positions)
    _, t2i = _brute(texts[:, None], images, 4)
    _, i2t = _brute(images, texts[:, None], 4)
    np.testing.assert_array_equal(out["t2i"].ids, positions[t2i])
    np.testing.assert_array_equal(out["i2t"].ids, i2t)
    np.testing.assert_array_equal(out["i2t"].query_positions, positions)
    assert out["t2i"].index["type"] == "multivector-torch" and out["i2t"].index["gallery_vectors_per_item"] == 1
