"""Reranker backends, chosen by name from :data:`BACKENDS`; each loads a :class:`RerankerModel`.

``blip2_itm``: a ``transformers.Blip2ForImageTextRetrieval`` checkpoint + its processor, from a hub id or a
local directory. The vision tower becomes a vision provider (``blip2_vit`` unless the config names another)
and the Q-Former + heads a :class:`~stage2_rerank.qformer_scorer.QFormerItm`. Hub ids are looked up in the
local Hugging Face cache first (no network call when cached); with ``HF_HUB_OFFLINE=1`` a missing id fails
at once with a message naming it instead of hanging on network retries.

Checkpoint identity (part of every stage-2 cache key): the content identity of the checkpoint directory (a
local directory or the hub snapshot), see :mod:`stage2_rerank.content_identity`: sha256 of the weights,
``config.json`` and processor / tokenizer files, not their path or mtimes. Computed once per load; a directory
with a ``SHA256SUMS`` file is verified against it then (RerankerLoadError naming a missing or damaged file).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from transformers import AutoProcessor, Blip2ForImageTextRetrieval

from stage2_rerank.config import RerankerConfig, dtype_name, resolve_device, resolve_dtype
from stage2_rerank.content_identity import checkpoint_identity
from stage2_rerank.protocols import RerankerLoadError, VisionFeatureProvider
from stage2_rerank.qformer_scorer import QFormerItm
from stage2_rerank.vision_providers import ProviderSource, make_vision_provider

log = logging.getLogger(__name__)

@dataclass
class RerankerModel:
    """A loaded backend, ready to score (see ``rerank.Reranker``).

    Attributes:
        backend: backend name.
        checkpoint_identity: content identity of the exact checkpoint files (``sha256:<hex>``, see
            :func:`directory_identity`), or a caller's name for an in-memory model.
        vision: the vision feature provider.
        scorer: the Q-Former ITM/ITC scorer (on ``device``, in eval mode).
        tokenizer: the checkpoint's caption tokenizer (BERT, with [CLS]/[SEP]).
        device: where the scorer runs.
    """

    backend: str
    checkpoint_identity: str
    vision: VisionFeatureProvider
    scorer: QFormerItm
    tokenizer: Any
    device: torch.device

    @property
    def precision(self) -> str:
        """``qformer=<dtype>`` (the vision dtype is part of the provider identity)."""
        return f"qformer={dtype_name(self.scorer.dtype)}"


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
        raise RerankerLoadError(f"model {model!r} is a file; expected a checkpoint directory or a hub id")
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(model, "config.json")
    except HFValidationError as exc:
        raise RerankerLoadError(f"model {model!r}: no such directory, and not a valid hub id ({exc})") from exc
    if isinstance(cached, str):
        snapshot = Path(cached).parent
        return str(snapshot), True, directory_identity(snapshot)
    if _offline():
        raise RerankerLoadError(
            f"model {model!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1: download it on a "
            f"connected machine (huggingface-cli download {model}) or set the reranker's model to a local "
            f"checkpoint directory")
    log.warning("model %r not cached: downloading from the Hugging Face hub", model)
    return model, False, ""  # identified after the download (load_blip2_itm)


def build_blip2_itm(model: Blip2ForImageTextRetrieval, processor: Any, config: RerankerConfig,
                    checkpoint_identity: str, model_dir: Path | None = None) -> RerankerModel:
    """Wrap a loaded ``Blip2ForImageTextRetrieval`` + processor (parts are moved/cast in place).

    Vision provider: ``config.vision_provider``, else the one the checkpoint names in its config
    (``rrbench_vision_provider``, written by ``itm_model_spec``), else ``blip2_vit``. ``model_dir``: the local
    checkpoint directory, for providers that keep their own weights there (``conv_grid``)."""
    if not model.config.qformer_config.use_qformer_text_input:
        raise RerankerLoadError("this BLIP-2 checkpoint has no Q-Former text input "
                                "(qformer_config.use_qformer_text_input=False): it cannot score ITM")
    device = resolve_device(config)
    vision_dtype = resolve_dtype(config.vision_precision, device, "vision_precision")
    qformer_dtype = resolve_dtype(config.precision, device, "precision")
    source = ProviderSource(device=device, dtype=vision_dtype, checkpoint_identity=checkpoint_identity,
                            model=model, processor=processor, model_dir=model_dir)
    provider = config.vision_provider or getattr(model.config, "rrbench_vision_provider", None) or "blip2_vit"
    vision = make_vision_provider(provider, source)
    scorer = QFormerItm.from_retrieval_model(model).to(device=device, dtype=qformer_dtype).eval()
    if vision.feature_shape[1] != scorer.encoder_hidden_size:
        raise RerankerLoadError(f"vision features are {vision.feature_shape[1]}-d but the Q-Former "
                                f"cross-attends to {scorer.encoder_hidden_size}-d")
    return RerankerModel("blip2_itm", checkpoint_identity, vision, scorer, processor.tokenizer, device)


def load_blip2_itm(config: RerankerConfig) -> RerankerModel:
    """Load ``config.model`` as a ``Blip2ForImageTextRetrieval`` checkpoint with its processor."""
    source, local_only, identity = resolve_checkpoint(config.model)
    try:
        model, info = Blip2ForImageTextRetrieval.from_pretrained(
            source, dtype=torch.float32, local_files_only=local_only, output_loading_info=True)
        processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise RerankerLoadError(f"cannot load BLIP-2 ITM checkpoint {config.model!r}: {exc}") from exc
    missing = [k for k in info.get("missing_keys", ()) if not k.endswith("position_ids")]
    if missing:
        raise RerankerLoadError(f"{config.model!r} is not a Blip2ForImageTextRetrieval checkpoint: "
                                f"{len(missing)} weights missing, e.g. {missing[:3]}")
    if local_only is False:
        identity = resolve_checkpoint(config.model)[2]
    return build_blip2_itm(model.eval(), processor, config, identity, Path(source) if local_only else None)


BACKENDS: dict[str, Callable[[RerankerConfig], RerankerModel]] = {
    "blip2_itm": load_blip2_itm,
}


def load_backend(config: RerankerConfig) -> RerankerModel:
    """Load ``config.backend``; an unknown name raises ValueError listing the known ones."""
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown reranker backend {config.backend!r}; known: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[config.backend](config)
