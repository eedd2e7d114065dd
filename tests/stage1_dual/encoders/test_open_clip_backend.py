"""open_clip backend: random tiny model, checkpoint round trips, hf-hub from a cache, fail-fast offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F
from huggingface_hub import constants as hub_constants
from PIL import Image
from safetensors.torch import save_file

from stage1_dual.config import EncoderConfig
from stage1_dual.encoders import load_encoder
from stage1_dual.protocols import DualEncoder, ModelNotFoundError
from tests.stage1_dual.helpers import FAKE_COMMIT, TINY_OPEN_CLIP_CONFIG, put_in_fake_hub_cache

TEXTS = ["a red cat", "a dog on the grass", "blue sky"]


def _pixels(encoder, count: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    images = [Image.fromarray((torch.rand(30 + 5 * i, 50, 3, generator=gen) * 255).byte().numpy()) for i in range(count)]
    return torch.stack([encoder.image_transform()(image) for image in images])


def test_random_tiny_model_outputs_normalised_embeddings(tiny_encoder):
    assert isinstance(tiny_encoder, DualEncoder)
    images = tiny_encoder.encode_images(_pixels(tiny_encoder))
    texts = tiny_encoder.encode_texts(TEXTS)
    for out in (images, texts):
        assert out.shape == (3, 16) and out.dtype == torch.float32 and out.device.type == "cpu"
        assert torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert tiny_encoder.precision == "fp32" and tiny_encoder.image_size == (32, 32)


def test_seed_decides_random_weights(tiny_encoder_config):
    same = [load_encoder(tiny_encoder_config) for _ in range(2)]
    other = load_encoder(EncoderConfig(**{**vars(tiny_encoder_config), "seed": 1}))
    assert same[0].fingerprint() == same[1].fingerprint() != other.fingerprint()
    assert torch.equal(same[0].encode_texts(TEXTS), same[1].encode_texts(TEXTS))
    assert not torch.allclose(same[0].encode_texts(TEXTS), other.encode_texts(TEXTS))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_checkpoint_file_round_trip_matches_stock_open_clip(tiny_encoder, tiny_encoder_config, tmp_path, suffix):
    path = tmp_path / f"tiny{suffix}"
    state = {k: v.contiguous() for k, v in tiny_encoder.model.state_dict().items()}
    torch.save(state, path) if suffix == ".pt" else save_file(state, str(path))
    loaded = load_encoder(EncoderConfig(**{**vars(tiny_encoder_config), "pretrained": str(path), "seed": 7}))
    assert json.loads(loaded.fingerprint())["weights"].startswith("sha256:")
    pixels = _pixels(tiny_encoder)
    assert torch.allclose(loaded.encode_images(pixels), tiny_encoder.encode_images(pixels), atol=1e-6)
    # parity with stock open_clip: its own model, tokenizer and preprocessing
    stock = open_clip.create_model(tiny_encoder_config.model, pretrained=str(path)).eval()
    tokenizer = open_clip.get_tokenizer(tiny_encoder_config.model)
    with torch.no_grad():
        expected = F.normalize(stock.encode_text(tokenizer(TEXTS)), dim=-1)
    assert torch.allclose(loaded.encode_texts(TEXTS), expected, atol=1e-6)


def test_hf_hub_name_loads_from_the_hf_cache(tiny_encoder, tmp_path):
    source = tmp_path / "repo"
    source.mkdir()
    (source / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP_CONFIG, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in tiny_encoder.model.state_dict().items()},
              str(source / "open_clip_model.safetensors"))
    put_in_fake_hub_cache(tmp_path / "hub", "rrbench/tiny-open-clip", source)
    loaded = load_encoder(EncoderConfig(model="hf-hub:rrbench/tiny-open-clip", hub_cache_dir=tmp_path / "hub",
                                        device="cpu"))
    assert f"hf:rrbench/tiny-open-clip@{FAKE_COMMIT}/open_clip_model.safetensors" in loaded.fingerprint()
    assert torch.allclose(loaded.encode_texts(TEXTS), tiny_encoder.encode_texts(TEXTS), atol=1e-6)


def _assert_fails_fast(cfg: EncoderConfig, *needles: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        load_encoder(cfg)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"took {elapsed:.1f} s"
    for needle in needles:
        assert needle in str(info.value)


def test_missing_pretrained_tag_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _assert_fails_fast(EncoderConfig(model="ViT-B-32", pretrained="laion2b_s34b_b79k", hub_cache_dir=tmp_path),
                       "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_pytorch_model.bin", "HF_HUB_OFFLINE",
                       "local path", "Hugging Face cache")
    _assert_fails_fast(EncoderConfig(model="hf-hub:nobody/missing-model", hub_cache_dir=tmp_path),
                       "nobody/missing-model/open_clip_config.json", "HF_HUB_OFFLINE")


def test_unreachable_hub_fails_fast_without_offline_flag(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    _assert_fails_fast(EncoderConfig(model="ViT-B-32", pretrained="laion2b_s34b_b79k", hub_cache_dir=tmp_path,
                                     hub_probe_timeout_s=1.0), "did not answer within 1 s")


def test_unknown_tag_and_architecture_list_what_exists(tiny_open_clip_name):
    with pytest.raises(ModelNotFoundError, match="laion2b_s34b_b79k"):
        load_encoder(EncoderConfig(model="ViT-B-32", pretrained="no-such-tag"))
    with pytest.raises(ModelNotFoundError, match="add_model_config"):
        load_encoder(EncoderConfig(model="ViT-Nonexistent-7"))
    with pytest.raises(ModelNotFoundError, match="not found"):
        load_encoder(EncoderConfig(model=f"local-dir:{Path('/nonexistent/dir')}"))


def test_parts_expose_towers_and_projections(tiny_encoder):
    parts = tiny_encoder.parts()
    assert parts.image_tower is tiny_encoder.model.visual
    assert parts.image_projection.shape == (32, 16) and parts.text_projection.shape == (32, 16)
    features = tiny_encoder.image_features(_pixels(tiny_encoder, 2))
    assert features.requires_grad and features.shape == (2, 16)
