"""The Flickr8k-lite reranker's grid: stage 1's cached ``efficientnet_lite0+lite2`` pass (``keep_grid``) must give
exactly what the ``efficientnet_lite0+lite2`` vision provider computes when the trained reranker scores."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from eval.reranker_recipes.flickr8k import ENSEMBLE_PROVIDER, FlickrItmOptions, stage1_grid_store
from stage2_rerank.vision import ProviderSource, make_vision_provider
from stage2_rerank.vision.efficientnet import EfficientNetEnsembleGridProvider, ensemble_grid_tokens
from tests.stage2_rerank.helpers import make_images

needs_efficientnet = pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite_pytorch") is None,
                                        reason="efficientnet-lite-pytorch not installed")


def test_ensemble_grid_tokens_layer_norms_each_member_on_its_own():
    tokens = torch.randn(2, 3, 2560) * torch.cat([torch.full((1280,), 5.0), torch.full((1280,), 0.1)])
    normed = ensemble_grid_tokens(tokens.half())
    assert normed.dtype == torch.float16 and normed.shape == tokens.shape
    for part in normed.float().split(1280, dim=-1):
        torch.testing.assert_close(part.mean(-1), torch.zeros(2, 3), atol=2e-3, rtol=0)
        torch.testing.assert_close(part.std(-1, unbiased=False), torch.ones(2, 3), atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="multiple of 1280"):
        ensemble_grid_tokens(torch.zeros(1, 1, 1000))


@needs_efficientnet
def test_stage1_cached_grid_equals_the_scoring_time_provider(tmp_path):
    images = make_images(tmp_path / "images", 3, size=200)  # 201 x 200 and 202 x 200: not square
    bench = SimpleNamespace(images=images)
    store = stage1_grid_store(bench, tmp_path / "cache", batch_size=2)
    again = stage1_grid_store(bench, tmp_path / "cache")  # read back from the stage-1 cache
    assert store.features.shape == (3, 81, 2560) and store.features.dtype == np.float16
    np.testing.assert_array_equal(store.features, again.features)
    assert store.ids == ["img0", "img1", "img2"]

    provider = make_vision_provider(ENSEMBLE_PROVIDER, ProviderSource(torch.device("cpu"), torch.float32, "test"))
    assert isinstance(provider, EfficientNetEnsembleGridProvider) and provider.feature_shape == (81, 2560)
    with torch.inference_mode():
        live = provider.encode([image.open() for image in images])
    np.testing.assert_allclose(store.features.astype(np.float32), live.numpy(), atol=2e-2, rtol=0)
    assert np.abs(store.features.astype(np.float32) - live.numpy()).mean() < 2e-3  # fp16 storage only


def test_flickr_options_name_the_grid_geometry(tmp_path):
    ensemble = FlickrItmOptions(provider=ENSEMBLE_PROVIDER)
    assert (ensemble.feature_dim, ensemble.image_size) == (2560, 260)
    default = FlickrItmOptions()
    assert default.provider == "efficientnet_lite0" and (default.feature_dim, default.image_size) == (1280, 224)
    with pytest.raises(ValueError, match="provider must be one of"):
        FlickrItmOptions(provider="resnet50")
