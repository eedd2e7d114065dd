"""Backend dict, device and precision choice, weight digests."""

from __future__ import annotations

import pytest
import torch

from stage1_dual.config import EncoderConfig
from stage1_dual.encoders import ENCODER_BACKENDS, load_encoder
from stage1_dual.encoders.base import resolve_device, resolve_precision, state_dict_digest
from stage1_dual.protocols import UnknownBackendError


def test_unknown_backend_lists_known_ones():
    with pytest.raises(UnknownBackendError) as info:
        load_encoder(EncoderConfig(backend="blip"))
    assert "'blip'" in str(info.value)
    assert f"known backends: {', '.join(sorted(ENCODER_BACKENDS))}" in str(info.value)
    assert {"open_clip", "hf_clip"} <= set(ENCODER_BACKENDS)


def test_precision_is_fp32_on_cpu_and_autocast_only_on_cuda():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [resolve_precision(p, cpu) for p in ("auto", "fp32", "fp16", "bf16")] == ["fp32"] * 4
    assert [resolve_precision(p, cuda) for p in ("auto", "fp32", "fp16", "bf16")] == ["fp16", "fp32", "fp16", "bf16"]


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_state_dict_digest_sees_any_weight_change():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    before = state_dict_digest(model)
    assert before == state_dict_digest(model)
    with torch.no_grad():
        model[1].bias[0] += 1e-6
    assert state_dict_digest(model) != before
