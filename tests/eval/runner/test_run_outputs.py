"""A run's outputs are one run's: run files are checked by their bytes, and outputs are swapped in whole
(issue 18 cases 4 and 5)."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.experiment_config import load_experiment
from eval.runner.cells import run_file_name
from eval.runner.experiment import run_experiment
from eval.runner.outputs import StagedOutputs
from eval.trec import read_qrels
from tests.tiny_experiment import write_tiny_experiment

DIRECTIONS = ("t2i", "i2t")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("outputs")
    config = write_tiny_experiment(root)
    return config, run_experiment(load_experiment(config))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_consistent(out: Path) -> dict:
    """results.json and runs/ come from the same run: one run file per setting and direction, nothing else,
    and ranx on every file gives results.json's numbers."""
    from ranx import Qrels, Run, evaluate

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    expected = {run_file_name(s["key"], d) for s in results["settings"] for d in DIRECTIONS}
    assert {p.name for p in (out / "runs").glob("*.trec.gz")} == expected
    qrels = {d: Qrels(read_qrels(out / "runs" / f"qrels.{d}.txt")) for d in DIRECTIONS}
    metrics = results["metrics"]
    for setting in results["settings"]:
        for direction in DIRECTIONS:
            run = Run.from_file(str(out / "runs" / run_file_name(setting["key"], direction)))
            scores = evaluate(qrels[direction], run, ["hit_rate@1", "hit_rate@5", "mrr"], make_comparable=True)
            prefix = f"{setting['key']}/{direction}"
            assert scores["hit_rate@1"] * 100 == pytest.approx(metrics[f"{prefix}/R@1"], abs=1e-6)
            assert scores["hit_rate@5"] * 100 == pytest.approx(metrics[f"{prefix}/R@5"], abs=1e-6)
            assert scores["mrr"] * 100 == pytest.approx(metrics[f"{prefix}/MRR"], abs=1e-6)
    return results


def test_damaged_run_files_are_rewritten_on_rerun(tiny):
    """Case 4: a truncated gz and a valid gz of half the lines, both with their old stamps, are rewritten."""
    config, path = tiny
    runs = path.parent / "runs"
    truncated, halved = runs / "stage1.t2i.trec.gz", runs / "stage2_itm+itc_k=5.i2t.trec.gz"
    good = {truncated: truncated.read_bytes(), halved: halved.read_bytes()}
    truncated.write_bytes(good[truncated][: len(good[truncated]) // 2])
    lines = gzip.decompress(good[halved]).decode("utf-8").splitlines(keepends=True)
    halved.write_bytes(gzip.compress("".join(lines[: len(lines) // 2]).encode("utf-8")))

    again = run_experiment(load_experiment(config))
    assert truncated.read_bytes() == good[truncated] and halved.read_bytes() == good[halved]
    assert_consistent(again.parent)


def test_identical_runs_give_byte_identical_run_files(tiny, tmp_path):
    config, path = tiny
    other = run_experiment(load_experiment(config, [f"output_dir={tmp_path}"]))
    first, second = _snapshot(path.parent / "runs"), _snapshot(other.parent / "runs")
    assert first.keys() == second.keys() and first == second


def test_killed_run_leaves_the_previous_outputs_untouched(tiny, monkeypatch):
    """Case 5: a run with a new config dies late (before its tables); the old directory is byte-identical and
    consistent, and nothing that looks like results is left beside it."""
    config, path = tiny
    out = path.parent
    (out / "README.md").write_text("notes kept across runs\n", encoding="utf-8")
    before = _snapshot(out)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    import eval.report.build

    monkeypatch.setattr(eval.report.build, "build_report", killed)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(load_experiment(config, ["ablation.depths=[0,2]"]))
    assert _snapshot(out) == before
    results = assert_consistent(out)
    assert "stage2/itm/k=5" in [s["key"] for s in results["settings"]]
    assert sorted(out.parent.glob("*/results.json")) == [out / "results.json"]
    assert not list(out.parent.glob(".tiny.partial-*"))


def test_next_run_succeeds_and_cleans_stale_partial_dirs(tiny):
    """After a kill -9 (staging dirs of dead processes left behind), the next run replaces the outputs whole,
    removes the leftovers and puts back a non-output entry a killed swap had moved into its staging dir."""
    config, path = tiny
    out = path.parent
    pid = _dead_pid()
    stale = out.parent / f".tiny.partial-{pid}"
    (stale / "runs").mkdir(parents=True)
    (stale / "results.json").write_text("{}", encoding="utf-8")
    (stale / "runs" / "stage2_itm_k=2.t2i.trec.gz").write_bytes(b"half")
    (stale / "training_log.jsonl").write_text("{}\n", encoding="utf-8")

    new = run_experiment(load_experiment(config, ["ablation.depths=[0,2]"]))
    assert new == out / "results.json"
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".tiny.")]
    results = assert_consistent(out)
    assert {s["depth"] for s in results["settings"]} == {0, 2}
    assert not (out / "runs" / "stage2_itm_k=5.t2i.trec.gz").exists()  # the old config's files went with it
    assert (out / "README.md").read_text(encoding="utf-8") == "notes kept across runs\n"
    assert (out / "training_log.jsonl").exists()


def test_outputs_caught_between_the_fallback_renames_are_restored(tmp_path):
    final = tmp_path / "exp"
    old = tmp_path / f".exp.old-{_dead_pid()}"
    old.mkdir()
    (old / "results.json").write_text("{\"previous\": true}", encoding="utf-8")
    staging = StagedOutputs(final).begin()
    assert json.loads((final / "results.json").read_text()) == {"previous": True}
    assert staging.name == f".exp.partial-{os.getpid()}" and not list(staging.iterdir())
    assert not old.exists()


@pytest.mark.parametrize("atomic_exchange", [True, False])
def test_commit_swaps_outputs_and_keeps_other_entries(tmp_path, monkeypatch, atomic_exchange):
    import eval.runner.outputs as outputs

    if not atomic_exchange:
        monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    final = tmp_path / "exp"
    (final / "runs").mkdir(parents=True)
    (final / "runs" / "stage1.t2i.trec.gz").write_bytes(b"old")
    (final / "results.json").write_text("old", encoding="utf-8")
    (final / "depth_sweep.png").write_bytes(b"old plot the new run does not draw")
    (final / "README.md").write_text("notes", encoding="utf-8")
    staged = StagedOutputs(final)
    staging = staged.begin()
    (staging / "results.json").write_text("new", encoding="utf-8")
    (staging / "runs").mkdir()
    assert staged.commit() == final
    assert sorted(p.name for p in final.iterdir()) == ["README.md", "results.json", "runs"]
    assert (final / "results.json").read_text() == "new" and not list((final / "runs").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
