"""precision fp64: the whole model in float64, embeddings float32 (the demo's CPU-independent setting)."""

import dataclasses

import numpy as np
import torch

from stage1_dual.encoders import load_encoder
from tests.stage1_dual.encoders.test_open_clip_backend import TEXTS, _pixels


def test_fp64_encoder_runs_in_float64_and_returns_float32(tiny_encoder_config):
    fp32 = load_encoder(tiny_encoder_config)
    fp64 = load_encoder(dataclasses.replace(tiny_encoder_config, precision="fp64"))
    assert fp64.precision == "fp64" and {p.dtype for p in fp64.model.parameters()} == {torch.float64}
    assert fp64.fingerprint() != fp32.fingerprint()  # the embedding cache keys differ too
    pixels = _pixels(fp32)
    for a, b in ((fp32.encode_images(pixels), fp64.encode_images(pixels)),
                 (fp32.encode_texts(TEXTS), fp64.encode_texts(TEXTS))):
        assert b.dtype == torch.float32 and b.shape == a.shape
        assert torch.allclose(a, b, atol=1e-5)
    # float64 compute rounded to float32 = the float64 result rounded (no float32 accumulation noise)
    with torch.no_grad():
        exact = torch.nn.functional.normalize(fp64.image_features(pixels.double()), dim=-1)
    assert np.array_equal(fp64.encode_images(pixels).numpy(), exact.float().numpy())
