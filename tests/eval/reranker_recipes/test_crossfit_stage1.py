"""Cross-fitted stage 1: each caption is ranked, by a copy that never trained on its fold, against its fold's
images only; lists never mix folds; the result is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.reranker_recipes.crossfit_stage1 import CrossFitConfig, crossfit_stage1
from stage1_dual.trainable.model import DualEncoderModel
from tests.stage1_dual.trainable_helpers import tiny_model_config, toy_split


@pytest.fixture(scope="module")
def toy_features(tmp_path_factory):
    split = toy_split(tmp_path_factory.mktemp("toy"))
    model = DualEncoderModel(tiny_model_config())
    transform = model.image_tower.eval_transform()
    pixels = torch.stack([transform(item.open().convert("RGB")) for item in split.images])
    images = model.image_tower.frozen_features(pixels)
    texts = model.text_tower.frozen_features(split.texts)
    return tiny_model_config(), images, texts, np.asarray(split.text_image)


def test_lists_stay_inside_each_fold_and_cover_it(toy_features):
    config, images, texts, caption_image = toy_features
    result = crossfit_stage1(config, images, texts, caption_image,
                             CrossFitConfig(folds=4, epochs=2, batch_images=8, depth=8, seed=1))
    fold = result.image_fold
    assert sorted(np.bincount(fold).tolist()) == [5, 5, 5, 5]
    topk = result.topk
    for caption, image in enumerate(caption_image):
        listed = topk.images_of_caption[caption]
        assert sorted(listed[listed >= 0].tolist()) == sorted(np.flatnonzero(fold == fold[image]).tolist())
        scores = topk.image_scores[caption][listed >= 0]
        assert (np.diff(scores) <= 1e-6).all()
        np.testing.assert_allclose(scores, result.embeddings.image[listed[listed >= 0]] @ result.embeddings.text[caption],
                                   atol=1e-5)
    for image in range(len(fold)):
        listed = topk.captions_of_image[image]
        assert (fold[caption_image[listed[listed >= 0]]] == fold[image]).all()
        assert (listed >= 0).sum() == 8  # 10 captions in the fold, depth 8
    np.testing.assert_allclose(np.linalg.norm(result.embeddings.image, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings.text, axis=1), 1.0, atol=1e-5)
    assert len(result.logit_scales) == 4 and set(result.r_at_1()) == {"t2i", "i2t"}


def test_same_seed_same_lists_and_another_seed_other_folds(toy_features):
    config, images, texts, caption_image = toy_features
    run = lambda seed: crossfit_stage1(config, images, texts, caption_image,  # noqa: E731
                                       CrossFitConfig(folds=2, epochs=1, batch_images=8, seed=seed))
    first, again, other = run(3), run(3), run(4)
    np.testing.assert_array_equal(first.topk.images_of_caption, again.topk.images_of_caption)
    np.testing.assert_allclose(first.embeddings.text, again.embeddings.text)
    assert not np.array_equal(first.image_fold, other.image_fold)


def test_config_rejects_a_single_fold():
    with pytest.raises(ValueError, match="folds"):
        CrossFitConfig(folds=1)


def test_crossfit_leaves_the_callers_global_rng_alone_and_one_seed_gives_one_result(toy_features):
    config, images, texts, caption_image = toy_features
    cfg = CrossFitConfig(folds=2, epochs=1, batch_images=8, seed=5)
    results = []
    for caller_seed in (11, 12):  # the caller's own global state must not matter either
        torch.manual_seed(caller_seed)
        np.random.seed(caller_seed)
        torch_before, numpy_before = torch.get_rng_state(), np.random.get_state()
        results.append(crossfit_stage1(config, images, texts, caption_image, cfg))
        assert torch.equal(torch.get_rng_state(), torch_before)
        assert np.array_equal(np.random.get_state()[1], numpy_before[1])
    np.testing.assert_array_equal(results[0].embeddings.text, results[1].embeddings.text)
    assert results[0].logit_scales == results[1].logit_scales
