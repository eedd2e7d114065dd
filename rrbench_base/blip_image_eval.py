"""LAVIS's ``blip_image_eval`` image transform (the BLIP-2 paper's retrieval protocol), as an image processor.

The transform: the whole image (RGB) resized to ``size x size`` with PIL's bicubic filter (no aspect kept, no
crop), scaled to [0, 1] by dividing the 8-bit values by 255 in float32, then ``(x - mean) / std`` per channel with
the OpenAI CLIP mean / std. LAVIS runs it through torchvision's ``Resize`` on a PIL image, which calls PIL, so the
pixels here are PIL's bit for bit.

Why it exists: a checkpoint's own processor is transformers' ``BlipImageProcessor``, whose settings are the same
(bicubic, square size, CLIP mean / std, no crop) but whose pixels need not be: from transformers 5 it resizes
8-bit tensors with torchvision's bicubic kernel, not PIL's, and differs from ``blip_image_eval`` by up to a few
8-bit levels at sharp edges (measured in ``tests/stage2_rerank/vision/test_blip_image_eval.py``).
``RerankerConfig.image_preprocessing: blip_image_eval`` uses this class instead.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class BlipImageEval:
    """``processor(images=[PIL images], return_tensors="pt")["pixel_values"]`` -> float32 ``[B, 3, size, size]``
    (the call shape of a transformers image processor, so vision providers take either)."""

    def __init__(self, size: int, mean: Sequence[float] = OPENAI_CLIP_MEAN,
                 std: Sequence[float] = OPENAI_CLIP_STD) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.asarray(std, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The settings (their digest is part of a vision provider's identity)."""
        return {"transform": "blip_image_eval", "resize": "PIL bicubic, whole image, no crop", "size": self.size,
                "mean": self._mean.tolist(), "std": self._std.tolist()}

    def pixels(self, image: Image.Image) -> np.ndarray:
        """One image as float32 ``[3, size, size]``."""
        resized = image.convert("RGB").resize((self.size, self.size), Image.BICUBIC)
        scaled = np.asarray(resized, dtype=np.uint8).astype(np.float32) / np.float32(255)
        return ((scaled - self._mean) / self._std).transpose(2, 0, 1)

    def __call__(self, images: Sequence[Image.Image], return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        if return_tensors != "pt":
            raise ValueError(f"only return_tensors='pt' is supported, got {return_tensors!r}")
        return {"pixel_values": torch.from_numpy(np.stack([self.pixels(image) for image in images]))}
