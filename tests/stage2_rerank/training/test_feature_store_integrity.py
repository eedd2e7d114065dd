"""A damaged training FeatureStore (``features.npy`` bytes flipped or truncated, ``index.json`` garbled) is detected
on reopen, moved aside with a WARNING naming the file, and recomputed to exactly the clean build's features."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BlipImageProcessor

from stage2_rerank.training.feature_store import (FEATURES_FILE, INDEX_FILE, CorruptFeatureStoreError, cached_features,
                                                  load_feature_store)
from stage2_rerank.vision.conv_grid import ConvGrid, ConvGridConfig, ConvGridProvider


class CountingProvider:
    """A real (tiny, random) conv-grid provider that counts the images it encodes."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        grid = ConvGrid(ConvGridConfig(image_size=32, widths=(8, 16), feature_dim=12, groups=4))
        processor = BlipImageProcessor(size={"height": 32, "width": 32})
        self._inner = ConvGridProvider(grid, processor, torch.device("cpu"), torch.float32, "tiny-test")
        self.identity, self.feature_shape, self.encoded = self._inner.identity, self._inner.feature_shape, 0

    def encode(self, images):
        self.encoded += len(images)
        return self._inner.encode(images)


@pytest.fixture(scope="module")
def provider() -> CountingProvider:
    return CountingProvider()


@pytest.fixture
def clean_store(provider, tiny_images, tmp_path) -> tuple[Path, np.ndarray]:
    directory = tmp_path / "store"
    store = cached_features(provider, tiny_images, directory, batch_size=4, progress=False)
    return directory, np.array(store.features)


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(len(data) - 200, len(data) - 190):  # inside the array payload, past the .npy header
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garble(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40] + b"\x00garbage")


@pytest.mark.parametrize("name,corrupt", [(FEATURES_FILE, flip_bytes), (FEATURES_FILE, truncate),
                                          (INDEX_FILE, garble)], ids=["flipped", "truncated", "index-garbled"])
def test_damaged_store_is_recomputed_with_a_warning(provider, tiny_images, clean_store, caplog, name, corrupt):
    directory, clean = clean_store
    damaged_path = directory / name
    corrupt(damaged_path)
    damaged = damaged_path.read_bytes()
    if name == FEATURES_FILE:
        with pytest.raises(CorruptFeatureStoreError, match=str(damaged_path)):
            load_feature_store(directory)

    before = provider.encoded
    with caplog.at_level(logging.WARNING):
        store = cached_features(provider, tiny_images, directory, batch_size=4, progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(damaged_path) in warnings[0], warnings
    assert provider.encoded == before + len(tiny_images)
    np.testing.assert_array_equal(np.asarray(store.features), clean)
    moved = list(directory.glob(name + ".corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == damaged  # kept aside, not deleted

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = cached_features(provider, tiny_images, directory, batch_size=4, progress=False)
    assert not caplog.records and provider.encoded == before + len(tiny_images)  # clean reuse
    np.testing.assert_array_equal(np.asarray(again.features), clean)


def test_a_store_copied_elsewhere_is_still_verified(provider, tiny_images, clean_store, tmp_path):
    directory, clean = clean_store
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    np.testing.assert_array_equal(np.asarray(load_feature_store(copy).features), clean)
    features = np.load(copy / FEATURES_FILE)
    features[0, 0, 0] += 1
    np.save(copy / FEATURES_FILE, features)  # a well-formed file with other content
    with pytest.raises(CorruptFeatureStoreError, match="sha256"):
        load_feature_store(copy)
