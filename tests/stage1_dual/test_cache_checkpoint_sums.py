"""An rrbench_dual checkpoint directory with a ``SHA256SUMS`` file (``sha256sum`` output, subfolders allowed) is
verified when loaded: a damaged or missing listed file is a stage-1 user error naming the file."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from stage1_dual.config import EncoderConfig
from stage1_dual.encoders import load_encoder
from stage1_dual.protocols import Stage1Error
from stage1_dual.trainable.checkpoint import save_model_dir
from stage1_dual.trainable.model import DualEncoderModel
from tests.stage1_dual.trainable_helpers import tiny_model_config


def _sha256sum_line(directory: Path, name: str, binary: bool = False) -> str:
    digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    return f"{digest} {'*' if binary else ' '}{name}\n"


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    directory = save_model_dir(DualEncoderModel(tiny_model_config()), tmp_path / "ckpt")
    (directory / "extra").mkdir()
    (directory / "extra" / "notes.txt").write_text("trained on toy data\n")
    (directory / "SHA256SUMS").write_text(_sha256sum_line(directory, "config.json")
                                          + _sha256sum_line(directory, "model.safetensors", binary=True)
                                          + _sha256sum_line(directory, "extra/notes.txt"))
    return directory


def _load(directory: Path):
    return load_encoder(EncoderConfig(backend="rrbench_dual", model=str(directory), device="cpu"))


def test_damaged_weights_are_refused_naming_the_file(checkpoint):
    assert _load(checkpoint).embed_dim == 16  # sound: loads
    weights = checkpoint / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0x01  # one bit in a tensor: still a loadable safetensors file
    weights.write_bytes(bytes(data))
    with pytest.raises(Stage1Error, match=r"model\.safetensors does not match SHA256SUMS"):
        _load(checkpoint)


def test_damaged_file_in_a_subfolder_is_refused(checkpoint):
    (checkpoint / "extra" / "notes.txt").write_text("edited\n")
    with pytest.raises(Stage1Error, match=r"extra/notes\.txt does not match"):
        _load(checkpoint)


def test_missing_listed_file_is_refused_naming_it(checkpoint):
    shutil.rmtree(checkpoint / "extra")
    with pytest.raises(Stage1Error, match=r"extra/notes\.txt is listed in SHA256SUMS but missing"):
        _load(checkpoint)


def test_malformed_sums_file_is_refused(checkpoint):
    (checkpoint / "SHA256SUMS").write_text("not a checksum line\n")
    with pytest.raises(Stage1Error, match="SHA256SUMS.*line 1"):
        _load(checkpoint)


def test_truncated_weights_without_sums_are_a_user_error_naming_the_file(checkpoint):
    (checkpoint / "SHA256SUMS").unlink()
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(Stage1Error, match=r"model\.safetensors are unreadable"):
        _load(checkpoint)
