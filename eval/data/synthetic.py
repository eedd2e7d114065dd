"""The synthetic shapes benchmark: render scenes to PNGs in a cache directory and load them.

``synthetic_split_dir(cfg, split, cache_dir)`` returns a directory holding ``<image id>.png`` files and
``manifest.json`` (per image: id, file, group, variant, axis, objects, captions), generating it on first
use. The directory name is the cache key: generator version, seed, image size, captions per image,
split and the sizes of the splits drawn up to it (test, val, train: see ``synthetic_scenes``).
Generation writes into a temporary directory that is renamed into place only when complete, so an
interrupted run is never mistaken for a finished one.

Image ids are ``syn-<split>-<index>``; caption ids ``<image id>#<k>``. Pixels are a deterministic
function of the scene (PIL drawing at 4x, box-filtered down), so the same config gives identical
pixels and captions on every machine.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from eval.data.assemble import AssembleOptions, SourceCaption, SourceImage, assemble
from eval.data.bad_input import BadInputLog
from eval.data.benchmark import Benchmark
from eval.data.dataset_config import DatasetConfig, SyntheticConfig
from eval.data.synthetic_scenes import (BACKGROUND, COLOURS, SIZE_DIAMETER, SPLIT_ORDER, Scene,
                                        captions_for, generate_scenes)

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SUPERSAMPLE = 4
MANIFEST = "manifest.json"

Point = tuple[float, float]


def _regular(cx: float, cy: float, radii: list[float], start_deg: float = -90.0) -> list[Point]:
    n = len(radii)
    return [(cx + r * math.cos(math.radians(start_deg + 360.0 * k / n)),
             cy + r * math.sin(math.radians(start_deg + 360.0 * k / n))) for k, r in enumerate(radii)]


def _cross(cx: float, cy: float, r: float) -> list[Point]:
    t = 0.34 * r
    return [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy - t), (cx + r, cy - t), (cx + r, cy + t),
            (cx + t, cy + t), (cx + t, cy + r), (cx - t, cy + r), (cx - t, cy + t), (cx - r, cy + t),
            (cx - r, cy - t), (cx - t, cy - t)]


# shape name -> outline polygon of an object of radius r centred at (cx, cy)
OUTLINES: dict[str, Callable[[float, float, float], list[Point]]] = {
    "circle": lambda cx, cy, r: _regular(cx, cy, [r] * 48),
    "square": lambda cx, cy, r: _regular(cx, cy, [r * 1.2] * 4, start_deg=-45.0),
    "triangle": lambda cx, cy, r: _regular(cx, cy + 0.15 * r, [r * 1.15] * 3),
    "diamond": lambda cx, cy, r: [(cx, cy - r), (cx + 0.8 * r, cy), (cx, cy + r), (cx - 0.8 * r, cy)],
    "star": lambda cx, cy, r: _regular(cx, cy + 0.08 * r, [r * 1.1, r * 0.45] * 5),
    "cross": _cross,
}


def render(scene: Scene, image_size: int) -> Image.Image:
    """RGB image of ``scene``: objects drawn at SUPERSAMPLE x resolution, then box-filtered down."""
    side = image_size * SUPERSAMPLE
    canvas = Image.new("RGB", (side, side), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for obj, (x, y) in zip(scene.objects, scene.centres):
        radius = SIZE_DIAMETER[obj.size] * side / 2
        draw.polygon(OUTLINES[obj.shape](x * side, y * side, radius), fill=COLOURS[obj.colour])
    return canvas.resize((image_size, image_size), Image.Resampling.BOX)


def cache_key(cfg: SyntheticConfig, split: str) -> str:
    """Directory name identifying the content of ``split`` (changes whenever its pixels could)."""
    cfg.num_images(split)  # validates the split name
    drawn = SPLIT_ORDER[: SPLIT_ORDER.index(split) + 1]
    sizes = "-".join(f"{name}{cfg.num_images(name)}" for name in drawn)
    return (f"v{GENERATOR_VERSION}_seed{cfg.seed}_px{cfg.image_size}_cap{cfg.captions_per_image}"
            f"_{split}_{sizes}")


def _manifest_entries(cfg: SyntheticConfig, split: str, scenes: list[Scene]) -> list[dict]:
    entries = []
    for index, scene in enumerate(scenes):
        rng = np.random.default_rng([cfg.seed, SPLIT_ORDER.index(split), index])
        image_id = f"syn-{split}-{index:06d}"
        entries.append({
            "id": image_id, "file": f"{image_id}.png", "group": scene.group, "variant": scene.variant,
            "axis": scene.axis, "objects": [[o.size, o.colour, o.shape] for o in scene.objects],
            "captions": captions_for(scene, cfg.captions_per_image, rng),
        })
    return entries


def _render_file(scene: Scene, image_size: int, path: Path) -> None:
    render(scene, image_size).save(path, format="PNG", compress_level=1)


def _generate(cfg: SyntheticConfig, split: str, target: Path, workers: int = 1) -> None:
    sizes = {name: cfg.num_images(name) for name in SPLIT_ORDER}
    scenes = generate_scenes(cfg.seed, sizes, split)
    entries = _manifest_entries(cfg, split, scenes)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        paths = [tmp / entry["file"] for entry in entries]
        bar = tqdm(total=len(scenes), desc=f"rendering synthetic {split}", unit="img", disable=len(scenes) < 200)
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(_render_file, scenes, repeat(cfg.image_size), paths, chunksize=16):
                    bar.update()
        else:
            for scene, path in zip(scenes, paths):
                _render_file(scene, cfg.image_size, path)
                bar.update()
        bar.close()
        manifest = {"generator_version": GENERATOR_VERSION, "key": target.name, "split": split,
                    "seed": cfg.seed, "image_size": cfg.image_size, "images": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MANIFEST).is_file():  # not a concurrent finisher: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def synthetic_split_dir(cfg: SyntheticConfig, split: str, cache_dir: Path, workers: int = 1) -> Path:
    """Directory with the PNGs and manifest of ``split``, generated on first use (see module doc) by ``workers``
    processes (same bytes for any number)."""
    target = Path(cache_dir) / "synthetic" / cache_key(cfg, split)
    if not (target / MANIFEST).is_file():
        log.info("generating synthetic %s split into %s", split, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        _generate(cfg, split, target, workers)
    return target


def read_manifest(directory: Path) -> dict:
    """The manifest of a generated split (scene attributes, groups and captions per image)."""
    return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))


def load_synthetic(cfg: DatasetConfig) -> Benchmark:
    """Benchmark of one synthetic split (English captions), generating its images if needed."""
    if cfg.language_or("en") != "en":
        raise ValueError(f"synthetic captions are English; language {cfg.language!r} is not available")
    split = cfg.split_or("test")
    directory = synthetic_split_dir(cfg.synthetic, split, cfg.cache_dir)
    source = directory / MANIFEST
    entries = read_manifest(directory)["images"]
    images = [SourceImage(e["id"], e["file"], f"{source}:images[{k}]") for k, e in enumerate(entries)]
    captions = [SourceCaption(f"{e['id']}#{j}", text, e["id"], f"{source}:images[{k}].captions[{j}]")
                for k, e in enumerate(entries) for j, text in enumerate(e["captions"])]
    name = cfg.name or f"synthetic-seed{cfg.synthetic.seed}"
    opts = AssembleOptions(name, split, directory, "en", cfg.limit, cfg.verify_images, cfg.cache_dir)
    return assemble(images, captions, opts, BadInputLog(cfg.on_bad_input))
