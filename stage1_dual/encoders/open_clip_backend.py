"""open_clip dual encoder: any architecture + pretrained tag, ``hf-hub:`` repo, local checkpoint file
or ``local-dir:``; open_clip's own inference preprocessing and tokenizer.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Sequence

import open_clip
import torch
from open_clip.tokenizer import HFTokenizer
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from rrbench_base.global_rng import seeded_torch_rng
from stage1_dual.config import EncoderConfig
from stage1_dual.encoders.base import (EncoderParts, TorchDualEncoder, resolve_device, resolve_precision,
                                       state_dict_digest)
from stage1_dual.encoders.open_clip_source import OpenClipSource, resolve_open_clip_source
from stage1_dual.tokenizer_identity import tokenizer_identity

log = logging.getLogger(__name__)


def _pair(size: Any) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


class OpenClipEncoder(TorchDualEncoder):
    """An open_clip ``CLIP`` / ``CustomTextCLIP`` model behind the DualEncoder interface."""

    backend = "open_clip"

    def __init__(self, model: torch.nn.Module, tokenizer: Callable[..., torch.Tensor], device: torch.device,
                 precision: str, identity: dict[str, Any], embed_dim: int) -> None:
        self._preprocess_cfg = dict(model.visual.preprocess_cfg)
        super().__init__(model, device, precision, identity, embed_dim,
                         image_size=_pair(self._preprocess_cfg["size"]),
                         image_mean=self._preprocess_cfg["mean"], image_std=self._preprocess_cfg["std"])
        self._tokenizer = tokenizer
        self._transform = image_transform_v2(PreprocessCfg(**self._preprocess_cfg), is_train=False)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def text_features(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.encode_text(tokens["input_ids"])

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return {"input_ids": self._tokenizer(list(texts))}

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return self._transform

    def preprocess_description(self) -> str:
        return json.dumps({"open_clip": open_clip.__version__, **self._preprocess_cfg}, sort_keys=True, default=str)

    def parts(self) -> EncoderParts:
        model = self.model
        text_tower = getattr(model, "text", None) or model.transformer
        text_projection = getattr(model, "text_projection", None)
        if text_projection is None and hasattr(model, "text"):
            text_projection = getattr(model.text, "text_projection", None) or getattr(model.text, "proj", None)
        return EncoderParts(model=model, image_tower=model.visual, text_tower=text_tower,
                            image_projection=getattr(model.visual, "proj", None), text_projection=text_projection)


def _tokenizer(source: OpenClipSource) -> Callable[..., torch.Tensor]:
    text_cfg = source.model_cfg.get("text_cfg", {})
    if source.tokenizer_dir is None:
        return open_clip.get_tokenizer(source.tokenizer_name)
    return HFTokenizer(str(source.tokenizer_dir), context_length=text_cfg.get("context_length", 77),
                       tokenizer_mode=text_cfg.get("tokenizer_mode"), **text_cfg.get("tokenizer_kwargs", {}))


def load_open_clip(cfg: EncoderConfig) -> OpenClipEncoder:
    """Build the open_clip encoder described by ``cfg`` (see ``open_clip_source`` for the sources)."""
    source = resolve_open_clip_source(cfg)
    device = resolve_device(cfg.device)
    with seeded_torch_rng(cfg.seed):  # random-init weights; the caller's global RNG state is left unchanged
        model = open_clip.create_model(
            source.create_name,
            pretrained=str(source.checkpoint) if source.checkpoint else None,
            force_quick_gelu=source.force_quick_gelu,
            force_preprocess_cfg=source.force_preprocess or None,
            pretrained_text=False,
            **source.model_kwargs,
        )
    tokenizer = _tokenizer(source)
    identity = {**source.identity, "open_clip": open_clip.__version__,  # its tokenizer and transforms
                "quick_gelu": source.force_quick_gelu, "tokenizer": tokenizer_identity(tokenizer)}
    if identity.get("weights", "").startswith("random-init"):
        identity["weights"] += f":{state_dict_digest(model)}"
    log.info("loaded open_clip %s (%s) on %s", cfg.model, identity.get("weights"), device)
    return OpenClipEncoder(model, tokenizer, device, resolve_precision(cfg.precision, device),
                           identity, embed_dim=int(source.model_cfg["embed_dim"]))
