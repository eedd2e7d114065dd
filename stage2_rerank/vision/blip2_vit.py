"""``blip2_vit`` vision provider: BLIP-2's ViT-g (``Blip2VisionModel``) with the checkpoint's image processor.

Features = ``last_hidden_state`` (post-layernorm applied, as ``Blip2ForImageTextRetrieval.forward`` feeds the
Q-Former), ``T = (image_size / patch)^2 + 1``, ``D = 1408``. With ``image_preprocessing: blip_image_eval`` the
images go through LAVIS's eval transform at the tower's size instead of the checkpoint's processor.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from PIL import Image
from torch import nn

from stage2_rerank.config import dtype_name
from stage2_rerank.content_identity import processor_digest
from stage2_rerank.protocols import RerankerLoadError
from stage2_rerank.vision.base import ProviderSource
from rrbench_base.blip_image_eval import BlipImageEval


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
    processor = source.processor.image_processor
    if source.image_preprocessing == "blip_image_eval":
        processor = BlipImageEval(vision_model.config.image_size)
    return Blip2VisionProvider(vision_model, processor, source.device, source.dtype, source.checkpoint_identity)
