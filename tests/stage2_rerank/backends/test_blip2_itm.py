"""Backend and provider lookup by name, checkpoint resolution (offline, paths), load-time checks."""

from __future__ import annotations

import time

import pytest

from stage2_rerank.backends import directory_identity, load_backend, resolve_checkpoint
from stage2_rerank.bench.random_checkpoint import build_processor, build_random_model, tiny_blip2_itm_config
from stage2_rerank.config import RerankerConfig
from stage2_rerank.protocols import RerankerLoadError
from stage2_rerank.vision import make_vision_provider
from tests.stage2_rerank.helpers import WORDS


def test_unknown_backend_and_provider_list_known_names(tiny_config):
    with pytest.raises(ValueError, match="unknown reranker backend 'clip'; known: blip2_itm"):
        load_backend(RerankerConfig(backend="clip"))
    with pytest.raises(ValueError, match="unknown vision provider 'resnet'; known: blip2_vit"):
        load_backend(tiny_config(vision_provider="resnet"))
    with pytest.raises(ValueError, match="known: blip2_vit"):
        make_vision_provider("nope", source=None)


def test_missing_hub_model_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(RerankerLoadError, match="rrbench-test/no-such-model.*HF_HUB_OFFLINE=1"):
        load_backend(RerankerConfig(model="rrbench-test/no-such-model", device="cpu"))
    assert time.perf_counter() - start < 5


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(RerankerLoadError, match="no such directory"):
        resolve_checkpoint(str(tmp_path / "missing" / "model" / "dir"))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(RerankerLoadError, match="is a file"):
        resolve_checkpoint(str(tmp_path / "file.bin"))


def test_local_checkpoint_loads_with_identity(tiny_config, tiny_checkpoint):
    model = load_backend(tiny_config())
    assert model.checkpoint_identity == directory_identity(tiny_checkpoint)
    assert model.vision.feature_shape == (226, 32)
    assert model.scorer.num_query_tokens == 4 and model.precision == "qformer=fp32"
    assert "30px" in model.vision.identity and "fp32" in model.vision.identity


def test_checkpoint_without_text_input_is_refused(tmp_path):
    config = tiny_blip2_itm_config()
    config.qformer_config.use_qformer_text_input = False
    build_random_model(config).save_pretrained(tmp_path)
    build_processor(30, WORDS).save_pretrained(tmp_path)
    with pytest.raises(RerankerLoadError, match="use_qformer_text_input"):
        load_backend(RerankerConfig(model=str(tmp_path), device="cpu"))


def test_processor_size_must_match_the_vision_tower(tmp_path):
    build_random_model(tiny_blip2_itm_config()).save_pretrained(tmp_path)
    build_processor(32, WORDS).save_pretrained(tmp_path)
    with pytest.raises(RerankerLoadError, match="resizes to 32 px but the vision tower expects 30 px"):
        load_backend(RerankerConfig(model=str(tmp_path), device="cpu"))


def test_fp16_on_cpu_is_refused(tiny_config):
    with pytest.raises(ValueError, match="fp16 is not supported on CPU"):
        load_backend(tiny_config(precision="fp16"))


def test_missing_relative_model_directory_shows_the_absolute_path_and_the_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RerankerLoadError) as error:
        resolve_checkpoint("models/reranker")
    assert (f"is not a local directory (tried {tmp_path / 'models' / 'reranker'}: relative paths in a config resolve "
            f"against the current directory {tmp_path}, not the config file's folder)") in str(error.value)
