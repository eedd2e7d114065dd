"""Every shipped config validates; every config field is documented; the CLI lists its subcommands."""

from pathlib import Path

import pytest

from eval.cli import SUBCOMMANDS, build_parser, main
from eval.config_doc import config_reference
from eval.experiment_config import ExperimentConfig, load_experiment
from eval.typed_config import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_validate(path):
    cfg = load_experiment(path)
    assert cfg.experiment == path.stem


def test_every_config_field_documented():
    rows = config_reference(ExperimentConfig)
    undocumented = [row.key for row in rows if not row.text]
    assert not undocumented, f"config fields without a description: {undocumented}"
    keys = {row.key for row in rows}
    assert {"stage1.index.type", "stage2.precision", "ablation.depths", "dataset.on_bad_input"} <= keys


def test_experiment_level_checks(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("experiment: x\ndataset: {format: synthetic}\nstage1: {depth: 10}\nablation: {depths: [0, 20]}\n")
    with pytest.raises(ConfigError, match=r"x\.yaml.*exceed stage1\.depth=10"):
        load_experiment(path)
    with pytest.raises(ConfigError, match="need a stage2 section"):
        load_experiment(path, ["ablation.depths=[0,5]"])
    assert load_experiment(path, ["ablation.depths=[0]"]).stage2 is None
    with pytest.raises(ConfigError, match=r"unknown key 'ablation\.depht'"):
        load_experiment(path, ["ablation.depht=[0]"])
    with pytest.raises(ConfigError, match=r"ablation\.stage1_variants\.hnsw.*unknown key 'index\.kind'"):
        load_experiment(path, ["ablation.depths=[0]", "ablation.stage1_variants={hnsw: {index.kind: hnsw}}"])
    cfg = load_experiment(path, ["ablation.depths=[0]", "ablation.stage1_variants={hnsw: {index.type: hnsw}}"])
    assert cfg.stage1_settings()["hnsw"].index.type == "hnsw"


def test_cli_lists_subcommands(capsys):
    help_text = build_parser().format_help()
    for name in SUBCOMMANDS:
        assert name in help_text
    assert main(["config", "--doc"]) == 0
    assert "stage1.encoder.model" in capsys.readouterr().out


def test_cli_reports_user_errors_in_one_line(tmp_path, caplog):
    path = tmp_path / "bad.yaml"
    path.write_text("experiment: x\ndataset: {format: synthetic}\nstage1: {depht: 3}\n")
    assert main(["config", str(path)]) == 2
    assert "unknown key 'stage1.depht'" in caplog.text
