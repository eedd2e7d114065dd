"""The one dataset type of rrbench: :class:`Benchmark` (images, captions, ground truth, skips).

Contract used by every loader and by both stages:
- ``Benchmark.images``: list of :class:`ImageItem` (unique ``id``, absolute ``path``); ``item.open()``
  returns an RGB ``PIL.Image.Image`` whatever the file's extension or mode, or raises
  :class:`BadInputError` naming the file.
- ``Benchmark.captions``: list of :class:`CaptionItem` (unique ``id``, non-empty ``text``, ``image_id``
  of the one image it describes, ``language``).
- Ground truth: text-to-image = ``caption.image_id``; image-to-text = all captions of that image.
- ``Benchmark.skipped``: every item a loader dropped under ``on_bad_input="skip"``, with the reason.
- ``Benchmark.notes``: kept images worth a warning (over PIL's decompression-bomb pixel limit), found when
  images are verified at load; ``summary()`` (and so results.json) lists them.
Stages never import this module: they only rely on ``.id``, ``.open()`` and ``.fingerprint()``.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

OnBadInput = Literal["error", "skip"]


class BadInputError(ValueError):
    """Invalid user data; the message names the file, row or field."""


@dataclass(frozen=True)
class SkipRecord:
    """One item dropped under ``on_bad_input="skip"``: what, where from, and why."""

    kind: Literal["image", "caption"]
    item: str
    source: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "item": self.item, "source": self.source, "reason": self.reason}


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


@dataclass(frozen=True)
class ImageNote:
    """A kept image worth a warning in the run's results (e.g. over PIL's decompression-bomb pixel limit)."""

    item: str
    source: str
    note: str

    def as_dict(self) -> dict[str, str]:
        return {"item": self.item, "source": self.source, "note": self.note}


def to_8bit_grey(img: Image.Image) -> Image.Image:
    """An ``L`` image from a high-depth greyscale one (PIL's own ``convert`` clips these to white).

    ``I;16*`` (16-bit PNG/TIFF): ``value >> 8``. ``I`` (32-bit int): as is when all values fit 0..255,
    ``>> 8`` when they fit 0..65535 (16-bit data), else min-max scaled to 0..255. ``F`` (float): ``x * 255``
    when all values fit [0, 1], as is when they fit [0, 255], else min-max scaled. NaN counts as 0.
    """
    values = np.nan_to_num(np.asarray(img, dtype=np.float64 if img.mode == "F" else np.int64))
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if img.mode in SIXTEEN_BIT_MODES or (img.mode == "I" and low >= 0 and 255 < high <= 65535):
        values = values // 256
    elif img.mode == "F" and low >= 0 and high <= 1:
        values = values * 255.0
    elif low < 0 or high > 255:
        values = (values - low) * (255.0 / (high - low))
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def oversized_pixels(img: Image.Image) -> int | None:
    """Pixel count of ``img`` when over PIL's decompression-bomb warning limit (``Image.MAX_IMAGE_PIXELS``)."""
    pixels = img.width * img.height
    limit = Image.MAX_IMAGE_PIXELS
    return pixels if limit is not None and pixels > limit else None


def open_rgb(path: Path) -> Image.Image:
    """Decode ``path`` fully into an RGB image (format sniffed from content, not extension).

    Palette/greyscale/CMYK are converted; 16-bit and float greyscale are scaled to 8 bits (``to_8bit_grey``);
    RGBA/LA/transparent palettes are composited on white. GIFs give their first frame. Raises BadInputError
    naming the file when missing, undecodable, truncated, or over twice PIL's ``MAX_IMAGE_PIXELS`` (PIL's
    decompression-bomb error); an image over ``MAX_IMAGE_PIXELS`` itself loads, with a WARNING naming the file
    and its pixel count.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL palette-transparency warnings; bombs are checked below
            with Image.open(path) as img:
                pixels = oversized_pixels(img)
                if pixels is not None:
                    log.warning("%s: %d pixels, over PIL's decompression-bomb limit of %d pixels; loading it anyway",
                                path, pixels, Image.MAX_IMAGE_PIXELS)
                img.seek(0)
                img.load()  # raises on truncated files (unless the caller set LOAD_TRUNCATED_IMAGES)
                has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
                if has_alpha:
                    rgba = img.convert("RGBA")
                    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    canvas.alpha_composite(rgba)
                    return canvas.convert("RGB")
                if img.mode in (*SIXTEEN_BIT_MODES, "I", "F"):
                    return to_8bit_grey(img).convert("RGB")
                return img.convert("RGB")
    except FileNotFoundError as exc:
        raise BadInputError(f"image file not found: {path}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadInputError(f"cannot decode image {path}: {exc}") from exc


@dataclass(frozen=True)
class ImageItem:
    """An image of a benchmark: ``id`` (unique) and absolute ``path``."""

    id: str
    path: Path

    def open(self) -> Image.Image:
        """RGB PIL image; BadInputError naming the file if it cannot be decoded."""
        return open_rgb(self.path)

    def fingerprint(self) -> str:
        """Content hash (sha1 of the file bytes, 16 hex chars): cache key for features and scores."""
        try:
            return hashlib.sha1(self.path.read_bytes()).hexdigest()[:16]
        except FileNotFoundError as exc:
            raise BadInputError(f"image file not found: {self.path}") from exc


@dataclass(frozen=True)
class CaptionItem:
    """A caption: ``id`` (unique), ``text`` (non-empty), ``image_id`` it describes, ``language``."""

    id: str
    text: str
    image_id: str
    language: str = "en"


@dataclass
class Benchmark:
    """Images + captions of one split, the ground truth between them, what was skipped, and notes.

    Ground truth: caption ``c`` is relevant to exactly one image ``c.image_id``; image ``i`` has
    as relevant every caption whose ``image_id`` is ``i.id`` (5 for Flickr/COCO).
    """

    name: str
    split: str
    images: list[ImageItem]
    captions: list[CaptionItem]
    skipped: list[SkipRecord] = field(default_factory=list)
    notes: list[ImageNote] = field(default_factory=list)

    def __post_init__(self) -> None:
        dup_img = [k for k, n in Counter(i.id for i in self.images).items() if n > 1]
        if dup_img:
            raise BadInputError(f"{self.name}: duplicate image id {dup_img[0]!r}")
        dup_cap = [k for k, n in Counter(c.id for c in self.captions).items() if n > 1]
        if dup_cap:
            raise BadInputError(f"{self.name}: duplicate caption id {dup_cap[0]!r}")
        index = self.image_index
        unknown = [c for c in self.captions if c.image_id not in index]
        if unknown:
            raise BadInputError(
                f"{self.name}: caption {unknown[0].id!r} points at unknown image {unknown[0].image_id!r}"
            )

    @property
    def image_index(self) -> dict[str, int]:
        """image id -> position in ``images``."""
        return {img.id: i for i, img in enumerate(self.images)}

    @property
    def caption_index(self) -> dict[str, int]:
        """caption id -> position in ``captions``."""
        return {cap.id: i for i, cap in enumerate(self.captions)}

    def text_to_image(self) -> np.ndarray:
        """int64 ``[num_captions]``: position of each caption's image in ``images``."""
        index = self.image_index
        return np.array([index[c.image_id] for c in self.captions], dtype=np.int64)

    def image_to_texts(self) -> list[np.ndarray]:
        """Per image (in ``images`` order) the int64 positions of its captions (may be empty)."""
        buckets: list[list[int]] = [[] for _ in self.images]
        for pos, img_pos in enumerate(self.text_to_image()):
            buckets[img_pos].append(pos)
        return [np.array(b, dtype=np.int64) for b in buckets]

    def drop_images_without_captions(self) -> "Benchmark":
        """Copy without images that no caption describes (they cannot be image-to-text queries)."""
        used = {c.image_id for c in self.captions}
        return Benchmark(self.name, self.split, [i for i in self.images if i.id in used],
                         list(self.captions), list(self.skipped), [n for n in self.notes if n.item in used])

    def summary(self) -> dict[str, object]:
        """Counts for logs and results.json."""
        reasons = Counter(s.reason.split(":")[0] for s in self.skipped)
        return {
            "name": self.name,
            "split": self.split,
            "images": len(self.images),
            "captions": len(self.captions),
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(reasons),
            "notes": [n.as_dict() for n in self.notes],
        }
