"""Fixtures of stage-1 tests: the tiny open_clip architecture registered at run time, a tiny encoder."""

from __future__ import annotations

import open_clip
import pytest

from stage1_dual.config import EncoderConfig
from stage1_dual.encoders import load_encoder
from tests.stage1_dual.helpers import TINY_OPEN_CLIP, write_tiny_open_clip_config


@pytest.fixture(scope="session")
def tiny_open_clip_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Name of a tiny random-weight open_clip architecture (registered with open_clip.add_model_config)."""
    open_clip.add_model_config(write_tiny_open_clip_config(tmp_path_factory.mktemp("open_clip_configs")))
    return TINY_OPEN_CLIP


@pytest.fixture
def tiny_encoder_config(tiny_open_clip_name: str) -> EncoderConfig:
    return EncoderConfig(backend="open_clip", model=tiny_open_clip_name, device="cpu", batch_size=4, num_workers=0)


@pytest.fixture
def tiny_encoder(tiny_encoder_config: EncoderConfig):
    return load_encoder(tiny_encoder_config)
