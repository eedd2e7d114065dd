"""The tiny experiment in one process and in two (gloo on CPU, ``eval.runner.launch``): the same metrics, curves,
analysis and run-file bytes; in the two-process job each image's vision tower runs once, on one process, and
both processes encode and score; each run's caches serve the other run completely (issue 20 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest

from eval.experiment_config import load_experiment
from eval.runner.experiment import run_experiment
from eval.runner.launch import run_in_processes
from tests.tiny_experiment import write_tiny_experiment


def _run_all(root: str, config: str, jobs: list[list[str]]) -> None:
    """One process of the two-process job: each experiment of ``jobs`` (overrides) in turn."""
    open_clip.add_model_config(Path(root) / "rrbench-e2e-clip.json")
    for overrides in jobs:
        run_experiment(load_experiment(config, overrides))


def _job(name: str, cache: str, root: Path) -> list[str]:
    return [f"experiment={name}", f"cache_dir={root / cache}"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    config = write_tiny_experiment(root)
    run_experiment(load_experiment(config, _job("one", "cache_one", root)))
    # two processes: a fresh cache, then the cache the one-process run wrote
    run_in_processes(2, _run_all, str(root), str(config),
                     [_job("two", "cache_two", root), _job("two_on_one", "cache_one", root)])
    run_experiment(load_experiment(config, _job("one_on_two", "cache_two", root)))
    out = {}
    for name in ("one", "two", "two_on_one", "one_on_two"):
        directory = root / "results" / name
        out[name] = (json.loads((directory / "results.json").read_text()), directory)
    return out


def _without_latency(analysis: dict) -> dict:
    """The analysis without the measured latencies its recommendations quote (they vary from run to run)."""
    copy = json.loads(json.dumps(analysis))
    for choice in copy.get("recommendation", {}).values():
        choice.pop("ms_per_query")
    return copy


def test_two_processes_give_the_one_process_results(results):
    one, one_dir = results["one"]
    two, two_dir = results["two"]
    assert json.dumps(two["metrics"]) == json.dumps(one["metrics"])
    assert json.dumps(two["curves"]) == json.dumps(one["curves"])
    assert json.dumps(_without_latency(two["analysis"])) == json.dumps(_without_latency(one["analysis"]))
    assert two["timings"]["processes"] == 2 and "processes" not in one["timings"]
    files = sorted(p.name for p in (one_dir / "runs").iterdir())
    assert len(files) > 10 and files == sorted(p.name for p in (two_dir / "runs").iterdir())
    for name in files:
        assert (two_dir / "runs" / name).read_bytes() == (one_dir / "runs" / name).read_bytes(), name
    assert not list((two_dir.parent).glob(".two.partial-*"))  # staged by the main process only, swapped in


def test_each_image_runs_through_the_vision_tower_once_and_both_processes_work(results):
    one, two = results["one"][0]["counts"], results["two"][0]["counts"]
    shares = two["stage2"]["processes"]
    assert [s["rank"] for s in shares] == [0, 1]
    assert all(s["images_encoded"] > 0 and s["pairs_scored"] > 0 for s in shares)
    assert sum(s["images_encoded"] for s in shares) == two["stage2"]["images_encoded"] == \
        one["stage2"]["images_encoded"] == 12  # every test image is a candidate of some query
    assert sum(s["pairs_scored"] for s in shares) == two["stage2"]["pairs_scored"] == one["stage2"]["pairs_scored"]
    assert len(two["stage1"]["images"]["process_seconds"]) == 2
    assert "process_seconds" not in one["stage1"]["images"]


@pytest.mark.parametrize("name", ["two_on_one", "one_on_two"])
def test_a_run_with_the_other_process_count_reads_every_cache(results, name):
    counts = results[name][0]["counts"]
    assert counts["stage1"]["images"]["encoded_items"] == counts["stage1"]["texts"]["encoded_items"] == 0
    assert counts["stage2"]["pairs_scored"] == counts["stage2"]["images_encoded"] == 0
    assert counts["stage2"]["pairs_from_cache"] == counts["stage2"]["unique_keys"] > 0
    assert json.dumps(results[name][0]["metrics"]) == json.dumps(results["one"][0]["metrics"])


def test_cli_processes_option_starts_that_many_processes_of_the_config(tmp_path, monkeypatch, capsys):
    import eval.runner.launch as launch
    from eval.cli import main
    from eval.commands.run import run_config_process

    config = write_tiny_experiment(tmp_path)
    started = []
    monkeypatch.setattr(launch, "run_in_processes", lambda count, target, *args: started.append((count, target, args)))
    assert main(["run", str(config), "threads=1", "--processes", "3"]) == 0
    assert started == [(3, run_config_process, (str(config), ["threads=1"], False))]
    assert f"outputs: {tmp_path / 'results' / 'tiny'}" in capsys.readouterr().out
