"""Paper-style results tables: Markdown, LaTeX (booktabs) and CSV, one row per setting.

Columns: t2i R@1/5/10, i2t R@1/5/10, rsum, MRR and mAP per direction, ms per query per direction.
The best value of each column is bold in Markdown and LaTeX (highest for quality, lowest for
latency; every row that ties with the best at display precision is bold). CSV holds the raw values.
Several experiments merge into one table with an ``experiment`` column; "best" is then taken within each
experiment's rows only, never across experiments (they may differ in dataset, split and hardware, so a best
over all rows would compare numbers that are not comparable), and the caption says so.
A latency not measured by the run itself (``latency_source`` ``ledger``: per-item costs an earlier run
measured in the same context) carries a dagger (``†`` / ``$^\dagger$``) explained under the table; the CSV
has a ``<direction> ms/query source`` column per latency column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
    Column("i2t MRR", "Image-to-text", "MRR", "i2t/MRR"),
    Column("i2t mAP", "Image-to-text", "mAP", "i2t/mAP"),
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
            rows.append(row)
    return pd.DataFrame(rows, columns=[*ROW_FIELDS, *(c.name for c in COLUMNS),
                                       *(source_column(c) for c in LATENCY_COLUMNS)])


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


def _cells(frame: pd.DataFrame, bold: str, dagger: str) -> list[list[str]]:
    """Displayed numeric cells, with ``bold`` (a format string with {}) around the best ones and ``dagger``
    after latencies read from the cost ledger."""
    mask = best_mask(frame)
    return [
        [
            (bold.format(column.display(value)) if mask.at[i, column.name] else column.display(value))
            + (dagger if _from_ledger(frame, i, column) else "")
            for column, value in zip(COLUMNS, frame.loc[i, [c.name for c in COLUMNS]])
        ]
        for i in frame.index
    ]


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


def markdown_table(results_list: Sequence[Results]) -> str:
    """A Markdown table (best per column in ``**bold**``) with a caption and a counts/timings/provenance footer."""
    frame = results_frame(results_list)
    merged = len(results_list) > 1
    label_headers = ["Experiment", "Setting"] if merged else ["Setting"]
    headers = label_headers + [c.name for c in COLUMNS]
    names = ", ".join(r.experiment for r in results_list)
    title = f"Comparison: {names}" if merged else names
    lines = [
        f"**{_md_escape(title)}** — R@K, MRR, mAP in %; rsum = sum of R@1/5/10 of both directions; "
        f"latency in ms per query; {bold_note(merged)}.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join([":---"] * len(label_headers) + ["---:"] * len(COLUMNS)) + "|",
    ]
    for i, cells in zip(frame.index, _cells(frame, "**{}**", "†")):
        labels = [frame.at[i, "experiment"], frame.at[i, "setting"]] if merged else [frame.at[i, "setting"]]
        lines.append("| " + " | ".join([_md_escape(x) for x in labels] + cells) + " |")
    if any_from_ledger(frame):
        lines += ["", f"† {LEDGER_NOTE}."]
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


def latex_table(results_list: Sequence[Results]) -> str:
    """A booktabs LaTeX table (``\\toprule``/``\\midrule``/``\\bottomrule``), best per column in ``\\textbf``.

    Needs ``\\usepackage{booktabs}``; counts, timings and provenance follow as ``%`` comment lines.
    """
    frame = results_frame(results_list)
    merged = len(results_list) > 1
    num_labels = 2 if merged else 1
    groups: list[tuple[str, int]] = []  # consecutive header groups and their widths
    for column in COLUMNS:
        if groups and groups[-1][0] == column.group:
            groups[-1] = (column.group, groups[-1][1] + 1)
        else:
            groups.append((column.group, 1))
    group_cells, rules, start = [], [], num_labels + 1
    for name, width in groups:
        group_cells.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(name)}}}" if name else "")
        if name:
            rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    label_headers = ["Experiment", "Setting"] if merged else ["Setting"]
    names = ", ".join(r.experiment for r in results_list)
    caption = (
        f"Retrieval results ({latex_escape(names)}). R@K, MRR and mAP in \\%; rsum is the sum of R@1, R@5 and "
        f"R@10 of both directions; latency in ms per query; {latex_escape(bold_note(merged))}."
    )
    counts = "; ".join(f"{latex_escape(k)}: {latex_escape(v)}" for r in results_list for k, v in flatten(r.counts))
    if any_from_ledger(frame):
        caption += f" $^\\dagger$ {latex_escape(LEDGER_NOTE[0].upper() + LEDGER_NOTE[1:])}."
    if counts:
        caption += f" Counts: {counts}."
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\setlength{\tabcolsep}{4pt}",
        r"\begin{tabular}{" + "l" * num_labels + "r" * len(COLUMNS) + "}",
        r"\toprule",
        " & ".join([""] * num_labels + group_cells) + r" \\",
        " ".join(rules),
        " & ".join(label_headers + [latex_escape(c.short) for c in COLUMNS]) + r" \\",
        r"\midrule",
    ]
    for i, cells in zip(frame.index, _cells(frame, r"\textbf{{{}}}", r"$^\dagger$")):
        labels = [frame.at[i, "experiment"], frame.at[i, "setting"]] if merged else [frame.at[i, "setting"]]
        if merged and i != frame.index[0] and frame.at[i, "experiment"] != frame.at[i - 1, "experiment"]:
            lines.append(r"\midrule")  # each experiment's rows (and their bold best) form one block
        lines.append(" & ".join([latex_escape(x) for x in labels] + cells) + r" \\")
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:{_label_name(results_list[0].experiment if not merged else 'comparison')}}}",
        r"\end{table}",
    ]
    for results in results_list:
        for title, items in _footer_items(results):
            lines.append(f"% {results.experiment} {title}:")
            lines += [f"%   {key}: {value}".replace("\n", " ") for key, value in items]
    return "\n".join(lines) + "\n"


def write_tables(results_list: Sequence[Results], out_dir: Path, stem: str = "table") -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.tex`` and ``<stem>.csv`` into ``out_dir``; returns the paths."""
    if not results_list:
        raise ValueError("no results to tabulate")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.md", out_dir / f"{stem}.tex", out_dir / f"{stem}.csv"]
    paths[0].write_text(markdown_table(results_list), encoding="utf-8")
    paths[1].write_text(latex_table(results_list), encoding="utf-8")
    results_frame(results_list).to_csv(paths[2], index=False)
    return paths
