"""The analysis section of an experiment: checked at load, example_cell named among the run's cells."""

import pytest

from eval.analysis import AnalysisConfig
from eval.experiment_config import ExperimentConfig, load_experiment
from eval.typed_config import ConfigError

BASE = """experiment: x
dataset: {format: synthetic}
stage1: {depth: 10}
stage2: {backend: blip2_itm, model: some/model}
ablation: {depths: [0, 5], rules: [itm, rrf], stage1_variants: {hnsw: {index.type: hnsw}}}
"""


def test_setting_keys_are_the_runs_cells():
    from eval.typed_config import from_dict
    import yaml

    cfg = from_dict(ExperimentConfig, yaml.safe_load(BASE), "test")
    assert cfg.setting_keys() == ["stage1", "stage2/itm/k=5", "stage2/rrf/k=5",
                                  "stage1@hnsw", "stage2@hnsw/itm/k=5", "stage2@hnsw/rrf/k=5"]


def test_an_unknown_example_cell_is_an_error_listing_the_cells(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(BASE + "analysis: {example_cell: stage2/itm/k=20}\n")
    with pytest.raises(ConfigError, match=r"analysis.example_cell 'stage2/itm/k=20' is not a cell.*stage2@hnsw/rrf/k=5"):
        load_experiment(path)


@pytest.mark.parametrize("field, value", [("resamples", 999), ("alpha", 1.0), ("confidence", 0.0),
                                          ("recommend_within", -1.0), ("examples", 0)])
def test_values_out_of_range_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        AnalysisConfig(**{field: value})
