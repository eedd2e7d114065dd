"""The benchmark's workload: candidate lists of both directions as the pipeline's candidate-list type."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench_base.candidates import Candidates
from stage2_rerank.bench.speed import lavis_queries, make_bench_data
from stage2_rerank.candidate_pairs import collect_candidate_pairs


def test_bench_data_holds_read_only_candidate_lists_of_both_directions():
    data = make_bench_data(n_images=5, n_captions=7, depth=3, image_px=8, seed=0)
    assert isinstance(data.t2i, Candidates) and isinstance(data.i2t, Candidates)
    assert (data.t2i.direction, data.i2t.direction) == ("t2i", "i2t")
    assert data.t2i.ids.shape == (7, 3) and data.i2t.ids.shape == (5, 3) and data.candidate_slots == 36
    np.testing.assert_array_equal(data.t2i.query_positions, np.arange(7))
    for lists in (data.t2i, data.i2t):
        assert (np.diff(lists.scores, axis=1) <= 0).all()  # best first
        with pytest.raises(ValueError):
            lists.ids[0, 0] = 0
    expected = collect_candidate_pairs(data.t2i.ids, data.i2t.ids, 3)
    np.testing.assert_array_equal(data.candidate_pairs.pairs, expected.pairs)


def test_lavis_queries_walk_the_candidate_lists():
    data = make_bench_data(n_images=4, n_captions=6, depth=2, image_px=8, seed=1)
    queries = lavis_queries(data, n_t2i=2, n_i2t=1)
    assert len(queries) == 3
    np.testing.assert_array_equal(queries[0][0], data.t2i.ids[0])
    np.testing.assert_array_equal(queries[0][1], [0, 0])
    np.testing.assert_array_equal(queries[2][0], [0, 0])
    np.testing.assert_array_equal(queries[2][1], data.i2t.ids[0])
