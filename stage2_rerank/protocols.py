"""What stage 2 needs from its inputs and parts, as typing Protocols, plus its error types.

Images come in as ``rrbench_base.image_refs.ImageRef`` objects (``eval.data.benchmark.ImageItem`` is one; stage 2
never imports ``eval``), or as PIL images or paths that ``rrbench_base.image_refs.as_image_refs`` wraps.

- :class:`VisionFeatureProvider`: turns PIL images into the feature grid ``[T, D]`` per image that the
  Q-Former cross-attends to (BLIP-2's ViT-g tokens, or a CNN feature map flattened to T positions).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch
from PIL import Image


class VisionFeatureProvider(Protocol):
    """Images -> cross-attention features.

    ``identity`` names the model, preprocessing and dtype (cache key of the features);
    ``feature_shape`` is ``(T, D)``; ``encode(images)`` returns ``[len(images), T, D]`` on the provider's
    device in its dtype, deterministic (eval mode, no dropout).
    """

    @property
    def identity(self) -> str: ...

    @property
    def feature_shape(self) -> tuple[int, int]: ...

    def encode(self, images: Sequence[Image.Image]) -> torch.Tensor: ...


class RerankerLoadError(RuntimeError):
    """A reranker checkpoint or processor cannot be found or loaded; the message says which and why."""


class RerankInputError(ValueError):
    """Invalid reranker input (bad pair indices, an image that fails to open under on_bad_input=error)."""
