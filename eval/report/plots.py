"""Plots (PNG + PDF each), drawn from loaded results.json files only.

Of one experiment (``write_plots``):

- ``recall_curves``: R@K for K = 1..N (log x), stage 1 and each fusion rule at its largest depth,
  one panel per direction.
- ``depth_sweep``: t2i R@1, i2t R@1 and rsum against rerank depth, one line per fusion rule, stage 1
  as a dashed horizontal reference; on the R@1 panels the ceiling (stage 1's R@k: the R@1 a perfect reranker
  of the first k candidates reaches) as a dotted grey line; on the rsum panel a ring around each rule's
  recommended depth (``analysis.recommendation``).
- ``quality_latency``: rsum against latency per query (mean of the t2i and i2t ms per query), one
  point per depth, labelled ``k=<depth>``; a hollow marker = latency not measured in the run itself
  (read from the cost ledger), said in the legend; a ring marks each rule's recommended depth.

Of several experiments (``write_comparison_plots``, the merged report): ``depth_sweep`` and
``quality_latency`` with every experiment in one figure, colour = experiment (its dataset named in the
legend), marker = fusion rule, stage 1 in its experiment's colour (dashed line / star).

Every title names its experiment(s). Legends sit outside the axes, so they never cover a point; point labels
are placed by ``place_labels`` next to their point without overlapping each other, a marker or the axes'
edge (a label that finds no free place is left out, never drawn over another).

Uses matplotlib's object API (``Figure``), so no pyplot state and no backend switch are involved.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.path import Path as MplPath
from matplotlib.text import Annotation
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator
from matplotlib.transforms import Bbox

from eval.report.results_file import Results, Setting

logger = logging.getLogger(__name__)

DIRECTION_TITLES = {"t2i": "Text-to-image", "i2t": "Image-to-text"}
STAGE1_COLOR = "black"
RULE_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")
EXPERIMENT_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                     "tab:olive", "tab:cyan", "tab:gray")
RULE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
SHARED_LABEL_COLOR = "0.2"  # a label shared by the coincident points of several rules
DPI = 150
TITLE_WIDTH = 90  # characters per title line
LEDGER_LEGEND = "hollow marker: latency from the cost ledger\n(not measured in this run)"
CEILING_COLOR = "tab:gray"
RING = {"marker": "o", "markersize": 15, "markerfacecolor": "none", "markeredgewidth": 2.0, "linestyle": "none"}
DEPTH_PANELS = (("t2i/R@1", "Text-to-image R@1", "R@1 (%)"), ("i2t/R@1", "Image-to-text R@1", "R@1 (%)"),
                ("rsum", "rsum", "rsum (sum of six R@K, %)"))


def _rule_colors(results: Results) -> dict[str, str]:
    """Fusion rule -> colour, in order of first appearance (stable across the three plots)."""
    return {rule: RULE_COLORS[i % len(RULE_COLORS)] for i, rule in enumerate(_rules([results]))}


def _rules(results_list: Sequence[Results]) -> list[str]:
    """Fusion rules of the files, in order of first appearance."""
    rules: list[str] = []
    for results in results_list:
        for setting in results.settings:
            if setting.rule is not None and setting.rule not in rules:
                rules.append(setting.rule)
    return rules


def _stage1_settings(results: Results) -> list[Setting]:
    return [s for s in results.settings if s.rule is None]


def _rule_lines(results: Results) -> dict[str, list[Setting]]:
    """Fusion rule -> its rerank settings with depth > 0, sorted by depth."""
    lines: dict[str, list[Setting]] = {}
    for setting in results.settings:
        if setting.rule is not None and setting.depth > 0:
            lines.setdefault(setting.rule, []).append(setting)
    return {rule: sorted(settings, key=lambda s: s.depth) for rule, settings in lines.items()}


def ceiling_points(results: Results, stage1: Setting, direction: str, depths: Sequence[int]) -> list[tuple[int, float]]:
    """``(k, stage 1's R@k)`` for each depth k, from the stage-1 recall curve (empty without the curve)."""
    curve = results.curves.get(stage1.key, {}).get(direction) or []
    return [(k, float(curve[min(k, len(curve)) - 1])) for k in sorted(set(depths)) if curve and k >= 1]


def recommended_settings(results: Results) -> dict[str, Setting]:
    """Rule -> its recommended setting (``analysis.recommendation``), for the settings present in ``results``."""
    by_key = {s.key: s for s in results.settings}
    out = {}
    for name, entry in (results.analysis.get("recommendation") or {}).items():
        setting = by_key.get(entry.get("cell", ""))
        if setting is not None and setting.rule is not None:
            out[name] = setting
    return out


def recommendation_label(results: Results) -> str:
    within = results.analysis.get("method", {}).get("recommend_within", 1.0)
    return f"recommended k: smallest with rsum\nwithin {within:g} of the rule's best"


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


def _plain_log_axis(ax: Axes, ticks: list[float]) -> None:
    """Log x axis with plain-number labels at ``ticks`` and no minor labels."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of ``width`` x ``height`` inches at DPI, on an Agg canvas (so
    ``fig.canvas.get_renderer()`` measures text as the saved PNG draws it)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_stem: Path) -> list[Path]:
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return paths


def _style(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)


def _title(names: Sequence[str], what: str) -> str:
    """``"<experiment>: <what>"``, or ``"<a> vs <b>: <what>"`` for a comparison, wrapped to TITLE_WIDTH."""
    who = " vs ".join(names) if len(names) <= 3 else ", ".join(names)
    return textwrap.fill(f"{who}: {what}", TITLE_WIDTH, break_long_words=False)


def _experiment_label(results: Results) -> str:
    """Experiment name and, when the file records it, its dataset (``demo (synthetic-seed0, test)``)."""
    return f"{results.experiment} ({results.dataset})" if results.dataset else results.experiment


# ---------------------------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class PointLabel:
    """A text to write next to the data point (x, y) of an axes."""

    x: float
    y: float
    text: str
    color: str


LABEL_FONTSIZE = 8
LABEL_GAPS = (3, 7, 12, 18)  # points between a marker's edge and its label, tried nearest first
LABEL_DIRECTIONS = ((1, 0), (1, 1), (1, -1), (0, 1), (0, -1), (-1, 0), (-1, 1), (-1, -1))  # E NE SE N S W NW SW
LABEL_PAD_PX = 2.5  # clearance kept around each label (covers its white backing box)
LABEL_BACKING = {"boxstyle": "square,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.7}


def _marker_boxes(ax: Axes) -> list[Bbox]:
    """Display-space boxes of every marker drawn on ``ax``."""
    boxes = []
    for line in ax.lines:
        if line.get_marker() in (None, "None", "", " ") or not line.get_visible():
            continue
        size = line.get_markersize() * ax.figure.dpi / 72
        for x, y in ax.transData.transform(np.column_stack(line.get_data())):
            if np.isfinite(x) and np.isfinite(y):
                boxes.append(Bbox.from_bounds(x - size / 2, y - size / 2, size, size))
    return boxes


def _line_paths(ax: Axes) -> list[MplPath]:
    """Display-space polylines of every line drawn with a line style on ``ax``."""
    paths = []
    for line in ax.lines:
        if line.get_linestyle() in ("None", "", " ") or len(line.get_xdata()) < 2:
            continue
        points = ax.transData.transform(np.column_stack(line.get_data()))
        points = points[np.all(np.isfinite(points), axis=1)]
        if len(points) >= 2:
            paths.append(MplPath(points))
    return paths


def _padded(box: Bbox) -> Bbox:
    return Bbox.from_extents(box.x0 - LABEL_PAD_PX, box.y0 - LABEL_PAD_PX, box.x1 + LABEL_PAD_PX, box.y1 + LABEL_PAD_PX)


def place_labels(ax: Axes, labels: Sequence[PointLabel], marker_size: float = 8) -> list[Annotation]:
    """Write each label next to its point where it overlaps no other label, no marker, no legend and stays inside
    the axes; among such places the one whose middle is nearer its own point than any other marker, crossing the
    fewest lines and nearest the point wins (a white backing keeps a line that still crosses it behind the text).
    A label with no such place is left out (logged at debug level). Labels do not take part in the figure's
    layout, which is settled first, so the places found are the places drawn. Returns the annotations drawn.

    Args:
        ax: axes whose data, limits and legend are final.
        labels: texts and their points; points within 3 pixels of each other should share one label.
        marker_size: marker size (points) of the labelled points, the least distance of a label from its point.
    """
    fig = ax.figure
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()  # an Agg canvas (``_new_figure``)
    frame = ax.get_window_extent(renderer)
    inside = Bbox.from_extents(frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    markers = _marker_boxes(ax)
    obstacles = [_padded(box) for box in markers]
    marker_xs = np.array([box.intervalx.mean() for box in markers])
    marker_ys = np.array([box.intervaly.mean() for box in markers])
    legend = ax.get_legend()
    if legend is not None:
        obstacles.append(_padded(legend.get_window_extent(renderer)))
    paths = _line_paths(ax)
    centres = ax.transData.transform([(label.x, label.y) for label in labels]) if labels else np.zeros((0, 2))
    crowding = [int(np.sum(np.hypot(*(centres - c).T) < 40)) for c in centres]
    drawn = []
    for index in sorted(range(len(labels)), key=lambda i: -crowding[i]):
        label = labels[index]
        annotation = ax.annotate(label.text, (label.x, label.y), textcoords="offset points", xytext=(0, 0),
                                 fontsize=LABEL_FONTSIZE, color=label.color, bbox=LABEL_BACKING)
        annotation.set_in_layout(False)
        best, best_cost = None, math.inf
        for gap_rank, gap in enumerate(LABEL_GAPS):
            for direction_rank, (dx, dy) in enumerate(LABEL_DIRECTIONS):
                reach = marker_size / 2 + gap
                scale = 0.75 if dx and dy else 1.0
                annotation.xyann = (dx * reach * scale, dy * reach * scale)
                annotation.set_horizontalalignment({1: "left", 0: "center", -1: "right"}[dx])
                annotation.set_verticalalignment({1: "bottom", 0: "center_baseline", -1: "top"}[dy])
                box = _padded(annotation.get_window_extent(renderer))
                if not (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1):
                    continue
                if any(box.overlaps(other) for other in obstacles):
                    continue
                crossings = sum(path.intersects_bbox(box, filled=False) for path in paths)
                middle = (box.intervalx.mean(), box.intervaly.mean())
                own = math.dist(middle, centres[index])
                others = np.hypot(marker_xs - middle[0], marker_ys - middle[1])
                others = others[np.hypot(marker_xs - centres[index][0], marker_ys - centres[index][1]) > 3]
                ambiguous = bool(len(others)) and others.min() < own  # nearer another point than its own
                cost = 4 * ambiguous + 3 * crossings + 1.5 * gap_rank + 0.1 * direction_rank
                if cost < best_cost:
                    best, best_cost = (annotation.xyann, annotation.get_ha(), annotation.get_va(), box), cost
        if best is None:
            logger.debug("no free place for the label %r at (%g, %g); left out", label.text, label.x, label.y)
            annotation.remove()
            continue
        annotation.xyann, ha, va, box = best
        annotation.set_horizontalalignment(ha)
        annotation.set_verticalalignment(va)
        obstacles.append(box)
        drawn.append(annotation)
    return drawn


def _merge_coincident(points: list[tuple[float, float, str, str, str]], ax: Axes) -> list[PointLabel]:
    """One label per group of points drawn within 3 pixels of each other. ``points``: (x, y, depth label, rule,
    colour). A group of one rule keeps its colour; a point shared by several rules gets SHARED_LABEL_COLOR (the
    lines through it show which rules share it; the legend says what the colour means)."""
    fig = ax.figure
    fig.draw_without_rendering()
    groups: list[list[tuple[float, float, str, str, str]]] = []
    for point in points:
        px = ax.transData.transform((point[0], point[1]))
        for group in groups:
            if np.hypot(*(ax.transData.transform((group[0][0], group[0][1])) - px)) <= 3:
                group.append(point)
                break
        else:
            groups.append([point])
    labels = []
    for group in groups:
        x, y = group[0][0], group[0][1]
        depths = ", ".join(dict.fromkeys(p[2] for p in group))
        shared = len({p[3] for p in group}) > 1
        labels.append(PointLabel(x, y, depths, SHARED_LABEL_COLOR if shared else group[0][4]))
    return labels


# ---------------------------------------------------------------------------------------------- one experiment


def recall_curves_figure(results: Results) -> Figure | None:
    """The recall@K figure (see the module docstring), None when the file has no curves."""
    settings = main_settings(results)
    if not settings:
        logger.warning("%s: no recall curves in results; skipping the recall@K plot", results.path)
        return None
    colors = _rule_colors(results)
    fig = _new_figure(12.5, 4.4)
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
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=8)
    reranked = any(setting.rule is not None for setting in settings)
    fig.suptitle(_title([results.experiment], "recall@K, " + ("stage 1 vs reranking at the largest depth" if reranked
                                                              else "stage 1 (no reranker configured)")))
    return fig


def _log_depth_axis(ax: Axes, depths: list[int]) -> None:
    _plain_log_axis(ax, sorted(set(depths)))
    ax.xaxis.set_minor_locator(NullLocator())
    low, high = min(depths), max(depths)
    ax.set_xlim(low / 1.4, high * 1.4)


def depth_sweep_figure(results: Results) -> Figure | None:
    """The depth-sweep figure (see the module docstring), None without rerank settings."""
    lines = _rule_lines(results)
    if not lines:
        logger.warning("%s: no rerank settings with depth > 0; skipping the depth plot", results.path)
        return None
    colors = _rule_colors(results)
    fig = _new_figure(14, 4.2)
    axes = fig.subplots(1, 3)
    depths = [s.depth for settings in lines.values() for s in settings]
    for ax, (metric, title, ylabel) in zip(axes, DEPTH_PANELS):
        for setting in _stage1_settings(results):
            value = results.metric(setting, metric)
            if not math.isnan(value):
                ax.axhline(value, color=STAGE1_COLOR, linestyle="--", linewidth=1.5, label=setting.label)
        if metric.endswith("/R@1"):
            for setting in _stage1_settings(results):
                points = ceiling_points(results, setting, metric.split("/")[0], depths)
                if points:
                    ax.plot(*zip(*points), color=CEILING_COLOR, linestyle=":", marker="^", markersize=5,
                            label=f"ceiling: {setting.label.split(' (')[0]} R@k")
        for rule, settings in lines.items():
            values = [results.metric(s, metric) for s in settings]
            ax.plot([s.depth for s in settings], values, marker="o", color=colors[rule], label=f"rerank: {rule}")
        if metric == "rsum":
            for name, setting in recommended_settings(results).items():
                ax.plot([setting.depth], [results.metric(setting, metric)], color=colors.get(setting.rule, "gray"),
                        **RING)
        _log_depth_axis(ax, depths)
        _style(ax, title, "rerank depth k (log scale)", ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    if recommended_settings(results):
        handles.append(Line2D([], [], color="gray", **RING))
        labels.append(recommendation_label(results))
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle(_title([results.experiment], "quality against rerank depth"))
    return fig


def _mean_latency(setting: Setting) -> float:
    values = [setting.ms_per_query[d] for d in ("t2i", "i2t") if d in setting.ms_per_query]
    return float(np.mean(values)) if values else math.nan


def _latency_measured(setting: Setting) -> bool:
    """True when every latency behind the setting's mean was measured in the run itself."""
    return all(setting.latency_measured(d) for d in ("t2i", "i2t") if d in setting.ms_per_query)


def _latency_axis(ax: Axes, latencies: list[float]) -> None:
    """Log x (1-2-5 ticks) when the latencies span more than 20x, else linear; room on both sides for labels."""
    low, high = min(latencies), max(latencies)
    if low > 0 and high / low > 20:
        _plain_log_axis(ax, _nice_log_ticks(low / 1.35, high * 1.35))
        ax.set_xlim(low / 1.35, high * 1.35)
    else:
        ax.margins(x=0.1)
    ax.margins(y=0.1)


SHARED_LEGEND = "dark grey k=...: a point several\nrules share (their lines meet)"


def _outside_legend(ax: Axes, handles: list, labels: list[str], hollow: bool, title: str | None = None,
                    shared: bool = False) -> None:
    """The legend to the right of the axes (never over a point), with the hollow-marker and shared-label notes
    when needed."""
    if shared:
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(SHARED_LEGEND)
    if hollow:
        handles.append(Line2D([], [], marker="o", linestyle="none", color="gray", markerfacecolor="none"))
        labels.append(LEDGER_LEGEND)
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8,
              title=title, title_fontsize=8, alignment="left")


def quality_latency_figure(results: Results) -> Figure | None:
    """The quality/latency figure (see the module docstring), None without latency numbers."""
    colors = _rule_colors(results)
    fig = _new_figure(9, 5.2)
    ax = fig.subplots()
    latencies, hollow, points = [], False, []
    for setting in _stage1_settings(results):
        x, y = _mean_latency(setting), results.metric(setting, "rsum")
        if math.isnan(x) or math.isnan(y):
            continue
        latencies.append(x)
        measured = _latency_measured(setting)
        hollow |= not measured
        ax.plot([x], [y], marker="*", markersize=14, linestyle="none", color=STAGE1_COLOR, label=setting.label,
                markerfacecolor=STAGE1_COLOR if measured else "none")
        points.append((x, y, "stage 1", "stage 1", STAGE1_COLOR))
    lines = _rule_lines(results)
    for rule, settings in lines.items():
        line_points = [(_mean_latency(s), results.metric(s, "rsum"), s.depth, _latency_measured(s)) for s in settings]
        line_points = [p for p in line_points if not (math.isnan(p[0]) or math.isnan(p[1]))]
        if not line_points:
            continue
        xs, ys, _, _ = zip(*line_points)
        latencies.extend(xs)
        ax.plot(xs, ys, color=colors[rule], label=f"rerank: {rule}")
        for x, y, k, measured in line_points:
            hollow |= not measured
            ax.plot([x], [y], marker="o", linestyle="none", color=colors[rule],
                    markerfacecolor=colors[rule] if measured else "none")
            points.append((x, y, f"k={k}", rule, colors[rule]))
    if not latencies:
        logger.warning("%s: no latency numbers; skipping the quality/latency plot", results.path)
        return None
    recommended = recommended_settings(results)
    for setting in recommended.values():
        x, y = _mean_latency(setting), results.metric(setting, "rsum")
        if not (math.isnan(x) or math.isnan(y)):
            ax.plot([x], [y], color=colors.get(setting.rule, "gray"), **RING)
    _latency_axis(ax, latencies)
    _style(ax, _title([results.experiment], "quality against latency"), "latency per query (ms, mean of t2i and i2t)",
           "rsum (sum of six R@K, %)")
    point_labels = _merge_coincident(points, ax)
    handles, labels = ax.get_legend_handles_labels()
    if recommended:
        handles.append(Line2D([], [], color="gray", **RING))
        labels.append(recommendation_label(results))
    _outside_legend(ax, handles, labels, hollow, title="k = rerank depth",
                    shared=any(label.color == SHARED_LABEL_COLOR for label in point_labels))
    place_labels(ax, point_labels)
    return fig


def recall_curves(results: Results, out_stem: Path) -> list[Path]:
    """R@K curves (K = 1..N, log x), both directions; returns [png, pdf], or [] when there are no curves."""
    fig = recall_curves_figure(results)
    return [] if fig is None else _save(fig, out_stem)


def depth_sweep(results: Results, out_stem: Path) -> list[Path]:
    """t2i R@1, i2t R@1 and rsum against rerank depth; returns [png, pdf], or [] without rerank settings."""
    fig = depth_sweep_figure(results)
    return [] if fig is None else _save(fig, out_stem)


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


# ---------------------------------------------------------------------------------------------- several experiments


def _comparison_styles(results_list: Sequence[Results]) -> tuple[dict[str, str], dict[str, str]]:
    """Experiment -> colour and fusion rule -> marker, shared by the comparison plots."""
    colors = {r.experiment: EXPERIMENT_COLORS[i % len(EXPERIMENT_COLORS)] for i, r in enumerate(results_list)}
    markers = {rule: RULE_MARKERS[i % len(RULE_MARKERS)] for i, rule in enumerate(_rules(results_list))}
    return colors, markers


def _depth_list(results: Results) -> str:
    """``"k = 1, 2, 5, 10, 20"``: the rerank depths of the file's settings ("" without rerank settings)."""
    depths = sorted({s.depth for settings in _rule_lines(results).values() for s in settings})
    return f"k = {', '.join(map(str, depths))}" if depths else ""


def _comparison_handles(results_list: Sequence[Results], stage1_handle: Line2D,
                        with_depths: bool = False) -> tuple[list, list[str]]:
    """Legend entries: one per experiment (colour; its rerank depths when ``with_depths``), one per fusion rule
    (marker), one for stage 1."""
    colors, markers = _comparison_styles(results_list)
    handles: list = [Line2D([], [], color=colors[r.experiment], linewidth=2.5) for r in results_list]
    labels = [_experiment_label(r) for r in results_list]
    if with_depths:
        labels = [f"{label}\n{_depth_list(r)}" if _depth_list(r) else label for label, r in zip(labels, results_list)]
    handles += [Line2D([], [], color="gray", marker=markers[rule], linestyle="-") for rule in markers]
    labels += [f"rerank: {rule}" for rule in markers]
    handles.append(stage1_handle)
    labels.append("stage 1 (in its experiment's colour)")
    return handles, labels


def comparison_depth_sweep_figure(results_list: Sequence[Results]) -> Figure | None:
    """t2i R@1, i2t R@1 and rsum against rerank depth for every experiment, None when none has rerank settings."""
    lines = {r.experiment: _rule_lines(r) for r in results_list}
    depths = [s.depth for by_rule in lines.values() for settings in by_rule.values() for s in settings]
    if not depths:
        logger.warning("no rerank settings with depth > 0 in any file; skipping the comparison depth plot")
        return None
    colors, markers = _comparison_styles(results_list)
    fig = _new_figure(15, 4.6)
    axes = fig.subplots(1, 3)
    for ax, (metric, title, ylabel) in zip(axes, DEPTH_PANELS):
        for results in results_list:
            color = colors[results.experiment]
            for setting in _stage1_settings(results):
                value = results.metric(setting, metric)
                if not math.isnan(value):
                    ax.axhline(value, color=color, linestyle="--", linewidth=1.2, alpha=0.8)
            for rule, settings in lines[results.experiment].items():
                ax.plot([s.depth for s in settings], [results.metric(s, metric) for s in settings], color=color,
                        marker=markers[rule], markersize=5)
        _log_depth_axis(ax, depths)
        _style(ax, title, "rerank depth k (log scale)", ylabel)
    stage1 = Line2D([], [], color="gray", linestyle="--", linewidth=1.2)
    fig.legend(*_comparison_handles(results_list, stage1), loc="outside right center", fontsize=8)
    fig.suptitle(_title([r.experiment for r in results_list], "quality against rerank depth"))
    return fig


def comparison_quality_latency_figure(results_list: Sequence[Results]) -> Figure | None:
    """rsum against mean latency per query for every experiment. Points are not labelled: along each line the
    depth grows with latency, and the legend lists each experiment's depths."""
    colors, markers = _comparison_styles(results_list)
    fig = _new_figure(10, 5.6)
    ax = fig.subplots()
    latencies, hollow = [], False
    for results in results_list:
        color = colors[results.experiment]
        for setting in _stage1_settings(results):
            x, y = _mean_latency(setting), results.metric(setting, "rsum")
            if math.isnan(x) or math.isnan(y):
                continue
            measured = _latency_measured(setting)
            hollow |= not measured
            latencies.append(x)
            ax.plot([x], [y], marker="*", markersize=14, linestyle="none", color=color,
                    markerfacecolor=color if measured else "none")
        for rule, settings in _rule_lines(results).items():
            points = [(_mean_latency(s), results.metric(s, "rsum"), s.depth, _latency_measured(s)) for s in settings]
            points = [p for p in points if not (math.isnan(p[0]) or math.isnan(p[1]))]
            if not points:
                continue
            xs, ys, _, _ = zip(*points)
            latencies.extend(xs)
            ax.plot(xs, ys, color=color, linewidth=1.3)
            for x, y, _, measured in points:
                hollow |= not measured
                ax.plot([x], [y], marker=markers[rule], markersize=6, linestyle="none", color=color,
                        markerfacecolor=color if measured else "none")
    if not latencies:
        logger.warning("no latency numbers in any file; skipping the comparison quality/latency plot")
        return None
    _latency_axis(ax, latencies)
    _style(ax, _title([r.experiment for r in results_list], "quality against latency"),
           "latency per query (ms, mean of t2i and i2t)", "rsum (sum of six R@K, %)")
    stage1 = Line2D([], [], color="gray", marker="*", markersize=10, linestyle="none")
    handles, legend_labels = _comparison_handles(results_list, stage1, with_depths=True)
    _outside_legend(ax, handles, legend_labels, hollow, title="rerank depth k grows left to right")
    return fig


def comparison_depth_sweep(results_list: Sequence[Results], out_stem: Path) -> list[Path]:
    """The comparison depth sweep as [png, pdf], or [] without rerank settings."""
    fig = comparison_depth_sweep_figure(results_list)
    return [] if fig is None else _save(fig, out_stem)


def comparison_quality_latency(results_list: Sequence[Results], out_stem: Path) -> list[Path]:
    """The comparison quality/latency plot as [png, pdf], or [] without latency numbers."""
    fig = comparison_quality_latency_figure(results_list)
    return [] if fig is None else _save(fig, out_stem)


COMPARISON_PLOTS: tuple[tuple[str, Callable[[Sequence[Results], Path], list[Path]]], ...] = (
    ("depth_sweep", comparison_depth_sweep),
    ("quality_latency", comparison_quality_latency),
)


def write_comparison_plots(results_list: Sequence[Results], out_dir: Path) -> list[Path]:
    """Every plot of COMPARISON_PLOTS as ``<out_dir>/<name>.png`` and ``.pdf``; returns the paths written."""
    paths: list[Path] = []
    for name, plot in COMPARISON_PLOTS:
        paths.extend(plot(results_list, Path(out_dir) / name))
    return paths
