"""Fusion rules and depth semantics on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from stage2_rerank.config import FusionConfig
from stage2_rerank.fusion import (
    CandidateScores,
    descending_ranks,
    fused_order,
    fused_scores,
    minmax_per_query,
    rerank_at_depth,
)


def scores_from(match_logits, itc=None, no_match=0.0) -> CandidateScores:
    match = np.asarray(match_logits, dtype=np.float32)
    logits = np.stack([np.full_like(match, no_match), match], axis=-1)
    return CandidateScores(logits, np.zeros_like(match) if itc is None else np.asarray(itc, np.float32))


IDS = np.array([[10, 11, 12, 13]])
STAGE1 = np.array([[0.9, 0.8, 0.7, 0.6]])


def test_itm_reorders_first_k_and_keeps_the_rest_below():
    stage2 = scores_from([[0.1, 0.5, 0.3, 9.0]])
    out = rerank_at_depth(IDS, STAGE1, stage2, depth=3, fusion=FusionConfig("itm"))
    # 13 has the best ITM score but is beyond depth 3: it stays 4th
    assert out.tolist() == [[11, 12, 10, 13]]
    assert rerank_at_depth(IDS, STAGE1, stage2, 4, FusionConfig("itm")).tolist() == [[13, 11, 12, 10]]


def test_depth_zero_is_stage1_and_depth_beyond_n_is_clamped():
    stage2 = scores_from([[0.1, 0.5, 0.3, 9.0]])
    assert rerank_at_depth(IDS, STAGE1, stage2, 0, FusionConfig()).tolist() == IDS.tolist()
    assert rerank_at_depth(IDS, STAGE1, stage2, 50, FusionConfig()).tolist() == [[13, 11, 12, 10]]


def test_depth_beyond_stage2_coverage_is_an_error():
    stage2 = scores_from([[0.1, 0.5]])
    with pytest.raises(ValueError, match="cover 2 candidates"):
        rerank_at_depth(IDS, STAGE1, stage2, 3, FusionConfig())


def test_smaller_depth_uses_a_prefix_of_the_same_scores():
    stage2 = scores_from([[0.1, 0.5, 0.3, 9.0]])
    assert rerank_at_depth(IDS, STAGE1, stage2, 2, FusionConfig()).tolist() == [[11, 10, 12, 13]]


def test_itm_plus_itc_can_flip_an_itm_order():
    stage2 = scores_from([[1.0, 0.8]], itc=[[0.0, 0.3]])
    ids, s1 = IDS[:, :2], STAGE1[:, :2]
    assert rerank_at_depth(ids, s1, stage2, 2, FusionConfig("itm")).tolist() == [[10, 11]]
    assert rerank_at_depth(ids, s1, stage2, 2, FusionConfig("itm+itc")).tolist() == [[11, 10]]
    np.testing.assert_allclose(fused_scores(stage2, s1, FusionConfig("itm+itc")), [[1.0, 1.1]], atol=1e-6)


def test_itm_plus_stage1_adds_the_stage1_score_not_stage2s_itc():
    stage2 = scores_from([[1.0, 0.8]], itc=[[0.5, 0.0]])  # stage 2's ITC would keep 10 first
    ids, s1 = IDS[:, :2], np.array([[0.1, 0.4]])
    np.testing.assert_allclose(fused_scores(stage2, s1, FusionConfig("itm+stage1")), [[1.1, 1.2]], atol=1e-6)
    assert rerank_at_depth(ids, s1, stage2, 2, FusionConfig("itm+stage1")).tolist() == [[11, 10]]
    assert rerank_at_depth(ids, s1, stage2, 2, FusionConfig("itm+itc")).tolist() == [[10, 11]]


def test_alpha_blends_itm_probability_with_minmax_stage1():
    probs = np.array([[0.1, 0.8, 0.9]])
    stage2 = scores_from(np.log(probs / (1 - probs)))  # no-match logit 0 -> softmax[1] = p
    stage1 = np.array([[3.0, 2.0, 1.0]])  # min-max -> [1, 0.5, 0]
    fused = fused_scores(stage2, stage1, FusionConfig("alpha", alpha=0.5))
    np.testing.assert_allclose(fused, [[0.55, 0.65, 0.45]], atol=1e-6)
    ids = np.array([[7, 8, 9]])
    assert rerank_at_depth(ids, stage1, stage2, 3, FusionConfig("alpha", alpha=0.5)).tolist() == [[8, 7, 9]]
    assert rerank_at_depth(ids, stage1, stage2, 3, FusionConfig("alpha", alpha=0.0)).tolist() == [[7, 8, 9]]
    assert rerank_at_depth(ids, stage1, stage2, 3, FusionConfig("alpha", alpha=1.0)).tolist() == [[9, 8, 7]]


def test_alpha_is_invariant_to_stage1_scale():
    probs = np.array([[0.3, 0.6, 0.5]])
    stage2 = scores_from(np.log(probs / (1 - probs)))
    stage1 = np.array([[0.31, 0.30, 0.29]])
    a = fused_scores(stage2, stage1, FusionConfig("alpha", alpha=0.3))
    b = fused_scores(stage2, stage1 * 100 - 7, FusionConfig("alpha", alpha=0.3))
    np.testing.assert_allclose(a, b)


def test_rrf_formula_and_order():
    stage2 = scores_from([[0.1, 0.5, 0.3]])  # ITM ranks 3, 1, 2; stage-1 ranks 1, 2, 3
    fused = fused_scores(stage2, STAGE1[:, :3], FusionConfig("rrf", rrf_k=60))
    expected = [1 / 61 + 1 / 63, 1 / 62 + 1 / 61, 1 / 63 + 1 / 62]
    np.testing.assert_allclose(fused, [expected])
    fused0 = fused_scores(stage2, STAGE1[:, :3], FusionConfig("rrf", rrf_k=0))
    np.testing.assert_allclose(fused0, [[1 + 1 / 3, 1 / 2 + 1, 1 / 3 + 1 / 2]])
    assert rerank_at_depth(IDS[:, :3], STAGE1[:, :3], stage2, 3, FusionConfig("rrf")).tolist() == [[11, 10, 12]]


def test_ties_keep_stage1_order_and_nan_goes_last():
    stage2 = scores_from([[np.nan, 0.5, 0.5, 0.7]])
    out = rerank_at_depth(IDS, STAGE1, stage2, 4, FusionConfig("itm"))
    assert out.tolist() == [[13, 11, 12, 10]]
    assert fused_order(np.array([[np.nan, 1.0, np.nan, 2.0]])).tolist() == [[3, 1, 0, 2]]


def test_rrf_ranks_nan_last():
    stage2 = scores_from([[np.nan, 0.2, 0.9]])
    assert descending_ranks(stage2.itm).tolist() == [[3, 2, 1]]
    fused = fused_scores(stage2, STAGE1[:, :3], FusionConfig("rrf"))
    assert np.isnan(fused[0, 0]) and fused[0, 2] > fused[0, 1]


def test_rows_are_independent():
    stage2 = scores_from([[0.1, 0.9], [0.9, 0.1]])
    ids = np.array([[1, 2], [3, 4]])
    assert rerank_at_depth(ids, np.zeros((2, 2)), stage2, 2, FusionConfig()).tolist() == [[2, 1], [3, 4]]


def test_minmax_constant_row_and_config_validation():
    np.testing.assert_allclose(minmax_per_query(np.array([[2.0, 2.0], [1.0, 3.0]])), [[0.5, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="rule must be one of"):
        FusionConfig("mean")
    with pytest.raises(ValueError, match="alpha"):
        FusionConfig("alpha", alpha=1.5)


def test_itm_prob_is_softmax_match():
    stage2 = CandidateScores(np.array([[[1.0, 3.0]]], np.float32), np.zeros((1, 1), np.float32))
    np.testing.assert_allclose(stage2.itm_prob, [[np.exp(3) / (np.exp(1) + np.exp(3))]], rtol=1e-6)


def test_residual_rule_adds_the_scaled_stage1_score_to_the_itm_logit_gap():
    stage1 = np.array([[0.9, 0.8, 0.1]])
    stage2 = CandidateScores(np.array([[[1.0, 0.0], [0.0, 0.5], [0.0, 4.0]]]), np.zeros((1, 3)))
    fused = fused_scores(stage2, stage1, FusionConfig("residual", stage1_scale=10.0))
    np.testing.assert_allclose(fused, [[9.0 - 1.0, 8.0 + 0.5, 1.0 + 4.0]])
    ranked = rerank_at_depth(np.array([[10, 11, 12]]), stage1, stage2, 3, FusionConfig("residual", stage1_scale=10.0))
    assert ranked.tolist() == [[11, 10, 12]]
    with pytest.raises(ValueError, match="stage1_scale"):
        FusionConfig("residual", stage1_scale=-1.0)


def test_alpha_reranks_a_query_with_padding_slots():
    """A query with fewer candidates than k has padding slots (stage-1 score -inf, no stage-2 score): its real
    candidates are still reranked by the fused score and the padding goes last (before: the whole row was NaN and
    silently kept stage-1 order)."""
    stage1 = np.array([[0.9, 0.5, -np.inf]])
    logits = np.array([[[0.0, -3.0], [0.0, 3.0], [np.nan, np.nan]]], dtype=np.float32)
    stage2 = CandidateScores(logits, np.zeros((1, 3), dtype=np.float32))
    fused = fused_scores(stage2, stage1, FusionConfig(rule="alpha", alpha=0.5))
    assert np.isfinite(fused[0, :2]).all() and np.isnan(fused[0, 2])
    ids = np.array([[10, 11, -1]])
    assert rerank_at_depth(ids, stage1, stage2, 3, FusionConfig(rule="alpha", alpha=0.9)).tolist() == [[11, 10, -1]]
    scaled = minmax_per_query(np.array([[2.0, 1.0, np.nan, -np.inf], [1.0, 1.0, -np.inf, np.inf]]))
    np.testing.assert_array_equal(scaled, [[1.0, 0.0, np.nan, np.nan], [0.5, 0.5, np.nan, np.nan]])
