"""Errors about a config path (missing, not a folder, escaping its root) say how relative paths resolve (against the
current directory, not the config file's folder) and show the absolute path tried."""

from __future__ import annotations

import pytest
import yaml

from eval.cli import main
from eval.competition.config import CompetitionFiles
from eval.competition.task_files import read_tasks
from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.loaders import load_benchmark
from eval.experiment_config import load_experiment
from eval.typed_config import ConfigError

RULE = "relative paths in a config resolve against the current directory"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The current directory is ``tmp_path/run``; the config lives in ``tmp_path/configs``."""
    (tmp_path / "run").mkdir()
    (tmp_path / "configs").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    return tmp_path


def test_missing_dataset_root_names_the_absolute_path_and_the_rule(elsewhere):
    (elsewhere / "configs" / "photos").mkdir()  # next to the config: not where a relative root points
    with pytest.raises(BadInputError) as error:
        load_benchmark(DatasetConfig(format="flickr8k", root="photos", cache_dir=elsewhere / "cache"))
    message = str(error.value)
    assert message.startswith("dataset.root folder not found: photos")
    assert f"tried {elsewhere / 'run' / 'photos'}: {RULE} {elsewhere / 'run'}, not the config file's folder" in message


def test_root_that_is_a_file_and_missing_annotations_say_the_rule(elsewhere):
    (elsewhere / "run" / "root.txt").write_text("x")
    with pytest.raises(BadInputError, match=f"dataset.root is not a folder: root.txt \\(tried .*{RULE}"):
        load_benchmark(DatasetConfig(format="table", root="root.txt", annotations="caps.csv"))
    with pytest.raises(BadInputError, match=f"annotation file not found: caps.csv \\(tried {elsewhere / 'run'}"):
        load_benchmark(DatasetConfig(format="table", annotations="caps.csv"))


def test_absolute_paths_are_reported_as_written(tmp_path):
    with pytest.raises(BadInputError) as error:
        load_benchmark(DatasetConfig(format="karpathy", root=tmp_path / "nope", annotations=tmp_path / "d.json"))
    assert str(error.value) == f"dataset.root folder not found: {tmp_path / 'nope'}"


def test_output_dir_that_is_a_file_says_the_rule_through_the_cli(elsewhere, caplog, capsys):
    (elsewhere / "run" / "out").write_text("a file")
    config = elsewhere / "configs" / "e.yaml"
    config.write_text(yaml.safe_dump({"experiment": "e", "dataset": {"format": "synthetic"}, "output_dir": "out",
                                      "stage1": {"depth": 10}, "ablation": {"depths": [0]}}))
    with pytest.raises(ConfigError, match=f"output_dir: out exists and is not a folder \\(tried .*{RULE}"):
        load_experiment(config)
    assert main(["config", str(config)]) == 2
    assert f"tried {elsewhere / 'run' / 'out'}" in caplog.text


def test_competition_image_folder_names_the_data_folder_and_the_rule(elsewhere):
    with pytest.raises(BadInputError) as error:
        read_tasks(elsewhere / "run" / "missing", CompetitionFiles(), "error")
    assert "set files.images; the files.* names resolve against the --data folder" in str(error.value)
    with pytest.raises(BadInputError, match=f"--data folder data \\(tried {elsewhere / 'run' / 'data'}: {RULE}"):
        read_tasks("data", CompetitionFiles(), "error")
