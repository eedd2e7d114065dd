"""The ``analysis`` section of results.json, from every cell's per-query values (no model runs).

Keys: ``<cell>/<direction>/<metric>`` for intervals and comparisons, ``<cell>/<direction>`` for win/loss and
ceiling shares, where ``<cell>`` is a setting key (``stage1``, ``stage2/itm/k=10``, ``stage2@hnsw/rrf/k=5``).
Stage-2 cells are compared with the stage 1 of their stage-1 setting; every cell with the best cell of its
direction for the tested metric (over all settings). See ``significance`` and ``breakdown`` for the definitions.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from eval.analysis.breakdown import ceiling, ceiling_share, recommend_depth, win_loss
from eval.analysis.per_query import DIRECTIONS, QueryValues
from eval.analysis.significance import (BootstrapSettings, Comparison, paired_bootstrap_means, percentile_interval,
                                        shift_p_values, with_adjustment)

TESTED_METRICS = ("R@1", "R@5", "MRR")
INTERVAL_METRICS = ("R@1", "R@5", "R@10", "MRR", "mAP", "nDCG@10")


def stage1_key_of(setting: Mapping[str, Any]) -> str:
    """The stage-1 setting key a cell builds on (``stage1`` or ``stage1@<variant>``)."""
    return f"stage1@{setting['variant']}" if setting.get("variant") else "stage1"


def _significance(cells: Mapping[str, Mapping[str, QueryValues]], settings: Sequence[Mapping[str, Any]],
                  boot: BootstrapSettings) -> dict[str, Any]:
    """Intervals of every cell's metrics and paired comparisons; one bootstrap of every (cell, metric) row per
    direction, the comparisons read as differences of rows that share their resamples."""
    intervals: dict[str, list[float]] = {}
    families: dict[tuple[str, str, str], list[tuple[str, Comparison]]] = {}
    for stream, d in enumerate(DIRECTIONS):
        rows = {(s["key"], m): i for i, (s, m) in enumerate((s, m) for s in settings for m in INTERVAL_METRICS)}
        values = np.stack([cells[key][d].values[metric] * 100.0 for key, metric in rows])
        distribution = paired_bootstrap_means(values, boot, stream)
        means = values.mean(axis=1)
        for (key, metric), (lo, hi) in zip(rows, percentile_interval(distribution, boot.confidence)):
            intervals[f"{key}/{d}/{metric}"] = [float(lo), float(hi)]
        for metric in TESTED_METRICS:
            best = max(settings, key=lambda s: means[rows[(s["key"], metric)]])["key"]
            for s in settings:
                for kind, reference in (("vs_stage1", stage1_key_of(s)), ("vs_best", best)):
                    if reference == s["key"] or (kind == "vs_stage1" and s["depth"] == 0):
                        continue
                    a, b = rows[(s["key"], metric)], rows[(reference, metric)]
                    observed = np.array([means[a] - means[b]])
                    diff = (distribution[a] - distribution[b])[None]
                    [(lo, hi)] = percentile_interval(diff, boot.confidence)
                    [p] = shift_p_values(observed, diff)
                    comparison = Comparison(reference, float(observed[0]), (float(lo), float(hi)), float(p))
                    families.setdefault((kind, d, metric), []).append((f"{s['key']}/{d}/{metric}", comparison))
    out: dict[str, Any] = {"intervals": intervals, "vs_stage1": {}, "vs_best": {}}
    for (kind, _, _), members in families.items():
        adjusted = with_adjustment([c for _, c in members], boot.alpha)
        out[kind].update({key: c.as_dict() for (key, _), c in zip(members, adjusted)})
    return out


def _recommendations(settings: Sequence[Mapping[str, Any]], metrics: Mapping[str, float],
                     within: float) -> dict[str, Any]:
    """Per rule and stage-1 setting (``itm``, ``itm@hnsw``): the recommended depth and its latency."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for s in settings:
        if s["depth"] > 0:
            groups.setdefault(s["rule"] + (f"@{s['variant']}" if s.get("variant") else ""), []).append(s)
    out = {}
    for name, members in groups.items():
        by_depth = {s["depth"]: metrics[f"{s['key']}/rsum"] for s in members}
        choice = recommend_depth(by_depth, within)
        cell = next(s for s in members if s["depth"] == choice["depth"])
        out[name] = {**choice, "cell": cell["key"], "ms_per_query": dict(cell.get("ms_per_query", {}))}
    return out


def analyse(cells: Mapping[str, Mapping[str, QueryValues]], settings: Sequence[Mapping[str, Any]],
            metrics: Mapping[str, float], curves: Mapping[str, Mapping[str, Sequence[float]]],
            boot: BootstrapSettings, within: float, significance: bool = True) -> dict[str, Any]:
    """The ``analysis`` section: ``method``, ``intervals``, ``vs_stage1``, ``vs_best`` (when ``significance``),
    ``win_loss``, ``ceiling``, ``ceiling_share``, ``recommendation``.

    ``cells[key][direction]``: per-query values of every setting of ``settings`` (results.json's entries, in
    order); ``metrics`` and ``curves``: results.json's sections for the same run.
    """
    missing = [s["key"] for s in settings if s["key"] not in cells]
    if missing:
        raise KeyError(f"no per-query values for {missing}")
    out: dict[str, Any] = {"method": {
        "test": "paired bootstrap over queries, two-sided (shift method), scipy.stats.bootstrap",
        "resamples": boot.resamples, "confidence": boot.confidence, "alpha": boot.alpha, "seed": boot.seed,
        "adjustment": "Benjamini-Hochberg over the cells of one direction, metric and reference kind",
        "tested_metrics": list(TESTED_METRICS), "interval_metrics": list(INTERVAL_METRICS),
        "recommend_within": within}}
    if significance:
        out.update(_significance(cells, settings, boot))
    out["win_loss"], out["ceiling"], out["ceiling_share"] = {}, {}, {}
    for s in settings:
        if s["depth"] == 0:
            continue
        stage1 = stage1_key_of(s)
        for d in DIRECTIONS:
            out["win_loss"][f"{s['key']}/{d}"] = win_loss(cells[s["key"]][d].rank, cells[stage1][d].rank)
            top = ceiling(curves[stage1][d], s["depth"])
            out["ceiling"].setdefault(f"{stage1}/{d}", {})[str(s["depth"])] = top
            out["ceiling_share"][f"{s['key']}/{d}"] = ceiling_share(metrics[f"{s['key']}/{d}/R@1"], top)
    out["recommendation"] = _recommendations(settings, metrics, within)
    return out
