"""Test data helpers: a word list, captions of mixed lengths, random-content images as eval ImageItems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from eval.data.benchmark import ImageItem

WORDS = ("a red blue green small large cat dog bird circle square triangle on under left right of the "
         "next to above below sits runs near big tiny yellow".split())


def make_captions(n: int, seed: int = 0) -> list[str]:
    """Captions of 1 to 14 words (mixed token lengths)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 15)))) for _ in range(n)]


def make_images(directory: Path, n: int, seed: int = 0, size: int = 40) -> list[ImageItem]:
    """``n`` random-content PNGs (different sizes than the model's input, so resizing is exercised)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        pixels = rng.integers(0, 256, size=(size + i % 3, size, 3), dtype=np.uint8)
        path = directory / f"img{i}.png"
        Image.fromarray(pixels).save(path)
        items.append(ImageItem(id=f"img{i}", path=path))
    return items
