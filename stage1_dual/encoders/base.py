"""Shared machinery of torch dual encoders: device and precision choice, autocast, normalisation.

A backend subclasses :class:`TorchDualEncoder` and implements ``image_features`` /
``text_features`` (projected, unnormalised, differentiable), ``tokenize``, ``image_transform``,
``parts`` and ``preprocess_description``. Training code (contrastive, LiT) uses ``parts()`` and the
differentiable feature methods; inference code uses ``encode_images`` / ``encode_texts``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from PIL import Image

log = logging.getLogger(__name__)

_AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; otherwise ``torch.device(name)`` (checked available)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available (use device: auto or cpu)")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """Effective precision: fp16/bf16 autocast only on CUDA (auto = fp16 there), fp32 elsewhere; ``fp64``
    (the whole model in float64) on any device."""
    if precision == "fp64":
        return "fp64"
    if device.type != "cuda":
        if precision in ("fp16", "bf16"):
            log.warning("precision %s requested on %s: running fp32 (autocast only on CUDA)", precision, device)
        return "fp32"
    return "fp16" if precision == "auto" else precision


def state_dict_digest(module: torch.nn.Module) -> str:
    """sha1 (16 hex) over parameter/buffer names, shapes, dtypes and bytes: identity of in-memory weights."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(data.shape)}:{data.dtype}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class EncoderParts:
    """The trainable pieces of a dual encoder, for training code (freezing towers, LiT).

    ``image_projection`` / ``text_projection`` map tower features into the shared space
    (an ``nn.Linear`` or an ``nn.Parameter`` matrix, applied as ``x @ P``); None when the backend
    has none. For open_clip CLIP models the text tower's embeddings live on ``model`` itself.
    """

    model: torch.nn.Module
    image_tower: torch.nn.Module
    text_tower: torch.nn.Module
    image_projection: Optional[Union[torch.nn.Module, torch.nn.Parameter]]
    text_projection: Optional[Union[torch.nn.Module, torch.nn.Parameter]]


class TorchDualEncoder:
    """Base of torch dual encoders; see :class:`stage1_dual.protocols.DualEncoder` for the contract."""

    backend: str = ""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str,
                 identity: dict[str, Any], embed_dim: int, image_size: tuple[int, int],
                 image_mean: Sequence[float], image_std: Sequence[float]) -> None:
        self.model = model.to(device).eval()
        if precision == "fp64":
            self.model = self.model.to(dtype=torch.float64)
        self.device = device
        self.precision = precision
        self.identity = dict(identity)
        self.embed_dim = int(embed_dim)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.image_mean = tuple(float(v) for v in image_mean)
        self.image_std = tuple(float(v) for v in image_std)

    # --- to implement in a backend -------------------------------------------------------------
    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Projected, unnormalised image features ``[B, embed_dim]`` (differentiable)."""
        raise NotImplementedError

    def text_features(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Projected, unnormalised text features ``[B, embed_dim]`` (differentiable)."""
        raise NotImplementedError

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Model inputs for ``texts`` (CPU tensors, keys as ``text_features`` expects)."""
        raise NotImplementedError

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        raise NotImplementedError

    def parts(self) -> EncoderParts:
        raise NotImplementedError

    def preprocess_description(self) -> str:
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Stable JSON of the model identity: backend, the backend's ``identity`` (content hashes of weights,
        config and tokenizer files, architecture config, tokenizer and text length) and the dtypes the
        parameters are held in. It keys the embedding cache, so it names no path or file time."""
        dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in self.model.parameters()})
        return json.dumps({"backend": self.backend, **self.identity, "param_dtypes": dtypes}, sort_keys=True,
                          default=str)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.precision in _AUTOCAST_DTYPES:
            return torch.autocast(device_type="cuda", dtype=_AUTOCAST_DTYPES[self.precision])
        return contextlib.nullcontext()

    def _to_model(self, tensor: torch.Tensor) -> torch.Tensor:
        """An input on the model's device; floating inputs in float64 when the model runs in fp64."""
        if self.precision == "fp64" and tensor.is_floating_point():
            return tensor.to(self.device, dtype=torch.float64)
        return tensor.to(self.device, non_blocking=True)

    def _normalised(self, features: torch.Tensor) -> torch.Tensor:
        """L2-normalised in the compute dtype (at least float32), returned as float32 on CPU."""
        features = features if features.dtype == torch.float64 else features.float()
        return F.normalize(features, dim=-1).float().cpu()

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> float32 CPU ``[B, embed_dim]``, L2-normalised rows."""
        with self._autocast():
            features = self.image_features(self._to_model(pixels))
        return self._normalised(features)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """B strings -> float32 CPU ``[B, embed_dim]``, L2-normalised rows."""
        tokens = {k: self._to_model(v) for k, v in self.tokenize(list(texts)).items()}
        with self._autocast():
            features = self.text_features(tokens)
        return self._normalised(features)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint()}, device={self.device}, precision={self.precision})"
