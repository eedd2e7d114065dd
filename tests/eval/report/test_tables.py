"""Tables from a results.json fixture: bold marks the true best of each column, LaTeX is booktabs, CSV is raw."""

import math

import pandas as pd
import pytest

from eval.report.results_file import ResultsFileError, load_results
from eval.report.tables import COLUMNS, latex_escape, latex_table, markdown_table, results_frame, write_tables

from .conftest import make_results, write_results


def raw_value(data, setting, column):
    if column.latency:
        return setting["ms_per_query"].get(column.metric, math.nan)
    return data["metrics"].get(f"{setting['key']}/{column.metric}", math.nan)


def expected_bold_rows(data, column):
    """Rows whose value equals the column's best at display precision, from the raw JSON data."""
    values = [raw_value(data, s, column) for s in data["settings"]]
    best = min(values) if column.latency else max(values)
    return {i for i, v in enumerate(values) if column.display(v) == column.display(best)}


def markdown_body(text):
    """Data rows of the first Markdown table, as lists of cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]


def test_bold_marks_the_best_of_every_column(results_path, results_data):
    results = load_results(results_path)
    md_rows = markdown_body(markdown_table([results]))
    tex_rows = [line for line in latex_table([results]).splitlines() if line.endswith(r"\\") and "&" in line][2:]
    assert len(md_rows) == len(tex_rows) == len(results_data["settings"])
    for offset, column in enumerate(COLUMNS, start=1):
        expected = expected_bold_rows(results_data, column)
        md_bold = {i for i, row in enumerate(md_rows) if row[offset].startswith("**")}
        tex_bold = {i for i, row in enumerate(tex_rows) if row.split(" & ")[offset].startswith(r"\textbf")}
        assert md_bold == expected == tex_bold, column.name
    # Sanity of the fixture: reranking wins quality columns, stage 1 (row 0) wins latency.
    assert expected_bold_rows(results_data, COLUMNS[0]) != {0}
    assert expected_bold_rows(results_data, COLUMNS[-1]) == {0}


def test_displayed_values_match_json(results_path, results_data):
    md_rows = markdown_body(markdown_table([load_results(results_path)]))
    for row, setting in zip(md_rows, results_data["settings"]):
        assert row[0] == setting["label"]
        for cell, column in zip(row[1:], COLUMNS):
            assert cell.rstrip("†").strip("*") == column.display(raw_value(results_data, setting, column))


def test_latex_is_booktabs_and_well_formed(results_path):
    tex = latex_table([load_results(results_path)])
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{tabular}", r"\caption{"):
        assert tex.count(command) == 1, command
    assert r"\hline" not in tex
    body = tex[tex.index(r"\midrule") : tex.index(r"\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert rows and all(row.count(" & ") == len(COLUMNS) for row in rows)
    for line in tex.splitlines():
        if not line.startswith("%"):
            assert line.count("{") == line.count("}"), line


def test_csv_holds_raw_values_without_markup(tmp_path, results_path, results_data):
    paths = write_tables([load_results(results_path)], tmp_path / "out")
    assert [p.name for p in paths] == ["table.md", "table.tex", "table.csv"]
    text = paths[2].read_text(encoding="utf-8")
    assert "**" not in text and "textbf" not in text
    frame = pd.read_csv(paths[2])
    assert list(frame["key"]) == [s["key"] for s in results_data["settings"]]
    assert frame.loc[3, "t2i R@1"] == pytest.approx(results_data["metrics"]["stage2/itm/k=10/t2i/R@1"])
    assert frame.loc[0, "i2t ms/query"] == pytest.approx(2.0)


def test_merged_table_bolds_the_best_within_each_experiment_only(tmp_path):
    """Experiments in one merged table may differ in dataset and hardware: each gets its own best per column,
    no best is marked across them, and both captions say so (issue 19 item 8)."""
    first = make_results("alpha", seed=0)
    second = make_results("beta", seed=1, num_images=60)  # another dataset: other sizes, other numbers
    loaded = [load_results(write_results(tmp_path / name, data)) for name, data in (("a", first), ("b", second))]
    frame = results_frame(loaded)
    assert list(frame["experiment"].unique()) == ["alpha", "beta"]
    assert len(frame) == len(first["settings"]) + len(second["settings"])
    md = markdown_table(loaded)
    md_rows = markdown_body(md)
    tex = latex_table(loaded)
    tex_rows = [line for line in tex.splitlines() if line.startswith(("alpha &", "beta &"))]
    assert md_rows[0][:2] == ["alpha", "stage 1 (dual encoder)"]
    assert len(md_rows) == len(tex_rows) == len(frame)
    for offset, column in enumerate(COLUMNS, start=2):
        expected = set()
        for experiment, data in (("alpha", first), ("beta", second)):
            start = int(frame.index[frame["experiment"] == experiment][0])
            expected |= {start + i for i in expected_bold_rows(data, column)}
        md_bold = {i for i, row in enumerate(md_rows) if row[offset].startswith("**")}
        tex_bold = {i for i, row in enumerate(tex_rows) if row.split(" & ")[offset].startswith(r"\textbf")}
        assert md_bold == expected == tex_bold, column.name
    rsum = [c.name for c in COLUMNS].index("rsum") + 2
    bold_experiments = [row[0] for row in md_rows if row[rsum].startswith("**")]
    assert sorted(set(bold_experiments)) == ["alpha", "beta"]  # one best per experiment, not one over both
    assert "best per column within each experiment in bold; no best is marked across experiments" in md
    assert "best per column within each experiment in bold; no best is marked across experiments" in tex
    assert r"\multicolumn" in tex and "Experiment & Setting" in tex
    assert tex.count(r"\midrule") == 2  # under the header and between the two experiments
    single = markdown_table(loaded[:1])
    assert "best per column in bold." in single and "within each experiment" not in single


def test_missing_values_and_special_characters(tmp_path):
    data = make_results("a_b&c", seed=2)
    data["settings"][1]["label"] = "rerank 50% & more_x"
    del data["settings"][2]["ms_per_query"]
    del data["metrics"]["stage1/i2t/mAP"]
    results = load_results(write_results(tmp_path / "x", data))
    md_rows = markdown_body(markdown_table([results]))
    i2t_map = 1 + [c.name for c in COLUMNS].index("i2t mAP")
    assert md_rows[0][i2t_map] == "-" and md_rows[2][-1] == "-"
    tex = latex_table([results])
    assert r"rerank 50\% \& more\_x" in tex and r"(a\_b\&c)" in tex and r"\label{tab:a-b-c}" in tex
    assert latex_escape("~^\\") == r"\textasciitilde{}\textasciicircum{}\textbackslash{}"


def test_bad_results_file_names_the_field(tmp_path):
    data = make_results()
    del data["settings"][0]["depth"]
    with pytest.raises(ResultsFileError, match=r"settings\[0\]: missing field 'depth'"):
        load_results(write_results(tmp_path, data))
    (tmp_path / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ResultsFileError, match="results.json"):
        load_results(tmp_path / "results.json")


def _with_ledger_latency(data):
    """Mark the itm+itc settings' latencies as read from the cost ledger (issue 18 case 3)."""
    marked = []
    for setting in data["settings"]:
        if setting["rule"] == "itm+itc":
            setting["latency_source"] = {"t2i": "ledger", "i2t": "ledger"}
            marked.append(setting["label"])
        else:
            setting["latency_source"] = {"t2i": "this run", "i2t": "this run"}
    return marked


def test_latency_from_the_ledger_is_marked_in_every_table(tmp_path):
    data = make_results()
    marked = _with_ledger_latency(data)
    results = load_results(write_results(tmp_path / "x", data))
    md = markdown_table([results])
    for row in markdown_body(md):
        latency = row[-2:]
        assert all(cell.endswith("‡") for cell in latency) == (row[0] in marked), row
    assert "‡ latency not measured in this run" in md
    tex = latex_table([results])
    rows = [line for line in tex.splitlines() if line.startswith("rerank itm+itc")]
    assert rows and all(line.count(r"$^\ddagger$") == 2 for line in rows)
    assert r"$^\ddagger$ Latency not measured in this run" in tex
    paths = write_tables([results], tmp_path / "out")
    frame = pd.read_csv(paths[2], keep_default_na=False)
    ledger = frame[frame["t2i ms/query source"] == "ledger"]
    assert sorted(ledger["setting"]) == sorted(marked)
    assert set(frame.loc[~frame["setting"].isin(marked), "i2t ms/query source"]) == {"this run"}
    measured = markdown_table([load_results(write_results(tmp_path / "measured", make_results()))])
    assert "‡" not in measured and "ledger" not in measured


def test_files_without_latency_source_are_marked_from_their_costs(tmp_path):
    """results.json written before settings carried latency_source: the costs section says what came from the
    ledger (here the stage-1 image encoding, so every i2t latency and no t2i one)."""
    data = make_results()
    data["costs"] = {"stage1": {"text": {"seconds_per_item": 0.001, "source": "this run"},
                                "image": {"seconds_per_item": 0.002, "source": "ledger"}},
                     "stage2": {"pair": {"seconds_per_item": 0.003, "source": "this run"},
                                "vision_image": {"seconds_per_item": 0.004, "source": "this run"}}}
    results = load_results(write_results(tmp_path, data))
    assert all(not s.latency_measured("i2t") and s.latency_measured("t2i") for s in results.settings)
    rows = markdown_body(markdown_table([results]))
    assert all(row[-1].endswith("‡") and not row[-2].endswith("‡") for row in rows)


def test_rendered_by_pandas_with_the_hand_written_layout(results_path):
    """Markdown from DataFrame.to_markdown and LaTeX from Styler.to_latex keep the layout the hand-written tables had
    (issue 19 item 9): left-aligned labels, right-aligned numbers as displayed (no re-parsing by tabulate), grouped
    LaTeX headers with a cmidrule under each group, booktabs rules, the bold set by the Styler."""
    results = load_results(results_path)
    md = markdown_table([results]).splitlines()
    header = md.index(next(line for line in md if line.startswith("| Setting")))
    cells = [cell.strip() for cell in md[header].strip("|").split("|")]
    assert cells == ["Setting"] + [c.name for c in COLUMNS]
    align = md[header + 1].strip("|").split("|")
    assert align[0].startswith(":") and not align[0].endswith(":")
    assert all(a.endswith(":") and not a.startswith(":") for a in align[1:])
    tex = latex_table([results]).splitlines()
    top = tex.index(r"\toprule")
    assert tex[top + 1] == (r" & \multicolumn{3}{c}{Text-to-image} & \multicolumn{3}{c}{Image-to-text} &  & "
                            r"\multicolumn{3}{c}{Text-to-image} & \multicolumn{3}{c}{Image-to-text} & "
                            r"\multicolumn{2}{c}{Latency (ms/query)} \\")
    assert tex[top + 2] == (r"\cmidrule(lr){2-4} \cmidrule(lr){5-7} \cmidrule(lr){9-11} \cmidrule(lr){12-14} "
                            r"\cmidrule(lr){15-16}")
    assert tex[top + 3] == "Setting & " + " & ".join(c.short for c in COLUMNS) + r" \\"
    assert tex[top + 4] == r"\midrule"
    assert tex.index(r"\begin{tabular}{l" + "r" * len(COLUMNS) + "}") < top
    assert any(r"\textbf{" in line for line in tex[top:]) and not any(r"\bfseries" in line for line in tex)


def test_significant_differences_carry_a_dagger_explained_in_the_caption(tmp_path):
    data = make_results()
    results = load_results(write_results(tmp_path / "x", data))
    md = markdown_table([results])
    header = next(line for line in md.splitlines() if line.startswith("| Setting"))
    names = [cell.strip() for cell in header.strip("|").split("|")]
    marked = 0
    for row in markdown_body(md):
        cells = dict(zip(names, row))
        key = next(s["key"] for s in data["settings"] if s["label"] == cells["Setting"])
        for column in ("t2i R@1", "i2t R@5", "t2i MRR"):
            expected = data["analysis"]["vs_stage1"].get(f"{key}/{column.replace(' ', '/')}", {}).get("significant")
            assert cells[column].endswith("†") == bool(expected), (key, column)
            marked += bool(expected)
        assert not cells["t2i R@10"].endswith("†")  # R@10 is not tested
    assert marked > 0
    assert "† differs from the stage 1 of its setting: paired bootstrap over queries, 1,000 resamples" in md
    assert "Recommended depth per rule (smallest k with rsum within 1 of the rule's best" in md
    tex = latex_table([results])
    assert r"$^\dagger$ Differs from the stage 1" in tex
    without = dict(data)
    without.pop("analysis")
    plain = markdown_table([load_results(write_results(tmp_path / "old", without))])
    assert "†" not in plain and "Recommended" not in plain


def test_confidence_intervals_as_columns_and_in_the_csv(tmp_path):
    data = make_results()
    results = load_results(write_results(tmp_path / "x", data))
    md = markdown_table([results], ci=True)
    header = next(line for line in md.splitlines() if line.startswith("| Setting"))
    assert header.rstrip(" |").endswith("t2i R@1 95% CI |   i2t R@1 95% CI")
    first = markdown_body(md)[0]
    low, high = data["analysis"]["intervals"]["stage1/t2i/R@1"]
    assert first[-2] == f"[{low:.1f}, {high:.1f}]"
    paths = write_tables([results], tmp_path / "out", ci=True)
    frame = pd.read_csv(paths[2])
    assert frame.loc[0, "t2i R@1 CI low"] == pytest.approx(low)
    assert frame.loc[0, "i2t nDCG@10 CI high"] == pytest.approx(data["analysis"]["intervals"]["stage1/i2t/nDCG@10"][1])
    row = frame[frame["key"] == "stage2/itm/k=10"].iloc[0]
    counts = data["analysis"]["win_loss"]["stage2/itm/k=10/t2i"]
    assert (row["t2i improved"], row["t2i worsened"], row["t2i unchanged"]) == (
        counts["improved"], counts["worsened"], counts["unchanged"])
    assert row["t2i R@1 share of ceiling"] == pytest.approx(data["analysis"]["ceiling_share"]["stage2/itm/k=10/t2i"])
    assert "CI" in latex_table([results], ci=True)
