"""The exact torch index is reproducible across CPUs: float64 accumulation, ties in gallery order."""

import numpy as np

from stage1_dual.config import IndexConfig
from stage1_dual.torch_index import build_torch, order_by_score_then_id


def test_duplicates_come_in_gallery_order_whatever_the_chunking():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 8)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    gallery = np.concatenate([base, base, base])[rng.permutation(15)]  # each vector three times, shuffled
    queries = base[:3]
    for chunks in ({}, {"torch_query_chunk": 2, "torch_gallery_chunk": 4}):
        scores, ids = build_torch(gallery, IndexConfig(type="torch", use_gpu=False, **chunks)).search(queries, 15)
        for row in range(len(queries)):
            for value in np.unique(scores[row]):
                tied = ids[row][scores[row] == value]
                assert list(tied) == sorted(tied)  # exact ties ordered by gallery position
            assert np.all(np.diff(scores[row].astype(np.float64)) <= 0)


def test_scores_are_float64_products_rounded_to_float32():
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(300, 128)).astype(np.float32)
    queries = rng.normal(size=(20, 128)).astype(np.float32)
    scores, ids = build_torch(gallery, IndexConfig(type="torch", use_gpu=False)).search(queries, 10)
    exact = queries.astype(np.float64) @ gallery.astype(np.float64).T
    expected = np.take_along_axis(exact, ids, axis=1).astype(np.float32)
    assert np.array_equal(scores, expected)
    assert np.array_equal(ids[:, 0], exact.argmax(axis=1))


def test_order_by_score_then_id():
    scores = np.array([[0.5, 0.9, 0.5, 0.1]], dtype=np.float32)
    ids = np.array([[7, 3, 2, 9]])
    s, i = order_by_score_then_id(scores, ids)
    assert i.tolist() == [[3, 2, 7, 9]] and s.tolist() == [[np.float32(0.9), 0.5, 0.5, np.float32(0.1)]]
