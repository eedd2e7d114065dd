"""The paired bootstrap against a direct computation: every resample of a small hand case enumerated."""

import itertools

import numpy as np
import pytest

from eval.analysis.significance import (BootstrapSettings, adjusted, bootstrap_means, compare, percentile_interval,
                                        shift_p_values, with_adjustment)

# Per-query R@1 of two systems on 6 queries: A fixes queries 0, 2 and 3, breaks query 5.
A = np.array([1, 1, 1, 1, 0, 0], dtype=float)
B = np.array([0, 1, 0, 0, 0, 1], dtype=float)


def exact_bootstrap(diff: np.ndarray) -> np.ndarray:
    """Mean of every one of the n**n equally likely ordered resamples of ``diff``."""
    n = len(diff)
    return np.array([diff[list(idx)].mean() for idx in itertools.product(range(n), repeat=n)])


def test_p_value_and_interval_match_the_enumerated_bootstrap():
    diff = (A - B) * 100.0
    exact = exact_bootstrap(diff)
    observed = diff.mean()
    exact_p = np.mean(np.abs(exact - observed) >= abs(observed))
    exact_interval = np.percentile(exact, [2.5, 97.5])
    [result] = compare(A, [B], ["B"], BootstrapSettings(resamples=20_000, seed=3))
    assert result.difference == pytest.approx(observed)
    # Monte Carlo with 20k resamples: standard error of p about 0.0035
    assert result.p == pytest.approx(exact_p, abs=0.015)
    assert result.interval[0] == pytest.approx(exact_interval[0], abs=100 / 6 + 1e-9)
    assert result.interval[1] == pytest.approx(exact_interval[1], abs=100 / 6 + 1e-9)
    assert 0.2 < result.p < 0.6  # 2 net fixes out of 6 queries is not evidence


def test_identical_systems_have_p_one_and_a_large_clear_difference_is_significant():
    rng = np.random.default_rng(0)
    base = (rng.random(2000) < 0.3).astype(float)
    better = base.copy()
    better[np.flatnonzero(base == 0)[:300]] = 1.0  # 300 queries fixed, none broken
    same, far = compare(base, [base, better], ["same", "better"], BootstrapSettings(resamples=2000, seed=1))
    assert same.p == 1.0 and same.difference == 0.0
    assert far.p == pytest.approx(1 / 2001)
    assert far.difference == pytest.approx(-15.0)
    assert far.interval[0] < -15.0 < far.interval[1] < 0


def test_the_resampling_is_seeded_and_rows_use_the_settings():
    values = np.random.default_rng(2).random((3, 50))
    one = bootstrap_means(values, BootstrapSettings(resamples=1000, seed=7))
    two = bootstrap_means(values, BootstrapSettings(resamples=1000, seed=7))
    other = bootstrap_means(values, BootstrapSettings(resamples=1000, seed=8))
    assert one.shape == (3, 1000)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, other)
    assert np.allclose(one.mean(axis=1), values.mean(axis=1), atol=0.02)


def test_shift_p_values_by_hand():
    distribution = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    # observed 3: resamples at distance >= 3 from 3: none -> (1 + 0) / 6
    assert shift_p_values(np.array([3.0]), distribution)[0] == pytest.approx(1 / 6)
    # observed 1: distance >= 1 from 1: 2, 3, 4, 5 -> (1 + 4) / 6
    assert shift_p_values(np.array([1.0]), distribution - 2.0)[0] == pytest.approx(5 / 6)
    np.testing.assert_allclose(percentile_interval(distribution, 0.5), [[2.0, 4.0]])


def test_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.20]
    # sorted 0.01, 0.03, 0.04, 0.20 -> 0.04, 0.06, 0.0533, 0.20 -> monotone from the top: 0.04, 0.0533, 0.0533, 0.2
    np.testing.assert_allclose(adjusted(p), [0.04, 0.16 / 3, 0.16 / 3, 0.20])
    comparisons = compare(A, [B, A, 1 - A], ["B", "A", "not A"], BootstrapSettings(resamples=1000))
    flagged = with_adjustment(comparisons, alpha=0.05)
    assert [c.significant for c in flagged] == [c.p_adjusted < 0.05 for c in flagged]
    assert all(c.p_adjusted >= c.p for c in flagged)
    assert adjusted([]).size == 0


def test_values_need_queries():
    with pytest.raises(ValueError, match="at least 2 queries"):
        bootstrap_means(np.zeros((2, 1)), BootstrapSettings())


def test_rows_share_their_resamples_so_row_differences_are_paired():
    from eval.analysis.significance import paired_bootstrap_means

    rng = np.random.default_rng(4)
    a = (rng.random(300) < 0.5).astype(float)
    b = a.copy()
    b[:30] = 1 - b[:30]
    settings = BootstrapSettings(resamples=2000, seed=5)
    shared = paired_bootstrap_means(np.stack([a, b]), settings)
    explicit = bootstrap_means((a - b)[None], settings)
    # the same seed draws the same query indices, so both ways give one distribution of the paired difference
    np.testing.assert_allclose(shared[0] - shared[1], explicit[0], atol=1e-12)
