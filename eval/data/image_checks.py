"""Decode every image of a benchmark once at load time, so a bad file is reported before a run.

:func:`verify_images` decodes each file fully (``ImageItem.open``: content-sniffed format, truncation
detected) and returns ``{image id: reason}`` for the ones that fail. Files that decoded fine are
remembered in a small JSON file under ``cache_dir`` keyed by (absolute path, size, mtime_ns), so a
repeated load of thousands of images only ``stat``s them. The cache file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from eval.data.benchmark import ImageItem

log = logging.getLogger(__name__)

CACHE_VERSION = 1
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


class VerifiedImageCache:
    """``{absolute path: [size, mtime_ns]}`` of files that decoded fine, stored in one JSON file."""

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
        return key is not None and self.entries.get(str(path)) == key

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
                  desc: str = "verifying images") -> dict[str, str]:
    """Decode every image not already verified; return ``{image id: reason}`` for those that fail."""
    todo: list[tuple[ImageItem, list[int] | None]] = []
    for item in images:
        key = _stat_key(item.path)
        if cache is None or not cache.is_verified(item.path, key):
            todo.append((item, key))
    failures: dict[str, str] = {}
    if not todo:
        return failures
    threads = max(1, min(MAX_THREADS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = pool.map(lambda pair: _decode_error(pair[0]), todo)
        for (item, key), error in tqdm(zip(todo, results), total=len(todo), desc=desc,
                                       unit="img", disable=len(todo) < 200):
            if error is not None:
                failures[item.id] = error
            elif cache is not None and key is not None:
                cache.entries[str(item.path)] = key
    if cache is not None:
        cache.save()
    return failures
