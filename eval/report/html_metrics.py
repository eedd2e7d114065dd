"""The example page's numbers: the metrics table (every cell, sortable) and the depth recommendations, as HTML.

Each metric cell holds the value, a dagger when it differs significantly from the stage 1 of its setting
(``analysis.vs_stage1``), and its confidence interval as a small second line; hovering shows the difference and
the adjusted p-value. Sorting is done by the page's script from each cell's ``data-sort`` value.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from eval.report.results_file import Results, Setting

QUALITY = ("R@1", "R@5", "R@10", "MRR", "mAP", "nDCG@10")
DIRECTION_NAMES = {"t2i": "Text-to-image", "i2t": "Image-to-text"}
DAGGER = "\u2020"
LEDGER_MARK = "\u2021"


def _number(value: float, digits: int = 1) -> str:
    return "\u2013" if math.isnan(value) else f"{value:.{digits}f}"


def _sort_value(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def _metric_cell(results: Results, setting: Setting, name: str) -> str:
    value = results.metric(setting, name)
    mark = DAGGER if results.significant(setting, name) else ""
    comparison = results.analysis.get("vs_stage1", {}).get(f"{setting.key}/{name}")
    interval = results.interval(setting, name)
    hover = []
    if interval is not None:
        hover.append(f"{_confidence(results)} CI [{interval[0]:.1f}, {interval[1]:.1f}]")
    if comparison:
        hover.append(f"vs {comparison['reference']}: {comparison['difference']:+.2f} points, "
                     f"adjusted p = {comparison['p_adjusted']:.2g}")
    second = f'<span class="ci">{interval[0]:.1f}\u2013{interval[1]:.1f}</span>' if interval else ""
    title = f' title="{escape("; ".join(hover))}"' if hover else ""
    return (f'<td class="num" data-sort="{_sort_value(value)}"{title}>{_number(value)}'
            f'<span class="sig">{mark}</span>{second}</td>')


def _latency_cell(setting: Setting, direction: str) -> str:
    value = setting.ms_per_query.get(direction, math.nan)
    ledger = "" if setting.latency_measured(direction) else f'<span class="ledger">{LEDGER_MARK}</span>'
    title = "" if not ledger else ' title="from the cost ledger, not measured in this run"'
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f'<td class="num" data-sort="{_sort_value(value)}"{title}>{_number(value, digits)}{ledger}</td>'


def _win_loss_cell(results: Results, setting: Setting, direction: str) -> str:
    counts = results.analysis.get("win_loss", {}).get(f"{setting.key}/{direction}")
    if not counts:
        return '<td class="num" data-sort="">\u2013</td>'
    net = counts["improved"] - counts["worsened"]
    title = (f"improved {counts['improved']}, worsened {counts['worsened']}, unchanged {counts['unchanged']}; "
             f"fixed (into rank 1) {counts['fixed']}, broken (out of rank 1) {counts['broken']}")
    return (f'<td class="num" data-sort="{net}" title="{escape(title)}">+{counts["improved"]}\u2009/\u2009'
            f'\u2212{counts["worsened"]}<span class="ci">{counts["fixed"]}\u2009/\u2009{counts["broken"]}</span></td>')


def _confidence(results: Results) -> str:
    level = results.analysis.get("method", {}).get("confidence")
    return f"{100 * level:g}%" if isinstance(level, (int, float)) else "95%"


def _header() -> str:
    groups = "".join(f'<th colspan="{len(QUALITY)}" class="group">{DIRECTION_NAMES[d]}</th>' for d in DIRECTION_NAMES)
    top = (f'<tr><th rowspan="2" class="sortable" data-col="0">Setting</th>{groups}<th rowspan="2" '
           f'class="sortable" data-col="{1 + 2 * len(QUALITY)}">rsum</th><th colspan="2" class="group">ms / query'
           f'</th><th colspan="2" class="group wide">Improved / worsened<span class="ci">fixed / broken</span></th></tr>')
    names = [f"{m}" for _ in DIRECTION_NAMES for m in QUALITY]
    col = 1
    second = []
    for name in names:
        second.append(f'<th class="sortable" data-col="{col}">{escape(name)}</th>')
        col += 1
    col += 1  # rsum
    for label in ("t2i", "i2t", "t2i", "i2t"):
        second.append(f'<th class="sortable" data-col="{col}">{label}</th>')
        col += 1
    return f"<thead>{top}<tr>{''.join(second)}</tr></thead>"


def metrics_table(results: Results) -> str:
    """The ``<table>`` of every setting (see the module docstring) with its caption."""
    rows = []
    for setting in results.settings:
        cells = [f'<td class="setting" data-sort="{escape(setting.label)}">{escape(setting.label)}'
                 f'<span class="ci">{escape(setting.key)}</span></td>']
        cells += [_metric_cell(results, setting, f"{d}/{m}") for d in DIRECTION_NAMES for m in QUALITY]
        rsum = results.metric(setting, "rsum")
        cells.append(f'<td class="num rsum" data-sort="{_sort_value(rsum)}">{_number(rsum)}</td>')
        cells += [_latency_cell(setting, d) for d in DIRECTION_NAMES]
        cells += [_win_loss_cell(results, setting, d) for d in DIRECTION_NAMES]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="table-wrap"><table id="metrics" class="metrics"><caption>{_caption(results)}</caption>'
            f"{_header()}<tbody>{''.join(rows)}</tbody></table></div>")


def _caption(results: Results) -> str:
    method: dict[str, Any] = results.analysis.get("method", {})
    parts = ["Metrics in percent (R@K of i2t: a relevant caption in the top K). Click a column header to sort."]
    if "vs_stage1" in results.analysis:
        parts.append(f"{DAGGER} differs significantly from the stage 1 of its setting: {method.get('test', 'paired test')}, "
                     f"{method.get('resamples', '?')} resamples, {method.get('adjustment', 'adjusted')}, "
                     f"adjusted p < {method.get('alpha', 0.05):g} (tested: "
                     f"{', '.join(method.get('tested_metrics', []))}).")
    if "intervals" in results.analysis:
        parts.append(f"Small second line: the {_confidence(results)} bootstrap confidence interval; hover a value for "
                     "its difference from stage 1 and p-value.")
    else:
        parts.append("This run recorded no significance tests or confidence intervals.")
    parts.append(f"Latency with {LEDGER_MARK}: from the cost ledger, not measured in this run. Improved / worsened "
                 "(net change sorts): queries whose first relevant item moved up / down against the stage 1 of the "
                 "setting; second line, fixed / broken: moved into / out of rank 1.")
    return escape(" ".join(parts), quote=False)


def recommendations(results: Results) -> str:
    """A list of the recommended depth of each rule (``analysis.recommendation``), or a note when absent."""
    entries = results.analysis.get("recommendation", {})
    if not entries:
        return "<p>This run recorded no depth recommendation.</p>"
    within = next(iter(entries.values())).get("within", "?")
    items = []
    for rule, entry in entries.items():
        ms = entry.get("ms_per_query", {})
        latency = ", ".join(f"{d} {ms[d]:.1f} ms" for d in DIRECTION_NAMES if d in ms) or "latency unknown"
        items.append(f"<li><b>{escape(rule)}</b>: depth k = {entry['depth']} (rsum {entry['rsum']:.1f}; best "
                     f"{entry['best_rsum']:.1f} at k = {entry['best_depth']}) \u2014 {escape(latency)} per query</li>")
    return (f"<p>Per rule, the smallest rerank depth whose rsum is within {escape(str(within))} points of the rule's "
            f"best:</p><ul class=\"recommend\">{''.join(items)}</ul>")
