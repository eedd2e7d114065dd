"""Stage-1 configs: defaults, validation, and building from YAML mappings with eval.typed_config."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.typed_config import ConfigError, from_dict, to_dict
from stage1_dual.config import EncoderConfig, IndexConfig, Stage1Config


def test_defaults_are_valid_and_documented():
    cfg = Stage1Config()
    assert cfg.depth == 100 and cfg.index.type == "flat" and cfg.encoder.backend == "open_clip"
    for cls in (EncoderConfig, IndexConfig, Stage1Config):
        doc = cls.__doc__ or ""
        missing = [name for name in cls.__dataclass_fields__ if f"        {name}:" not in doc]
        assert not missing, f"{cls.__name__} fields not documented in Attributes: {missing}"


def test_nested_from_dict_round_trip():
    data = {"encoder": {"backend": "hf_clip", "model": "some/dir", "precision": "bf16", "device": "cuda:1",
                        "preprocess": "seed_rule"},
            "index": {"type": "ivfpq", "use_gpu": True, "ivf_nlist": 256, "pq_m": 16},
            "depth": 50, "cache_dir": "/tmp/cache", "on_bad_input": "skip"}
    cfg = from_dict(Stage1Config, data, source="test.yaml")
    assert cfg.encoder.device == "cuda:1" and cfg.index.use_gpu is True and cfg.cache_dir == Path("/tmp/cache")
    assert from_dict(Stage1Config, to_dict(cfg)) == cfg
    assert from_dict(IndexConfig, {"use_gpu": "auto"}).use_gpu == "auto"


@pytest.mark.parametrize("data, key", [
    ({"depth": 0}, "depth"),
    ({"on_bad_input": "ignore"}, "on_bad_input"),
    ({"encoder": {"precision": "fp8"}}, "encoder.precision"),
    ({"encoder": {"device": "gpu"}}, "device"),
    ({"encoder": {"batch_size": 0}}, "batch_size"),
    ({"index": {"type": "annoy"}}, "index.type"),
    ({"index": {"use_gpu": "yes"}}, "index.use_gpu"),
    ({"index": {"pq_fast_scan": True}}, "pq_fast_scan"),
    ({"index": {"ivf_nprobe": 0}}, "ivf_nprobe"),
    ({"index": {"unknown": 1}}, "index.unknown"),
])
def test_invalid_values_name_the_key(data, key):
    with pytest.raises(ConfigError) as info:
        from_dict(Stage1Config, data, source="exp.yaml")
    assert key in str(info.value) and "exp.yaml" in str(info.value)


def test_load_time_checks_name_the_field(monkeypatch):
    import torch

    from rrbench_base.config_errors import ConfigFieldError
    from stage1_dual.config import check_loadable

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    check_loadable(Stage1Config())  # auto device, auto GPU index: fine anywhere
    for cfg, key in [(Stage1Config(encoder=EncoderConfig(backend="clip")), "encoder.backend"),
                     (Stage1Config(encoder=EncoderConfig(device="cuda")), "encoder.device"),
                     (Stage1Config(index=IndexConfig(use_gpu=True)), "index.use_gpu")]:
        with pytest.raises(ConfigFieldError) as info:
            check_loadable(cfg)
        assert info.value.key == key
    with pytest.raises(ConfigError, match=r"exp\.yaml: encoder\.batch_size must be >= 1, got 0"):
        from_dict(Stage1Config, {"encoder": {"batch_size": 0}}, source="exp.yaml")
