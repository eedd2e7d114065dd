"""Plots of one experiment (PNG + PDF each), drawn from a loaded results.json only.

- ``recall_curves``: R@K for K = 1..N (log x), stage 1 and each fusion rule at its largest depth,
  one panel per direction.
- ``depth_sweep``: t2i R@1, i2t R@1 and rsum against rerank depth, one line per fusion rule, stage 1
  as a dashed horizontal reference.
- ``quality_latency``: rsum against latency per query (mean of the t2i and i2t ms per query), one
  point per depth, labelled ``k=<depth>``; a hollow marker = latency not measured in the run itself
  (read from the cost ledger), said in the legend.

Uses matplotlib's object API (``Figure``), so no pyplot state and no backend switch are involved.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from eval.report.results_file import Results, Setting

logger = logging.getLogger(__name__)

DIRECTION_TITLES = {"t2i": "Text-to-image", "i2t": "Image-to-text"}
STAGE1_COLOR = "black"
RULE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")
DPI = 150
LABEL_OFFSETS = ((6, -13), (-8, 7), (6, 4), (-30, -13))  # per rule, so labels of equal-latency points don't collide


def _rule_colors(results: Results) -> dict[str, str]:
    """Fusion rule -> colour, in order of first appearance (stable across the three plots)."""
    rules: list[str] = []
    for setting in results.settings:
        if setting.rule is not None and setting.rule not in rules:
            rules.append(setting.rule)
    return {rule: RULE_COLORS[i % len(RULE_COLORS)] for i, rule in enumerate(rules)}


def _stage1_settings(results: Results) -> list[Setting]:
    return [s for s in results.settings if s.rule is None]


def _rule_lines(results: Results) -> dict[str, list[Setting]]:
    """Fusion rule -> its rerank settings with depth > 0, sorted by depth."""
    lines: dict[str, list[Setting]] = {}
    for setting in results.settings:
        if setting.rule is not None and setting.depth > 0:
            lines.setdefault(setting.rule, []).append(setting)
    return {rule: sorted(settings, key=lambda s: s.depth) for rule, settings in lines.items()}


def main_settings(results: Results) -> list[Setting]:
    """Stage-1 settings plus, per fusion rule, its deepest setting that has curves."""
    chosen = [s for s in _stage1_settings(results) if s.key in results.curves]
    for settings in _rule_lines(results).values():
        with_curves = [s for s in settings if s.key in results.curves]
        if with_curves:
            chosen.append(with_curves[-1])
    return chosen


def _nice_log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks covering [low, high] for a log axis (e.g. 1, 2, 5, 10, 20, 50, 100)."""
    start, stop = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks = [m * 10.0**e for e in range(start, stop + 1) for m in (1, 2, 5)]
    return [t for t in ticks if low <= t <= high] or [low, high]


def _plain_log_axis(ax, ticks: list[float]) -> None:
    """Log x axis with plain-number labels at ``ticks`` and no minor labels."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _save(fig: Figure, out_stem: Path) -> list[Path]:
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return paths


def _style(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)


def recall_curves(results: Results, out_stem: Path) -> list[Path]:
    """R@K curves (K = 1..N, log x), both directions; returns [png, pdf], or [] when there are no curves."""
    settings = main_settings(results)
    if not settings:
        logger.warning("%s: no recall curves in results; skipping the recall@K plot", results.path)
        return []
    colors = _rule_colors(results)
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, direction in zip(axes, ("t2i", "i2t")):
        depth = 1
        for setting in settings:
            curve = results.curves[setting.key].get(direction)
            if not curve:
                continue
            ks = np.arange(1, len(curve) + 1)
            depth = max(depth, len(curve))
            is_stage1 = setting.rule is None
            ax.plot(
                ks, curve, label=setting.label, linewidth=2.0 if is_stage1 else 1.8,
                linestyle="--" if is_stage1 else "-",
                color=STAGE1_COLOR if is_stage1 else colors[setting.rule],
            )
        _plain_log_axis(ax, _nice_log_ticks(1, depth))
        ax.set_xlim(1, depth)
        ax.set_ylim(0, 102)
        _style(ax, f"{DIRECTION_TITLES[direction]} ({direction})", "K (log scale)", "R@K (% of queries with a hit in top K)")
        ax.legend(loc="lower right", fontsize=8)
    reranked = any(setting.rule is not None for setting in settings)
    fig.suptitle(f"{results.experiment}: recall@K, " + ("stage 1 vs reranking at the largest depth" if reranked
                                                        else "stage 1 (no reranker configured)"))
    return _save(fig, out_stem)


def _log_depth_axis(ax, depths: list[int]) -> None:
    _plain_log_axis(ax, sorted(set(depths)))
    ax.xaxis.set_minor_locator(NullLocator())
    low, high = min(depths), max(depths)
    ax.set_xlim(low / 1.4, high * 1.4)


def depth_sweep(results: Results, out_stem: Path) -> list[Path]:
    """t2i R@1, i2t R@1 and rsum against rerank depth; returns [png, pdf], or [] without rerank settings."""
    lines = _rule_lines(results)
    if not lines:
        logger.warning("%s: no rerank settings with depth > 0; skipping the depth plot", results.path)
        return []
    colors = _rule_colors(results)
    panels = (("t2i/R@1", "Text-to-image R@1", "R@1 (%)"), ("i2t/R@1", "Image-to-text R@1", "R@1 (%)"),
              ("rsum", "rsum", "rsum (sum of six R@K, %)"))
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    depths = [s.depth for settings in lines.values() for s in settings]
    for ax, (metric, title, ylabel) in zip(axes, panels):
        for setting in _stage1_settings(results):
            value = results.metric(setting, metric)
            if not math.isnan(value):
                ax.axhline(value, color=STAGE1_COLOR, linestyle="--", linewidth=1.5, label=setting.label)
        for rule, settings in lines.items():
            values = [results.metric(s, metric) for s in settings]
            ax.plot([s.depth for s in settings], values, marker="o", color=colors[rule], label=f"rerank: {rule}")
        _log_depth_axis(ax, depths)
        _style(ax, title, "rerank depth k (log scale)", ylabel)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{results.experiment}: quality against rerank depth")
    return _save(fig, out_stem)


def _mean_latency(setting: Setting) -> float:
    values = [setting.ms_per_query[d] for d in ("t2i", "i2t") if d in setting.ms_per_query]
    return float(np.mean(values)) if values else math.nan


def _latency_measured(setting: Setting) -> bool:
    """True when every latency behind the setting's mean was measured in the run itself."""
    return all(setting.latency_measured(d) for d in ("t2i", "i2t") if d in setting.ms_per_query)


LEDGER_LEGEND = "hollow: latency from the cost ledger (not measured in this run)"


def quality_latency_figure(results: Results) -> Figure | None:
    """The quality/latency figure (see the module docstring), None without latency numbers."""
    colors = _rule_colors(results)
    fig = Figure(figsize=(7.5, 5), layout="constrained")
    ax = fig.subplots()
    latencies, hollow = [], False
    for setting in _stage1_settings(results):
        x, y = _mean_latency(setting), results.metric(setting, "rsum")
        if math.isnan(x) or math.isnan(y):
            continue
        latencies.append(x)
        measured = _latency_measured(setting)
        hollow |= not measured
        ax.plot([x], [y], marker="*", markersize=14, linestyle="none", color=STAGE1_COLOR, label=setting.label,
                markerfacecolor=STAGE1_COLOR if measured else "none")
        ax.annotate("stage 1", (x, y), textcoords="offset points", xytext=(9, -4), fontsize=8)
    for index, (rule, settings) in enumerate(_rule_lines(results).items()):
        points = [(_mean_latency(s), results.metric(s, "rsum"), s.depth, _latency_measured(s)) for s in settings]
        points = [p for p in points if not (math.isnan(p[0]) or math.isnan(p[1]))]
        if not points:
            continue
        xs, ys, _, flags = zip(*points)
        latencies.extend(xs)
        ax.plot(xs, ys, color=colors[rule], label=f"rerank: {rule}")
        for x, y, k, measured in points:
            hollow |= not measured
            ax.plot([x], [y], marker="o", linestyle="none", color=colors[rule],
                    markerfacecolor=colors[rule] if measured else "none")
            ax.annotate(f"k={k}", (x, y), textcoords="offset points", xytext=LABEL_OFFSETS[index % len(LABEL_OFFSETS)],
                        fontsize=8, color=colors[rule])
    if not latencies:
        logger.warning("%s: no latency numbers; skipping the quality/latency plot", results.path)
        return None
    low, high = min(latencies), max(latencies)
    if low > 0 and high / low > 20:
        _plain_log_axis(ax, _nice_log_ticks(low, high))
        ax.set_xlim(low / 1.3, high * 1.3)
    ax.margins(y=0.08)
    _style(ax, f"{results.experiment}: quality against latency", "latency per query (ms, mean of t2i and i2t)",
           "rsum (sum of six R@K, %)")
    handles, labels = ax.get_legend_handles_labels()
    if hollow:
        handles.append(Line2D([], [], marker="o", linestyle="none", color="gray", markerfacecolor="none"))
        labels.append(LEDGER_LEGEND)
    ax.legend(handles, labels, loc="lower right", fontsize=8)
    return fig


def quality_latency(results: Results, out_stem: Path) -> list[Path]:
    """rsum against mean latency per query; returns [png, pdf], or [] without latency numbers."""
    fig = quality_latency_figure(results)
    return [] if fig is None else _save(fig, out_stem)


PLOTS: tuple[tuple[str, Callable[[Results, Path], list[Path]]], ...] = (
    ("recall_curves", recall_curves),
    ("depth_sweep", depth_sweep),
    ("quality_latency", quality_latency),
)


def write_plots(results: Results, out_dir: Path) -> list[Path]:
    """Every plot of PLOTS as ``<out_dir>/<name>.png`` and ``.pdf``; returns the paths written."""
    paths: list[Path] = []
    for name, plot in PLOTS:
        paths.extend(plot(results, Path(out_dir) / name))
    return paths
