"""Batched encoding: agreement with one-by-one encoding, DataLoader workers, corrupt images under both policies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rrbench_base.image_refs import BadImageError
from stage1_dual.encode import encode_images, encode_texts
from tests.stage1_dual.helpers import make_images


def _one_by_one(encoder, items) -> np.ndarray:
    transform = encoder.image_transform()
    return torch.cat([encoder.encode_images(transform(item.open())[None]) for item in items]).numpy()


def test_batched_images_equal_one_by_one(tiny_encoder, tmp_path):
    items = make_images(tmp_path, 7)
    result = encode_images(tiny_encoder, items, batch_size=3)
    assert result.embeddings.shape == (7, 16) and result.embeddings.dtype == np.float32
    assert result.positions.tolist() == list(range(7)) and result.ids == [f"img{i}" for i in range(7)]
    np.testing.assert_allclose(result.embeddings, _one_by_one(tiny_encoder, items), atol=1e-5)
    assert result.encoded_items == 7 and result.cached_items == 0 and not result.skipped


def test_worker_processes_give_the_same_embeddings(tiny_encoder, tmp_path):
    items = make_images(tmp_path, 6)
    in_process = encode_images(tiny_encoder, items, batch_size=2, num_workers=0)
    with_workers = encode_images(tiny_encoder, items, batch_size=2, num_workers=2)
    np.testing.assert_array_equal(in_process.embeddings, with_workers.embeddings)


def test_corrupt_image_mid_batch_raises_naming_the_file(tiny_encoder, tmp_path):
    items = make_images(tmp_path, 6, corrupt=(3,))
    with pytest.raises(BadImageError) as info:
        encode_images(tiny_encoder, items, batch_size=4, on_bad_input="error")
    assert "img_003.jpg" in str(info.value) and "'img3'" in str(info.value)


def test_corrupt_image_mid_batch_is_skipped_and_recorded(tiny_encoder, tmp_path):
    items = make_images(tmp_path, 6, corrupt=(3,))
    result = encode_images(tiny_encoder, items, batch_size=4, on_bad_input="skip")
    assert result.positions.tolist() == [0, 1, 2, 4, 5] and "img3" not in result.ids
    assert len(result.skipped) == 1
    skipped = result.skipped[0]
    assert (skipped.position, skipped.id) == (3, "img3") and "img_003.jpg" in skipped.reason
    good = [item for i, item in enumerate(items) if i != 3]
    np.testing.assert_allclose(result.embeddings, _one_by_one(tiny_encoder, good), atol=1e-5)


def test_texts_in_batches_equal_one_call(tiny_encoder):
    texts = [f"a photo number {i}" for i in range(11)]
    result = encode_texts(tiny_encoder, texts, batch_size=4)
    assert result.embeddings.shape == (11, 16)
    np.testing.assert_allclose(result.embeddings, tiny_encoder.encode_texts(texts).numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
