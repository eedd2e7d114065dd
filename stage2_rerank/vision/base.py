"""What vision providers share: :class:`ProviderSource` (what a factory builds from) and the square image
processor of providers whose checkpoints carry no processor of their own. The provider protocol itself is
:class:`~stage2_rerank.protocols.VisionFeatureProvider`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BlipImageProcessor
from transformers.image_utils import PILImageResampling


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
        image_preprocessing: ``checkpoint`` (the processor's own) or ``blip_image_eval`` (LAVIS's eval transform,
            ``rrbench_base.blip_image_eval``; providers that cannot honour it refuse it).
    """

    device: torch.device
    dtype: torch.dtype
    checkpoint_identity: str
    model: nn.Module | None = None
    processor: Any | None = None
    model_dir: Path | None = None
    image_preprocessing: str = "checkpoint"


def square_image_processor(image_size: int, mean: float, std: float) -> BlipImageProcessor:
    """Square bicubic resize to ``image_size``, rescale to [0, 1], normalise by ``mean`` / ``std`` (all channels)."""
    return BlipImageProcessor(size={"height": image_size, "width": image_size},
                              resample=PILImageResampling.BICUBIC, image_mean=[mean] * 3, image_std=[std] * 3)
