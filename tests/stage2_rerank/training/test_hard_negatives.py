"""Hard-negative samplers: never a positive, distribution follows the softmax, padding and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stage2_rerank.training.hard_negatives import TopKNegatives, sample_from_candidates, sample_in_batch


def test_in_batch_never_returns_a_positive_even_when_positives_are_the_most_similar():
    generator = torch.Generator().manual_seed(0)
    images = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4])  # several captions of one image in the batch
    positive = images[:, None] == images[None, :]
    similarity = torch.randn(8, 8, generator=generator) + 50.0 * positive  # positives are by far the closest
    for _ in range(200):
        picked = sample_in_batch(similarity, positive, generator)
        assert not positive[torch.arange(8), picked].any()


def test_in_batch_follows_the_masked_softmax():
    generator = torch.Generator().manual_seed(1)
    similarity = torch.tensor([[5.0, 0.0, 1.0, 2.0]])
    positive = torch.tensor([[True, False, False, False]])
    counts = np.bincount([int(sample_in_batch(similarity, positive, generator)) for _ in range(4000)], minlength=4)
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0).numpy()
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / 4000, expected, atol=0.03)


def test_in_batch_temperature_sharpens():
    generator = torch.Generator().manual_seed(2)
    similarity = torch.tensor([[0.0, 1.0, 2.0]])
    positive = torch.zeros(1, 3, dtype=torch.bool)
    picks = [int(sample_in_batch(similarity, positive, generator, temperature=0.05)) for _ in range(200)]
    assert picks.count(2) > 195


def test_in_batch_row_without_negative_is_an_error():
    positive = torch.tensor([[True, True], [False, True]])
    with pytest.raises(ValueError, match="no negative"):
        sample_in_batch(torch.zeros(2, 2), positive, torch.Generator().manual_seed(0))


def test_candidates_skip_padding_and_positives_and_report_empty_rows():
    generator = torch.Generator().manual_seed(3)
    candidates = torch.tensor([[7, 3, -1], [4, -1, -1], [9, 8, 6]])
    scores = torch.tensor([[9.0, 1.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    positive = torch.tensor([[True, False, False], [True, False, False], [False, True, False]])
    for _ in range(100):
        picked = sample_from_candidates(candidates, scores, positive, generator)
        assert picked[0] == 3 and picked[1] == -1 and picked[2] in (9, 6)


def test_topk_negatives_never_return_own_image_or_own_caption():
    rng = np.random.default_rng(0)
    n_images, per_image, k = 12, 5, 6
    caption_image = np.repeat(np.arange(n_images), per_image)
    n_captions = len(caption_image)
    # top-k lists that put the true matches first (as a good stage 1 does), with random scores
    images_of_caption = np.stack([np.concatenate([[caption_image[c]], rng.choice(
        np.setdiff1d(np.arange(n_images), caption_image[c]), k - 1, replace=False)]) for c in range(n_captions)])
    captions_of_image = np.stack([np.concatenate([np.flatnonzero(caption_image == i)[:3], rng.choice(
        np.flatnonzero(caption_image != i), k - 3, replace=False)]) for i in range(n_images)])
    topk = TopKNegatives(caption_image, images_of_caption, np.sort(rng.random((n_captions, k)))[:, ::-1].copy(),
                         captions_of_image, rng.random((n_images, k)), temperature=0.1)
    generator = torch.Generator().manual_seed(4)
    for _ in range(50):
        captions = torch.as_tensor(rng.choice(n_captions, 16, replace=False))
        negative_images = topk.negative_images(captions, generator)
        assert (negative_images >= 0).all()
        assert not (negative_images.numpy() == caption_image[captions.numpy()]).any()
        images = torch.as_tensor(rng.choice(n_images, 8, replace=False))
        negative_captions = topk.negative_captions(images, generator)
        assert (negative_captions >= 0).all()
        assert not (caption_image[negative_captions.numpy()] == images.numpy()).any()


def test_topk_row_of_only_positives_gives_minus_one():
    caption_image = np.array([0, 0, 1, 1])
    topk = TopKNegatives(caption_image, np.array([[0], [0], [1], [0]]), np.zeros((4, 1)),
                         np.array([[0, 1], [0, 2]]), np.zeros((2, 2)))
    generator = torch.Generator().manual_seed(0)
    assert topk.negative_images(torch.tensor([0, 1, 2, 3]), generator).tolist() == [-1, -1, -1, 0]
    assert topk.negative_captions(torch.tensor([0, 1]), generator).tolist() == [-1, 0]
