"""Integrity of cached arrays: content checksums, and moving damaged cache files aside.

Contracts:
- :func:`arrays_sha256` hashes the dtype, shape and bytes of each array in order (length-prefixed), so a
  flipped byte, a reshaped or a retyped array all change it.
- :func:`quarantine` renames a damaged cache file to ``<name>.corrupt-<UTC time>`` next to it
  (``rrbench_base.cache_files.move_aside``; it never deletes anything), logs one WARNING naming the file and what is wrong, and returns the new path. The caller then
  recomputes; nothing read from the damaged file is used.
- :class:`CorruptCacheError` is what cache readers raise for a file that cannot be trusted; it names the file.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from rrbench_base.cache_files import move_aside
from stage1_dual.protocols import Stage1Error

READ_ERRORS: tuple[type[BaseException], ...] = (ValueError, EOFError, OSError, KeyError, TypeError, IndexError)
"""What reading a damaged ``.npz`` / ``.npy`` / ``.safetensors`` / JSON file raises (BadZipFile, zlib.error and
JSONDecodeError are among these subclasses or handled by the callers)."""


class CorruptCacheError(Stage1Error):
    """A cache file (``path``) that is unreadable or whose content does not match its stored checksum; the
    message names it."""

    def __init__(self, message: str, path: Optional[Path] = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


def arrays_sha256(arrays: Iterable[Union[np.ndarray, bytes, str]]) -> str:
    """sha256 hex over ``arrays`` in order: each array's dtype, shape and C-order bytes; bytes / str as is."""
    digest = hashlib.sha256()
    for value in arrays:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, bytes):
            header, data = b"bytes", value
        else:
            array = np.ascontiguousarray(value)
            header, data = f"{array.dtype.str}{tuple(array.shape)}".encode(), array.tobytes()
        for part in (header, data):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()


def quarantine(path: Path, problem: str, logger: logging.Logger) -> Path:
    """Move the damaged ``path`` aside to ``<name>.corrupt-<UTC time>`` and log a WARNING: ``problem`` (a
    message naming the file and what is wrong with it), where it went, that it is recomputed. The new path."""
    target = move_aside(path)
    logger.warning("%s; moved it aside to %s and recomputing", problem, target)
    return target
