"""Latency never comes from another experiment's context, and what is not measured in the run is marked
(issue 18 case 3)."""

import json
from pathlib import Path

import pytest

from eval.experiment_config import load_experiment
from eval.report.results_file import load_results
from eval.runner.experiment import run_experiment
from eval.runner.latency import CostLedger, cost_context
from tests.tiny_experiment import write_tiny_experiment

OTHER_DATA = ["dataset.synthetic.seed=4", "dataset.synthetic.num_test=16"]


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory) -> dict[str, dict]:
    """``a`` measured, then ``b`` (other data, same reranker and caches) measured, then ``a`` again from caches."""
    root = tmp_path_factory.mktemp("ledger")
    config_a, config_b = write_tiny_experiment(root, "tiny_a"), write_tiny_experiment(root, "tiny_b")
    first = json.loads(run_experiment(load_experiment(config_a)).read_text())
    other = json.loads(run_experiment(load_experiment(config_b, OTHER_DATA)).read_text())
    path = run_experiment(load_experiment(config_a))
    return {"first": first, "other": other, "again": json.loads(path.read_text()), "again_path": path,
            "config_a": config_a}


def test_rerun_reads_its_own_context_not_the_last_measurement(two_experiments):
    first, other, again = two_experiments["first"], two_experiments["other"], two_experiments["again"]
    assert first["costs"]["stage2"]["pair"]["source"] == other["costs"]["stage2"]["pair"]["source"] == "this run"
    assert again["counts"]["stage2"]["pairs_scored"] == 0  # everything from the caches
    pair = again["costs"]["stage2"]["pair"]
    assert pair["source"] == "ledger"
    assert pair["seconds_per_item"] == first["costs"]["stage2"]["pair"]["seconds_per_item"]
    assert pair["seconds_per_item"] != other["costs"]["stage2"]["pair"]["seconds_per_item"]
    assert again["costs"]["stage2"]["vision_image"]["seconds_per_item"] == \
        first["costs"]["stage2"]["vision_image"]["seconds_per_item"]


def test_settings_carry_the_latency_source_and_tables_mark_it(two_experiments):
    first, again = two_experiments["first"], two_experiments["again"]
    assert all(s["latency_source"] == {"t2i": "this run", "i2t": "this run"} for s in first["settings"])
    assert all(s["latency_source"] == {"t2i": "ledger", "i2t": "ledger"} for s in again["settings"])
    # rrbench report sees it from the JSON alone
    settings = load_results(two_experiments["again_path"]).settings
    assert settings and not any(s.latency_measured("t2i") or s.latency_measured("i2t") for s in settings)
    table = (two_experiments["again_path"].parent / "table.md").read_text(encoding="utf-8")
    assert table.count("‡") >= 2 * len(settings) and "latency not measured in this run" in table


def test_other_hardware_settings_get_no_latency(two_experiments):
    """Torch threads are part of the context: a cached rerun at another thread count has no latency to show."""
    again = json.loads(run_experiment(load_experiment(two_experiments["config_a"], ["threads=2"])).read_text())
    assert again["costs"]["stage2"]["pair"]["source"] == "unknown"
    assert all(not s["ms_per_query"] for s in again["settings"] if s["depth"] > 0)


def test_ledger_ignores_entries_of_the_old_format(tmp_path):
    path = tmp_path / "costs.json"
    path.write_text(json.dumps({"stage2-pair|abc|qformer=float32": 0.1}))
    ledger = CostLedger(path)
    context = cost_context("stage2-pair", {"key": "abc"}, {"pair_batch_size": 64}, "data-1")
    assert ledger.cost(context, 0.0, 0).source == "unknown"
    assert ledger.cost(context, 2.0, 4).seconds_per_item == 0.5
    changed = cost_context("stage2-pair", {"key": "abc"}, {"pair_batch_size": 32}, "data-1")
    assert CostLedger(path).cost(changed, 0.0, 0).source == "unknown"
    cost = CostLedger(path).cost(context, 0.0, 0)
    assert (cost.source, cost.seconds_per_item) == ("ledger", 0.5) and cost.measured_at
