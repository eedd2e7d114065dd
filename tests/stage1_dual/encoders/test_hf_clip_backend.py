"""hf_clip backend: tiny random CLIPModel / ChineseCLIPModel from local dirs and a hub cache; parity with
the stock transformers calls; fail-fast offline; unknown model types."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, BertConfig, ChineseCLIPModel, CLIPModel

from stage1_dual.config import EncoderConfig
from stage1_dual.encoders import load_encoder
from stage1_dual.protocols import ModelNotFoundError, UnknownBackendError
from tests.stage1_dual.helpers import FAKE_COMMIT, put_in_fake_hub_cache, save_tiny_chinese_clip, save_tiny_hf_clip

STOCK_CLASSES = {"clip": CLIPModel, "chinese_clip": ChineseCLIPModel}
TEXTS = {"clip": ["a red cat", "a dog on the grass", "blue sky"], "chinese_clip": ["一只红色的猫", "草地上的狗", "蓝天白云"]}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf_models")
    return {"clip": save_tiny_hf_clip(root / "clip"), "chinese_clip": save_tiny_chinese_clip(root / "chinese_clip")}


def _images() -> list[Image.Image]:
    gen = torch.Generator().manual_seed(0)
    return [Image.fromarray((torch.rand(40, 30 + 10 * i, 3, generator=gen) * 255).byte().numpy()) for i in range(3)]


@pytest.mark.parametrize("model_type", ["clip", "chinese_clip"])
def test_local_directory_matches_stock_transformers(model_dirs, model_type):
    directory = model_dirs[model_type]
    encoder = load_encoder(EncoderConfig(backend="hf_clip", model=str(directory), device="cpu"))
    assert json.loads(encoder.fingerprint())["model_type"] == model_type
    texts, images = TEXTS[model_type], _images()
    pixels = torch.stack([encoder.image_transform()(image) for image in images])
    got_images, got_texts = encoder.encode_images(pixels), encoder.encode_texts(texts)

    stock = STOCK_CLASSES[model_type].from_pretrained(directory).eval()
    tokenizer, processor = AutoTokenizer.from_pretrained(directory), AutoImageProcessor.from_pretrained(directory)
    with torch.no_grad():
        image_out = stock.get_image_features(**processor(images=images, return_tensors="pt"))
        text_out = stock.get_text_features(**tokenizer(texts, padding=True, return_tensors="pt"))
    pooled = [getattr(out, "pooler_output", out) for out in (image_out, text_out)]
    assert torch.allclose(got_images, F.normalize(pooled[0], dim=-1), atol=1e-5)
    assert torch.allclose(got_texts, F.normalize(pooled[1], dim=-1), atol=1e-5)
    assert got_images.shape == got_texts.shape == (3, 16)


def test_chinese_text_is_tokenized_by_character(model_dirs):
    encoder = load_encoder(EncoderConfig(backend="hf_clip", model=str(model_dirs["chinese_clip"]), device="cpu"))
    tokens = encoder.tokenize(["一只红色的猫"])
    assert set(tokens) == {"input_ids", "attention_mask", "token_type_ids"}
    ids = tokens["input_ids"][0].tolist()
    assert len(ids) == 8 and 1 not in ids  # [CLS] + 6 characters + [SEP], no [UNK]


def test_hub_id_loads_from_the_hf_cache(model_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    put_in_fake_hub_cache(tmp_path / "hub", "OFA-Sys/tiny-chinese-clip", model_dirs["chinese_clip"])
    encoder = load_encoder(EncoderConfig(backend="hf_clip", model="OFA-Sys/tiny-chinese-clip",
                                         hub_cache_dir=tmp_path / "hub", device="cpu"))
    identity = json.loads(encoder.fingerprint())
    assert identity["model"] == "OFA-Sys/tiny-chinese-clip"
    assert f"hf:OFA-Sys/tiny-chinese-clip@{FAKE_COMMIT}/model.safetensors" in identity["files"]
    assert f"hf:OFA-Sys/tiny-chinese-clip@{FAKE_COMMIT}/vocab.txt" in identity["files"]
    local = load_encoder(EncoderConfig(backend="hf_clip", model=str(model_dirs["chinese_clip"]), device="cpu"))
    assert torch.allclose(encoder.encode_texts(["猫"]), local.encode_texts(["猫"]), atol=1e-6)


def test_fingerprint_follows_content_not_location(model_dirs, tmp_path):
    original = load_encoder(EncoderConfig(backend="hf_clip", model=str(model_dirs["clip"]), device="cpu")).fingerprint()
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in model_dirs["clip"].iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    assert load_encoder(EncoderConfig(backend="hf_clip", model=str(copy), device="cpu")).fingerprint() == original
    config = json.loads((copy / "tokenizer_config.json").read_text())
    (copy / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 8}))
    assert load_encoder(EncoderConfig(backend="hf_clip", model=str(copy), device="cpu")).fingerprint() != original


def test_missing_hub_model_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        load_encoder(EncoderConfig(backend="hf_clip", model="OFA-Sys/chinese-clip-vit-base-patch16",
                                   hub_cache_dir=tmp_path))
    assert time.perf_counter() - started < 2.0
    message = str(info.value)
    for needle in ("OFA-Sys/chinese-clip-vit-base-patch16", "HF_HUB_OFFLINE", "local directory", "save_pretrained"):
        assert needle in message


def test_bad_paths_and_model_types(tmp_path):
    with pytest.raises(ModelNotFoundError, match="directory not found"):
        load_encoder(EncoderConfig(backend="hf_clip", model=str(tmp_path / "absent")))
    bert_dir = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37).save_pretrained(bert_dir)
    (bert_dir / "model.safetensors").write_bytes(b"")
    with pytest.raises(UnknownBackendError, match="chinese_clip, clip"):
        load_encoder(EncoderConfig(backend="hf_clip", model=str(bert_dir)))
    with pytest.raises(ValueError, match="pretrained is not used by hf_clip"):
        load_encoder(EncoderConfig(backend="hf_clip", model=str(bert_dir), pretrained="x"))


def test_parts_expose_towers_and_projections(model_dirs):
    encoder = load_encoder(EncoderConfig(backend="hf_clip", model=str(model_dirs["clip"]), device="cpu"))
    parts = encoder.parts()
    assert parts.image_tower is encoder.model.vision_model and parts.text_tower is encoder.model.text_model
    assert parts.image_projection.weight.shape == parts.text_projection.weight.shape == (16, 32)
