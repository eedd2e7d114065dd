"""The rrbench_dual backend: checkpoint directories through load_encoder / encode / run_stage1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stage1_dual.config import EncoderConfig, IndexConfig, Stage1Config
from stage1_dual.encode import encode_images, encode_texts
from stage1_dual.encoders import load_encoder
from stage1_dual.pipeline import run_stage1
from stage1_dual.protocols import DualEncoder, ModelNotFoundError
from stage1_dual.trainable.checkpoint import save_model_dir
from stage1_dual.trainable.model import DualEncoderModel
from tests.stage1_dual.trainable_helpers import tiny_model_config, toy_split


def _checkpoint(directory: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return save_model_dir(DualEncoderModel(tiny_model_config()), directory, {"note": "test"})


def _config(directory: Path) -> EncoderConfig:
    return EncoderConfig(backend="rrbench_dual", model=str(directory), device="cpu", batch_size=8, num_workers=0)


def test_loads_as_a_dual_encoder_and_matches_the_model(tmp_path: Path):
    split = toy_split(tmp_path / "images")
    torch.manual_seed(0)
    model = DualEncoderModel(tiny_model_config()).eval()
    save_model_dir(model, tmp_path / "ckpt")
    encoder = load_encoder(_config(tmp_path / "ckpt"))
    assert isinstance(encoder, DualEncoder) and encoder.embed_dim == 16 and encoder.image_size == (16, 16)
    images = encode_images(encoder, split.images, batch_size=8)
    texts = encode_texts(encoder, split.texts, batch_size=8)
    pixels = torch.stack([model.image_tower.eval_transform()(image.open()) for image in split.images])
    with torch.no_grad():
        expected_images = model.embed_images({"pixels": pixels}).numpy()
        expected_texts = model.embed_texts(model.text_tower.frozen_features(split.texts)).numpy()
    np.testing.assert_allclose(images.embeddings, expected_images, atol=1e-5)
    np.testing.assert_allclose(texts.embeddings, expected_texts, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts.embeddings, axis=1), 1.0, atol=1e-5)


def test_run_stage1_and_cache_invalidation_on_retraining(tmp_path: Path):
    split = toy_split(tmp_path / "images")
    directory = _checkpoint(tmp_path / "ckpt", seed=0)
    cfg = Stage1Config(encoder=_config(directory), index=IndexConfig(type="torch"), depth=5,
                       cache_dir=tmp_path / "cache")
    first = run_stage1(cfg, split.images, split.texts)
    assert first.candidates["t2i"].ids.shape == (40, 5) and first.images.encoded_items == 20
    again = run_stage1(cfg, split.images, split.texts)
    assert again.images.encoded_items == 0 and again.texts.encoded_items == 0  # cache hit
    fingerprint = load_encoder(_config(directory)).fingerprint()
    _checkpoint(directory, seed=1)  # "retrained" into the same directory
    assert load_encoder(_config(directory)).fingerprint() != fingerprint
    retrained = run_stage1(cfg, split.images, split.texts)
    assert retrained.images.encoded_items == 20 and retrained.texts.encoded_items == 40
    assert not np.allclose(retrained.images.embeddings, first.images.embeddings)


def test_checkpoint_directory_holds_no_pickles(tmp_path: Path):
    directory = _checkpoint(tmp_path / "ckpt")
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]


def test_missing_checkpoint_fails_fast_with_what_was_looked_for(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match="config.json"):
        load_encoder(_config(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="pretrained must be empty"):
        load_encoder(EncoderConfig(backend="rrbench_dual", model=str(_checkpoint(tmp_path / "c")), pretrained="x"))
