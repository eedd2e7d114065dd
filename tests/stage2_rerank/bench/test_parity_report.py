"""Parity report: Kendall tau-b against scipy, and the report's numbers on a hand-made case."""

from __future__ import annotations

import numpy as np
import pytest

from stage2_rerank.bench.parity import kendall_tau_b, parity_report


def test_kendall_tau_b_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.integers(0, 4, 12).astype(float)
        b = a + rng.integers(-2, 3, 12)
        assert kendall_tau_b(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)


def test_report_on_hand_case():
    reference = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 20.0])
    candidate = np.array([1.0, 2.0, 4.5, 3.0, 10.0, 20.5])
    report = parity_report(reference, candidate, [np.array([0, 1, 2, 3]), np.array([4, 5, -1])])
    assert report.n_pairs == 6 and report.n_queries == 2
    assert report.max_abs_error == pytest.approx(1.5)
    assert report.mean_abs_error == pytest.approx((1.5 + 1.0 + 0.5) / 6)
    # query 1: one discordant pair of 6 -> tau 4/6; query 2: concordant -> 1
    assert report.kendall_tau_mean == pytest.approx((4 / 6 + 1) / 2)
    assert report.kendall_tau_min == pytest.approx(4 / 6)
    assert report.top1_agreement == pytest.approx(0.5)  # query 1's best differs (item 3 vs item 2)
