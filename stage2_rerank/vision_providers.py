"""Vision feature providers (images -> cross-attention features ``[T, D]``), chosen by name from a plain dict.

``VISION_PROVIDERS[name](source)`` builds a provider from a :class:`ProviderSource` (the loaded checkpoint
objects, device and dtype). ``blip2_vit``: BLIP-2's ViT-g (``Blip2VisionModel``) with the checkpoint's
image processor; features = ``last_hidden_state`` (post-layernorm applied, as
``Blip2ForImageTextRetrieval.forward`` feeds the Q-Former), ``T = (image_size / patch)^2 + 1``, ``D = 1408``.
Another provider (e.g. a CNN feature grid) is added by writing a factory and one dict entry.

A provider's ``identity`` names everything that changes its features: the network's weights (by content), the
preprocessing (image size and a digest of the image processor's settings: resize, mean / std, rescaling) and
the dtype it computes in. It keys the vision feature cache and is part of the pair-score key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image
from torch import nn

from stage2_rerank.config import dtype_name
from stage2_rerank.content_identity import processor_digest
from stage2_rerank.conv_grid import conv_grid_provider
from stage2_rerank.efficientnet_provider import (efficientnet_lite0_lite2_provider, efficientnet_lite0_provider,
                                                 efficientnet_lite2_provider)
from stage2_rerank.protocols import RerankerLoadError, VisionFeatureProvider


@dataclass
class ProviderSource:
    """What a provider factory builds from.

    Attributes:
        device: where the provider runs.
        dtype: dtype of the vision model and its output features.
        checkpoint_identity: identity of the loaded checkpoint (part of the provider's identity).
        model: the loaded checkpoint object, if the provider takes its weights from it.
        processor: the checkpoint's processor, if any.
        model_dir: the checkpoint directory, if any.
    """

    device: torch.device
    dtype: torch.dtype
    checkpoint_identity: str
    model: nn.Module | None = None
    processor: Any | None = None
    model_dir: Path | None = None


def _square_size(size: Any) -> int:
    """Side of a square processor size (dict-like with height/width, or an int)."""
    if isinstance(size, int):
        return size
    height, width = size["height"], size["width"]
    if height != width:
        raise RerankerLoadError(f"expected a square image size, the processor has {height}x{width}")
    return int(height)


class Blip2VisionProvider:
    """BLIP-2 ViT features of images, preprocessed by the checkpoint's image processor."""

    def __init__(self, vision_model: nn.Module, image_processor: Any, device: torch.device,
                 dtype: torch.dtype, checkpoint_identity: str) -> None:
        config = vision_model.config
        size = _square_size(image_processor.size)
        if size != config.image_size:
            raise RerankerLoadError(
                f"the processor resizes to {size} px but the vision tower expects {config.image_size} px")
        self._model = vision_model.to(device=device, dtype=dtype).eval()
        self._processor = image_processor
        self._device = device
        self._dtype = dtype
        patches = (config.image_size // config.patch_size) ** 2
        self._shape = (patches + 1, config.hidden_size)
        self._identity = (f"blip2_vit|{checkpoint_identity}|{size}px|{dtype_name(dtype)}"
                          f"|processor={processor_digest(image_processor)}")

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def feature_shape(self) -> tuple[int, int]:
        return self._shape

    def encode(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``[len(images), T, D]`` ViT features on the provider's device, in its dtype."""
        pixels = self._processor(images=list(images), return_tensors="pt")["pixel_values"]
        pixels = pixels.to(device=self._device, dtype=self._dtype)
        return self._model(pixel_values=pixels).last_hidden_state


def blip2_vit_provider(source: ProviderSource) -> Blip2VisionProvider:
    """``blip2_vit`` from a loaded ``Blip2ForImageTextRetrieval`` (its ``vision_model``) and processor."""
    vision_model = getattr(source.model, "vision_model", None)
    if vision_model is None or source.processor is None:
        raise RerankerLoadError("vision provider 'blip2_vit' needs a BLIP-2 checkpoint with a vision_model "
                                "and its processor")
    return Blip2VisionProvider(vision_model, source.processor.image_processor, source.device, source.dtype,
                               source.checkpoint_identity)


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
