"""Epoch batch plans: every captioned image once, captions of the right image, deterministic by (seed, epoch)."""

from __future__ import annotations

import numpy as np
import pytest

from stage1_dual.training.data import TrainingSplit, plan_epoch


def _split() -> TrainingSplit:
    # image 5 has no caption; image 0 has one caption, the others three
    text_image = [0] + [i for i in range(1, 5) for _ in range(3)] + [6, 6, 6]
    return TrainingSplit([object()] * 7, [f"t{k}" for k in range(len(text_image))], np.asarray(text_image))


def test_plan_uses_every_captioned_image_once_with_its_own_captions():
    split = _split()
    batches = plan_epoch(split, batch_size=3, captions_per_image=2, seed=0, epoch=0)
    images = np.concatenate([b.images for b in batches])
    assert len(batches) == 2 and sorted(images.tolist()) == [0, 1, 2, 3, 4, 6]
    for batch in batches:
        assert batch.texts.shape == (6,)
        assert (split.text_image[batch.texts] == np.repeat(batch.images, 2)).all()
        assert (batch.text_keys == split.text_image[batch.texts]).all()
        for k, image in enumerate(batch.images):
            if image != 0:  # image 0 has a single caption, repeated
                assert batch.texts[2 * k] != batch.texts[2 * k + 1]


def test_plan_is_a_function_of_seed_and_epoch():
    split = _split()
    first = plan_epoch(split, 4, 1, seed=3, epoch=2)
    again = plan_epoch(split, 4, 1, seed=3, epoch=2)
    other = plan_epoch(split, 4, 1, seed=3, epoch=3)
    assert all((a.images == b.images).all() and (a.texts == b.texts).all() for a, b in zip(first, again))
    assert any((a.images != b.images).any() for a, b in zip(first, other))
    assert len(first) == 1  # 6 captioned images, batch 4: incomplete batch dropped


def test_split_without_captions_is_an_error():
    with pytest.raises(ValueError, match="no image with a caption"):
        plan_epoch(TrainingSplit([object()], [], np.zeros(0, dtype=np.int64)), 2, 1, 0, 0)
