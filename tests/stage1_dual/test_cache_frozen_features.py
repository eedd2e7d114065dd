"""Damaged frozen-feature cache entries (LiT training) are moved aside with a WARNING naming the file and
recomputed to exactly the clean features; a third read is a clean hit."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from stage1_dual.trainable.model_config import TextTowerConfig
from stage1_dual.trainable.text_towers import build_text_tower
from stage1_dual.training.feature_cache import FrozenFeatureCache
from tests.stage1_dual.trainable_helpers import write_tiny_bert

TEXTS = ["a red square", "a dog runs .", "a cat", "two blue circles above a star"]


@pytest.fixture(scope="module")
def tower(tmp_path_factory):
    bert = write_tiny_bert(tmp_path_factory.mktemp("bert"))
    return build_text_tower(TextTowerConfig(name="minilm", model_dir=str(bert), trainable_layers=1))


def _flip_tensor_bytes(path: Path) -> None:
    """Flip bytes inside the data of the first tensor (the safetensors header stays valid)."""
    data = bytearray(path.read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    start = 8 + header_len
    for offset in range(start + 4, start + 12):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path: Path) -> None:
    path.write_bytes(b"{not json" + path.read_bytes()[20:])


@pytest.mark.parametrize("name,corrupt", [("features.safetensors", _flip_tensor_bytes),
                                          ("features.safetensors", _truncate), ("meta.json", _garble)],
                         ids=["flipped", "truncated", "meta-garbled"])
def test_damaged_entry_is_recomputed_with_a_warning(tower, tmp_path, caplog, name, corrupt):
    clean = FrozenFeatureCache(tmp_path / "cache", dtype="float16").texts(tower, TEXTS, batch_size=2)
    path = next((tmp_path / "cache").rglob(name))
    corrupt(path)
    damaged = path.read_bytes()

    cache = FrozenFeatureCache(tmp_path / "cache", dtype="float16")
    with caplog.at_level(logging.WARNING):
        again = cache.texts(tower, TEXTS, batch_size=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0], warnings
    assert cache.misses == 1 and cache.hits == 0
    rows = np.arange(len(TEXTS))
    for key, value in clean.batch(rows).items():
        torch.testing.assert_close(again.batch(rows)[key], value, atol=0, rtol=0)
    moved = list(path.parent.glob(name + ".corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == damaged

    caplog.clear()
    third = FrozenFeatureCache(tmp_path / "cache", dtype="float16")
    with caplog.at_level(logging.WARNING):
        third.texts(tower, TEXTS, batch_size=2)
    assert third.hits == 1 and not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_changed_tokenizer_vocabulary_is_a_new_key(tmp_path):
    bert = write_tiny_bert(tmp_path / "bert")
    build = lambda: build_text_tower(TextTowerConfig(name="minilm", model_dir=str(bert), trainable_layers=1))
    FrozenFeatureCache(tmp_path / "cache").texts(build(), TEXTS, batch_size=2)
    vocab = bert / "vocab.txt"  # swap two words' ids: same weights files, other token ids
    words = vocab.read_text().splitlines()
    red, blue = words.index("red"), words.index("blue")
    words[red], words[blue] = words[blue], words[red]
    vocab.write_text("\n".join(words) + "\n")
    for stale in bert.glob("tokenizer.json"):
        stale.unlink()
    tower, cache = build(), FrozenFeatureCache(tmp_path / "cache")
    cached = cache.texts(tower, TEXTS, batch_size=2)
    assert cache.misses == 1 and cache.hits == 0
    fresh = FrozenFeatureCache(None).texts(tower, TEXTS, batch_size=2)
    rows = np.arange(len(TEXTS))
    for key, value in fresh.batch(rows).items():
        torch.testing.assert_close(cached.batch(rows)[key], value, atol=0, rtol=0)
