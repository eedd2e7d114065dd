"""Hugging Face dual encoders: ``CLIPModel`` and ``ChineseCLIPModel`` from a hub id or a local directory.

The model class is chosen from the checkpoint's ``config.json`` ``model_type`` through a plain dict;
the tokenizer and image processor are the ones saved with the model (``AutoTokenizer`` /
``AutoImageProcessor``). Hub ids are resolved to a local snapshot first (HF cache, else download),
so loading never hangs offline. The identity (cache key) holds the content hash of every weights, config and
tokenizer file, the tokenizer's own identity and the text length used, and (through the fingerprint) the
parameter dtype (transformers may load a checkpoint in its stored dtype).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image
from transformers import (AutoConfig, AutoImageProcessor, AutoTokenizer, ChineseCLIPModel, CLIPModel,
                          PreTrainedModel)

from rrbench_base.config_paths import path_note
from stage1_dual.config import EncoderConfig
from stage1_dual.encoders.base import EncoderParts, TorchDualEncoder, resolve_device, resolve_precision
from stage1_dual.encoders.hub import directory_identity, resolve_hub_snapshot
from stage1_dual.tokenizer_identity import tokenizer_identity
from stage1_dual.protocols import ModelNotFoundError, UnknownBackendError

log = logging.getLogger(__name__)

HF_MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "clip": CLIPModel,
    "chinese_clip": ChineseCLIPModel,
}
"""``config.model_type`` -> model class."""

_TEXT_INPUTS: dict[str, tuple[str, ...]] = {
    "clip": ("input_ids", "attention_mask"),
    "chinese_clip": ("input_ids", "attention_mask", "token_type_ids"),
}
_MODEL_FILES = ("*.safetensors", "*.bin", "*.json", "*.txt", "*.model")  # weights, configs, tokenizer
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$|^[\w.-]+$")


def _pooled(output: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor (transformers 4) or an output whose pooler_output is projected (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class HFImageTransform:
    """PIL -> ``[3, H, W]`` through a Hugging Face image processor (picklable for DataLoader workers)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]


class HFClipEncoder(TorchDualEncoder):
    """A transformers CLIP-family model behind the DualEncoder interface."""

    backend = "hf_clip"

    def __init__(self, model: PreTrainedModel, tokenizer: Any, processor: Any, device: torch.device,
                 precision: str, identity: dict[str, Any]) -> None:
        config = model.config
        size = config.vision_config.image_size
        super().__init__(model, device, precision, identity, embed_dim=config.projection_dim,
                         image_size=(size, size), image_mean=processor.image_mean, image_std=processor.image_std)
        self._tokenizer = tokenizer
        self._processor = processor
        self._text_inputs = _TEXT_INPUTS[config.model_type]
        self._max_length = min(int(tokenizer.model_max_length), int(config.text_config.max_position_embeddings))
        self.identity["text_max_length"] = self._max_length

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return _pooled(self.model.get_image_features(pixel_values=pixels))

    def text_features(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return _pooled(self.model.get_text_features(**tokens))

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self._tokenizer(list(texts), padding=True, truncation=True, max_length=self._max_length,
                                  return_tensors="pt")
        return {key: encoded[key] for key in self._text_inputs if key in encoded}

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return HFImageTransform(self._processor)

    def preprocess_description(self) -> str:
        return json.dumps({"processor": type(self._processor).__name__, **self._processor.to_dict()},
                          sort_keys=True, default=str)

    def parts(self) -> EncoderParts:
        model = self.model
        return EncoderParts(model=model, image_tower=model.vision_model, text_tower=model.text_model,
                            image_projection=model.visual_projection, text_projection=model.text_projection)


def _model_directory(cfg: EncoderConfig) -> tuple[Path, dict[str, Any]]:
    """Local directory of the checkpoint and its identity: content hashes of its weights, config and
    tokenizer files (a local directory, wherever it lives), or hub id + commit of each file."""
    path = Path(cfg.model).expanduser()
    if path.is_dir():
        return path, {"model": "local directory", "files": directory_identity(path, _MODEL_FILES)}
    if path.is_absolute() or cfg.model.startswith(".") or not _HUB_ID.match(cfg.model):
        raise ModelNotFoundError(f"hf_clip model directory not found: {cfg.model} (a local directory written "
                                 f"by save_pretrained, or a hub id such as openai/clip-vit-base-patch32)"
                                 f"{path_note(path)}")
    directory = resolve_hub_snapshot(cfg.model, revision=cfg.revision, cache_dir=cfg.hub_cache_dir,
                                     probe_timeout_s=cfg.hub_probe_timeout_s, what=f"hf_clip model {cfg.model!r}")
    return directory, {"model": cfg.model, "revision": cfg.revision,
                       "files": directory_identity(directory, _MODEL_FILES)}


def load_hf_clip(cfg: EncoderConfig) -> HFClipEncoder:
    """Load a CLIPModel / ChineseCLIPModel with its tokenizer and image processor (see module docstring)."""
    if cfg.pretrained:
        raise ValueError("encoder.pretrained is not used by hf_clip: put the hub id or directory in encoder.model")
    directory, identity = _model_directory(cfg)
    model_type = AutoConfig.from_pretrained(directory).model_type
    if model_type not in HF_MODEL_CLASSES:
        raise UnknownBackendError(f"hf_clip cannot load model_type {model_type!r} from {directory} "
                                  f"(known: {', '.join(sorted(HF_MODEL_CLASSES))})")
    try:
        model = HF_MODEL_CLASSES[model_type].from_pretrained(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        processor = AutoImageProcessor.from_pretrained(directory)
    except OSError as exc:
        raise ModelNotFoundError(f"incomplete hf_clip checkpoint {directory} (needs config, weights, tokenizer "
                                 f"and preprocessor_config.json): {exc}") from exc
    device = resolve_device(cfg.device)
    log.info("loaded hf_clip %s (%s) on %s", cfg.model, model_type, device)
    identity = {"model_type": model_type, **identity, "tokenizer": tokenizer_identity(tokenizer)}
    return HFClipEncoder(model, tokenizer, processor, device, resolve_precision(cfg.precision, device), identity)
