"""One config-field error for every config: a ValueError naming its dotted key, reported by the loaders."""

from __future__ import annotations

import pytest

import stage2_rerank
from eval.data.dataset_config import SyntheticConfig
from eval.typed_config import ConfigError, from_dict
from rrbench_base.config_errors import ConfigFieldError
from stage1_dual.config import EncoderConfig, Stage1Config
from stage2_rerank.config import RerankerConfig


def test_carries_the_key_and_the_message_unchanged():
    error = ConfigFieldError("index.nprobe", "index.nprobe must be >= 1, got 0")
    assert isinstance(error, ValueError)
    assert error.key == "index.nprobe" and str(error) == "index.nprobe must be >= 1, got 0"


@pytest.mark.parametrize("build, key", [
    (lambda: EncoderConfig(batch_size=0), "batch_size"),
    (lambda: RerankerConfig(pair_batch_size=0), "pair_batch_size"),
    (lambda: SyntheticConfig(seed=-1), "seed"),
])
def test_stage_and_eval_configs_raise_the_same_class(build, key):
    with pytest.raises(ConfigFieldError) as info:
        build()
    assert info.value.key == key


def test_stage2_still_exports_it_and_loaders_report_the_full_key():
    assert stage2_rerank.ConfigFieldError is ConfigFieldError
    with pytest.raises(ConfigError, match=r"exp\.yaml: encoder\.batch_size must be >= 1, got 0"):
        from_dict(Stage1Config, {"encoder": {"batch_size": 0}}, source="exp.yaml")
