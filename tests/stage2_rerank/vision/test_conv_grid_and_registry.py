"""Conv grid files round trip; the provider registry lists its names."""

from __future__ import annotations

import pytest
import torch

from stage2_rerank.protocols import RerankerLoadError
from stage2_rerank.vision import VISION_PROVIDERS, make_vision_provider
from stage2_rerank.vision.conv_grid import ConvGrid, ConvGridConfig, load_conv_grid, save_conv_grid


def test_conv_grid_files_round_trip(tmp_path):
    grid = ConvGrid(ConvGridConfig(image_size=32, widths=(8, 16), feature_dim=12, groups=4))
    save_conv_grid(grid, tmp_path)
    loaded = load_conv_grid(tmp_path)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), grid.eval()(x), atol=0, rtol=0)
    assert loaded(x).shape == (2, 64, 12)  # 32 px / (2 * 2) = 8 -> 64 tokens
    with pytest.raises(RerankerLoadError, match="conv_grid"):
        load_conv_grid(tmp_path / "missing")


def test_new_providers_are_registered_and_unknown_names_list_them():
    assert {"efficientnet_lite0", "efficientnet_lite2", "conv_grid"} <= set(VISION_PROVIDERS)
    with pytest.raises(ValueError, match="conv_grid.*efficientnet_lite0"):
        make_vision_provider("resnet", None)
