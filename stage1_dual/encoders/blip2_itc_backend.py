"""``blip2_itc``: a BLIP-2 checkpoint's own image-text contrastive (ITC) embeddings as a stage-1 encoder.

The stage 1 of the BLIP-2 paper's retrieval protocol (LAVIS ``compute_sim_matrix``), from a
``transformers.Blip2ForImageTextRetrieval`` checkpoint (hub id or local directory), computed as that model's
``forward(..., use_image_text_matching_head=False)`` does:

- image -> ViT (``vision_model``, post-layernorm output) -> Q-Former with the learned query tokens
  cross-attending to it -> ``vision_projection`` -> L2-normalised per query: a multi-vector embedding
  ``[V, E]`` (V = ``num_query_tokens``, 32; E = ``image_text_hidden_size``, 256);
- caption -> BERT tokens (the checkpoint's tokenizer, at most ``TEXT_MAX_LENGTH`` tokens incl. [CLS]/[SEP])
  -> Q-Former text-only pass -> ``text_projection`` of the [CLS] output -> L2-normalised ``[E]``;
- similarity(image, text) = max over the V query vectors of the dot product (no temperature). The search
  side is ``stage1_dual.multivector_search``.

Precision: the vision tower runs in the effective precision (``auto`` = fp16 on CUDA, fp32 on CPU; the
weights are cast, as stage 2's ``vision_precision`` does, not autocast, so the tower's output can serve
stage 2 bit for bit, see :meth:`Blip2ItcEncoder.encode_images_and_vision`); the Q-Former and projections stay
in fp32 as in LAVIS and transformers (``_keep_in_fp32_modules``); ``fp64`` runs everything in float64.
Embeddings are returned as float32 on CPU.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoProcessor, Blip2ForImageTextRetrieval

from stage1_dual.config import EncoderConfig
from stage1_dual.encoders.base import resolve_device, resolve_precision
from stage1_dual.encoders.hf_clip_backend import HFImageTransform
from stage1_dual.encoders.hub import directory_identity, resolve_hub_snapshot
from stage1_dual.protocols import ModelNotFoundError
from stage1_dual.tokenizer_identity import tokenizer_identity

log = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 35
"""Caption tokens incl. [CLS]/[SEP] for the ITC text embedding: LAVIS's ``max_txt_len`` for BLIP-2 retrieval
(also stage 2's default ``text_max_length``); capped by the Q-Former's position embeddings."""

_TOWER_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}
_MODEL_FILES = ("*.safetensors", "*.bin", "*.json", "*.txt", "*.model")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class Blip2ItcEncoder:
    """BLIP-2 Q-Former ITC embeddings behind the stage-1 encoder interface (see module docstring).

    Multi-vector images: ``vectors_per_image`` (V) > 1 tells stage 1 that :meth:`encode_images` returns
    ``[B, V, embed_dim]``; :meth:`encode_texts` returns ``[B, embed_dim]``.
    """

    backend = "blip2_itc"

    def __init__(self, model: Blip2ForImageTextRetrieval, processor: Any, device: torch.device, precision: str,
                 identity: dict[str, Any]) -> None:
        config = model.config
        self.device = device
        self.precision = precision
        self.vision_dtype = _TOWER_DTYPES[precision]
        self.qformer_dtype = torch.float64 if precision == "fp64" else torch.float32
        self.vision_model = model.vision_model.to(device=device, dtype=self.vision_dtype).eval()
        self.query_tokens = model.query_tokens.detach().to(device=device, dtype=self.qformer_dtype)
        self.embeddings = model.embeddings.to(device=device, dtype=self.qformer_dtype).eval()
        self.qformer = model.qformer.to(device=device, dtype=self.qformer_dtype).eval()
        self.vision_projection = model.vision_projection.to(device=device, dtype=self.qformer_dtype).eval()
        self.text_projection = model.text_projection.to(device=device, dtype=self.qformer_dtype).eval()
        self._processor = processor
        self._tokenizer = processor.tokenizer
        self._image_processor = processor.image_processor
        self.text_max_length = min(TEXT_MAX_LENGTH, int(config.qformer_config.max_position_embeddings))
        self.embed_dim = int(config.image_text_hidden_size)
        self.vectors_per_image = int(config.num_query_tokens)
        size = int(config.vision_config.image_size)
        self.image_size = (size, size)
        self.image_mean = tuple(float(v) for v in self._image_processor.image_mean)
        self.image_std = tuple(float(v) for v in self._image_processor.image_std)
        self.identity = {**identity, "text_max_length": self.text_max_length,
                         "tokenizer": tokenizer_identity(self._tokenizer),
                         "vision_dtype": str(self.vision_dtype).removeprefix("torch."),
                         "qformer_dtype": str(self.qformer_dtype).removeprefix("torch."),
                         "image_shape": [self.vectors_per_image, self.embed_dim]}

    # --- model ------------------------------------------------------------------------------------
    def vision_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """ViT output ``[B, T, D]`` (post-layernorm ``last_hidden_state``) on the device, in the tower dtype."""
        pixels = pixels.to(device=self.device, dtype=self.vision_dtype)
        return self.vision_model(pixel_values=pixels).last_hidden_state

    def image_embeddings(self, features: torch.Tensor) -> torch.Tensor:
        """ITC image embeddings ``[B, V, E]`` (each query vector L2-normalised) of ViT output ``features``."""
        features = features.to(self.qformer_dtype)
        queries = self.query_tokens.expand(features.shape[0], -1, -1)
        mask = torch.ones(features.shape[:-1], dtype=torch.long, device=features.device)
        hidden = self.qformer(query_embeds=queries, encoder_hidden_states=features,
                              encoder_attention_mask=mask).last_hidden_state
        return F.normalize(self.vision_projection(hidden), dim=-1)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Caption tokens (with [CLS]/[SEP], right-padded, truncated to ``text_max_length``)."""
        encoded = self._tokenizer(list(texts), padding=True, truncation=True, max_length=self.text_max_length,
                                  return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def text_embeddings(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """ITC text embeddings ``[B, E]``: L2-normalised projection of the Q-Former's [CLS] output."""
        embeds = self.embeddings(input_ids=input_ids)
        hidden = self.qformer(query_embeds=embeds, query_length=0, attention_mask=attention_mask).last_hidden_state
        return F.normalize(self.text_projection(hidden[:, 0, :]), dim=-1)

    # --- stage-1 encoder interface ----------------------------------------------------------------
    @torch.no_grad()
    def encode_images_and_vision(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings float32 CPU [B, V, E], ViT output [B, T, D] on the device in the tower dtype)``: the
        tower's output is what stage 2's ``blip2_vit`` provider computes for the same checkpoint, processor,
        device and dtype, so a caller can hand it to stage 2's vision feature cache instead of running the
        tower twice."""
        features = self.vision_features(pixels)
        return self.image_embeddings(features).float().cpu(), features

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> float32 CPU ``[B, V, E]``, every query vector L2-normalised."""
        return self.encode_images_and_vision(pixels)[0]

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """B strings -> float32 CPU ``[B, E]``, rows L2-normalised."""
        tokens = {k: v.to(self.device) for k, v in self.tokenize(texts).items()}
        return self.text_embeddings(**tokens).float().cpu()

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """The checkpoint's image processor (``blip_image_eval``: bicubic resize to the square input size, no
        crop, rescale, CLIP mean/std)."""
        return HFImageTransform(self._image_processor)

    def preprocess_description(self) -> str:
        return json.dumps({"processor": type(self._image_processor).__name__, **self._image_processor.to_dict()},
                          sort_keys=True, default=str)

    def fingerprint(self) -> str:
        """Stable JSON of backend, checkpoint content (file hashes), tokenizer, text length, dtypes and the image
        embedding shape: it keys the embedding cache."""
        return json.dumps({"backend": self.backend, **self.identity}, sort_keys=True, default=str)

    def __repr__(self) -> str:
        return f"Blip2ItcEncoder({self.identity.get('model')}, device={self.device}, precision={self.precision})"


def _checkpoint_directory(cfg: EncoderConfig) -> tuple[Path, dict[str, Any]]:
    path = Path(cfg.model).expanduser()
    if path.is_dir():
        return path, {"model": "local directory", "files": directory_identity(path, _MODEL_FILES)}
    if path.exists() or cfg.model.startswith(".") or path.is_absolute() or not _HUB_ID.match(cfg.model):
        raise ModelNotFoundError(f"blip2_itc checkpoint directory not found: {cfg.model} (a directory written by "
                                 f"save_pretrained, or a hub id such as Salesforce/blip2-itm-vit-g-coco)")
    directory = resolve_hub_snapshot(cfg.model, revision=cfg.revision, cache_dir=cfg.hub_cache_dir,
                                     probe_timeout_s=cfg.hub_probe_timeout_s, what=f"blip2_itc model {cfg.model!r}")
    return directory, {"model": cfg.model, "revision": cfg.revision,
                       "files": directory_identity(directory, _MODEL_FILES)}


def load_blip2_itc(cfg: EncoderConfig) -> Blip2ItcEncoder:
    """Load ``cfg.model`` (a ``Blip2ForImageTextRetrieval`` checkpoint with its processor) as a stage-1 encoder."""
    if cfg.pretrained:
        raise ValueError("encoder.pretrained is not used by blip2_itc: put the hub id or directory in encoder.model")
    directory, identity = _checkpoint_directory(cfg)
    try:
        model = Blip2ForImageTextRetrieval.from_pretrained(directory, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(directory)
    except OSError as exc:
        raise ModelNotFoundError(f"incomplete blip2_itc checkpoint {directory} (needs config, weights, tokenizer "
                                 f"and preprocessor_config.json): {exc}") from exc
    if not hasattr(processor, "image_processor") or not hasattr(processor, "tokenizer"):
        raise ModelNotFoundError(f"blip2_itc checkpoint {directory} has no BLIP-2 processor (tokenizer + image "
                                 f"processor); found {type(processor).__name__}")
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    log.info("loaded blip2_itc %s on %s (vision tower %s)", cfg.model, device, precision)
    return Blip2ItcEncoder(model.eval(), processor, device, precision, identity)
