"""Content identities for stage-2 cache keys: sha256 of file bytes, of checkpoint directories, of JSON values.

A checkpoint directory's identity is ``sha256:<hex>`` over the names and sha256 digests of the files that can
change a score (weights, ``config.json``, processor / tokenizer files, a vision module's own files): every
top-level regular file except :data:`NOT_SCORED` (provenance, training state, docs). Its path and mtimes are
not part of it: a copy keeps the identity, a rewrite with other bytes changes it whatever its mtime.

A directory holding ``SHA256SUMS`` (``sha256sum`` output, ``<64 hex>  <name>`` or ``<64 hex> *<name>`` lines)
is verified against it by :func:`checkpoint_identity`: a listed file that is missing or whose bytes differ
raises :class:`~stage2_rerank.protocols.RerankerLoadError` naming it. Files are read once per call in 4 MiB
blocks (each file hashed once even when it is both listed and part of the identity).
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from rrbench_base.file_digest import file_sha256
from stage2_rerank.protocols import RerankerLoadError

SUMS_FILE = "SHA256SUMS"
# files of a checkpoint directory that never change a score (provenance, resumable training state, docs)
NOT_SCORED = frozenset({SUMS_FILE, "rrbench_itm.json", "training_state.safetensors", "training_state.json",
                        "README.md", ".gitattributes"})
_SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def json_sha256(value: Any) -> str:
    """Hex sha256 of ``value`` as canonical JSON (sorted keys; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def processor_digest(image_processor: Any) -> str:
    """16 hex of the sha256 of an image processor's settings (``to_dict()``; ``repr`` when it has none)."""
    to_dict = getattr(image_processor, "to_dict", None)
    return json_sha256(to_dict() if callable(to_dict) else repr(image_processor))[:16]


def library_versions() -> str:
    """``torch=<v>|transformers=<v>``: the library code that computes features and scores."""
    parts = []
    for name in ("torch", "transformers"):
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}=absent")
    return "|".join(parts)


def read_sha256sums(path: Path) -> dict[str, str]:
    """``name -> hex digest`` of a ``sha256sum`` output file; RerankerLoadError naming a malformed line."""
    sums: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _SUMS_LINE.match(line.rstrip("\r"))
        if match is None:
            raise RerankerLoadError(f"{path}:{number}: not a sha256sum line: {line[:80]!r}")
        name = match.group(2)
        sums[name[2:] if name.startswith("./") else name] = match.group(1).lower()
    return sums


def scored_files(directory: Path) -> list[Path]:
    """The files of a checkpoint directory that are part of its identity (sorted by name)."""
    return sorted(p for p in Path(directory).iterdir()
                  if p.is_file() and p.name not in NOT_SCORED and not p.name.startswith("."))


def checkpoint_identity(directory: Path) -> str:
    """``sha256:<hex>`` content identity of a checkpoint directory, verified against its ``SHA256SUMS``.

    Raises RerankerLoadError when a file listed in ``SHA256SUMS`` is missing or has other bytes, or when the
    directory holds no file to identify it by."""
    directory = Path(directory)
    digests: dict[str, str] = {}
    sums_path = directory / SUMS_FILE
    if sums_path.is_file():
        for name, expected in read_sha256sums(sums_path).items():
            path = directory / name
            if not path.is_file():
                raise RerankerLoadError(f"checkpoint {directory}: {name} is listed in {SUMS_FILE} but missing")
            actual = digests.setdefault(name, file_sha256(path))
            if actual != expected:
                raise RerankerLoadError(f"checkpoint {directory}: {name} does not match {SUMS_FILE} "
                                        f"(sha256 {actual}, expected {expected}): the file is damaged or replaced")
    files = scored_files(directory)
    if not files:
        raise RerankerLoadError(f"checkpoint {directory} holds no files")
    combined = hashlib.sha256()
    for path in files:
        digest = digests.get(path.name) or file_sha256(path)
        combined.update(f"{path.name}\x00{digest}\n".encode())
    return f"sha256:{combined.hexdigest()}"
