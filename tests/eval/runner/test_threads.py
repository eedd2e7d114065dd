"""threads: null follows OMP_NUM_THREADS / MKL_NUM_THREADS, else torch's own setting; recorded (issue 18 case 15)."""

import json
from pathlib import Path

import pytest
import torch

from eval.config_doc import attribute_docs
from eval.experiment_config import ExperimentConfig, load_experiment
from eval.runner.experiment import run_experiment
from eval.runner.threads import ThreadSetting, resolve_threads
from tests.tiny_experiment import write_tiny_experiment


@pytest.mark.parametrize("configured, environ, expected", [
    (3, {"OMP_NUM_THREADS": "1"}, ThreadSetting(3, "config")),
    (None, {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "2"}, ThreadSetting(1, "OMP_NUM_THREADS")),
    (None, {"OMP_NUM_THREADS": "4,2"}, ThreadSetting(4, "OMP_NUM_THREADS")),
    (None, {"OMP_NUM_THREADS": "lots", "MKL_NUM_THREADS": "2"}, ThreadSetting(2, "MKL_NUM_THREADS")),
    (None, {"OMP_NUM_THREADS": "0"}, ThreadSetting(8, "torch")),
    (None, {}, ThreadSetting(8, "torch")),
])
def test_resolve_threads(configured, environ, expected):
    assert resolve_threads(configured, environ, current=8) == expected


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    return write_tiny_experiment(tmp_path_factory.mktemp("threads"))


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _provenance(config: Path) -> dict:
    cfg = load_experiment(config, ["threads=null"])
    assert cfg.threads is None
    return json.loads(run_experiment(cfg).read_text())["provenance"]


def test_null_threads_follow_omp_num_threads(config, monkeypatch, torch_threads):
    torch.set_num_threads(2)  # e.g. torch's default on a 2-core machine
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    provenance = _provenance(config)
    assert provenance["threads"] == {"count": 1, "source": "OMP_NUM_THREADS"}
    assert provenance["hardware"]["torch_threads"] == 1
    assert torch.get_num_threads() == 2  # restored after the run


def test_null_threads_keep_torchs_setting_without_env(config, monkeypatch, torch_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    torch.set_num_threads(1)
    provenance = _provenance(config)
    assert provenance["threads"] == {"count": 1, "source": "torch"}


def test_configured_threads_are_recorded(config, monkeypatch, torch_threads):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    results = json.loads(run_experiment(load_experiment(config)).read_text())  # the tiny config says threads: 1
    assert results["provenance"]["threads"] == {"count": 1, "source": "config"}


def test_the_default_is_documented():
    doc = attribute_docs(ExperimentConfig)["threads"]
    assert "OMP_NUM_THREADS" in doc and "torch's current setting" in doc
