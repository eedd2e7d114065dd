"""A small competition folder built in tmp_path: coloured-square images, Chinese captions, the four task
files, an answer key, and a tiny stage-1 model configuration trained from scratch by compete's fine-tuning."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from stage1_dual.trainable.model_config import DualModelConfig, ImageTowerConfig, ProjectionConfig, TextTowerConfig

COLOURS = {"红": (220, 30, 30), "绿": (30, 160, 50), "蓝": (30, 80, 230), "黄": (245, 225, 30),
           "白": (255, 255, 255)}


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def square_pairs() -> list[tuple[str, str]]:
    return list(itertools.permutations(COLOURS, 2))


def write_images(image_dir: Path, size: int = 16) -> list[str]:
    """One PNG per ordered colour pair (two squares side by side), named ``img<k>.jpg`` (a lying extension)."""
    image_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for k, (left, right) in enumerate(square_pairs()):
        pixels = np.full((size, size, 3), 128, dtype=np.uint8)
        pixels[size // 4: 3 * size // 4, 1: size // 2 - 1] = COLOURS[left]
        pixels[size // 4: 3 * size // 4, size // 2 + 1: size - 1] = COLOURS[right]
        name = f"img{k}.jpg"
        Image.fromarray(pixels).save(image_dir / name, format="PNG")
        names.append(name)
    return names


def caption(left: str, right: str, variant: int) -> str:
    return f"{left}色方块在{right}色方块左边" if variant == 0 else f"{right}色方块在{left}色方块右边"


def make_competition_dir(root: Path) -> dict[str, list[str]]:
    """Training pairs for every image (2 captions each) and task files over all images: text ids are
    Chinese (``文本-<k>``, verbatim in the results), galleries listed in reverse order. Returns the ids."""
    names = write_images(root / "ImageData")
    pairs = square_pairs()
    write_csv(root / "ImageWordData.csv", ["image_id", "caption"],
              [(n, caption(*pair, v)) for n, pair in zip(names, pairs) for v in (0, 1)])
    text_ids = [f"文本-{k}" for k in range(len(names))]
    texts = [caption(*pair, 0) for pair in pairs]
    write_csv(root / "word_test.csv", ["text_id", "caption"], list(zip(text_ids, texts)))
    write_csv(root / "word_data.csv", ["text_id", "caption"], list(zip(text_ids, texts))[::-1])
    write_csv(root / "image_test.csv", ["image_id"], [(n,) for n in names])
    write_csv(root / "image_data.csv", ["image_id"], [(n,) for n in names[::-1]])
    write_csv(root / "ground_truth.csv", ["text_id", "image_id"], list(zip(text_ids, names)))
    return {"images": names, "text_ids": text_ids}


def tiny_model() -> DualModelConfig:
    """Small CNN (16 px) + character-level word transformer (vocabulary from the training captions)."""
    return DualModelConfig(
        image_tower=ImageTowerConfig(name="small_cnn", image_size=16, width=4, depth=2, output_dim=16),
        text_tower=TextTowerConfig(name="word_transformer", width=16, layers=1, heads=2, dropout=0.0, max_length=16),
        image_projection=ProjectionConfig(kind="linear"), text_projection=ProjectionConfig(kind="linear"),
        embed_dim=16)


def tiny_finetune_overrides(cache_dir: Path, epochs: int = 8) -> list[str]:
    """compete overrides: fine-tune the tiny model from scratch on CPU, everything cached under ``cache_dir``."""
    import json

    from stage1_dual.trainable.model_config import model_config_to_dict

    model = json.dumps(model_config_to_dict(tiny_model()), ensure_ascii=False)
    return ["finetune.enabled=true", "finetune.start_from_stage1=false", f"finetune.training.model={model}",
            f"finetune.training.epochs={epochs}", "finetune.training.batch_size=10",
            "finetune.training.learning_rate=0.003", "finetune.training.warmup_steps=2",
            "finetune.training.device=cpu", "finetune.training.feature_batch_size=20",
            "stage1.encoder.device=cpu", "stage1.depth=10", f"cache_dir={cache_dir}"]
