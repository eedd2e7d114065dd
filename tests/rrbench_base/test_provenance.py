"""One provenance record for results, competition output and benchmark reports."""

from __future__ import annotations

import datetime
import json
import subprocess

import pytest

from rrbench_base.provenance import REPO_ROOT, describe, git_state, hardware, package_versions, provenance


def test_run_record_keeps_the_results_json_schema():
    record = provenance(config={"experiment": "demo"}, seed=7, threads={"count": 1, "source": "config"})
    assert list(record) == ["config", "seed", "versions", "git", "hardware", "finished_at", "threads"]
    assert record["config"] == {"experiment": "demo"} and record["seed"] == 7
    assert record["versions"]["python"] and record["versions"]["numpy"]
    assert set(record["hardware"]) == {"cpu", "cpu_count", "torch_threads", "gpus", "platform"}
    finished = datetime.datetime.fromisoformat(record["finished_at"])
    assert finished.tzinfo is not None and abs(datetime.datetime.now(datetime.timezone.utc) - finished).seconds < 60
    json.dumps(record)  # JSON-ready


def test_benchmark_record_stores_the_command_quoted_and_no_config():
    record = provenance(argv=["scripts/bench.py", "--out", "my results"])
    assert record["command"] == "scripts/bench.py --out 'my results'"
    assert "config" not in record and "threads" not in record and record["seed"] is None


def test_needs_a_config_or_a_command():
    with pytest.raises(ValueError, match="config or its command line"):
        provenance(seed=0)


def test_git_state_of_this_checkout_and_outside_one(tmp_path):
    inside = git_state(REPO_ROOT)
    expected = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip() or None
    assert inside["sha"] == expected
    assert git_state(tmp_path) == {"sha": None, "dirty": None}


def test_versions_leave_out_absent_packages_and_hardware_reads_torch(monkeypatch):
    import importlib.metadata

    import torch

    import rrbench_base.provenance as module

    monkeypatch.setattr(module, "PACKAGES", ("torch", "no-such-package-rrbench"))
    assert package_versions() == {"python": package_versions()["python"],
                                  "torch": importlib.metadata.version("torch")}
    assert hardware()["torch_threads"] == torch.get_num_threads()


def test_describe_renders_the_header_of_a_report():
    record = {"command": "scripts/bench.py --quick", "seed": 3, "versions": {"python": "3.11", "torch": "2.4"},
              "git": {"sha": "abc123", "dirty": True}, "finished_at": "2024-05-06T07:08:09+00:00",
              "hardware": {"cpu": "EPYC", "cpu_count": 16, "torch_threads": 4, "gpus": ["H200"], "platform": "x"},
              "threads": {"count": 2, "source": "--threads"}}
    assert describe(record) == [
        "Command: `scripts/bench.py --quick`  ",
        "CPU: EPYC (16 logical cores, 2 thread(s) used); GPUs: H200  ",
        "Versions: python 3.11, torch 2.4; git abc123 (dirty); seed 3; finished 2024-05-06T07:08:09+00:00"]
    del record["command"], record["threads"]
    record["seed"], record["hardware"]["gpus"] = None, []
    assert describe(record)[0] == "CPU: EPYC (16 logical cores, 4 thread(s) used)  "
