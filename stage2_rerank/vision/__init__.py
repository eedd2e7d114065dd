"""Vision feature providers (images -> cross-attention features ``[T, D]``), chosen by name from a plain dict.

``VISION_PROVIDERS[name](source)`` builds a provider from a :class:`ProviderSource` (the loaded checkpoint
objects, device and dtype); one provider family per file: ``blip2_vit`` (BLIP-2's ViT-g), ``efficientnet``
(frozen ImageNet EfficientNet-Lite grids), ``conv_grid`` (a small CNN trained with the Q-Former). Another
provider is added by writing a factory and one dict entry.

A provider's ``identity`` names everything that changes its features: the network's weights (by content), the
preprocessing (image size and a digest of the image processor's settings: resize, mean / std, rescaling) and
the dtype it computes in. It keys the vision feature cache and is part of the pair-score key.
"""

from __future__ import annotations

from typing import Callable

from stage2_rerank.protocols import VisionFeatureProvider
from stage2_rerank.vision.base import ProviderSource
from stage2_rerank.vision.blip2_vit import Blip2VisionProvider, blip2_vit_provider
from stage2_rerank.vision.conv_grid import ConvGrid, ConvGridConfig, ConvGridProvider, conv_grid_provider
from stage2_rerank.vision.efficientnet import (EfficientNetEnsembleGridProvider, EfficientNetGridProvider,
                                               efficientnet_lite0_lite2_provider, efficientnet_lite0_provider,
                                               efficientnet_lite2_provider)

VISION_PROVIDERS: dict[str, Callable[[ProviderSource], VisionFeatureProvider]] = {
    "blip2_vit": blip2_vit_provider,
    "efficientnet_lite0": efficientnet_lite0_provider,
    "efficientnet_lite2": efficientnet_lite2_provider,
    "efficientnet_lite0+lite2": efficientnet_lite0_lite2_provider,
    "conv_grid": conv_grid_provider,
}


def make_vision_provider(name: str, source: ProviderSource) -> VisionFeatureProvider:
    """Build provider ``name``; an unknown name raises ValueError listing the known ones."""
    if name not in VISION_PROVIDERS:
        raise ValueError(f"unknown vision provider {name!r}; known: {', '.join(sorted(VISION_PROVIDERS))}")
    return VISION_PROVIDERS[name](source)


__all__ = ["Blip2VisionProvider", "ConvGrid", "ConvGridConfig", "ConvGridProvider", "EfficientNetEnsembleGridProvider",
           "EfficientNetGridProvider", "ProviderSource", "VISION_PROVIDERS", "VisionFeatureProvider",
           "make_vision_provider"]
