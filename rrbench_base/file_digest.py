"""The SHA-256 of a file's bytes, read in blocks: what every cache key, checkpoint identity, run-file stamp and
training-state check of both stages hashes a file with."""

from __future__ import annotations

import hashlib
import os

BLOCK_BYTES = 4 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 (64 characters) of the bytes of ``path`` as they are on disk."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
