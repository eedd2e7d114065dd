"""What stage 1 needs from its inputs and from a dual encoder, and its error types.

Stage 1 never imports ``eval``: images come in as any objects satisfying ``rrbench_base.image_refs.ImageRef``
(eval's ``ImageItem`` does; a bad one raises ``rrbench_base.image_refs.BadImageError``), texts as plain strings.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import torch
from PIL import Image


class Stage1Error(ValueError):
    """Base class of stage-1 errors (a ValueError, so config-level handlers catch it too)."""


class UnknownBackendError(Stage1Error):
    """A backend name that is not in the backend dict; the message lists the known ones."""


class ModelNotFoundError(Stage1Error, FileNotFoundError):
    """A model or checkpoint that is neither local nor in the hub cache, with the hub out of reach.

    The message says what was looked for, where, and how to provide it.
    """


@runtime_checkable
class DualEncoder(Protocol):
    """An image tower and a text tower mapping into one embedding space.

    Contract:
    - ``encode_images(pixels)``: float ``[B, 3, H, W]`` (output of ``image_transform()``, stacked)
      -> float32 CPU tensor ``[B, embed_dim]``, rows L2-normalised; no gradients.
    - ``encode_texts(texts)``: list of B strings -> float32 CPU tensor ``[B, embed_dim]``, rows
      L2-normalised; no gradients.
    - ``image_transform()``: the model's own PIL -> ``[3, H, W]`` preprocessing (picklable).
    - ``image_size`` (H, W), ``image_mean``, ``image_std``: the model's input size and
      normalisation (used by the seed-rule preprocessing).
    - ``fingerprint()``: identity of model + weights (hub id + revision, or weights file hash, or a
      hash of randomly initialised parameters); ``preprocess_description()``: a stable text
      describing ``image_transform()``. Both key the embedding cache.
    - ``precision``: effective autocast precision (``fp32``, ``fp16``, ``bf16``); ``device``.
    - optional ``vectors_per_image`` V (default 1): when V > 1, ``encode_images`` returns ``[B, V, embed_dim]``
      (every vector L2-normalised; image-text score = max over the V vectors), see :func:`vectors_per_image`.
    - optional ``encode_images_and_vision(pixels)`` -> ``(encode_images(pixels), vision tower output)``, for a
      :data:`VisionSink`.
    """

    embed_dim: int
    image_size: tuple[int, int]
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    precision: str
    device: torch.device

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor: ...

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor: ...

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]: ...

    def fingerprint(self) -> str: ...

    def preprocess_description(self) -> str: ...


VisionSink = Callable[[Sequence[Any], torch.Tensor], None]
"""``sink(images, features)``: the vision tower's output ``features`` ``[B, ...]`` (on the encoder's device) of a
batch of ``images`` (``rrbench_base.image_refs.ImageRef``, row-aligned), handed over as stage 1 encodes them."""


def vectors_per_image(encoder: Any) -> int:
    """Vectors per image embedding of ``encoder``: its ``vectors_per_image`` (multi-vector encoders), else 1."""
    return int(getattr(encoder, "vectors_per_image", 1))
