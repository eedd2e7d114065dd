"""Stage 1 honours ``caption_preprocessing``: ``encode_texts`` embeds the preprocessed captions, its cache key
changes with the choice (switching misses, switching back hits), ``none`` keeps the keys it always had, and
``run_stage1`` takes it from ``Stage1Config``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rrbench_base.caption_preprocessing import CaptionPreprocessing, EmptyCaptionError
from stage1_dual.config import Stage1Config
from stage1_dual.embedding_cache import EmbeddingCache
from stage1_dual.encode import encode_texts
from stage1_dual.pipeline import encode_with_cache

CAPTIONS = ["A Red Dog.", "the cat (on the grass)!", "a blue sky", "Dog: red; cat: blue~"]
BLIP = CaptionPreprocessing("blip_caption")


def test_blip_caption_embeds_the_preprocessed_captions(tiny_encoder):
    processed = encode_texts(tiny_encoder, CAPTIONS, caption_preprocessing=BLIP).embeddings
    expected = encode_texts(tiny_encoder, [BLIP.apply(t) for t in CAPTIONS]).embeddings
    np.testing.assert_array_equal(processed, expected)
    raw = encode_texts(tiny_encoder, CAPTIONS).embeddings
    assert not np.allclose(raw[0], processed[0])  # "A Red Dog." and "a red dog" differ for this encoder


def test_switching_misses_the_cache_and_switching_back_hits_it(tiny_encoder, tmp_path):
    cache = EmbeddingCache(tmp_path)
    counts = []
    for prep in (None, BLIP, None, BLIP, CaptionPreprocessing("blip_caption", max_words=2)):
        out = encode_texts(tiny_encoder, CAPTIONS, cache=cache, shard_size=2, caption_preprocessing=prep)
        counts.append((out.cached_items, out.encoded_items))
    assert counts == [(0, 4), (0, 4), (4, 0), (4, 0), (0, 4)]
    manifests = [json.loads(p.read_text()) for p in sorted((tmp_path / "texts").glob("*/manifest.json"))]
    assert sorted(m.get("caption_preprocessing", "-") for m in manifests) == [
        "-", "blip_caption(max_words=2)", "blip_caption(max_words=50)"]


def test_unchanged_captions_still_get_their_own_key(tiny_encoder, tmp_path):
    """Captions ``blip_caption`` leaves as they are are keyed apart anyway: the key names the preprocessing."""
    cache = EmbeddingCache(tmp_path)
    texts = ["a red dog", "a blue sky"]
    encode_texts(tiny_encoder, texts, cache=cache)
    assert encode_texts(tiny_encoder, texts, cache=cache, caption_preprocessing=BLIP).encoded_items == 2


def test_none_keeps_the_previous_cache_key(tiny_encoder, tmp_path):
    cache = EmbeddingCache(tmp_path)
    encode_texts(tiny_encoder, CAPTIONS, cache=cache)
    assert encode_texts(tiny_encoder, CAPTIONS, cache=cache,
                        caption_preprocessing=CaptionPreprocessing()).cached_items == 4
    (entry,) = (tmp_path / "texts").iterdir()
    manifest = json.loads((entry / "manifest.json").read_text())
    assert "caption_preprocessing" not in manifest
    material = {k: manifest[k] for k in ("encoder", "precision", "items", "kind", "num_items", "shard_size")}
    assert manifest["key"] == EmbeddingCache.make_key(material)  # the key material of runs before the option


def test_an_emptied_caption_is_refused_by_position(tiny_encoder):
    with pytest.raises(EmptyCaptionError, match="position 1"):
        encode_texts(tiny_encoder, ["a dog", "(...)"], caption_preprocessing=BLIP)
    assert encode_texts(tiny_encoder, ["a dog", "(...)"]).embeddings.shape[0] == 2  # none: as before


def test_stage1_config_carries_it_to_the_encoder(tiny_encoder, tmp_path):
    cfg = Stage1Config(caption_preprocessing=BLIP, cache_dir=tmp_path)
    _, texts = encode_with_cache(tiny_encoder, cfg, [], CAPTIONS)
    direct = encode_texts(tiny_encoder, CAPTIONS, caption_preprocessing=BLIP).embeddings
    np.testing.assert_array_equal(texts.embeddings, direct)
