"""The blip2_itc backend: a BLIP-2 checkpoint's Q-Former ITC embeddings as stage 1, against transformers' own
``Blip2ForImageTextRetrieval.forward(use_image_text_matching_head=False)``, and cached as multi-vector rows."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, Blip2ForImageTextRetrieval

from stage1_dual.config import EncoderConfig
from stage1_dual.embedding_cache import EmbeddingCache
from stage1_dual.encode import encode_images, encode_texts
from stage1_dual.encoders import Blip2ItcEncoder, load_encoder
from stage1_dual.protocols import ModelNotFoundError
from stage2_rerank.bench.random_checkpoint import save_random_checkpoint, tiny_blip2_itm_config
from tests.tiny_experiment import WORDS

TEXTS = ["a red circle", "two blue squares on the left of a star", "green triangle above", "the big one"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("blip2_itc") / "ckpt"
    save_random_checkpoint(directory, tiny_blip2_itm_config(image_size=32, vocab_size=256), WORDS, seed=1)
    return directory


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(2)
    return [Image.fromarray(rng.integers(0, 256, (30 + 4 * i, 40, 3), dtype=np.uint8)) for i in range(5)]


def _encoder(checkpoint, **kwargs):
    return load_encoder(EncoderConfig(backend="blip2_itc", model=str(checkpoint), device="cpu", num_workers=0,
                                      batch_size=2, **kwargs))


def test_similarity_equals_transformers_itc_forward(checkpoint, images):
    encoder = _encoder(checkpoint)
    assert isinstance(encoder, Blip2ItcEncoder) and (encoder.vectors_per_image, encoder.embed_dim) == (4, 16)
    image_embeds = encode_images(encoder, images, batch_size=2).embeddings
    text_embeds = encode_texts(encoder, TEXTS).embeddings
    assert image_embeds.shape == (5, 4, 16) and text_embeds.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(image_embeds, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text_embeds, axis=-1), 1.0, atol=1e-5)
    model = Blip2ForImageTextRetrieval.from_pretrained(checkpoint).eval()
    processor = AutoProcessor.from_pretrained(checkpoint)
    tokens = processor.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values=processor.image_processor(images, return_tensors="pt")["pixel_values"],
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                    use_image_text_matching_head=False)
    similarity = np.einsum("ive,te->itv", image_embeds, text_embeds).max(axis=-1)
    np.testing.assert_allclose(similarity, out.logits_per_image.numpy(), rtol=0, atol=1e-5)


def test_encode_images_and_vision_hands_out_the_vit_output(checkpoint, images):
    encoder = _encoder(checkpoint, precision="fp64")
    pixels = torch.stack([encoder.image_transform()(image) for image in images[:2]])
    embeds, features = encoder.encode_images_and_vision(pixels)
    model = Blip2ForImageTextRetrieval.from_pretrained(checkpoint).to(torch.float64).eval()
    with torch.no_grad():
        want = model.vision_model(pixel_values=pixels.double()).last_hidden_state
    assert features.dtype == torch.float64 and embeds.dtype == torch.float32
    torch.testing.assert_close(features, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(embeds, encoder.encode_images(pixels), rtol=0, atol=0)


def test_multivector_rows_are_cached_under_a_key_naming_their_shape(checkpoint, images, tmp_path):
    cache = EmbeddingCache(tmp_path)
    first = encode_images(_encoder(checkpoint), images, batch_size=2, cache=cache, shard_size=2)
    again = encode_images(_encoder(checkpoint), images, batch_size=2, cache=cache, shard_size=2)
    assert (first.encoded_items, again.cached_items, again.encoded_items) == (5, 5, 0)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    manifest = json.loads(next((tmp_path / "images").glob("*/manifest.json")).read_text())
    assert manifest["image_shape"] == [4, 16]
    assert json.loads(manifest["encoder"])["backend"] == "blip2_itc"
    other = encode_images(_encoder(checkpoint, precision="fp64"), images, batch_size=2, cache=cache, shard_size=2)
    assert other.encoded_items == 5  # another dtype is another key
    sink_calls = []
    encode_images(_encoder(checkpoint), images, batch_size=2, cache=cache, shard_size=2,
                  vision_sink=lambda refs, feats: sink_calls.append(len(refs)))
    assert sink_calls == []  # cached shards run no vision tower


def test_fingerprint_names_the_checkpoint_content_and_text_length(checkpoint, tmp_path):
    fingerprint = json.loads(_encoder(checkpoint).fingerprint())
    assert fingerprint["backend"] == "blip2_itc" and fingerprint["text_max_length"] == 35
    assert fingerprint["vision_dtype"] == "float32" and fingerprint["image_shape"] == [4, 16]
    assert "model.safetensors=" in fingerprint["files"] and str(checkpoint) not in fingerprint["files"]


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelNotFoundError, match="checkpoint directory not found"):
        _encoder(tmp_path / "missing")
    with pytest.raises(ValueError, match="pretrained is not used by blip2_itc"):
        load_encoder(EncoderConfig(backend="blip2_itc", model=str(tmp_path), pretrained="x"))
