"""Content identity of weight files and directories (sha256 of bytes), for cache keys and checkpoint checks.

Kept here rather than imported from ``stage1_dual.encoders`` so that the trainable package does not
import the encoder backends (which import it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence


def file_sha256(path: Path) -> str:
    """``sha256:<16 hex>`` of the bytes of ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"


def directory_sha256(directory: Path, patterns: Sequence[str]) -> str:
    """``name=sha256:...`` of each file in ``directory`` matching ``patterns``, comma-joined (sorted)."""
    files = sorted({p for pattern in patterns for p in Path(directory).glob(pattern) if p.is_file()})
    if not files:
        raise FileNotFoundError(f"no weights file ({', '.join(patterns)}) in model directory {directory}")
    return ",".join(f"{p.name}={file_sha256(p)}" for p in files)
