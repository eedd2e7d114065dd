"""Decode every image of a benchmark once at load time, so a bad file is reported before a run.

:func:`verify_images` decodes each file fully (``ImageItem.open``: content-sniffed format, truncation
detected) and returns :class:`ImageChecks`: ``{image id: reason}`` for the ones that fail, and the pixel
count of those over PIL's decompression-bomb warning limit (``Image.MAX_IMAGE_PIXELS``: they load, but the
run's results name them). Files that decoded fine are remembered with their pixel count in a small JSON file
under ``cache_dir`` keyed by (absolute path, size, mtime_ns), so a repeated load of thousands of images only
``stat``s them. The cache file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image
from tqdm import tqdm

from eval.data.benchmark import ImageItem

log = logging.getLogger(__name__)

CACHE_VERSION = 2
MAX_THREADS = 4


def _stat_key(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _decode_error(item: ImageItem) -> str | None:
    """None when ``item`` decodes; otherwise the reason."""
    try:
        item.open()
    except Exception as exc:  # any decoder failure (incl. PIL's DecompressionBombError) is bad input
        return f"undecodable image: {exc}"
    return None


def _pixel_count(item: ImageItem) -> int:
    """Width x height from the file's header (0 when unreadable: the decode check reports that)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the DecompressionBombWarning is what we count, reported by the caller
            with Image.open(item.path) as img:
                return img.width * img.height
    except Exception:  # noqa: BLE001 - any failure is reported by _decode_error
        return 0


@dataclass
class ImageChecks:
    """What :func:`verify_images` found: ``failures`` ``{id: reason}``; ``oversized`` ``{id: pixel count}`` of
    images that decoded but exceed PIL's decompression-bomb warning limit."""

    failures: dict[str, str] = field(default_factory=dict)
    oversized: dict[str, int] = field(default_factory=dict)


class VerifiedImageCache:
    """``{absolute path: [size, mtime_ns, pixels]}`` of files that decoded fine, stored in one JSON file."""

    def __init__(self, cache_file: Path) -> None:
        self.cache_file = cache_file
        self.entries: dict[str, list[int]] = {}
        try:
            data = json.loads(cache_file.read_text(encoding="utf-8"))
            if data.get("version") == CACHE_VERSION:
                self.entries = dict(data["ok"])
        except (OSError, ValueError, KeyError, AttributeError):
            self.entries = {}

    @staticmethod
    def for_root(cache_dir: Path, root: Path) -> "VerifiedImageCache":
        """The cache file of one dataset root: ``<cache_dir>/verified_images/<hash of root>.json``."""
        digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
        return VerifiedImageCache(cache_dir / "verified_images" / f"{digest}.json")

    def is_verified(self, path: Path, key: list[int] | None) -> bool:
        entry = self.entries.get(str(path))
        return key is not None and isinstance(entry, list) and len(entry) == 3 and entry[:2] == key

    def pixels(self, path: Path) -> int:
        return self.entries[str(path)][2]

    def save(self) -> None:
        """Write atomically (temporary file + rename); a failure only costs a re-check next time."""
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_file.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": CACHE_VERSION, "ok": self.entries}, fh)
            os.replace(tmp, self.cache_file)
        except OSError as exc:
            log.warning("could not write image verification cache %s: %s", self.cache_file, exc)


def verify_images(images: Sequence[ImageItem], cache: VerifiedImageCache | None,
                  desc: str = "verifying images") -> ImageChecks:
    """Decode every image not already verified; report failures and oversized images (see :class:`ImageChecks`)."""
    todo: list[tuple[ImageItem, list[int] | None]] = []
    pixels: dict[str, int] = {}
    for item in images:
        key = _stat_key(item.path)
        if cache is None or not cache.is_verified(item.path, key):
            todo.append((item, key))
        else:
            pixels[item.id] = cache.pixels(item.path)
    checks = ImageChecks()
    if todo:
        threads = max(1, min(MAX_THREADS, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = pool.map(lambda pair: (_decode_error(pair[0]), _pixel_count(pair[0])), todo)
            for (item, key), (error, count) in tqdm(zip(todo, results), total=len(todo), desc=desc,
                                                    unit="img", disable=len(todo) < 200):
                if error is not None:
                    checks.failures[item.id] = error
                    continue
                pixels[item.id] = count
                if cache is not None and key is not None:
                    cache.entries[str(item.path)] = [*key, count]
        if cache is not None:
            cache.save()
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None:
        checks.oversized = {i: n for i, n in pixels.items() if n > limit}
    if checks.oversized:
        first = ", ".join(f"{i} ({n} pixels)" for i, n in list(checks.oversized.items())[:5])
        log.warning("%d image(s) over PIL's decompression-bomb limit of %d pixels, loaded anyway: %s",
                    len(checks.oversized), limit, first)
    return checks
