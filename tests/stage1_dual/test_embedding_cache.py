"""Embedding cache: a second run does zero forwards, any key change recomputes, interrupted encodes resume."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rrbench_base.image_refs import BadImageError
from stage1_dual.config import EncoderConfig
from stage1_dual.embedding_cache import EmbeddingCache
from stage1_dual.encode import encode_images, encode_texts
from stage1_dual.encoders import load_encoder
from tests.stage1_dual.helpers import ForwardCounter, make_images

TEXTS = [f"caption {i}" for i in range(9)]


def test_second_run_does_zero_forwards(tiny_encoder, tmp_path, monkeypatch):
    items, cache = make_images(tmp_path / "img", 9), EmbeddingCache(tmp_path / "cache")
    first = (encode_images(tiny_encoder, items, batch_size=4, cache=cache, shard_size=4),
             encode_texts(tiny_encoder, TEXTS, batch_size=4, cache=cache, shard_size=4))
    counter = ForwardCounter(tiny_encoder, monkeypatch)
    second = (encode_images(tiny_encoder, items, batch_size=4, cache=cache, shard_size=4),
              encode_texts(tiny_encoder, TEXTS, batch_size=4, cache=cache, shard_size=4))
    assert (counter.images, counter.texts) == (0, 0)
    assert second[0].cached_items == 9 and second[0].encoded_items == 0 and second[1].cached_items == 9
    np.testing.assert_array_equal(first[0].embeddings, second[0].embeddings)
    np.testing.assert_array_equal(first[1].embeddings, second[1].embeddings)
    assert not list((tmp_path / "cache").rglob("*.tmp*"))


def _image_forwards(encoder, items, cache, monkeypatch, **kwargs) -> int:
    counter = ForwardCounter(encoder, monkeypatch)
    encode_images(encoder, items, batch_size=16, cache=cache, **kwargs)
    monkeypatch.undo()
    return counter.images


def test_changing_any_key_recomputes(tiny_encoder, tiny_encoder_config, tmp_path, monkeypatch):
    items, cache = make_images(tmp_path / "img", 5), EmbeddingCache(tmp_path / "cache")
    assert _image_forwards(tiny_encoder, items, cache, monkeypatch) == 1
    assert _image_forwards(tiny_encoder, items, cache, monkeypatch) == 0
    assert _image_forwards(tiny_encoder, items, cache, monkeypatch, preprocess="seed_rule") == 1
    assert _image_forwards(tiny_encoder, list(reversed(items)), cache, monkeypatch) == 1
    other_weights = load_encoder(EncoderConfig(**{**vars(tiny_encoder_config), "seed": 3}))
    assert _image_forwards(other_weights, items, cache, monkeypatch) == 1
    Image.new("RGB", (33, 21), (9, 9, 9)).save(items[2].path)  # same file name, new content
    assert _image_forwards(tiny_encoder, items, cache, monkeypatch) == 1
    counter = ForwardCounter(tiny_encoder, monkeypatch)
    encode_texts(tiny_encoder, TEXTS, cache=cache)
    encode_texts(tiny_encoder, TEXTS[:-1] + ["another caption"], cache=cache)
    assert counter.texts == 2


def test_interrupted_encode_resumes_from_finished_shards(tiny_encoder, tmp_path, monkeypatch):
    items, cache = make_images(tmp_path / "img", 10), EmbeddingCache(tmp_path / "cache")
    # shards of 4 images, batches of 2: shard 0 = forwards 1-2, shard 1 = 3-4, shard 2 = 5
    ForwardCounter(tiny_encoder, monkeypatch, fail_after_images=3)
    with pytest.raises(RuntimeError, match="simulated interruption"):
        encode_images(tiny_encoder, items, batch_size=2, cache=cache, shard_size=4)
    monkeypatch.undo()
    assert len(list((tmp_path / "cache").rglob("shard_*.npz"))) == 1
    counter = ForwardCounter(tiny_encoder, monkeypatch)
    resumed = encode_images(tiny_encoder, items, batch_size=2, cache=cache, shard_size=4)
    assert counter.images == 3 and resumed.cached_items == 4 and resumed.encoded_items == 6
    monkeypatch.undo()
    fresh = encode_images(tiny_encoder, items, batch_size=2)
    np.testing.assert_allclose(resumed.embeddings, fresh.embeddings, atol=1e-6)


def test_cached_skips_are_kept_and_rejected_under_error_policy(tiny_encoder, tmp_path, monkeypatch):
    items, cache = make_images(tmp_path / "img", 6, corrupt=(4,)), EmbeddingCache(tmp_path / "cache")
    first = encode_images(tiny_encoder, items, batch_size=4, cache=cache, on_bad_input="skip")
    counter = ForwardCounter(tiny_encoder, monkeypatch)
    again = encode_images(tiny_encoder, items, batch_size=4, cache=cache, on_bad_input="skip")
    assert counter.images == 0 and [s.id for s in again.skipped] == ["img4"] == [s.id for s in first.skipped]
    assert again.positions.tolist() == [0, 1, 2, 3, 5]
    with pytest.raises(BadImageError, match="img_004.jpg"):
        encode_images(tiny_encoder, items, batch_size=4, cache=cache, on_bad_input="error")
