"""Image preprocessing choices: the model's own, the seed documents' rule, or LAVIS's ``blip_image_eval``.

Seed rule (from one of the project's seed write-ups): an image whose aspect ratio (long side /
short side) is at most 2:1 is stretched to the square input; above 2:1 the long side is first
centre-cropped to twice the short side; then a bicubic resize to the model's input size and the
model's normalisation.
"""

from __future__ import annotations

import json
from typing import Callable

import torch
import torchvision.transforms.functional as TF
from PIL import Image

from rrbench_base.blip_image_eval import BlipImageEval
from stage1_dual.protocols import DualEncoder

SEED_RULE_MAX_ASPECT = 2.0


def seed_rule_crop_box(width: int, height: int, max_aspect: float = SEED_RULE_MAX_ASPECT) -> tuple[int, int, int, int]:
    """PIL crop box ``(left, top, right, bottom)``: the whole image when long/short <= ``max_aspect``,
    else a centred crop of the long side to ``round(max_aspect * short)``."""
    long_side, short_side = max(width, height), min(width, height)
    if long_side <= max_aspect * short_side:
        return (0, 0, width, height)
    kept = int(round(max_aspect * short_side))
    start = (long_side - kept) // 2
    if width >= height:
        return (start, 0, start + kept, height)
    return (0, start, width, start + kept)


class SeedRuleTransform:
    """PIL RGB -> normalised float ``[3, H, W]`` by the seed rule (see module docstring); picklable."""

    def __init__(self, size: tuple[int, int], mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        box = seed_rule_crop_box(*image.size)
        resized = image.convert("RGB").crop(box).resize((self.size[1], self.size[0]), Image.Resampling.BICUBIC)
        return TF.normalize(TF.to_tensor(resized), self.mean, self.std)

    def description(self) -> str:
        return json.dumps({"rule": "seed_rule", "max_aspect": SEED_RULE_MAX_ASPECT, "size": self.size,
                           "interpolation": "bicubic", "mean": self.mean, "std": self.std}, sort_keys=True)


class BlipImageEvalTransform:
    """PIL -> float32 ``[3, S, S]`` by LAVIS's ``blip_image_eval`` at the model's square input size ``S``
    (``rrbench_base.blip_image_eval``); picklable."""

    def __init__(self, size: tuple[int, int]) -> None:
        if size[0] != size[1]:
            raise ValueError(f"blip_image_eval needs a square input size, the model has {size}")
        self.transform = BlipImageEval(int(size[0]))

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(self.transform.pixels(image))

    def description(self) -> str:
        return json.dumps({"rule": "blip_image_eval", **self.transform.to_dict()}, sort_keys=True)


def _blip_image_eval_transform(encoder: DualEncoder) -> tuple[Callable[[Image.Image], torch.Tensor], str]:
    transform = BlipImageEvalTransform(encoder.image_size)
    return transform, transform.description()


def _model_transform(encoder: DualEncoder) -> tuple[Callable[[Image.Image], torch.Tensor], str]:
    return encoder.image_transform(), json.dumps({"rule": "model", "model": encoder.preprocess_description()})


def _seed_rule_transform(encoder: DualEncoder) -> tuple[Callable[[Image.Image], torch.Tensor], str]:
    transform = SeedRuleTransform(encoder.image_size, encoder.image_mean, encoder.image_std)
    return transform, transform.description()


PREPROCESS_MODES: dict[str, Callable[[DualEncoder], tuple[Callable[[Image.Image], torch.Tensor], str]]] = {
    "model": _model_transform,
    "seed_rule": _seed_rule_transform,
    "blip_image_eval": _blip_image_eval_transform,
}
"""Preprocessing mode -> ``encoder -> (transform, stable description for the cache key)``."""


def build_image_transform(encoder: DualEncoder, mode: str) -> tuple[Callable[[Image.Image], torch.Tensor], str]:
    """The transform for ``mode`` (a key of ``PREPROCESS_MODES``) and its description."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocess mode {mode!r}; known: {', '.join(sorted(PREPROCESS_MODES))}")
    return PREPROCESS_MODES[mode](encoder)
