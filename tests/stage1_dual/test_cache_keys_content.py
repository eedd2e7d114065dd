"""The stage-1 embedding cache key is a content identity: weight bytes (also inside the HF cache), architecture
config, tokenizer, parameter dtype - and no path. A change to any of them is a miss that gives the new model's
embeddings; the same content elsewhere is a hit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import open_clip
import torch
from safetensors.torch import save_file

from stage1_dual.config import EncoderConfig
from stage1_dual.embedding_cache import EmbeddingCache
from stage1_dual.encode import encode_texts
from stage1_dual.encoders import load_encoder
from stage1_dual.trainable.checkpoint import save_model_dir
from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.trainable.model_config import TextTowerConfig
from tests.stage1_dual.helpers import TINY_OPEN_CLIP_CONFIG, put_in_fake_hub_cache
from tests.stage1_dual.trainable_helpers import tiny_model_config, write_tiny_bert

TEXTS = ["a red square left of a blue square", "a blue square", "two green squares", "a cat"]


def _assert_miss_with_fresh_embeddings(encoder, cache: EmbeddingCache) -> None:
    cached = encode_texts(encoder, TEXTS, cache=cache)
    assert cached.encoded_items == len(TEXTS) and cached.cached_items == 0
    np.testing.assert_array_equal(cached.embeddings, encode_texts(encoder, TEXTS).embeddings)


def _state(seed: int) -> dict[str, torch.Tensor]:
    encoder = load_encoder(EncoderConfig(model="rrbench-tiny-clip", device="cpu", seed=seed))
    return {k: v.contiguous() for k, v in encoder.model.state_dict().items()}


def test_hub_snapshot_weights_are_keyed_by_bytes_not_by_repo_and_commit(tiny_open_clip_name, tmp_path):
    source = tmp_path / "repo"
    source.mkdir()
    (source / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP_CONFIG, "preprocess_cfg": {}}))
    save_file(_state(0), str(source / "open_clip_model.safetensors"))
    snapshot = put_in_fake_hub_cache(tmp_path / "hub", "rrbench/tiny-open-clip", source)
    config = EncoderConfig(model="hf-hub:rrbench/tiny-open-clip", hub_cache_dir=tmp_path / "hub", device="cpu")
    cache = EmbeddingCache(tmp_path / "cache")
    encode_texts(load_encoder(config), TEXTS, cache=cache)
    save_file(_state(1), str(snapshot / "open_clip_model.safetensors"))  # same repo, commit and file name
    _assert_miss_with_fresh_embeddings(load_encoder(config), cache)


def test_re_registered_architecture_is_a_new_key(tiny_open_clip_name, tmp_path):
    name = "rrbench-keytest-clip"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / f"{name}.json").write_text(json.dumps(TINY_OPEN_CLIP_CONFIG))
    open_clip.add_model_config(tmp_path / "a" / f"{name}.json")
    weights = tmp_path / "weights.safetensors"
    save_file(_state(0), str(weights))
    config = EncoderConfig(model=name, pretrained=str(weights), device="cpu")
    cache = EmbeddingCache(tmp_path / "cache")
    encode_texts(load_encoder(config), TEXTS, cache=cache)
    # the same name and weights file, another activation: other embeddings
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / f"{name}.json").write_text(json.dumps({**TINY_OPEN_CLIP_CONFIG, "quick_gelu": True}))
    open_clip.add_model_config(tmp_path / "b" / f"{name}.json")
    _assert_miss_with_fresh_embeddings(load_encoder(config), cache)


def test_parameter_dtype_is_part_of_the_fingerprint(tiny_encoder):
    before = tiny_encoder.fingerprint()
    tiny_encoder.model.to(torch.bfloat16)
    assert tiny_encoder.fingerprint() != before and "bfloat16" in tiny_encoder.fingerprint()


def _minilm_checkpoint(tmp_path: Path) -> Path:
    cfg = tiny_model_config()
    cfg.text_tower = TextTowerConfig(name="minilm", model_dir=str(write_tiny_bert(tmp_path / "bert")),
                                     trainable_layers=1)
    torch.manual_seed(0)
    return save_model_dir(DualEncoderModel(cfg), tmp_path / "ckpt")


def test_rrbench_dual_key_follows_tokenizer_content_not_the_directory(tmp_path):
    directory = _minilm_checkpoint(tmp_path)
    config = EncoderConfig(backend="rrbench_dual", model=str(directory), device="cpu")
    cache = EmbeddingCache(tmp_path / "cache")
    first = encode_texts(load_encoder(config), TEXTS, cache=cache)
    copy = shutil.copytree(directory, tmp_path / "elsewhere" / "renamed")
    again = encode_texts(load_encoder(EncoderConfig(backend="rrbench_dual", model=str(copy), device="cpu")),
                         TEXTS, cache=cache)
    assert again.cached_items == len(TEXTS)  # same content in another place: a hit
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    vocab = tmp_path / "bert" / "vocab.txt"  # the text tower's tokenizer: swap two words' ids, weights unchanged
    words = vocab.read_text().splitlines()
    red, blue = words.index("red"), words.index("blue")
    words[red], words[blue] = words[blue], words[red]
    vocab.write_text("\n".join(words) + "\n")
    for stale in (tmp_path / "bert").glob("tokenizer.json"):
        stale.unlink()
    _assert_miss_with_fresh_embeddings(load_encoder(config), cache)
