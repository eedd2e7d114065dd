"""``stage1.cache_dtype: float16``: shards stored as float16 (half the disk), the dtype in the cache key and checked
on read, encoded and cached runs hand out the same vectors, and search results stay those of float32."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from stage1_dual.config import IndexConfig, Stage1Config
from stage1_dual.embedding_cache import EmbeddingCache, as_stored
from stage1_dual.encode import encode_images, encode_texts
from stage1_dual.pipeline import run_stage1
from stage1_dual.retrieve import retrieve_both_directions
from tests.stage1_dual.helpers import ForwardCounter, make_images

TEXTS = [f"a photo of thing number {i}" for i in range(7)]


def _shards(root, kind):
    return sorted((root / kind).glob("*/shard_*.npz"))


def test_float16_shards_take_half_the_disk_and_read_back_as_encoded(tiny_encoder, tmp_path, monkeypatch):
    items = make_images(tmp_path / "img", 6)
    runs = {}
    for dtype in ("float32", "float16"):
        cache = EmbeddingCache(tmp_path / dtype)
        first = encode_texts(tiny_encoder, TEXTS, cache=cache, shard_size=4, storage_dtype=dtype)
        counter = ForwardCounter(tiny_encoder, monkeypatch)
        second = encode_texts(tiny_encoder, TEXTS, cache=cache, shard_size=4, storage_dtype=dtype)
        monkeypatch.undo()
        assert counter.texts == 0 and second.cached_items == len(TEXTS)
        np.testing.assert_array_equal(first.embeddings, second.embeddings)  # encoded == read back, bit for bit
        assert second.embeddings.dtype == np.float32
        images = encode_images(tiny_encoder, items, cache=cache, shard_size=4, storage_dtype=dtype)
        runs[dtype] = (first.embeddings, images.embeddings)
        with np.load(_shards(tmp_path / dtype, "texts")[0]) as shard:
            assert shard["embeddings"].dtype == np.dtype(dtype)
    for fp32, fp16 in zip(runs["float32"], runs["float16"]):
        np.testing.assert_array_equal(fp16, as_stored(fp32, "float16"))
        assert not np.array_equal(fp16, fp32)  # really rounded
        np.testing.assert_allclose(fp16, fp32, atol=1e-3)
    fp32_bytes = sum(np.load(p)["embeddings"].nbytes for p in _shards(tmp_path / "float32", "images"))
    fp16_bytes = sum(np.load(p)["embeddings"].nbytes for p in _shards(tmp_path / "float16", "images"))
    assert fp16_bytes * 2 == fp32_bytes


def test_dtype_is_part_of_the_key_and_float32_keys_are_unchanged(tiny_encoder, tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path / "cache")
    fp32 = cache.entry("texts", {"items": "x"}, 3, 4)
    fp16 = cache.entry("texts", {"items": "x"}, 3, 4, "float16")
    assert fp32.key != fp16.key and fp32.directory != fp16.directory and fp16.dtype == "float16"
    assert fp32.key == EmbeddingCache.make_key({"items": "x", "kind": "texts", "num_items": 3, "shard_size": 4})
    with pytest.raises(ValueError, match="unknown embedding storage dtype 'bfloat16'"):
        cache.entry("texts", {"items": "x"}, 3, 4, "bfloat16")
    encode_texts(tiny_encoder, TEXTS, cache=cache, storage_dtype="float16")
    counter = ForwardCounter(tiny_encoder, monkeypatch)
    encode_texts(tiny_encoder, TEXTS, cache=cache, storage_dtype="float32")  # a float16 cache is never read as float32
    assert counter.texts == 1
    encode_texts(tiny_encoder, TEXTS, cache=cache, storage_dtype="float16")
    assert counter.texts == 1


def test_a_shard_of_the_other_dtype_is_refused_on_read(tiny_encoder, tmp_path, monkeypatch, caplog):
    fp16_cache, fp32_cache = EmbeddingCache(tmp_path / "fp16"), EmbeddingCache(tmp_path / "fp32")
    encode_texts(tiny_encoder, TEXTS, cache=fp16_cache, storage_dtype="float16")
    clean = encode_texts(tiny_encoder, TEXTS, cache=fp32_cache, storage_dtype="float32")
    fp32_shard = _shards(tmp_path / "fp32", "texts")[0]
    shutil.copy(_shards(tmp_path / "fp16", "texts")[0], fp32_shard)  # a float16 shard where float32 is expected
    counter = ForwardCounter(tiny_encoder, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="stage1_dual.embedding_cache"):
        again = encode_texts(tiny_encoder, TEXTS, cache=fp32_cache, storage_dtype="float32")
    assert counter.texts == 1 and "stored as float16, but this cache entry holds float32" in caplog.text
    np.testing.assert_array_equal(again.embeddings, clean.embeddings)
    assert list(fp32_shard.parent.glob(fp32_shard.name + ".corrupt-*"))


def test_pipeline_float16_gives_the_float32_rankings(tiny_encoder, tiny_encoder_config, tmp_path):
    items = make_images(tmp_path / "img", 8, seed=2)
    results = {}
    for dtype in ("float32", "float16"):
        cfg = Stage1Config(encoder=tiny_encoder_config, depth=5, cache_dir=tmp_path / "cache", cache_dtype=dtype)
        results[dtype] = run_stage1(cfg, items, TEXTS, encoder=tiny_encoder)
        assert run_stage1(cfg, items, TEXTS, encoder=tiny_encoder).images.cached_items == len(items)
    for direction in ("t2i", "i2t"):
        fp32, fp16 = results["float32"].candidates[direction], results["float16"].candidates[direction]
        np.testing.assert_array_equal(fp16.ids, fp32.ids)
        np.testing.assert_allclose(fp16.scores, fp32.scores, atol=2e-3)


def test_float16_storage_keeps_recall_on_many_vectors():
    """Beyond a tiny case: 2,000 clustered unit vectors rounded to float16 keep >= 99% of exact top-20."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 64))
    images = centres[rng.integers(0, 20, 2000)] + 0.4 * rng.standard_normal((2000, 64))
    images = (images / np.linalg.norm(images, axis=1, keepdims=True)).astype(np.float32)
    texts = images[rng.integers(0, 2000, 300)] + 0.2 * rng.standard_normal((300, 64)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    exact = retrieve_both_directions(images, texts, IndexConfig(type="flat"), 20)["t2i"].ids
    rounded = retrieve_both_directions(as_stored(images, "float16"), as_stored(texts, "float16"),
                                       IndexConfig(type="flat"), 20)["t2i"].ids
    recall = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(rounded, exact)])
    assert recall >= 0.99
