"""build_report / main: one results.json -> outputs next to it; several -> also a merged comparison table and
comparison plots."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eval.cli import main as cli_main
from eval.report.build import build_report, main

from .conftest import DEPTHS, RULES, make_results, write_results

TABLES = {"table.md", "table.tex", "table.csv"}
PLOT_FILES = {f"{name}.{ext}" for name in ("recall_curves", "depth_sweep", "quality_latency") for ext in ("png", "pdf")}
COMPARISON_FILES = TABLES | {f"{name}.{ext}" for name in ("depth_sweep", "quality_latency") for ext in ("png", "pdf")}


def test_single_file_writes_everything_next_to_it(results_path):
    written = build_report([results_path])
    assert {p.name for p in written} == TABLES | PLOT_FILES
    for path in written:
        assert path.parent == results_path.parent
        assert path.stat().st_size > 0, path


def test_merge_two_experiments(tmp_path):
    root = tmp_path / "results"
    paths = [write_results(root / "alpha", make_results("alpha", 0)), write_results(root / "beta", make_results("beta", 1))]
    written = build_report(paths)
    comparison = root / "comparison"
    assert {p.name for p in written if p.parent == comparison} == COMPARISON_FILES
    for path in paths:
        assert {p.name for p in written if p.parent == path.parent} == TABLES | PLOT_FILES
    frame = pd.read_csv(comparison / "table.csv")
    assert sorted(frame["experiment"].unique()) == ["alpha", "beta"]
    md_rows = [[cell.strip() for cell in line.strip("|").split("|")]
               for line in (comparison / "table.md").read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    assert ["alpha", "stage 1 (dual encoder)"] in [row[:2] for row in md_rows]  # cells padded by to_markdown


def test_cli_main_with_out_dir(tmp_path, results_path):
    second = write_results(tmp_path / "results" / "beta", make_results("beta", 3))
    assert main([str(results_path), str(second), "--out", str(tmp_path / "cmp")]) == 0
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == COMPARISON_FILES | {"demo", "beta"}
    for name in ("demo", "beta"):  # each experiment's tables and plots go under --out too
        assert {p.name for p in (tmp_path / "cmp" / name).iterdir()} == TABLES | PLOT_FILES


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def test_report_with_out_writes_only_under_out(tmp_path):
    """`rrbench report A B --out X` leaves A's and B's directories byte- and mtime-identical (issue 18 case 7)."""
    root = tmp_path / "results"
    paths = [write_results(root / name, make_results(name, seed)) for seed, name in enumerate(("alpha", "beta"))]
    build_report(paths)  # A and B have their own tables and plots, as after `rrbench run`
    before = _snapshot(tmp_path)
    out = tmp_path / "elsewhere" / "X"
    assert cli_main(["report", *map(str, paths), "--out", str(out)]) == 0
    after = _snapshot(tmp_path)
    changed = {name for name in before if after.get(name) != before[name]}
    added = {name for name in after if name not in before}
    assert not changed
    assert added and all(Path(tmp_path / name).is_relative_to(out) for name in added)
    assert {p.name for p in out.iterdir()} == COMPARISON_FILES | {"alpha", "beta"}


def test_duplicate_experiment_names_are_an_error(tmp_path):
    paths = [write_results(tmp_path / d, make_results("same", 0)) for d in ("a", "b")]
    with pytest.raises(ValueError, match="same"):
        build_report(paths)


def _titles(figure) -> str:
    parts = [figure._suptitle.get_text()] if figure._suptitle is not None else []
    return " | ".join(parts + [ax.get_title() for ax in figure.axes])


def test_every_plot_title_names_its_own_experiment(tmp_path, monkeypatch):
    """`rrbench report A B --out X`: each experiment's plots (X/<name>/) are titled with its own name only; the
    comparison plots (X/) with both (issue 19 item 8)."""
    import eval.report.plots as plots

    saved: dict[Path, str] = {}
    real_save = plots._save

    def recording_save(figure, out_stem):
        saved[out_stem] = _titles(figure)
        return real_save(figure, out_stem)

    monkeypatch.setattr(plots, "_save", recording_save)
    paths = [write_results(tmp_path / name, make_results(name, seed)) for seed, name in enumerate(("alpha", "beta"))]
    out = tmp_path / "X"
    build_report(paths, out)
    assert {stem.relative_to(out).as_posix() for stem in saved} == {
        f"{folder}{name}" for folder in ("", "alpha/", "beta/") for name in ("depth_sweep", "quality_latency")
    } | {"alpha/recall_curves", "beta/recall_curves"}
    for stem, title in saved.items():
        folder = stem.parent.name
        if folder in ("alpha", "beta"):
            other = "beta" if folder == "alpha" else "alpha"
            assert folder in title and other not in title, (stem, title)
        else:
            assert "alpha" in title and "beta" in title, (stem, title)


def test_comparison_plots_are_drawn_from_the_json(tmp_path):
    """The comparison depth sweep holds, per experiment and fusion rule, exactly that file's rsum by depth, in the
    experiment's colour; the legend names every experiment with its dataset, and the comparison figures keep
    their legends outside the axes."""
    from eval.report.plots import comparison_depth_sweep_figure, comparison_quality_latency_figure
    from eval.report.results_file import load_results

    data = {name: make_results(name, seed, num_images=60 + 30 * seed) for seed, name in enumerate(("alpha", "beta"))}
    data["beta"]["counts"]["dataset"] = {"name": "other-set", "split": "val"}
    loaded = [load_results(write_results(tmp_path / name, d)) for name, d in data.items()]
    figure = comparison_depth_sweep_figure(loaded)
    rsum_ax = figure.axes[2]
    drawn = sorted(tuple(np.round(line.get_ydata(), 6)) for line in rsum_ax.lines if len(line.get_xdata()) > 2)
    expected = sorted(
        tuple(np.round([d["metrics"][f"stage2/{rule}/k={k}/rsum"] for k in DEPTHS], 6))
        for d in data.values() for rule in RULES
    )
    assert drawn == expected
    colours = {line.get_color() for line in rsum_ax.lines}
    assert len(colours) == 2  # one colour per experiment
    legend_texts = [t.get_text() for t in figure.legends[0].get_texts()]
    assert "alpha" in legend_texts and "beta (other-set, val)" in legend_texts
    figure = comparison_quality_latency_figure(loaded)
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    legend = figure.axes[0].get_legend()
    assert not legend.get_window_extent(renderer).overlaps(figure.axes[0].get_window_extent(renderer))
    assert any(t.get_text().startswith("beta (other-set, val)") for t in legend.get_texts())


def test_report_ci_flag_adds_interval_columns(tmp_path):
    from eval.report.build import main

    from .conftest import make_results, write_results

    path = write_results(tmp_path / "in", make_results())
    assert main([str(path), "--ci", "--out", str(tmp_path / "ci")]) == 0
    assert main([str(path), "--out", str(tmp_path / "plain")]) == 0
    assert "t2i R@1 95% CI" in (tmp_path / "ci" / "table.md").read_text()
    assert "95% CI" not in (tmp_path / "plain" / "table.md").read_text()
