"""Content identity of weight files and directories (sha256 of bytes), for cache keys and checkpoint checks,
and ``SHA256SUMS`` files (standard ``sha256sum`` output) parsed for checkpoint verification.

Kept here rather than imported from ``stage1_dual.encoders`` so that the trainable package does not
import the encoder backends (which import it).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Sequence

from rrbench_base.config_paths import path_note
from rrbench_base.file_digest import file_sha256 as sha256_hex

CHECKSUMS_FILE = "SHA256SUMS"
_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def file_sha256(path: Path) -> str:
    """``sha256:<16 hex>`` of the bytes of ``path``."""
    return f"sha256:{sha256_hex(path)[:16]}"


def parse_sha256sums(path: Path) -> list[tuple[str, str]]:
    """``(hex digest, relative file name)`` of each line of a ``sha256sum`` output file (``<64 hex>  <name>``
    or ``<64 hex> *<name>``; blank lines skipped). ValueError naming the file and line for a malformed line or
    a name that leaves the directory (absolute, ``..``)."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _SUM_LINE.match(line)
        name = PurePosixPath(match.group(2).replace("\\", "/")) if match else None
        if name is None or name.is_absolute() or ".." in name.parts:
            raise ValueError(f"{path}, line {number}: expected '<64 hex digits>  <relative file name>', got {line!r}")
        entries.append((match.group(1).lower(), str(name)))
    return entries


def directory_sha256(directory: Path, patterns: Sequence[str]) -> str:
    """``name=sha256:...`` of each file in ``directory`` matching ``patterns``, comma-joined (sorted)."""
    files = sorted({p for pattern in patterns for p in Path(directory).glob(pattern) if p.is_file()})
    if not files:
        raise FileNotFoundError(f"no weights file ({', '.join(patterns)}) in model directory {directory}"
                                f"{path_note(directory)}")
    return ",".join(f"{p.name}={file_sha256(p)}" for p in files)
