"""Encoding throughput of an open_clip model with random weights (same FLOPs as the pretrained one).

``images_per_s``: ``encode_images`` end to end on JPEG files (DataLoader decode + preprocess +
forward); ``images_per_s_forward_only``: the forward pass on already preprocessed batches;
``texts_per_s``: ``encode_texts`` (tokenise + forward). One warm-up batch is excluded from timing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from stage1_dual.config import EncoderConfig
from stage1_dual.encode import encode_images, encode_texts
from stage1_dual.encoders import load_encoder

log = logging.getLogger(__name__)

_WORDS = ("a dog cat man woman child red blue green small large runs sits jumps on under near the grass "
          "street beach water ball bike car tree house field snow").split()


@dataclass
class EncodeBenchOptions:
    """Model and workload of the encoding benchmark."""

    model: str = "ViT-B-32"
    images: int = 256
    texts: int = 256
    batch_size: int = 32
    num_workers: int = 1
    seed: int = 0


@dataclass(frozen=True)
class FileImage:
    """A benchmark image file satisfying stage 1's ImageRef protocol."""

    id: str
    path: Path

    def open(self) -> Image.Image:
        with Image.open(self.path) as image:
            return image.convert("RGB")

    def fingerprint(self) -> str:
        return hashlib.sha1(self.path.read_bytes()).hexdigest()[:16]


def write_images(directory: Path, count: int, seed: int) -> list[FileImage]:
    """``count`` 320x240 JPEGs of smooth random content (upsampled noise, photo-like to decode)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (15, 20, 3), dtype=np.uint8))
        path = directory / f"bench_{i:05d}.jpg"
        small.resize((320, 240), Image.Resampling.BICUBIC).save(path, quality=90)
        items.append(FileImage(f"bench{i}", path))
    return items


def random_captions(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(_WORDS, size=int(rng.integers(8, 16)))) for _ in range(count)]


def run_encode_bench(options: EncodeBenchOptions, workdir: Path) -> dict[str, Any]:
    """Measure images/s and texts/s (see module docstring) on CPU."""
    encoder = load_encoder(EncoderConfig(backend="open_clip", model=options.model, pretrained=None, device="cpu",
                                         batch_size=options.batch_size, num_workers=options.num_workers))
    images = write_images(workdir / "images", options.images, options.seed)
    texts = random_captions(options.texts, options.seed)
    transform = encoder.image_transform()
    batches = [torch.stack([transform(item.open()) for item in images[i:i + options.batch_size]])
               for i in range(0, len(images), options.batch_size)]
    encoder.encode_images(batches[0])
    encoder.encode_texts(texts[:options.batch_size])

    started = time.perf_counter()
    encode_images(encoder, images, batch_size=options.batch_size, num_workers=options.num_workers)
    images_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for batch in batches:
        encoder.encode_images(batch)
    forward_seconds = time.perf_counter() - started
    started = time.perf_counter()
    encode_texts(encoder, texts, batch_size=options.batch_size)
    texts_seconds = time.perf_counter() - started
    result = {"model": f"open_clip {options.model} (random weights)", "batch_size": options.batch_size,
              "num_workers": options.num_workers, "images": len(images), "texts": len(texts),
              "image_size": list(encoder.image_size), "images_per_s": len(images) / images_seconds,
              "images_per_s_forward_only": len(images) / forward_seconds, "texts_per_s": len(texts) / texts_seconds,
              "seconds": {"images": images_seconds, "images_forward_only": forward_seconds, "texts": texts_seconds}}
    log.info("encoding: %s", result)
    return result
