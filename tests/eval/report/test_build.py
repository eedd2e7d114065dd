"""build_report / main: one results.json -> outputs next to it; several -> also a merged comparison table."""

from pathlib import Path

import pandas as pd
import pytest

from eval.cli import main as cli_main
from eval.report.build import build_report, main

from .conftest import make_results, write_results

TABLES = {"table.md", "table.tex", "table.csv"}
PLOT_FILES = {f"{name}.{ext}" for name in ("recall_curves", "depth_sweep", "quality_latency") for ext in ("png", "pdf")}


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
    assert {p.name for p in written if p.parent == comparison} == TABLES
    for path in paths:
        assert {p.name for p in written if p.parent == path.parent} == TABLES | PLOT_FILES
    frame = pd.read_csv(comparison / "table.csv")
    assert sorted(frame["experiment"].unique()) == ["alpha", "beta"]
    assert "| alpha | stage 1 (dual encoder) |" in (comparison / "table.md").read_text(encoding="utf-8")


def test_cli_main_with_out_dir(tmp_path, results_path):
    second = write_results(tmp_path / "results" / "beta", make_results("beta", 3))
    assert main([str(results_path), str(second), "--out", str(tmp_path / "cmp")]) == 0
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == TABLES | {"demo", "beta"}
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
    assert {p.name for p in out.iterdir()} == TABLES | {"alpha", "beta"}


def test_duplicate_experiment_names_are_an_error(tmp_path):
    paths = [write_results(tmp_path / d, make_results("same", 0)) for d in ("a", "b")]
    with pytest.raises(ValueError, match="same"):
        build_report(paths)
