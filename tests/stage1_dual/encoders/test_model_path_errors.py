"""A missing model directory of a stage-1 encoder shows the absolute path tried and how relative paths resolve."""

from __future__ import annotations

import pytest

from stage1_dual.config import EncoderConfig
from stage1_dual.encoders import load_encoder
from stage1_dual.protocols import ModelNotFoundError

RULE = "relative paths in a config resolve against the current directory"


@pytest.mark.parametrize("backend, model", [("rrbench_dual", "models/s1"), ("open_clip", "local-dir:models/s1"),
                                            ("hf_clip", "./models/s1")])
def test_missing_relative_model_directory(tmp_path, monkeypatch, backend, model):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError) as error:
        load_encoder(EncoderConfig(backend=backend, model=model, device="cpu"))
    assert f"(tried {tmp_path / 'models' / 's1'}: {RULE} {tmp_path}, not the config file's folder)" in str(error.value)
