"""Damaged cache files are set aside, never deleted: :func:`move_aside` renames them next to where they were.

The caches of both stages (embedding shards, training feature caches, vision features, pair scores) use it, so
a damaged file is always found as ``<name>.corrupt-<UTC time>`` beside the place it was read from.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def move_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.corrupt-<UTC time>`` (``-<n>`` appended if taken); returns the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    return target
