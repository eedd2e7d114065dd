"""Finding model files locally, in the Hugging Face cache, or on the hub - failing fast offline.

Without network, ``huggingface_hub`` retries for ~25 s before giving up, even for cached files.
Here the cache is looked at first; the hub is contacted only when the file is not cached,
``HF_HUB_OFFLINE`` is not set, and a short TCP probe reaches the endpoint. Otherwise a
:class:`ModelNotFoundError` says what was looked for and how to provide it.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import urlparse

import huggingface_hub
from huggingface_hub import constants as hub_constants

from rrbench_base.file_digest import file_sha256
from stage1_dual.protocols import ModelNotFoundError

log = logging.getLogger(__name__)

_TRUE_VALUES = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE_VALUES
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")) or bool(hub_constants.HF_HUB_OFFLINE)


def hub_reachable(timeout_s: float) -> bool:
    """Whether a TCP connection to the hub endpoint opens within ``timeout_s`` seconds."""
    url = urlparse(hub_constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def how_to_provide(what: str, looked_for: Sequence[str], why: str) -> str:
    """The message of a missing model: what, where it was looked for, why the hub was not used, how to fix."""
    return (
        f"{what} not found. Looked for: {'; '.join(looked_for)}. {why}. "
        f"Provide it as a local path (a checkpoint file, or a directory written by save_pretrained), "
        f"or put it in the Hugging Face cache ({hub_constants.HF_HUB_CACHE}; set HF_HOME or HF_HUB_CACHE "
        f"to use another one, e.g. a copy made with `huggingface-cli download` on a machine with network), "
        f"or run with network access and HF_HUB_OFFLINE unset "
        f"(currently HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '<unset>')})."
    )


def _why_hub_unusable(probe_timeout_s: float) -> Optional[str]:
    if hub_offline():
        return "HF_HUB_OFFLINE is set, so the hub was not contacted"
    if not hub_reachable(probe_timeout_s):
        return f"The hub ({hub_constants.ENDPOINT}) did not answer within {probe_timeout_s:g} s"
    return None


def cached_hub_file(repo_id: str, filename: str, revision: Optional[str],
                    cache_dir: Optional[Path]) -> Optional[Path]:
    """Path of ``filename`` of ``repo_id`` in the local HF cache, or None."""
    found = huggingface_hub.try_to_load_from_cache(
        repo_id, filename, cache_dir=str(cache_dir) if cache_dir else None, revision=revision)
    return Path(found) if isinstance(found, str) else None


def resolve_hub_file(repo_id: str, filenames: Sequence[str], *, revision: Optional[str],
                     cache_dir: Optional[Path], probe_timeout_s: float, what: str) -> Path:
    """Local path of the first of ``filenames`` found in the cache, else downloaded; fail fast offline."""
    for filename in filenames:
        path = cached_hub_file(repo_id, filename, revision, cache_dir)
        if path is not None:
            return path
    looked_for = [f"{repo_id}/{f}@{revision or 'main'} in the HF cache" for f in filenames]
    why = _why_hub_unusable(probe_timeout_s)
    if why:
        raise ModelNotFoundError(how_to_provide(what, looked_for, why))
    errors = []
    for filename in filenames:
        try:
            return Path(huggingface_hub.hf_hub_download(
                repo_id, filename, revision=revision, cache_dir=str(cache_dir) if cache_dir else None))
        except Exception as exc:  # noqa: BLE001 - try the next alternative, report all
            errors.append(f"{filename}: {type(exc).__name__}: {exc}")
    raise ModelNotFoundError(how_to_provide(what, looked_for, "Download failed (" + " | ".join(errors) + ")"))


def resolve_hub_snapshot(repo_id: str, *, revision: Optional[str], cache_dir: Optional[Path],
                         probe_timeout_s: float, what: str) -> Path:
    """Local snapshot directory of a hub repo (cached, else downloaded); fail fast offline."""
    config = cached_hub_file(repo_id, "config.json", revision, cache_dir)
    if config is not None:
        return config.parent
    why = _why_hub_unusable(probe_timeout_s)
    if why:
        raise ModelNotFoundError(how_to_provide(
            what, [f"local directory {repo_id!r}", f"{repo_id}@{revision or 'main'} in the HF cache"], why))
    try:
        return Path(huggingface_hub.snapshot_download(
            repo_id, revision=revision, cache_dir=str(cache_dir) if cache_dir else None))
    except Exception as exc:  # noqa: BLE001 - turned into one clear error
        raise ModelNotFoundError(how_to_provide(
            what, [f"{repo_id}@{revision or 'main'} on {hub_constants.ENDPOINT}"],
            f"Download failed ({type(exc).__name__}: {exc})")) from exc


def _hub_location(path: Path) -> str:
    """``hf:<repo>@<commit>/<file>`` for a file inside an HF cache snapshot, else ''."""
    parts = Path(path).parts
    if "snapshots" in parts:
        at = len(parts) - 1 - parts[::-1].index("snapshots")
        repo_folder = parts[at - 1] if at >= 1 else ""
        if repo_folder.startswith("models--") and at + 2 < len(parts):
            repo = repo_folder[len("models--"):].replace("--", "/")
            return f"hf:{repo}@{parts[at + 1]}/{'/'.join(parts[at + 2:])}"
    return ""


def file_identity(path: Path) -> str:
    """Identity of a weights / config / tokenizer file: ``sha256:<64 hex>`` of its bytes, wherever it lives;
    inside an HF cache snapshot prefixed by its provenance ``hf:<repo>@<commit>/<file>#`` (the bytes are
    hashed there too: a name or commit is never taken for content)."""
    location = _hub_location(path)
    return f"{location}#" * bool(location) + f"sha256:{file_sha256(path)}"


def directory_identity(directory: Path, patterns: Sequence[str]) -> str:
    """Identity of a local model directory: ``name=file_identity`` of each file matching ``patterns`` (sorted)."""
    files = sorted({p for pattern in patterns for p in Path(directory).glob(pattern) if p.is_file()})
    if not files:
        raise ModelNotFoundError(f"no weights file ({', '.join(patterns)}) in model directory {directory}")
    return ",".join(f"{p.name}={file_identity(p)}" for p in files)
