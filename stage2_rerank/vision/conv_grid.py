"""A small CNN feature grid trained jointly with the Q-Former (``conv_grid`` provider; the synthetic demo's vision).

:class:`ConvGrid`: 3x3 conv stages (GroupNorm + GELU; every stage halves the resolution, the first optionally not), a
1x1 projection to D, a learned position embedding per grid cell (keeps where each object is), and a layer
norm: ``[B, 3, S, S]`` pixels -> ``[B, g*g, D]`` tokens, ``g = S / (first_stride * 2^(stages - 1))``,
row-major positions.

A checkpoint directory holds it next to the Q-Former as ``conv_grid_config.json`` + ``conv_grid.safetensors``;
the ``conv_grid`` provider loads them from the directory the reranker was loaded from, with the checkpoint's
image processor for preprocessing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from stage2_rerank.config import dtype_name
from stage2_rerank.content_identity import processor_digest
from stage2_rerank.protocols import RerankerLoadError
from stage2_rerank.vision.base import ProviderSource

CONFIG_FILE = "conv_grid_config.json"
WEIGHTS_FILE = "conv_grid.safetensors"


@dataclass
class ConvGridConfig:
    """Architecture of a :class:`ConvGrid`.

    Attributes:
        image_size: side S of the square input in pixels; must be divisible by ``2^(len(widths) - 1)``.
        widths: output channels of each 3x3 conv stage; every stage after the first halves the resolution.
        feature_dim: D of each output token.
        groups: GroupNorm groups per stage (must divide every width).
        first_stride: stride of the first stage (1 keeps the resolution, 2 halves it too).
    """

    image_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 128
    groups: int = 8
    first_stride: int = 2

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be a non-empty list of positive ints, got {self.widths}")
        if self.first_stride not in (1, 2):
            raise ValueError(f"first_stride must be 1 or 2, got {self.first_stride}")
        if self.image_size % self._reduction:
            raise ValueError(f"image_size {self.image_size} is not divisible by the grid's reduction {self._reduction}")
        if any(w % self.groups for w in self.widths):
            raise ValueError(f"groups={self.groups} must divide every width {self.widths}")
        if self.feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {self.feature_dim}")

    @property
    def _reduction(self) -> int:
        return self.first_stride * 2 ** (len(self.widths) - 1)

    @property
    def grid_side(self) -> int:
        return self.image_size // self._reduction


class ConvGrid(nn.Module):
    """Pixels ``[B, 3, S, S]`` (normalised as the processor does) -> tokens ``[B, T, D]`` (see module doc)."""

    def __init__(self, config: ConvGridConfig) -> None:
        super().__init__()
        self.config = config
        stages: list[nn.Module] = []
        channels = 3
        for index, width in enumerate(config.widths):
            stride = config.first_stride if index == 0 else 2
            stages += [nn.Conv2d(channels, width, 3, stride=stride, padding=1), nn.GroupNorm(config.groups, width),
                       nn.GELU()]
            channels = width
        self.stages = nn.Sequential(*stages)
        self.project = nn.Conv2d(channels, config.feature_dim, 1)
        side = config.grid_side
        self.position = nn.Parameter(torch.randn(side * side, config.feature_dim) * 0.02)
        self.norm = nn.LayerNorm(config.feature_dim)

    @property
    def feature_shape(self) -> tuple[int, int]:
        return (self.config.grid_side ** 2, self.config.feature_dim)

    def save_to(self, directory: Path) -> None:
        """Write this module into a checkpoint directory (see :func:`save_conv_grid`)."""
        save_conv_grid(self, directory)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        grid = self.project(self.stages(pixels))
        tokens = grid.flatten(2).transpose(1, 2)
        return self.norm(tokens + self.position)


def save_conv_grid(module: ConvGrid, directory: Path) -> None:
    """Write ``conv_grid_config.json`` + ``conv_grid.safetensors`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = asdict(module.config)
    config["widths"] = list(config["widths"])
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()},
              str(directory / WEIGHTS_FILE))


def load_conv_grid(directory: Path) -> ConvGrid:
    """The :class:`ConvGrid` saved in ``directory`` (eval mode, fp32); RerankerLoadError when absent."""
    directory = Path(directory)
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise RerankerLoadError(f"{directory} has no {CONFIG_FILE} / {WEIGHTS_FILE} (a conv_grid checkpoint)")
    config = ConvGridConfig(**json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")))
    module = ConvGrid(config)
    module.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    return module.eval()


class ConvGridProvider:
    """A trained :class:`ConvGrid` with the checkpoint's image processor."""

    def __init__(self, module: ConvGrid, image_processor: Any, device: torch.device, dtype: torch.dtype,
                 checkpoint_identity: str) -> None:
        size = image_processor.size
        side = size if isinstance(size, int) else int(size["height"])
        if side != module.config.image_size or (not isinstance(size, int) and size["width"] != side):
            raise RerankerLoadError(f"the processor resizes to {size} but conv_grid expects "
                                    f"{module.config.image_size} px")
        self._module = module.to(device=device, dtype=dtype).eval()
        self._processor = image_processor
        self._device, self._dtype = device, dtype
        # checkpoint_identity covers the conv_grid files (content of the checkpoint directory)
        self._identity = (f"conv_grid|{checkpoint_identity}|{side}px|{dtype_name(dtype)}"
                          f"|processor={processor_digest(image_processor)}")

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def feature_shape(self) -> tuple[int, int]:
        return self._module.feature_shape

    def encode(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """``[len(images), T, D]`` grid tokens on the provider's device in its dtype."""
        pixels = self._processor(images=list(images), return_tensors="pt")["pixel_values"]
        return self._module(pixels.to(device=self._device, dtype=self._dtype))


def conv_grid_provider(source: ProviderSource) -> ConvGridProvider:
    """``conv_grid`` from the checkpoint directory's conv_grid files and the checkpoint's processor."""
    if source.model_dir is None or source.processor is None:
        raise RerankerLoadError("vision provider 'conv_grid' needs a local checkpoint directory with its processor")
    return ConvGridProvider(load_conv_grid(source.model_dir), source.processor.image_processor, source.device,
                            source.dtype, source.checkpoint_identity)
