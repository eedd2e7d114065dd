"""RerankerConfig / FusionConfig validation, the precision policy, and YAML loading via eval.typed_config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from eval.typed_config import ConfigError, from_dict
from stage2_rerank.config import FusionConfig, RerankerConfig, resolve_device, resolve_dtype


@dataclass
class Experiment:
    """Attributes:
        stage2: reranker section.
        fusion: fusion rules of the ablation grid.
    """

    stage2: RerankerConfig = field(default_factory=RerankerConfig)
    fusion: list[FusionConfig] = field(default_factory=list)


def test_nested_yaml_section_builds_typed_config():
    exp = from_dict(Experiment, {"stage2": {"model": "Salesforce/blip2-itm-vit-g-coco", "precision": "bf16",
                                            "cache_dir": "/tmp/x", "on_bad_input": "skip"},
                                 "fusion": [{"rule": "alpha", "alpha": 0.3}, {"rule": "rrf"}]})
    assert exp.stage2.precision == "bf16" and exp.stage2.cache_dir == Path("/tmp/x")
    assert exp.stage2.text_max_length == 35
    assert [f.rule for f in exp.fusion] == ["alpha", "rrf"] and exp.fusion[1].rrf_k == 60


@pytest.mark.parametrize("section, message", [
    ({"precision": "fp8"}, "precision"),
    ({"pair_batch_size": 0}, "pair_batch_size"),
    ({"text_max_length": 2}, "text_max_length"),
    ({"device": "tpu"}, "device"),
    ({"on_bad_input": "ignore"}, "on_bad_input"),
    ({"batch": 3}, "unknown key 'stage2.batch'"),
])
def test_invalid_values_name_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Experiment, {"stage2": section})


def test_precision_policy():
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu, "precision") == torch.float32
    assert resolve_dtype("bf16", cpu, "precision") == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cuda"), "precision") == torch.float16
    with pytest.raises(ValueError, match="fp16 is not supported on CPU"):
        resolve_dtype("fp16", cpu, "precision")
    assert resolve_device(RerankerConfig(device="cpu")).type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device(RerankerConfig()).type == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device(RerankerConfig(device="cuda:0"))


def test_field_errors_carry_the_key_and_load_time_checks(tmp_path, monkeypatch):
    from rrbench_base.config_errors import ConfigFieldError
    from stage2_rerank.config import check_loadable

    with pytest.raises(ConfigFieldError) as info:
        RerankerConfig(pair_batch_size=0)
    assert info.value.key == "pair_batch_size" and str(info.value) == "pair_batch_size must be >= 1, got 0"
    with pytest.raises(ConfigFieldError, match="unknown reranker backend 'clip'; known: blip2_itm"):
        RerankerConfig(backend="clip")
    with pytest.raises(ConfigFieldError, match="fp16 is not supported on CPU") as info:
        check_loadable(RerankerConfig(device="cpu", vision_precision="fp16"))
    assert info.value.key == "vision_precision"
    with pytest.raises(ConfigFieldError) as info:
        FusionConfig("rrf", rrf_k=-1)
    assert info.value.key == "rrf_k"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_loadable(RerankerConfig(device="cuda:1", model=str(tmp_path)))
    with pytest.raises(ConfigFieldError, match="this machine has 2 CUDA device") as info:
        check_loadable(RerankerConfig(device="cuda:2"))
    assert info.value.key == "device"
    with pytest.raises(ValueError, match="2 CUDA device"):
        resolve_device(RerankerConfig(device="cuda:2"))
