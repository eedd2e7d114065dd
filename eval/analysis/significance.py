"""Is a difference real? Paired bootstrap over queries, and bootstrap confidence intervals.

Resampling is ``scipy.stats.bootstrap`` (the queries of a direction drawn with replacement, ``resamples`` times,
seeded). For each metric value of a cell, the 95% percentile interval of its mean. For each comparison of a cell
A with a reference B (stage 1 of its stage-1 setting, or the best cell of the direction for that metric) the
per-query differences ``d_q = A_q - B_q`` are resampled (pairing kept: a query's two values move together), and
the two-sided p-value is the share of bootstrap means at least as far from the observed mean as the observed mean
is from 0 (the shift method; Efron and Tibshirani 1993, section 16.4; Sakai 2006):
``p = (1 + #{b : |mean*_b - mean| >= |mean|}) / (1 + resamples)``; identical rankings give p = 1.
p-values of a family (one direction, one metric, one kind of reference, all cells) are adjusted with
Benjamini-Hochberg (``scipy.stats.false_discovery_control``); a difference is significant when the adjusted p is
below ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

BATCH_BYTES = 256 * 2**20  # scipy materialises [rows, batch, Q] resamples; keep that under 256 MiB


@dataclass(frozen=True)
class BootstrapSettings:
    """How differences are tested.

    Attributes:
        resamples: bootstrap resamples (>= 1000; 10,000 by default).
        confidence: level of the confidence intervals.
        alpha: significance level of the adjusted p-values.
        seed: seed of the resampling (a run's results are reproducible).
    """

    resamples: int = 10_000
    confidence: float = 0.95
    alpha: float = 0.05
    seed: int = 0


def bootstrap_means(values: np.ndarray, settings: BootstrapSettings, stream: int = 0) -> np.ndarray:
    """float64 ``[R, resamples]``: the bootstrap distribution of the mean of each row of ``values`` ``[R, Q]``
    (``scipy.stats.bootstrap``, seeded by ``settings.seed`` and ``stream``)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"values must be [rows, queries] with at least 2 queries, got shape {values.shape}")
    batch = max(1, min(settings.resamples, BATCH_BYTES // max(1, values.size * 8)))
    result = stats.bootstrap((values,), np.mean, n_resamples=settings.resamples, axis=-1, vectorized=True,
                             confidence_level=settings.confidence, method="percentile", batch=batch,
                             random_state=np.random.default_rng([settings.seed, stream]))
    return np.asarray(result.bootstrap_distribution, dtype=np.float64).reshape(len(values), -1)


def paired_bootstrap_means(values: np.ndarray, settings: BootstrapSettings, stream: int = 0) -> np.ndarray:
    """:func:`bootstrap_means` whose rows share their resamples (resample b draws the same queries for every
    row), so ``out[i] - out[j]`` is the bootstrap distribution of the mean paired difference of rows i and j.

    scipy draws one index array per resample and applies it along the query axis of every row; a guard row
    (row 0 plus 1) checks that this still holds and raises otherwise, so a change in scipy cannot silently
    unpair the comparisons.
    """
    values = np.asarray(values, dtype=np.float64)
    guarded = np.concatenate([values, values[:1] + 1.0])
    out = bootstrap_means(guarded, settings, stream)
    if not np.allclose(out[-1] - out[0], 1.0, rtol=0, atol=1e-9):
        raise RuntimeError("scipy.stats.bootstrap no longer resamples the rows of one sample together; "
                           "paired differences must be resampled explicitly (significance.compare)")
    return out[:-1]


def percentile_interval(distribution: np.ndarray, confidence: float) -> np.ndarray:
    """``[R, 2]`` lower and upper percentile bounds of each row of a bootstrap distribution ``[R, B]``."""
    tail = (1.0 - confidence) / 2.0 * 100.0
    return np.percentile(distribution, [tail, 100.0 - tail], axis=1).T


def shift_p_values(observed: np.ndarray, distribution: np.ndarray) -> np.ndarray:
    """Two-sided p-values ``[R]`` of the mean differences ``observed`` ``[R]`` given their bootstrap
    distributions ``[R, B]`` (module docstring). A zero observed difference gets 1."""
    observed = np.asarray(observed, dtype=np.float64)
    far = np.abs(distribution - observed[:, None]) >= np.abs(observed)[:, None] - 1e-12
    p = (1.0 + far.sum(axis=1)) / (1.0 + distribution.shape[1])
    return np.where(observed == 0.0, 1.0, np.minimum(p, 1.0))


def adjusted(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``); empty in, empty out."""
    from scipy import stats

    p = np.asarray(p_values, dtype=np.float64)
    return stats.false_discovery_control(p, method="bh") if p.size else p


@dataclass(frozen=True)
class Comparison:
    """One paired comparison of a cell A with a reference B on one metric (values in percent).

    Attributes:
        reference: the reference cell's key.
        difference: mean of A - B over queries.
        interval: bootstrap percentile interval of the difference.
        p: two-sided paired bootstrap p-value.
        p_adjusted: Benjamini-Hochberg adjusted over the family (set by :func:`with_adjustment`).
        significant: ``p_adjusted < alpha``.
    """

    reference: str
    difference: float
    interval: tuple[float, float]
    p: float
    p_adjusted: float = float("nan")
    significant: bool = False

    def as_dict(self) -> dict:
        return {"reference": self.reference, "difference": self.difference, "interval": list(self.interval),
                "p": self.p, "p_adjusted": self.p_adjusted, "significant": self.significant}


def compare(a: np.ndarray, b: Sequence[np.ndarray], references: Sequence[str],
            settings: BootstrapSettings, stream: int = 0) -> list[Comparison]:
    """Paired comparisons of per-query values ``a`` ``[Q]`` with each of ``b`` (``[Q]`` each, named by
    ``references``), all resampled in one call. Differences in percent points."""
    diffs = np.stack([np.asarray(a, dtype=np.float64) - np.asarray(x, dtype=np.float64) for x in b]) * 100.0
    return comparisons_of(diffs, references, settings, stream)


def comparisons_of(diffs: np.ndarray, references: Sequence[str], settings: BootstrapSettings,
                   stream: int = 0) -> list[Comparison]:
    """:class:`Comparison` of each row of per-query differences ``diffs`` ``[R, Q]`` (percent points)."""
    observed = diffs.mean(axis=1)
    distribution = bootstrap_means(diffs, settings, stream)
    bounds = percentile_interval(distribution, settings.confidence)
    p = shift_p_values(observed, distribution)
    return [Comparison(ref, float(o), (float(lo), float(hi)), float(pv))
            for ref, o, (lo, hi), pv in zip(references, observed, bounds, p)]


def with_adjustment(family: Sequence[Comparison], alpha: float) -> list[Comparison]:
    """The comparisons of one family with Benjamini-Hochberg adjusted p-values and the significance flag."""
    adj = adjusted([c.p for c in family])
    return [Comparison(c.reference, c.difference, c.interval, c.p, float(q), bool(q < alpha))
            for c, q in zip(family, adj)]
