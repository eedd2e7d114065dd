"""``rrbench compete`` configs get the load-time checks of experiment configs (issue 18 case 9)."""

from __future__ import annotations

import pytest
import torch

from eval.competition.config import load_compete_config
from eval.typed_config import ConfigError


@pytest.mark.parametrize("overrides, key, reason", [
    (["stage2={device: cuda}"], "stage2.device", "CUDA is not available"),
    (["stage1.encoder.device=cuda:0"], "stage1.encoder.device", "CUDA is not available"),
    (["finetune.enabled=true", "finetune.training.device=cuda"], "finetune.training.device", "CUDA"),
    (["stage2={backend: clip}"], "stage2.backend", "unknown reranker backend 'clip'"),
    (["fusion.alpha=3"], "fusion.alpha", "must be in [0, 1]"),
    (["finetune.val_fraction=1.5"], "finetune.val_fraction", "must be in [0, 1)"),
    (["top_k=0"], "top_k", "must be >= 1"),
])
def test_compete_config_refused_at_load(monkeypatch, overrides, key, reason):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as info:
        load_compete_config(None, overrides)
    message = str(info.value)
    source = f"<defaults> (with overrides {' '.join(overrides)}): "
    assert message.startswith(source), message  # the overrides are named, then the full dotted key
    assert message[len(source):].startswith((f"{key} ", f"{key}:", f"key '{key}'")) and reason in message, message
