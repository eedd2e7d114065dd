"""``blip2_itm`` backend: a ``transformers.Blip2ForImageTextRetrieval`` checkpoint + its processor.

From a hub id or a local directory (see :mod:`stage2_rerank.backends.checkpoint`). The vision tower becomes a
vision provider (``blip2_vit`` unless the config or the checkpoint names another) and the Q-Former + heads a
:class:`~stage2_rerank.qformer_scorer.QFormerItm`. The checkpoint identity is computed once per load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoProcessor, Blip2ForImageTextRetrieval

from stage2_rerank.backends.base import RERANKER_PROVIDER_KEY, RerankerModel
from stage2_rerank.backends.checkpoint import resolve_checkpoint
from stage2_rerank.config import RerankerConfig, resolve_device, resolve_dtype
from stage2_rerank.protocols import RerankerLoadError
from stage2_rerank.qformer_scorer import QFormerItm
from stage2_rerank.vision import ProviderSource, make_vision_provider


def build_blip2_itm(model: Blip2ForImageTextRetrieval, processor: Any, config: RerankerConfig,
                    checkpoint_identity: str, model_dir: Path | None = None) -> RerankerModel:
    """Wrap a loaded ``Blip2ForImageTextRetrieval`` + processor (parts are moved/cast in place).

    Vision provider: ``config.vision_provider``, else the one the checkpoint names in its config
    (``RERANKER_PROVIDER_KEY``, written by ``training.model_spec``), else ``blip2_vit``. ``model_dir``: the local
    checkpoint directory, for providers that keep their own weights there (``conv_grid``)."""
    if not model.config.qformer_config.use_qformer_text_input:
        raise RerankerLoadError("this BLIP-2 checkpoint has no Q-Former text input "
                                "(qformer_config.use_qformer_text_input=False): it cannot score ITM")
    device = resolve_device(config)
    vision_dtype = resolve_dtype(config.vision_precision, device, "vision_precision")
    qformer_dtype = resolve_dtype(config.precision, device, "precision")
    source = ProviderSource(device=device, dtype=vision_dtype, checkpoint_identity=checkpoint_identity,
                            model=model, processor=processor, model_dir=model_dir,
                            image_preprocessing=config.image_preprocessing)
    provider = config.vision_provider or getattr(model.config, RERANKER_PROVIDER_KEY, None) or "blip2_vit"
    if config.image_preprocessing == "blip_image_eval" and provider != "blip2_vit":
        raise RerankerLoadError(f"image_preprocessing: blip_image_eval needs the blip2_vit vision provider, "
                                f"this checkpoint uses {provider!r}")
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
