"""Distinct pairs from both directions' candidates, and the way back to per-query scores."""

from __future__ import annotations

import numpy as np
import pytest

from stage2_rerank.candidate_pairs import collect_candidate_pairs, gather_candidate_scores


def test_pairs_shared_by_both_directions_are_scored_once():
    t2i = np.array([[0, 1, 2], [1, 0, 2]])      # captions 0, 1 -> images
    i2t = np.array([[0, 3, 1], [2, 1, 0]])      # images 0, 1 -> captions
    cp = collect_candidate_pairs(t2i, i2t, depth=2)
    expected = {(0, 0), (1, 0), (1, 1), (0, 1), (0, 3), (1, 2)}
    assert {tuple(p) for p in cp.pairs.tolist()} == expected
    assert len(cp.pairs) == len(expected)  # (0,0), (1,1), (0,1), (1,0) appear in both directions, stored once
    for q in range(2):
        for j in range(2):
            assert cp.pairs[cp.t2i_rows[q, j]].tolist() == [t2i[q, j], q]
            assert cp.pairs[cp.i2t_rows[q, j]].tolist() == [q, i2t[q, j]]


def test_query_index_arrays_and_missing_candidates():
    t2i = np.array([[4, -1]])
    cp = collect_candidate_pairs(t2i, None, depth=2, t2i_query_captions=np.array([7]))
    assert cp.pairs.tolist() == [[4, 7]]
    assert cp.t2i_rows.tolist() == [[0, -1]]
    assert cp.i2t_rows.shape == (0, 2)
    scores = gather_candidate_scores(np.array([[0.0, 2.0]], np.float32), np.array([0.5], np.float32), cp.t2i_rows)
    assert scores.itm[0, 0] == 2.0 and np.isnan(scores.itm[0, 1]) and np.isnan(scores.itc[0, 1])


def test_depth_limits_candidates_and_validation():
    t2i = np.array([[0, 1, 2]])
    assert len(collect_candidate_pairs(t2i, None, depth=1).pairs) == 1
    assert len(collect_candidate_pairs(t2i, None, depth=0).pairs) == 0
    with pytest.raises(ValueError, match="integer array"):
        collect_candidate_pairs(np.array([0.5, 1.5]), None, depth=1)
    with pytest.raises(ValueError, match="one entry per candidate row"):
        collect_candidate_pairs(t2i, None, depth=1, t2i_query_captions=np.array([0, 1]))


def test_score_candidate_lists_is_collect_score_gather():
    from rrbench_base.candidates import Candidates
    from stage2_rerank.candidate_pairs import score_candidate_lists

    t2i = Candidates("t2i", ids=np.array([[1, 0], [0, -1]]), scores=np.zeros((2, 2)), query_positions=np.array([2, 0]))
    i2t = Candidates("i2t", ids=np.array([[2, 0]]), scores=np.zeros((1, 2)), query_positions=np.array([1]))
    seen = []

    def score(pairs):
        seen.append(pairs)
        return np.stack([-pairs.sum(1), 10.0 * pairs[:, 0] + pairs[:, 1]], 1).astype(np.float32), \
            pairs[:, 1].astype(np.float32), None

    out = score_candidate_lists(score, t2i, i2t, 2)
    expected = collect_candidate_pairs(t2i.ids, i2t.ids, 2, t2i.query_positions, i2t.query_positions)
    np.testing.assert_array_equal(seen[0], expected.pairs)
    np.testing.assert_array_equal(out.t2i.itm, [[12.0, 2.0], [0.0, np.nan]])
    np.testing.assert_array_equal(out.i2t.itm, [[12.0, 10.0]])
    assert out.candidate_slots == 5 and out.stats is None
    assert score_candidate_lists(score, t2i.ids, None, 1).i2t is None
    with pytest.raises(ValueError, match="i2t candidate list was passed as t2i"):
        score_candidate_lists(score, i2t, None, 1)
    with pytest.raises(TypeError, match="must be rrbench_base.candidates.Candidates"):
        score_candidate_lists(score, {"ids": t2i.ids}, None, 1)
