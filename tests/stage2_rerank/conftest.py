"""Shared fixtures: a tiny random BLIP-2 ITM checkpoint on disk, images as eval ImageItems, captions."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.data.benchmark import ImageItem
from stage2_rerank.bench.random_checkpoint import save_random_checkpoint, tiny_blip2_itm_config
from stage2_rerank.config import RerankerConfig
from tests.stage2_rerank.helpers import WORDS, make_images

@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tiny_blip2_itm")
    save_random_checkpoint(directory, tiny_blip2_itm_config(), WORDS, seed=3)
    return directory


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory) -> list[ImageItem]:
    return make_images(tmp_path_factory.mktemp("images"), 6)


@pytest.fixture
def tiny_config(tiny_checkpoint: Path):
    """Factory: RerankerConfig on the tiny checkpoint, CPU, with overrides."""

    def build(**overrides) -> RerankerConfig:
        values = dict(model=str(tiny_checkpoint), device="cpu", pair_batch_size=4, vision_batch_size=2)
        values.update(overrides)
        return RerankerConfig(**values)

    return build
