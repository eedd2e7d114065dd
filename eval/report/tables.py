"""Paper-style results tables: Markdown, LaTeX (booktabs) and CSV, one row per setting.

Columns: t2i R@1/5/10, i2t R@1/5/10, rsum, MRR, mAP and nDCG@10 per direction, ms per query per direction.
The best value of each column is bold in Markdown and LaTeX (highest for quality, lowest for
latency; every row that ties with the best at display precision is bold). CSV holds the raw values, the
bootstrap confidence intervals (``<column> CI low`` / ``CI high``), win/loss counts against stage 1 and the share
of the ceiling (see ``eval.analysis``).
With an ``analysis`` section, R@1, R@5 and MRR that differ significantly from the stage 1 of their setting carry a
dagger (``†`` / ``$^\dagger$``; the test and level in the caption), ``ci=True`` adds the R@1 intervals as columns,
and the caption names each rule's recommended depth.
Several experiments merge into one table with an ``experiment`` column; "best" is then taken within each
experiment's rows only, never across experiments (they may differ in dataset, split and hardware, so a best
over all rows would compare numbers that are not comparable), and the caption says so.
A latency not measured by the run itself (``latency_source`` ``ledger``: per-item costs an earlier run
measured in the same context) carries a double dagger (``‡`` / ``$^\\ddagger$``) explained under the table; the
CSV has a ``<direction> ms/query source`` column per latency column.

Rendering is pandas': Markdown through ``DataFrame.to_markdown`` (tabulate's ``pipe`` format), LaTeX through
``Styler.to_latex(hrules=True)`` (booktabs rules, grouped headers as ``\\multicolumn``, bold as ``\\textbf`` set by
the Styler); this module decides what the cells hold.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from eval.report.results_file import Results, flatten

FOOTER_LINES_PER_SECTION = 40
FOOTER_VALUE_CHARS = 100


@dataclass(frozen=True)
class Column:
    """One numeric table column.

    Attributes:
        name: flat column name (CSV header, Markdown header), e.g. ``"t2i R@1"``.
        group: header group in LaTeX, e.g. ``"Text-to-image"``.
        short: header inside the group, e.g. ``"R@1"``.
        metric: metric name after the setting key (``"t2i/R@1"``), or a direction for latency columns.
        latency: True for ms-per-query columns (read from the setting, lower is better).
    """

    name: str
    group: str
    short: str
    metric: str
    latency: bool = False

    def display(self, value: float) -> str:
        """Text of a value at display precision ("-" when missing)."""
        if math.isnan(value):
            return "-"
        if not self.latency:
            return f"{value:.1f}"
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


COLUMNS: tuple[Column, ...] = (
    *(Column(f"t2i R@{k}", "Text-to-image", f"R@{k}", f"t2i/R@{k}") for k in (1, 5, 10)),
    *(Column(f"i2t R@{k}", "Image-to-text", f"R@{k}", f"i2t/R@{k}") for k in (1, 5, 10)),
    Column("rsum", "", "rsum", "rsum"),
    Column("t2i MRR", "Text-to-image", "MRR", "t2i/MRR"),
    Column("t2i mAP", "Text-to-image", "mAP", "t2i/mAP"),
    Column("t2i nDCG@10", "Text-to-image", "nDCG@10", "t2i/nDCG@10"),
    Column("i2t MRR", "Image-to-text", "MRR", "i2t/MRR"),
    Column("i2t mAP", "Image-to-text", "mAP", "i2t/mAP"),
    Column("i2t nDCG@10", "Image-to-text", "nDCG@10", "i2t/nDCG@10"),
    Column("t2i ms/query", "Latency (ms/query)", "t2i", "t2i", latency=True),
    Column("i2t ms/query", "Latency (ms/query)", "i2t", "i2t", latency=True),
)
ROW_FIELDS = ("experiment", "setting", "key", "rule", "depth")
LEDGER_NOTE = ("latency not measured in this run: per-item costs from the cost ledger (measured by an earlier "
               "run with the same model, settings, data and hardware)")


def source_column(column: Column) -> str:
    """Name of the CSV column holding where a latency column's values come from."""
    return f"{column.name} source"


LATENCY_COLUMNS = tuple(c for c in COLUMNS if c.latency)
TESTED_COLUMNS = tuple(c for c in COLUMNS if c.metric.split("/")[-1] in ("R@1", "R@5", "MRR") and "/" in c.metric)
CI_COLUMNS = tuple(c for c in COLUMNS if c.metric in ("t2i/R@1", "i2t/R@1"))
SIGNIFICANCE_MARK, LEDGER_MARK = "†", "‡"
LATEX_MARKS = {SIGNIFICANCE_MARK: r"$^\dagger$", LEDGER_MARK: r"$^\ddagger$"}


def significance_column(column: Column) -> str:
    """Name of the CSV column saying whether a tested column differs significantly from stage 1."""
    return f"{column.name} significant"


def interval_columns(column: Column) -> tuple[str, str]:
    """Names of the CSV columns of a column's bootstrap confidence interval."""
    return f"{column.name} CI low", f"{column.name} CI high"


def significance_note(results_list: Sequence[Results]) -> str:
    """What the significance dagger means (empty when no file has significance tests)."""
    methods = [r.analysis.get("method", {}) for r in results_list if r.analysis.get("vs_stage1")]
    if not methods:
        return ""
    m = methods[0]
    return (f"differs from the stage 1 of its setting: paired bootstrap over queries, {m.get('resamples', 0):,} "
            f"resamples, two-sided, Benjamini-Hochberg adjusted p < {m.get('alpha')} over the cells of a direction "
            f"and metric (tested: R@1, R@5, MRR)")


def recommendation_note(results_list: Sequence[Results]) -> str:
    """Each rule's recommended depth (``analysis.recommendation``) with its latency, for a caption."""
    parts = []
    for results in results_list:
        recommendation = results.analysis.get("recommendation") or {}
        for rule, entry in recommendation.items():
            ms = entry.get("ms_per_query") or {}
            latency = " / ".join(f"{ms[d]:.1f}" for d in ("t2i", "i2t") if d in ms)
            prefix = f"{results.experiment} " if len(results_list) > 1 else ""
            parts.append(f"{prefix}{rule} k={entry['depth']}" + (f" ({latency} ms/query)" if latency else ""))
    if not parts:
        return ""
    within = next(r.analysis["method"].get("recommend_within") for r in results_list
                  if r.analysis.get("recommendation"))
    return (f"recommended depth per rule (smallest k with rsum within {within:g} of the rule's best, "
            f"t2i / i2t latency): " + ", ".join(parts))


def results_frame(results_list: Sequence[Results]) -> pd.DataFrame:
    """One row per (experiment, setting): ROW_FIELDS then one float column per COLUMNS entry (NaN = missing)."""
    rows = []
    for results in results_list:
        for setting in results.settings:
            row = {
                "experiment": results.experiment,
                "setting": setting.label,
                "key": setting.key,
                "rule": setting.rule or "",
                "depth": setting.depth,
            }
            for column in COLUMNS:
                row[column.name] = (
                    float(setting.ms_per_query.get(column.metric, math.nan))
                    if column.latency
                    else results.metric(setting, column.metric)
                )
            for column in LATENCY_COLUMNS:
                known = column.metric in setting.ms_per_query
                row[source_column(column)] = setting.latency_source.get(column.metric, "this run") if known else ""
            for column in TESTED_COLUMNS:
                row[significance_column(column)] = results.significant(setting, column.metric)
            for column in COLUMNS:
                interval = None if column.latency else results.interval(setting, column.metric)
                low, high = interval_columns(column)
                row[low], row[high] = interval if interval is not None else (math.nan, math.nan)
            for direction in ("t2i", "i2t"):
                counts = results.analysis.get("win_loss", {}).get(f"{setting.key}/{direction}", {})
                for name in WIN_LOSS:
                    row[f"{direction} {name}"] = counts.get(name, math.nan)
                share = results.analysis.get("ceiling_share", {}).get(f"{setting.key}/{direction}")
                row[f"{direction} R@1 share of ceiling"] = math.nan if share is None else share
            rows.append(row)
    extra = [*(significance_column(c) for c in TESTED_COLUMNS),
             *(name for c in COLUMNS for name in interval_columns(c) if not c.latency),
             *(f"{d} {name}" for d in ("t2i", "i2t") for name in WIN_LOSS),
             *(f"{d} R@1 share of ceiling" for d in ("t2i", "i2t"))]
    return pd.DataFrame(rows, columns=[*ROW_FIELDS, *(c.name for c in COLUMNS),
                                       *(source_column(c) for c in LATENCY_COLUMNS), *extra])


WIN_LOSS = ("improved", "worsened", "unchanged")


def _from_ledger(frame: pd.DataFrame, i, column: Column) -> bool:
    return column.latency and frame.at[i, source_column(column)] == "ledger"


def any_from_ledger(frame: pd.DataFrame) -> bool:
    """True when some latency of the frame was not measured in its own run."""
    return any((frame[source_column(c)] == "ledger").any() for c in LATENCY_COLUMNS)


def best_mask(frame: pd.DataFrame) -> pd.DataFrame:
    """Boolean frame over the COLUMNS: True where the displayed value equals the best of its column among the
    rows of the same experiment (a merged table marks one best per experiment, none across experiments)."""
    mask = pd.DataFrame(False, index=frame.index, columns=[c.name for c in COLUMNS])
    for _, rows in frame.groupby("experiment", sort=False):
        for column in COLUMNS:
            values = rows[column.name]
            if values.isna().all():
                continue
            best = values.min() if column.latency else values.max()
            mask.loc[rows.index, column.name] = [column.display(v) == column.display(best) for v in values]
    return mask


def bold_note(merged: bool) -> str:
    """What the bold marks, for a caption."""
    if not merged:
        return "best per column in bold"
    return ("best per column within each experiment in bold; no best is marked across experiments, which may "
            "differ in dataset, split and hardware")


def _significant(frame: pd.DataFrame, i, column: Column) -> bool:
    return column in TESTED_COLUMNS and bool(frame.at[i, significance_column(column)])


def _interval_text(frame: pd.DataFrame, i, column: Column) -> str:
    low, high = (frame.at[i, name] for name in interval_columns(column))
    return "-" if math.isnan(low) else f"[{column.display(low)}, {column.display(high)}]"


def _cells(frame: pd.DataFrame, bold: str, marks: dict[str, str], ci: bool = False) -> list[list[str]]:
    """Displayed numeric cells, with ``bold`` (a format string with {}) around the best ones, the significance mark
    after values that differ significantly from stage 1 and the ledger mark after latencies read from the cost
    ledger (``marks`` maps the plain marks to their rendering); with ``ci``, the CI_COLUMNS' intervals last."""
    mask = best_mask(frame)
    return [
        [
            (bold.format(column.display(value)) if mask.at[i, column.name] else column.display(value))
            + (marks[SIGNIFICANCE_MARK] if _significant(frame, i, column) else "")
            + (marks[LEDGER_MARK] if _from_ledger(frame, i, column) else "")
            for column, value in zip(COLUMNS, frame.loc[i, [c.name for c in COLUMNS]])
        ] + ([_interval_text(frame, i, column) for column in CI_COLUMNS] if ci else [])
        for i in frame.index
    ]


def _ci_headers(results_list: Sequence[Results]) -> list[str]:
    level = next((r.analysis.get("method", {}).get("confidence") for r in results_list if r.analysis), 0.95)
    return [f"{c.name} {level:.0%} CI" for c in CI_COLUMNS]


def _label_fields(merged: bool) -> list[tuple[str, str]]:
    """(frame column, header) of the label columns left of the numbers."""
    return [("experiment", "Experiment"), ("setting", "Setting")] if merged else [("setting", "Setting")]


def _footer_items(results: Results) -> list[tuple[str, list[tuple[str, str]]]]:
    sections = [("counts", results.counts), ("timings", results.timings), ("provenance", results.provenance)]
    out = []
    for title, data in sections:
        items = [(k, v if len(v) <= FOOTER_VALUE_CHARS else v[: FOOTER_VALUE_CHARS - 3] + "...") for k, v in flatten(data)]
        if len(items) > FOOTER_LINES_PER_SECTION:
            hidden = len(items) - FOOTER_LINES_PER_SECTION
            items = items[:FOOTER_LINES_PER_SECTION] + [("...", f"{hidden} more entries in results.json")]
        if items:
            out.append((title, items))
    return out


def markdown_table(results_list: Sequence[Results], ci: bool = False) -> str:
    """A Markdown table (best per column in ``**bold**``) with a caption and a counts/timings/provenance footer;
    ``ci`` adds the R@1 confidence intervals as columns."""
    frame = results_frame(results_list)
    merged = len(results_list) > 1
    labels = _label_fields(merged)
    names = ", ".join(r.experiment for r in results_list)
    title = f"Comparison: {names}" if merged else names
    ci_headers = _ci_headers(results_list) if ci else []
    shown = pd.DataFrame(
        [[_md_escape(frame.at[i, field]) for field, _ in labels] + cells
         for i, cells in zip(frame.index, _cells(frame, "**{}**", {m: m for m in LATEX_MARKS}, ci))],
        columns=[header for _, header in labels] + [c.name for c in COLUMNS] + ci_headers,
    )
    table = shown.to_markdown(index=False, tablefmt="pipe", disable_numparse=True,
                              colalign=["left"] * len(labels) + ["right"] * (len(COLUMNS) + len(ci_headers)))
    lines = [
        f"**{_md_escape(title)}** — R@K, MRR, mAP, nDCG@10 in %; rsum = sum of R@1/5/10 of both directions; "
        f"latency in ms per query; {bold_note(merged)}.",
        "",
        table,
    ]
    notes = [f"{SIGNIFICANCE_MARK} {significance_note(results_list)}." if significance_note(results_list) else "",
             f"{LEDGER_MARK} {LEDGER_NOTE}." if any_from_ledger(frame) else "",
             f"{recommendation_note(results_list)[0].upper()}{recommendation_note(results_list)[1:]}."
             if recommendation_note(results_list) else ""]
    for note in filter(None, notes):
        lines += ["", note]
    for results in results_list:
        for title, items in _footer_items(results):
            prefix = f"{results.experiment} " if merged else ""
            lines += ["", f"*{prefix}{title}:*", ""]
            lines += [f"- `{key}`: {_md_escape(value)}" for key, value in items]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _label_name(text: str) -> str:
    """A string safe inside ``\\label{}``."""
    return re.sub(r"[^A-Za-z0-9:.-]", "-", text)


def latex_table(results_list: Sequence[Results], ci: bool = False) -> str:
    """A booktabs LaTeX table (``\\toprule``/``\\midrule``/``\\bottomrule``), best per column in ``\\textbf``.

    Needs ``\\usepackage{booktabs}``; counts, timings and provenance follow as ``%`` comment lines. Rendered by
    ``Styler.to_latex``; a ``\\cmidrule`` under each header group and, in a merged table, a ``\\midrule`` between
    experiments (each experiment's rows and their bold best form one block) are added to its output.
    """
    frame = results_frame(results_list)
    merged = len(results_list) > 1
    labels = _label_fields(merged)
    names = ", ".join(r.experiment for r in results_list)
    caption = (
        f"Retrieval results ({latex_escape(names)}). R@K, MRR, mAP and nDCG@10 in \\%; rsum is the sum of R@1, R@5 "
        f"and R@10 of both directions; latency in ms per query; {latex_escape(bold_note(merged))}."
    )
    counts = "; ".join(f"{latex_escape(k)}: {latex_escape(v)}" for r in results_list for k, v in flatten(r.counts))
    if significance_note(results_list):
        note = significance_note(results_list)
        caption += f" {LATEX_MARKS[SIGNIFICANCE_MARK]} {latex_escape(note[0].upper() + note[1:])}."
    if any_from_ledger(frame):
        caption += f" {LATEX_MARKS[LEDGER_MARK]} {latex_escape(LEDGER_NOTE[0].upper() + LEDGER_NOTE[1:])}."
    if recommendation_note(results_list):
        note = recommendation_note(results_list)
        caption += f" {latex_escape(note[0].upper() + note[1:])}."
    if counts:
        caption += f" Counts: {counts}."
    ci_headers = _ci_headers(results_list) if ci else []
    columns = pd.MultiIndex.from_tuples([("", header) for _, header in labels]
                                        + [(latex_escape(c.group), latex_escape(c.short)) for c in COLUMNS]
                                        + [("", latex_escape(h)) for h in ci_headers])
    shown = pd.DataFrame(
        [[latex_escape(frame.at[i, field]) for field, _ in labels] + cells
         for i, cells in zip(frame.index, _cells(frame, "{}", LATEX_MARKS, ci))],
        columns=columns,
    )
    best = best_mask(frame).to_numpy()
    bold = np.hstack([np.zeros((len(frame), len(labels)), dtype=bool), best,
                      np.zeros((len(frame), len(ci_headers)), dtype=bool)])
    styler = shown.style.hide(axis="index").apply(
        lambda data: pd.DataFrame(np.where(bold, "textbf: --rwrap;", ""), index=data.index, columns=data.columns),
        axis=None,
    )
    styler.set_table_styles([{"selector": "small", "props": ":;"},
                             {"selector": "setlength", "props": r":{\tabcolsep}{4pt};"}])
    tex = styler.to_latex(
        hrules=True, column_format="l" * len(labels) + "r" * (len(COLUMNS) + len(ci_headers)), multicol_align="c",
        caption=caption, position="t", position_float="centering",
        label=f"tab:{_label_name(results_list[0].experiment if not merged else 'comparison')}",
    )
    lines = tex.splitlines()
    lines.insert(lines.index(r"\toprule") + 2, _group_rules(len(labels)))
    if merged:
        first_row = lines.index(r"\midrule") + 1
        starts = [k for k, i in enumerate(frame.index) if k and frame.at[i, "experiment"] != frame.at[i - 1, "experiment"]]
        for k in reversed(starts):
            lines.insert(first_row + k, r"\midrule")
    for results in results_list:
        for title, items in _footer_items(results):
            lines.append(f"% {results.experiment} {title}:")
            lines += [f"%   {key}: {value}".replace("\n", " ") for key, value in items]
    return "\n".join(lines) + "\n"


def _group_rules(num_labels: int) -> str:
    """``\\cmidrule(lr){a-b}`` under each named header group (columns counted from 1, labels first)."""
    rules, start = [], num_labels + 1
    for group, members in itertools.groupby(COLUMNS, key=lambda c: c.group):
        width = len(list(members))
        if group:
            rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    return " ".join(rules)


def write_tables(results_list: Sequence[Results], out_dir: Path, stem: str = "table", ci: bool = False) -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.tex`` and ``<stem>.csv`` into ``out_dir`` (``ci``: R@1 intervals as columns of
    the Markdown and LaTeX tables; the CSV always has every interval); returns the paths."""
    if not results_list:
        raise ValueError("no results to tabulate")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.md", out_dir / f"{stem}.tex", out_dir / f"{stem}.csv"]
    paths[0].write_text(markdown_table(results_list, ci), encoding="utf-8")
    paths[1].write_text(latex_table(results_list, ci), encoding="utf-8")
    results_frame(results_list).to_csv(paths[2], index=False)
    return paths
