"""``rrbench compete`` configs get the load-time checks of experiment configs (issue 18 case 9)."""

from __future__ import annotations

import pytest
import torch

from eval.competition.config import load_compete_config
from eval.typed_config import ConfigError


@pytest.mark.parametrize("overrides, expected", [
    (["stage2={device: cuda}"], "stage2.device"),
    (["stage1.encoder.device=cuda:0"], "stage1.encoder.device"),
    (["finetune.enabled=true", "finetune.training.device=cuda"], "finetune.training.device"),
    (["stage2={backend: clip}"], "stage2.backend"),
    (["fusion.alpha=3"], "fusion.alpha must be in [0, 1]"),
    (["finetune.val_fraction=1.5"], "finetune.val_fraction must be in [0, 1)"),
    (["top_k=0"], "top_k must be >= 1"),
])
def test_compete_config_refused_at_load(monkeypatch, overrides, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as info:
        load_compete_config(None, overrides)
    assert expected in str(info.value) and "<defaults>" in str(info.value)
