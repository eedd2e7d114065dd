"""From images and captions as read from a source to a validated :class:`Benchmark`.

Every file-based loader reads its source into :class:`SourceImage` / :class:`SourceCaption` lists and
calls :func:`assemble`, so all formats apply the same checks in the same order, each through the
``on_bad_input`` policy (``BadInputLog``):

1. images, in source order: a repeated image id (``duplicate image id``); then the first ``limit``
   images are kept (deterministic); then a path that, as written, leaves the dataset root (``path
   escapes dataset root``: ``..`` or an absolute path outside it; the root and links inside it may point
   anywhere), a missing file (``missing image file``), and, with ``verify``, a file that does not decode
   (``undecodable image``);
2. captions, in source order: an image id no source image has (``unknown image``), captions of images
   beyond ``limit`` (left out silently: not part of this slice), captions of an image skipped in step 1
   (``image skipped``), empty or whitespace-only text (``empty caption``), a repeated caption id
   (``duplicate caption id``);
3. images left with no caption (``no captions``): under ``skip`` such an image is dropped and recorded,
   so every image of a Benchmark is the answer to at least one text query.
Kept images that verification found over PIL's decompression-bomb warning limit are listed in
``Benchmark.notes`` (``large image: N pixels ...``); over twice that limit an image does not decode
(``undecodable image``, naming PIL's limit).
Skip reasons start with the category names above (``Benchmark.summary`` groups by them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from eval.data.bad_input import BadInputLog, DatasetRoot
from eval.data.benchmark import Benchmark, CaptionItem, ImageItem, ImageNote
from eval.data.image_checks import VerifiedImageCache, verify_images
from rrbench_base.config_paths import path_note


@dataclass(frozen=True)
class SourceImage:
    """An image as listed by a source: ``ref`` is its path relative to the dataset root as written."""

    id: str
    ref: str
    where: str


@dataclass(frozen=True)
class SourceCaption:
    """A caption as read from a source; ``where`` names the file and line/entry for messages."""

    id: str
    text: str
    image_id: str
    where: str


@dataclass(frozen=True)
class AssembleOptions:
    """How to turn source lists into a Benchmark (see the module doc for the checks)."""

    name: str
    split: str
    root: Path
    language: str
    limit: int | None
    verify: bool
    cache_dir: Path | None


class RootedPaths:
    """``resolve(ref)``: the real absolute path of ``ref`` under ``root``, or None if it escapes.

    Same answers as ``bad_input.resolve_under`` (containment checked on the path as written, then symlinks
    followed) but resolves each directory once, so thousands of images cost one ``lstat`` each.
    """

    def __init__(self, root: Path) -> None:
        self.root = DatasetRoot.of(root)
        self._real_dirs: dict[str, str] = {}

    def resolve(self, ref: str) -> Path | None:
        joined = self.root.contained(ref)
        if joined is None:
            return None
        parent, name = os.path.split(joined)
        if not name or os.path.islink(joined):
            return Path(os.path.realpath(joined))
        real_parent = self._real_dirs.get(parent)
        if real_parent is None:
            real_parent = self._real_dirs[parent] = os.path.realpath(parent)
        return Path(os.path.join(real_parent, name))


def _valid_images(images: Sequence[SourceImage], opts: AssembleOptions,
                  bad: BadInputLog) -> tuple[list[ImageItem], dict[str, str], set[str], dict[str, int]]:
    """Images kept; ``{id: reason}`` of images dropped; ids within the limit (kept or not); ``{id: pixels}`` of
    kept images over PIL's decompression-bomb warning limit (found by verification)."""
    skipped: dict[str, str] = {}
    oversized: dict[str, int] = {}
    seen: dict[str, SourceImage] = {}
    unique: list[SourceImage] = []
    for img in images:
        if img.id in seen:
            reason = f"duplicate image id: first listed at {seen[img.id].where}"
            bad.bad("image", img.id, img.where, reason)
            continue
        seen[img.id] = img
        unique.append(img)
    if opts.limit is not None:
        unique = unique[: opts.limit]
    in_slice = {img.id for img in unique}
    kept: list[ImageItem] = []
    paths = RootedPaths(opts.root)
    for img in unique:
        path = paths.resolve(img.ref) if img.ref.strip() else None
        if path is None:
            reason = f"path escapes dataset root: {img.ref!r} is not inside {opts.root}{path_note(opts.root)}"
            if not img.ref.strip():
                reason = "missing image file: empty image path"
        elif not path.is_file():
            reason = f"missing image file: {path}"
        else:
            kept.append(ImageItem(img.id, path))
            continue
        bad.bad("image", img.id, img.where, reason)
        skipped[img.id] = reason
    if opts.verify and kept:
        cache = VerifiedImageCache.for_root(opts.cache_dir, opts.root) if opts.cache_dir else None
        checks = verify_images(kept, cache, desc=f"verifying {opts.name}/{opts.split} images")
        failures = checks.failures
        oversized.update(checks.oversized)
        where = {img.id: img.where for img in unique}
        for item in kept:
            if item.id in failures:
                bad.bad("image", item.id, where[item.id], failures[item.id])
                skipped[item.id] = failures[item.id]
        kept = [item for item in kept if item.id not in failures]
    return kept, skipped, in_slice, oversized


def _valid_captions(captions: Sequence[SourceCaption], known: set[str], in_slice: set[str],
                    skipped_images: dict[str, str], opts: AssembleOptions,
                    bad: BadInputLog) -> list[CaptionItem]:
    kept: list[CaptionItem] = []
    first_seen: dict[str, str] = {}
    for cap in captions:
        if cap.image_id not in known:
            bad.bad("caption", cap.id, cap.where, f"unknown image: {cap.image_id!r} is not an image of this dataset")
            continue
        if cap.image_id not in in_slice:
            continue
        if cap.image_id in skipped_images:
            category = skipped_images[cap.image_id].split(":")[0]
            bad.bad("caption", cap.id, cap.where, f"image skipped: image {cap.image_id!r} ({category})")
            continue
        text = cap.text.strip()
        if not text:
            bad.bad("caption", cap.id, cap.where, "empty caption")
            continue
        if cap.id in first_seen:
            bad.bad("caption", cap.id, cap.where, f"duplicate caption id: first at {first_seen[cap.id]}")
            continue
        first_seen[cap.id] = cap.where
        kept.append(CaptionItem(cap.id, text, cap.image_id, opts.language))
    return kept


def assemble(images: Sequence[SourceImage], captions: Sequence[SourceCaption], opts: AssembleOptions,
             bad: BadInputLog) -> Benchmark:
    """Validated Benchmark from source lists, applying ``bad``'s policy (see the module doc)."""
    kept_images, skipped_images, in_slice, oversized = _valid_images(images, opts, bad)
    known = {img.id for img in images}
    kept_captions = _valid_captions(captions, known, in_slice, skipped_images, opts, bad)
    described = {c.image_id for c in kept_captions}
    where = {img.id: img.where for img in reversed(images)}  # first listing of each id
    final_images: list[ImageItem] = []
    for item in kept_images:
        if item.id in described:
            final_images.append(item)
        else:
            bad.bad("image", item.id, where[item.id], "no captions: no valid caption describes this image")
    bad.report()
    notes = [ImageNote(item.id, str(item.path), f"large image: {oversized[item.id]} pixels, over PIL's "
                       f"decompression-bomb limit of {Image.MAX_IMAGE_PIXELS}; loaded anyway")
             for item in final_images if item.id in oversized]
    return Benchmark(opts.name, opts.split, final_images, kept_captions, list(bad.records), notes)
