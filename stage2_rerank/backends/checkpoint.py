"""Where a reranker checkpoint is and what it is: a local directory or a hub id -> files + content identity.

Hub ids are looked up in the local Hugging Face cache first (no network call when cached); with
``HF_HUB_OFFLINE=1`` a missing id fails at once with a message naming it instead of hanging on network retries.
Checkpoint identity (part of every stage-2 cache key): see :mod:`stage2_rerank.content_identity` (sha256 of the
weights, ``config.json`` and processor / tokenizer files, not their path or mtimes); a directory with a
``SHA256SUMS`` file is verified against it (RerankerLoadError naming a missing or damaged file).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rrbench_base.config_paths import path_note
from stage2_rerank.content_identity import checkpoint_identity
from stage2_rerank.protocols import RerankerLoadError

log = logging.getLogger(__name__)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def directory_identity(directory: Path) -> str:
    """Content identity of a checkpoint directory (``sha256:<hex>`` of its weights, config and processor
    files; not its path), verified against its ``SHA256SUMS`` when it has one (RerankerLoadError otherwise)."""
    return checkpoint_identity(Path(directory))


def resolve_checkpoint(model: str) -> tuple[str, bool, str]:
    """``model`` (local dir or hub id) -> (what to load, local_files_only, checkpoint identity).

    Raises RerankerLoadError when a path does not exist, or when a hub id is not cached and the hub is
    offline (``HF_HUB_OFFLINE=1``).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), True, directory_identity(path)
    if path.exists():
        raise RerankerLoadError(f"model {model!r} is a file; expected a checkpoint directory or a hub id"
                               f"{path_note(path)}")
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except HFValidationError as exc:
        raise RerankerLoadError(f"model {model!r}: no such directory{path_note(path)}, and not a valid hub id "
                               f"({exc})") from exc
    if isinstance(cached, str):
        snapshot = Path(cached).parent
        return str(snapshot), True, directory_identity(snapshot)
    if _offline():
        raise RerankerLoadError(
            f"model {model!r} is not a local directory{path_note(path)}, nor in the local Hugging Face cache "
            f"with HF_HUB_OFFLINE=1: download it on a connected machine (huggingface-cli download {model}) or set "
            f"the reranker's model to a local checkpoint directory")
    log.warning("model %r not cached: downloading from the Hugging Face hub", model)
    return model, False, ""  # identified after the download (load_blip2_itm)
